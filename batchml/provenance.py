"""Where a result came from: code version, run ids and content hashes."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import batchml


@functools.cache
def code_version() -> str:
    """The package version plus the git commit when known (BATCHML_GIT_SHA in images)."""
    sha = os.environ.get("BATCHML_GIT_SHA", "")
    if not sha:
        try:
            sha = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"],
                cwd=Path(batchml.__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            sha = ""
    return f"{batchml.__version__}+{sha}" if sha else batchml.__version__


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_tree(folder: str | os.PathLike) -> str:
    """One digest of a folder's files: their relative paths and contents, in sorted order."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()
