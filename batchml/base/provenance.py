"""Where a result came from: code version, run ids, content hashes, and what shapes a date's outputs."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

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


# What shapes a date's features (and so its predictions), as recorded in their manifests
# under `shaped_by` and compared by `Backfill --dry-run`:
#   contract             the whole dataset contract but its dataset name: columns, dtypes and
#                        rules, key, timestamp, timezone, label (its classes name proba_<class>)
#   [features] transform the hook's name
#   features hook code   the content of the module file(s) the hook lives in: the module named
#                        in the setting and the one that defines the function (helpers the hook
#                        imports from other modules are not followed)
# Settings that do not count: how the source is read ([source], whose data has its own
# fingerprint), how rows are cut into files ([storage] rows_per_file), when a date fails
# ([schema] max_reject_share: a committed date passed), the model and its runtime (pinned per
# date: a new version makes a date stale, not changed), and monitoring settings ([checks],
# [drift], [report]), which shape documents recomputed on every run of a date.
CONTRACT_PART, TRANSFORM_PART, HOOK_CODE_PART = "contract", "[features] transform", "features hook code"


def shaped_by(contract: Any, transform: str) -> dict[str, str]:  # a dataset Contract (a package above base/)
    """What a date's features are made by: {part: digest or name}, compared part by part to name what changed."""
    return {
        CONTRACT_PART: contract_digest(contract),
        TRANSFORM_PART: transform,
        HOOK_CODE_PART: hook_code_digest(transform) if transform else "",
    }


def contract_digest(contract: Any) -> str:  # a dataset Contract, a dataclass
    """sha256 (16 hex) of everything in the contract that shapes outputs: all but its dataset name and file path."""
    body = {k: v for k, v in asdict(contract).items() if k not in ("dataset", "path", "names")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=list).encode()).hexdigest()[:16]


def hook_code_digest(spec: str) -> str:
    """sha256 (16 hex) of the source files the hook `module:function` lives in, by content (not path: a project may
    move)."""
    from batchml.base.hooks import load_hook

    module_name = spec.partition(":")[0]
    fn = load_hook("[features] transform", spec)
    files = {
        f for f in (_source_file(sys.modules.get(module_name)), _source_file(inspect.getmodule(fn))) if f is not None
    }
    digest = hashlib.sha256()
    for content in sorted(sha256_file(f) for f in files):
        digest.update(content.encode())
    return digest.hexdigest()[:16] if files else ""


def _source_file(module: ModuleType | None) -> str | None:
    try:
        path = inspect.getsourcefile(module) if module is not None else None
    except TypeError:  # a built-in module
        return None
    return path if path and os.path.isfile(path) else None
