"""A date's validated rows -> the model's inputs and the labels, through the project's hooks.

Without a `[features] transform` the model receives the contract's columns as they are;
with one, the transform returns the model's input columns and batchml carries the key
beside them. The same code runs at extraction and when a training frame is built, so a
model never trains on inputs it would not be scored on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from batchml.base.errors import HookError
from batchml.base.hooks import call_hook
from batchml.dataset.contract import Contract

FEATURES_HOOK = "[features] transform"
LABELS_HOOK = "[labels] transform"


_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True


def private_copy(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` as a hook may change them, in place or not, without changing the caller's.

    Under Copy-on-Write (always with pandas 3) a shallow copy: a column is copied only if the
    hook writes to it, where a deep copy copied every value of every batch. Without
    Copy-on-Write, every value is copied.
    """
    return rows.copy(deep=not _COPY_ON_WRITE)


def model_inputs(rows: pd.DataFrame, contract: Contract, transform: str = "") -> pd.DataFrame:
    """The key columns plus the model's inputs for validated `rows`, row for row."""
    if not transform:
        return rows[list(dict.fromkeys([*contract.key, *contract.default_inputs]))].reset_index(drop=True)
    out = call_hook(FEATURES_HOOK, transform, private_copy(rows))
    if not isinstance(out, pd.DataFrame):
        raise HookError(f"{FEATURES_HOOK} = {transform} returned {type(out).__name__}, expected a pandas DataFrame")
    if len(out) != len(rows):
        raise HookError(
            f"{FEATURES_HOOK} = {transform} returned {len(out)} rows for {len(rows)}: a transform keeps every row "
            "(reject rows in the contract)"
        )
    twice = sorted({str(c) for c in out.columns[out.columns.duplicated()]})
    if twice:
        raise HookError(f"{FEATURES_HOOK} = {transform} returned more than one column named {', '.join(twice)}")
    out = out.reset_index(drop=True)
    # One frame of the key, then the hook's columns: not the key's columns inserted one by one and the frame reordered
    columns = {k: out[k] if k in out.columns else rows[k].to_numpy() for k in contract.key}
    columns.update((c, out[c]) for c in out.columns if c not in columns)
    return pd.DataFrame(columns, copy=False)


def labels_of(rows: pd.DataFrame, contract: Contract, transform: str) -> pd.DataFrame:
    """Key columns and the label derived from a date's own rows by `[labels] transform`."""
    label = contract.require_label().column
    out = call_hook(LABELS_HOOK, transform, private_copy(rows))
    if isinstance(out, pd.DataFrame):
        if label not in out.columns:
            raise HookError(f"{LABELS_HOOK} = {transform} returned no column {label!r} (the contract's label)")
        out = out[label]
    values = np.asarray(out)
    if len(values) != len(rows):
        raise HookError(f"{LABELS_HOOK} = {transform} returned {len(values)} labels for {len(rows)} rows")
    frame = rows[list(contract.key)].reset_index(drop=True).copy()
    frame[label] = values
    return frame


def categorical_inputs(frame: pd.DataFrame, inputs: list[str], max_integer_levels: int = 300) -> tuple[str, ...]:
    """Inputs profiled by category: text, booleans, and integers with few distinct values."""
    out = []
    for name in inputs:
        s = frame[name]
        if (
            pd.api.types.is_bool_dtype(s.dtype)
            or not pd.api.types.is_numeric_dtype(s.dtype)
            or pd.api.types.is_integer_dtype(s.dtype)
            and s.nunique() <= max_integer_levels
        ):
            out.append(name)
    return tuple(out)
