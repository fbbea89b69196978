"""The input schema contract and its vectorised row validation.

Every rule is evaluated as one boolean mask over the whole frame; per-row reason strings
are built only for the rows that break at least one rule, so a clean date costs a few
numpy passes and nothing more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from batchml.errors import SchemaError

REASON = "reason"
_DTYPES = ("int64", "float64", "datetime", "string")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    unique: bool = False


@dataclass(frozen=True)
class Schema:
    dataset: str
    columns: tuple[Column, ...]
    key: str
    timestamp: str | None = None
    label_column: str | None = None
    label_dtype: str = "float64"
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read the contract from YAML, refusing unknown dtypes early."""
        raw = yaml.safe_load(Path(path).read_text())
        columns = []
        for name, spec in raw["columns"].items():
            spec = dict(spec)
            if spec.get("dtype") not in _DTYPES:
                raise SchemaError(f"{path}: column {name!r} has dtype {spec.get('dtype')!r}, expected one of {_DTYPES}")
            if "allowed" in spec:
                spec["allowed"] = tuple(spec["allowed"])
            columns.append(Column(name=name, **spec))
        label = raw.get("label") or {}
        return cls(
            dataset=raw["dataset"],
            columns=tuple(columns),
            key=raw["key"],
            timestamp=raw.get("timestamp"),
            label_column=label.get("column"),
            label_dtype=label.get("dtype", "float64"),
        )

    def fingerprint(self) -> str:
        """A short hash of the contract: manifests record which rules a partition passed."""
        body = json.dumps([asdict(c) for c in self.columns], sort_keys=True, default=list)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass
class Validated:
    valid: pd.DataFrame
    rejected: pd.DataFrame

    @property
    def rows_in(self) -> int:
        return len(self.valid) + len(self.rejected)


def validate(
    frame: pd.DataFrame,
    schema: Schema,
    date: dt.date,
    *,
    origin: str,
    seen_keys: np.ndarray | None = None,
) -> Validated:
    """Split `frame` into rows that satisfy `schema` and rejected rows with a `reason`.

    `origin` names the file or query in errors. `seen_keys` holds keys already accepted
    earlier on the same date, so uniqueness holds across the batches of a date.
    Raises SchemaError when a required column is missing.
    """
    missing = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing:
        raise SchemaError(f"{origin}: missing required column(s) {', '.join(missing)} (schema {schema.dataset})")

    typed: dict[str, pd.Series] = {}
    rules: list[tuple[np.ndarray, object]] = []  # (violation mask, reason or per-row reason fn)
    for col in schema.columns:
        raw = frame[col.name]
        values, unparsable = _coerce(raw, col)
        typed[col.name] = values
        if unparsable.any():
            rules.append((unparsable, _unparsable_reason(col, raw)))
        isnull = values.isna().to_numpy() & ~unparsable
        if not col.nullable and isnull.any():
            rules.append((isnull, f"{col.name}: is null"))
        if col.dtype in ("int64", "float64"):
            arr = values.to_numpy(dtype="float64", na_value=np.nan)
            if col.min is not None:
                rules.append((arr < col.min, f"{col.name}: below minimum {col.min}"))
            if col.max is not None:
                rules.append((arr > col.max, f"{col.name}: above maximum {col.max}"))
            if col.allowed is not None:
                rules.append((~np.isnan(arr) & ~np.isin(arr, col.allowed), f"{col.name}: not in {list(col.allowed)}"))
        if col.unique:
            keys = values.to_numpy()
            dup = pd.Series(keys).duplicated().to_numpy()
            if seen_keys is not None and len(seen_keys):
                dup = dup | np.isin(keys, seen_keys)
            rules.append((dup & ~isnull, f"{col.name}: duplicate"))

    if schema.timestamp:
        ts = typed[schema.timestamp]
        day = pd.Timestamp(date)
        off = (ts.notna() & ((ts < day) | (ts >= day + pd.Timedelta(days=1)))).to_numpy()
        rules.append((off, f"{schema.timestamp}: not on {date.isoformat()}"))

    bad = np.zeros(len(frame), dtype=bool)
    for mask, _ in rules:
        bad |= mask
    typed_frame = pd.DataFrame(typed, index=frame.index)
    valid = typed_frame.loc[~bad].reset_index(drop=True)
    for col in schema.columns:
        valid[col.name] = valid[col.name].astype(_final_dtype(col.dtype))
    rejected = typed_frame.loc[bad].reset_index(drop=True)
    rejected[REASON] = _reasons(rules, bad)
    return Validated(valid=valid, rejected=rejected)


def _coerce(raw: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """Cast to the column's dtype; report values that were present but not parsable."""
    if col.dtype == "datetime":
        values = pd.to_datetime(raw, errors="coerce").astype("datetime64[us]")
    elif col.dtype == "string":
        values = raw.astype("string")
    elif col.dtype == "int64" and pd.api.types.is_integer_dtype(raw.dtype):
        values = raw.astype("Int64")  # no float round trip: keys above 2**53 stay exact
    else:
        values = pd.to_numeric(raw, errors="coerce").astype("Float64")
        if col.dtype == "int64":
            arr = values.to_numpy(dtype="float64", na_value=np.nan)
            values = values.mask(~np.isnan(arr) & (arr != np.round(arr))).astype("Int64")
    unparsable = (values.isna() & raw.notna()).to_numpy()
    return values, unparsable


def _unparsable_reason(col: Column, raw: pd.Series):
    def reason(idx: np.ndarray) -> pd.Series:
        shown = raw.iloc[idx].astype(str).str.slice(0, 40).to_numpy()
        return pd.Series([f"{col.name}: {v!r} is not a valid {col.dtype}" for v in shown])

    return reason


def _reasons(rules, bad: np.ndarray) -> pd.Series:
    """Per-row reason strings for the rejected rows only, rules joined by '; '."""
    idx = np.flatnonzero(bad)
    out = pd.Series([""] * len(idx), dtype=object)
    for mask, reason in rules:
        hit = mask[idx]
        if not hit.any():
            continue
        text = reason(idx[hit]).to_numpy() if callable(reason) else reason
        prev = out[hit]
        out[hit] = np.where(prev == "", text, prev + "; " + text)
    return out.astype("string")


def _final_dtype(dtype: str) -> str:
    return {"int64": "int64", "float64": "float64", "datetime": "datetime64[us]", "string": "string"}[dtype]


def top_reasons(reasons: pd.Series, n: int = 5) -> list[tuple[str, int]]:
    """The most frequent individual rule violations, counting each rule of a row."""
    if reasons.empty:
        return []
    counts = reasons.str.split("; ").explode().str.replace(r"'.*' is not", "value is not", regex=True).value_counts()
    return [(str(k), int(v)) for k, v in counts.head(n).items()]
