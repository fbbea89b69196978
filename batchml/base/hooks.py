"""A project's hooks: plain functions named `module:function` in luigi.cfg.

A hook is imported from the project (its folder is on sys.path first), so a project's
own module wins over anything of the same name elsewhere. A hook that cannot be imported,
or that raises, fails the date with an error naming the setting and the hook.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchml.base.errors import HookError


def add_project_path(folder: str | Path) -> None:
    """Make the project's modules importable, ahead of everything else on sys.path."""
    folder = str(Path(folder).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)


@functools.cache
def load_hook(setting: str, spec: str) -> Callable:
    """The function `spec` ('module:function') names; `setting` names where it was configured."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise HookError(f"{setting} = {spec!r}: expected 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise HookError(f"{setting} = {spec}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    fn: Any = module
    for part in name.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise HookError(f"{setting} = {spec}: {module_name} ({getattr(module, '__file__', '?')}) has no {name!r}")
    if not callable(fn):
        raise HookError(f"{setting} = {spec}: {name!r} is not a function")
    return fn


def call_hook(setting: str, spec: str, *args: Any, **kwargs: Any) -> Any:
    """Call a hook; anything it raises fails the caller with the hook named."""
    fn = load_hook(setting, spec)
    try:
        return fn(*args, **kwargs)
    except HookError:
        raise
    except Exception as exc:
        raise HookError(f"{setting} = {spec} raised {type(exc).__name__}: {exc}") from exc
