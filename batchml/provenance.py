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
