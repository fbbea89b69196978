"""The dataset contract and its vectorised row validation.

A contract (YAML at `[schema] path`) names a table's key (one column or several), the
timestamp that places a row on a date (and the timezone dates are cut in), every column
with its dtype and rules, the name the source gives it when that differs, and the label.
Every stage reads column names from it; the core holds no column name of any table.

Every rule is evaluated as one boolean mask over the whole frame; per-row reason strings
are built only for the rows that break at least one rule, so a clean date costs a few
numpy passes and nothing more. Rejected rows keep the values the source gave, as text.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import zoneinfo
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from batchml.base.errors import SchemaError

REASON = "reason"
DTYPES = ("integer", "float", "boolean", "string", "datetime")
_ALIASES: dict[str | None, str] = {
    "int": "integer",
    "int64": "integer",
    "float64": "float",
    "double": "float",
    "bool": "boolean",
    "str": "string",
    "timestamp": "datetime",
}
TASKS = ("regression", "classification")
_INT64_MAX = 2**63 - 1
_EXACT_FLOAT_INT = 2**53  # integers read as float lose precision above this
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_COLUMN_KEYS = {"dtype", "nullable", "min", "max", "allowed", "source", "unique", "max_null_rate", "null_tokens"}
# Texts a key column reads as null (after trimming, case-insensitive) unless its `null_tokens` says otherwise.
KEY_NULL_TOKENS = ("", "NA", "null", "None")
_TOP_KEYS = {"dataset", "key", "timestamp", "timezone", "columns", "label"}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    source: tuple[str, ...] = ()  # names the source may give this column (first found wins)
    max_null_rate: float | None = (
        None  # a monitoring rule: a date whose valid rows are more null than this fails its checks
    )
    # Texts read as null, after trimming, case-insensitive; None: KEY_NULL_TOKENS for a key column, none for the others.
    null_tokens: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        return self.dtype in ("integer", "float")

    def final_dtype(self) -> str:
        """The pandas dtype of a validated value: nullable extension types only where nulls may occur."""
        if self.dtype == "integer":
            return "Int64" if self.nullable else "int64"
        if self.dtype == "boolean":
            return "boolean" if self.nullable else "bool"
        return {"float": "float64", "string": "string", "datetime": "datetime64[us]"}[self.dtype]


@dataclass(frozen=True)
class Label:
    column: str
    task: str = "regression"
    classes: tuple | None = None  # classification: the classes, in the order of proba_<class> columns

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"


@dataclass(frozen=True)
class Contract:
    dataset: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    timestamp: str | None = None
    timezone: str = "UTC"
    label: Label | None = None
    path: str = ""
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        return self.columns[self.names.index(name)]

    @property
    def task(self) -> str:
        return self.label.task if self.label else "regression"

    def require_label(self) -> Label:
        """The label, for what cannot work without one (labels, training, evaluation): a contract without one is
        named."""
        if self.label is None:
            raise SchemaError(
                f"{self.path or self.dataset}: no 'label' in the contract, and labels, training and evaluation need one"
            )
        return self.label

    @property
    def default_inputs(self) -> list[str]:
        """Model inputs without a features transform: every column but the label."""
        label = self.label.column if self.label else None
        return [n for n in self.names if n != label]

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read and check the contract; every error names the file and the field."""
        path = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise SchemaError(f"[schema] path {path}: cannot read the dataset contract: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise SchemaError(f"{path}{_yaml_where(exc)}: not valid YAML: {_yaml_problem(exc)}") from exc
        if not isinstance(raw, dict):
            raise SchemaError(f"{path}: a dataset contract is a mapping with dataset, key, columns")
        return cls.from_dict(raw, path=path)

    @classmethod
    def from_dict(cls, raw: dict, *, path: str = "<contract>") -> Contract:
        _no_unknown(path, "the contract", raw, _TOP_KEYS)
        for required in ("dataset", "key", "columns"):
            if required not in raw:
                raise SchemaError(f"{path}: missing {required!r}")
        columns = []
        for name, spec in (raw["columns"] or {}).items():
            spec = dict(spec or {})
            _no_unknown(path, f"column {name!r}", spec, _COLUMN_KEYS)
            dtype = _ALIASES.get(spec.get("dtype"), spec.get("dtype"))
            if dtype not in DTYPES:
                raise SchemaError(
                    f"{path}: column {name!r} has dtype {spec.get('dtype')!r}, expected one of {', '.join(DTYPES)}"
                )
            spec.pop("unique", None)  # uniqueness belongs to the key
            _check_null_cap(path, str(name), spec)
            if "null_tokens" in spec:
                tokens = spec["null_tokens"]
                if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                    raise SchemaError(
                        f"{path}: column {name!r} has null_tokens {tokens!r}, expected a list of texts read as null, "
                        "quoted (e.g. ['NA', 'null']; [] for none)"
                    )
                spec["null_tokens"] = tuple(tokens)
            source = spec.pop("source", ())
            allowed = spec.pop("allowed", None)
            columns.append(
                Column(
                    name=str(name),
                    dtype=dtype,
                    source=tuple([source] if isinstance(source, str) else source),
                    allowed=tuple(allowed) if allowed is not None else None,
                    **{k: v for k, v in spec.items() if k != "dtype"},
                )
            )
        names = [c.name for c in columns]
        key = tuple([raw["key"]] if isinstance(raw["key"], str) else raw["key"])
        for k in key:
            if k not in names:
                raise SchemaError(f"{path}: key column {k!r} is not among the columns{_closest(k, names)}")
        timestamp = raw.get("timestamp")
        if timestamp is not None and (timestamp not in names or columns[names.index(timestamp)].dtype != "datetime"):
            raise SchemaError(
                f"{path}: timestamp {timestamp!r} must name a datetime column{_closest(timestamp, names)}"
            )
        timezone = raw.get("timezone", "UTC")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise SchemaError(f"{path}: timezone {timezone!r} is not a known IANA timezone") from exc
        label = None
        if raw.get("label"):
            spec = raw["label"] if isinstance(raw["label"], dict) else {"column": raw["label"]}
            _no_unknown(path, "label", spec, {"column", "task", "classes", "dtype"})
            if spec.get("task", "regression") not in TASKS:
                raise SchemaError(f"{path}: label task {spec.get('task')!r}, expected one of {', '.join(TASKS)}")
            classes = spec.get("classes")
            label = Label(
                column=spec["column"], task=spec.get("task", "regression"), classes=tuple(classes) if classes else None
            )
        return cls(
            dataset=raw["dataset"],
            columns=tuple(columns),
            key=key,
            timestamp=timestamp,
            timezone=timezone,
            label=label,
            path=path,
        )

    def fingerprint(self) -> str:
        """A short hash of the rules: manifests record which contract a partition passed."""
        body = json.dumps(
            {"columns": [_rules(c) for c in self.columns], "key": self.key, "ts": self.timestamp, "tz": self.timezone},
            sort_keys=True,
            default=list,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def source_names(self, available) -> dict[str, str]:
        """{source column: contract column} for the columns of a frame with `available` columns."""
        available = set(available)
        out = {}
        for col in self.columns:
            if col.name in available:
                continue
            found = next((s for s in col.source if s in available), None)
            if found is not None:
                out[found] = col.name
        return out

    def read_columns(self, available) -> list[str]:
        """The source columns to read: the contract's, under the names the source uses."""
        available = list(available)
        renames = self.source_names(available)
        wanted = set(self.names) | set(renames)
        return [c for c in available if c in wanted]

    def day_bounds(self, date: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) of `date` as naive wall-clock times in the contract's timezone."""
        start = pd.Timestamp(date)
        return start, start + pd.Timedelta(days=1)


def _rules(column: Column) -> dict:
    """What decides a row's validity (max_null_rate is a check of the date, not of a row: it leaves the fingerprint
    alone)."""
    rules = asdict(column)
    rules.pop("max_null_rate")
    if rules["null_tokens"] is None:  # unset: the fingerprint of contracts written before the option stays what it was
        rules.pop("null_tokens")
    return rules


def _check_null_cap(path: str, name: str, spec: dict) -> None:
    """`max_null_rate` under a column: a share in [0, 1], on a column that may be null."""
    if "max_null_rate" not in spec:
        return
    cap = spec["max_null_rate"]
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0.0 <= cap <= 1.0:
        raise SchemaError(
            f"{path}: column {name!r} has max_null_rate {cap!r}, expected a share between 0 and 1 (0.1 is 10% of the "
            "valid rows)"
        )
    if spec.get("nullable", True) is False:
        raise SchemaError(
            f"{path}: column {name!r} has max_null_rate but nullable: false (its null rows are quarantined); remove "
            "one of the two"
        )
    spec["max_null_rate"] = float(cap)


def _yaml_where(exc: yaml.YAMLError) -> str:
    """`, line L, column C` of a YAML error (1-based, as editors count), or "" when PyYAML gives no position."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error's problem and context on one line, without PyYAML's multi-line snippet."""
    parts = [getattr(exc, "problem", None), getattr(exc, "context", None)]
    text = "; ".join(p for p in parts if p) or str(exc)
    return " ".join(text.split())


def _no_unknown(path: str, where: str, spec: dict, known: set[str]) -> None:
    for k in spec:
        if k not in known:
            raise SchemaError(f"{path}: {where} has an unknown field {k!r}{_closest(k, known)}")


def _closest(name: str, candidates) -> str:
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


@dataclass
class Validated:
    valid: pd.DataFrame
    rejected: pd.DataFrame
    key_hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="uint64"))  # of the valid rows, sorted
    null_counts: dict[str, int] = field(default_factory=dict)  # nulls of each nullable column among the valid rows

    @property
    def rows_in(self) -> int:
        return len(self.valid) + len(self.rejected)


def conform(frame: pd.DataFrame, contract: Contract, *, origin: str) -> pd.DataFrame:
    """The contract's columns of `frame` under the contract's names; a missing one fails naming the file."""
    frame = frame.rename(columns=contract.source_names(frame.columns))
    missing = [c for c in contract.columns if c.name not in frame.columns]
    if missing:
        named = ", ".join(c.name + (f" (source name {' or '.join(c.source)})" if c.source else "") for c in missing)
        raise SchemaError(
            f"{origin}: missing required column(s) {named} (contract {contract.path or contract.dataset})"
        )
    return frame[list(contract.names)]


def key_hashes(frame: pd.DataFrame, key: tuple[str, ...]) -> np.ndarray:
    """One uint64 per row identifying its key (any number of columns, any dtype)."""
    return pd.util.hash_pandas_object(frame[list(key)], index=False).to_numpy()


def add_keys(seen: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The key hashes of a date so far (sorted) with a batch's added: what `validate` takes as `seen_keys`.

    Kept sorted so a batch is checked against the date by binary search: `np.isin` against
    every earlier batch grew with the date (4.5 of 6.5 s extracting a 2M-row date). A batch's
    hashes come sorted from `validate`, so the stable sort (Timsort) only merges two runs:
    9 ms instead of 32 ms adding 250,000 hashes to 1.75M.
    """
    return np.sort(np.concatenate([seen, hashes]), kind="stable")


def repeats(keys: np.ndarray) -> bool:
    """Whether the sorted `keys` hold a value twice. After `add_keys`, whether a batch met a key of the date's earlier
    batches (a batch's valid keys are unique): one pass over the merge (1 ms at 2M keys) instead of a binary search of
    each of the batch's keys (11 ms)."""
    return bool(len(keys) > 1 and (keys[1:] == keys[:-1]).any())


def _already_seen(ordered: np.ndarray, order: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Which hashes of a batch are in the sorted `seen`, given the batch sorted (`ordered`, its `order`): looked up in
    sorted order, twice as fast on a large date."""
    found = np.empty(len(ordered), dtype=bool)
    found[order] = seen[np.minimum(np.searchsorted(seen, ordered), len(seen) - 1)] == ordered
    return found


def validate(
    frame: pd.DataFrame,
    contract: Contract,
    date: dt.date | None,
    *,
    origin: str,
    seen_keys: np.ndarray | None = None,
) -> Validated:
    """Split `frame` into rows that satisfy `contract` and rejected rows with a `reason`.

    `origin` names the file or query in errors. `seen_keys` holds key hashes already
    accepted earlier on the same date, sorted (`add_keys`), so uniqueness holds across the
    batches of a date.
    With a `date`, rows whose timestamp falls on another date are rejected. Rejected rows
    keep the source's values as text. Raises SchemaError when a column is missing.
    """
    raw = conform(frame, contract, origin=origin)
    typed: dict[str, pd.Series] = {}
    rules: list[tuple[np.ndarray, object]] = []  # (violation mask, reason or per-row reason fn)
    nulls: dict[str, np.ndarray] = {}  # null masks of the nullable columns: counted on the valid rows at no extra pass
    key_null = np.zeros(len(raw), dtype=bool)
    for col in contract.columns:
        source, is_key = raw[col.name], col.name in contract.key
        tokens = _null_tokens(source, null_tokens_of(col, is_key))
        values, unparsable, why = coerce_column(source.mask(tokens) if tokens.any() else source, col, contract.timezone)
        typed[col.name] = values
        if unparsable.any():
            rules.append((unparsable, _unparsable_reason(col, source, why)))
        missing = values.isna().to_numpy()
        isnull = missing & ~unparsable
        if is_key:
            key_null |= missing
        if is_key and tokens.any():  # a key identifies a row: one that is text for null identifies none
            rules.append((tokens, _null_key_reason(col, source)))
            isnull &= ~tokens
        if not col.nullable and isnull.any():
            rules.append((isnull, f"{col.name}: is null"))
        elif col.nullable:
            nulls[col.name] = isnull
        if col.numeric:
            arr = values.to_numpy(dtype="float64", na_value=np.nan)
            if col.min is not None:
                rules.append((arr < col.min, f"{col.name}: below minimum {col.min}"))
            if col.max is not None:
                rules.append((arr > col.max, f"{col.name}: above maximum {col.max}"))
        if col.allowed is not None:
            inside = values.isin(list(col.allowed)).to_numpy(dtype=bool, na_value=False)
            rules.append((~missing & ~inside, f"{col.name}: not in {list(col.allowed)}"))

    keys = pd.DataFrame({k: typed[k] for k in contract.key}, copy=False)
    hashes = key_hashes(keys, contract.key) if len(raw) else np.empty(0, dtype="uint64")
    order = np.argsort(hashes)  # equal hashes may come in any order: they are one key (quicksort: 4 ms, stable 21)
    ordered = hashes[order]
    if len(raw):
        # Sorted, equal hashes sit side by side: a batch with none (most) needs no hash table to find its repeats.
        repeated = bool((ordered[1:] == ordered[:-1]).any())
        dup = pd.Series(hashes).duplicated().to_numpy() if repeated else np.zeros(len(hashes), dtype=bool)
        if seen_keys is not None and len(seen_keys):
            dup = dup | _already_seen(ordered, order, seen_keys)
        rules.append((dup & ~key_null, f"key ({', '.join(contract.key)}): duplicate"))

    if contract.timestamp and date is not None:
        ts = typed[contract.timestamp]
        start, end = contract.day_bounds(date)
        off = (ts.notna() & ((ts < start) | (ts >= end))).to_numpy()
        rules.append((off, f"{contract.timestamp}: not on {date.isoformat()} ({contract.timezone})"))

    bad = np.zeros(len(raw), dtype=bool)
    for mask, _ in rules:
        bad |= mask
    keep = ~bad
    valid = pd.DataFrame({col.name: _kept(typed[col.name], col, keep) for col in contract.columns}, copy=False)
    rejected = _as_text(raw.loc[bad]).reset_index(drop=True)
    rejected[REASON] = _reasons(rules, bad)
    counts = {name: int(np.count_nonzero(mask & ~bad)) for name, mask in nulls.items()}
    # The valid rows' hashes, sorted (a subset of `ordered`): add_keys merges them into the date's.
    return Validated(valid=valid, rejected=rejected, key_hashes=ordered[~bad[order]], null_counts=counts)


_NUMPY_FILL = {"int64": 0, "bool": False, "float64": np.nan}  # what a null becomes in a column of numpy values


def _kept(values: pd.Series, col: Column, keep: np.ndarray):
    """The values of the rows kept, in the column's final dtype. Where that dtype is numpy's (a non-nullable integer or
    boolean, whose kept rows hold no null: a null was a rule's violation; a float, whose nulls become NaN), the values
    become numpy's before the rows are picked: one boolean index of a numpy array instead of a masked array's take and
    a cast."""
    final = col.final_dtype()
    if final in _NUMPY_FILL:
        return values.to_numpy(dtype=final, na_value=_NUMPY_FILL[final])[keep]
    return pd.Series(values.array[keep]).astype(final)


def empty_rejected(contract: Contract) -> pd.DataFrame:
    """The quarantine's columns with no rows: every contract column as text, and the reason."""
    return pd.DataFrame(
        {**{n: pd.Series([], dtype="string") for n in contract.names}, REASON: pd.Series([], dtype="string")}
    )


def _as_text(raw: pd.DataFrame) -> pd.DataFrame:
    """Source values as text, exactly as given: bytes that were not valid text are escaped."""
    out = {}
    for name in raw.columns:
        values = raw[name]
        if values.dtype == object:
            values = values.map(lambda v: _escape_surrogates(v) if isinstance(v, str) else v)
        out[name] = values.astype("string")
    return pd.DataFrame(out, index=raw.index)


def _escape_surrogates(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def coerce_column(raw: pd.Series, col: Column, timezone: str) -> tuple[pd.Series, np.ndarray, str]:
    """Cast to the column's dtype; report values that were present but not parsable, and why."""
    present = raw.notna().to_numpy()
    if col.dtype == "datetime":
        values = local_datetimes(raw, timezone)
        why = f"not a valid datetime ({timezone} unless an offset is given)"
    elif col.dtype == "string":
        bad_text = np.zeros(len(raw), dtype=bool)
        if raw.dtype == object and len(raw):  # read with surrogateescape: undecodable bytes are lone surrogates
            bad_text = raw.astype(object).str.contains("[\udc80-\udcff]", regex=True, na=False).to_numpy(dtype=bool)
        values = raw.mask(bad_text).astype("string")
        why = "not valid text in the source's encoding"
    elif col.dtype == "boolean":
        values = _booleans(raw)
        why = "not a valid boolean"
    elif col.dtype == "integer":
        values, why = _integers(raw), "not a valid integer (or outside the 64-bit signed range)"
    else:
        values = pd.to_numeric(raw, errors="coerce").astype("Float64")
        values = values.mask(~np.isfinite(values.to_numpy(dtype="float64", na_value=0.0)))
        why = "not a valid float"
    unparsable = values.isna().to_numpy() & present
    return values, unparsable, why


def _integers(raw: pd.Series) -> pd.Series:
    """Integers, exactly: a value outside int64, or a float that is not an exact integer, is null."""
    if pd.api.types.is_integer_dtype(raw.dtype) and not pd.api.types.is_unsigned_integer_dtype(raw.dtype):
        return raw.astype("Int64")
    if pd.api.types.is_float_dtype(raw.dtype):
        arr = raw.to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) <= _EXACT_FLOAT_INT)
        return pd.Series(np.where(ok, arr, 0).astype("int64"), index=raw.index).astype("Int64").mask(~ok)
    if not pd.api.types.is_unsigned_integer_dtype(raw.dtype):  # text: the fast path when every value fits
        parsed = pd.to_numeric(raw, errors="coerce")
        if pd.api.types.is_signed_integer_dtype(parsed.dtype):
            return parsed.astype("Int64")
    return _from_objects(raw)


def _from_objects(raw: pd.Series) -> pd.Series:
    """Text or Python numbers to Int64 without passing through a float (keys above 2**53 stay exact)."""
    out = np.zeros(len(raw), dtype="int64")
    ok = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw.to_numpy(dtype=object, na_value=None)):
        if v is None:
            continue
        n: int | None
        try:
            if isinstance(v, (float, np.floating)):
                if not (np.isfinite(v) and v == int(v) and abs(float(v)) <= _EXACT_FLOAT_INT):
                    continue
                n = int(v)
            elif isinstance(v, str):
                s = v.strip()
                n = int(s) if s.lstrip("+-").isdigit() else _exact_float_text(s)
            else:
                n = int(v)
        except (ValueError, TypeError, OverflowError):
            continue
        if n is not None and -_INT64_MAX - 1 <= n <= _INT64_MAX:
            out[i], ok[i] = n, True
    return pd.Series(out, index=raw.index).astype("Int64").mask(~ok)


def _exact_float_text(s: str) -> int | None:
    """'3.0' or '1e3' as an integer when the text denotes one exactly; None otherwise."""
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    return int(d) if d.is_finite() and d == d.to_integral_value() else None


def _booleans(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean")
    text = raw.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = True
    out[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = False
    return out


def local_datetimes(raw: pd.Series, timezone: str) -> pd.Series:
    """Naive wall-clock times in `timezone`: aware values are converted, naive ones taken as local.

    ISO 8601 in any of its spellings ('2026-06-10 10:00:00', '2026-06-10T11:00:00+00:00')
    is parsed row by row, never with a format guessed from the first value.
    """
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[us]")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.astype("datetime64[us]")
    text = raw.astype("string").str.strip()
    has_offset = text.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True, na=False).to_numpy()
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    if (~has_offset).any():
        naive = pd.to_datetime(text[~has_offset], errors="coerce", format="ISO8601")
        retry = naive.isna() & text[~has_offset].notna()
        if retry.any():
            naive[retry] = pd.to_datetime(text[~has_offset][retry], errors="coerce", format="mixed")
        if timezone != "UTC":  # check local times exist; nonexistent or ambiguous ones are unparsable
            naive = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_localize(None)
        out[~has_offset] = naive.astype("datetime64[us]")
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], errors="coerce", format="ISO8601", utc=True)
        out[has_offset] = aware.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[us]")
    return out


def null_tokens_of(col: Column, is_key: bool) -> tuple[str, ...]:
    """The texts a column reads as null: its `null_tokens`, else for a key KEY_NULL_TOKENS less any value its
    `allowed` list names (a region `na` is North America, not a missing region), else none."""
    if col.null_tokens is not None:
        return col.null_tokens
    if not is_key:
        return ()
    allowed = {str(v).strip().casefold() for v in col.allowed or ()}
    return tuple(t for t in KEY_NULL_TOKENS if t.strip().casefold() not in allowed)


def _null_tokens(raw: pd.Series, tokens) -> np.ndarray:
    """Where a text column holds one of `tokens` (after trimming, case-insensitive)."""
    if not tokens or not len(raw) or not (raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)):
        return np.zeros(len(raw), dtype=bool)
    wanted = {t.strip().casefold() for t in tokens}
    return np.fromiter(
        (isinstance(v, str) and v.strip().casefold() in wanted for v in raw.to_numpy(dtype=object)),
        dtype=bool,
        count=len(raw),
    )


def _null_key_reason(col: Column, raw: pd.Series):
    def reason(idx: np.ndarray) -> pd.Series:
        shown = _as_text(raw.iloc[idx].to_frame())[raw.name].to_numpy()
        return pd.Series(
            [
                f"{col.name}: null key: {v!r} is a null token (null_tokens: {list(null_tokens_of(col, True))})"
                for v in shown
            ]
        )

    return reason


def _unparsable_reason(col: Column, raw: pd.Series, why: str):
    def reason(idx: np.ndarray) -> pd.Series:
        shown = _as_text(raw.iloc[idx].to_frame())[raw.name].to_numpy()
        return pd.Series([f"{col.name}: {v!r} is {why}" for v in shown])

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


def top_reasons(reasons: pd.Series, n: int = 5) -> list[tuple[str, int]]:
    """The most frequent individual rule violations, counting each rule of a row."""
    if reasons.empty:
        return []
    counts = reasons.str.split("; ").explode().str.replace(r"'.*' is ", "value is ", regex=True).value_counts()
    return [(str(k), int(v)) for k, v in counts.head(n).items()]
