"""A dataset contract guessed from a sample: dtypes, nulls, ranges, allowed values, key, timestamp.

The inference is a first draft for a person to review, not a decision: dtypes, nulls and
ranges are what the sample showed, and the key and timestamp are guesses that say why.
Every value is checked by the contract's own parsers, so a contract made from these
guesses accepts the sample it came from. Nothing here knows any table: the heuristics look
at values, and at words such as 'id' or 'date' in column names.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import zoneinfo
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from batchml.base.errors import ConfigError, SchemaError
from batchml.dataset.contract import Column, coerce_column

MAX_SAMPLE_ROWS = 200_000
MAX_ALLOWED = 20  # a text column with at most this many values (each seen several times) gets `allowed`
MAX_KEY_COLUMNS = 5
# A text column whose values are dates but for a few (at most this share: 'N/A', '0000-00-00')
# is a datetime column; those rows break the contract and are quarantined, which its note says.
MAX_UNPARSED_DATES = 0.02
_KEY_CANDIDATES = 12
_INT_RE = r"^[+-]?\d+$"
_DATE_RE = (
    r"^(?:\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})(?:[ "
    r"T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp][Mm])?)?"
)
_OFFSET_RE = r"(?:[+-]\d{2}:?\d{2}|Z)$"
_BOOL_WORDS = {"true", "false", "t", "f", "yes", "no", "y", "n"}
_START_WORDS = ("created", "event", "start", "begin", "order", "occurred", "timestamp", "ts")
_TIME_WORDS = ("date", "time", "datetime", "day", "at")
_END_WORDS = (
    "end",
    "ended",
    "stop",
    "finish",
    "finished",
    "updated",
    "modified",
    "deleted",
    "closed",
    "expiry",
    "expires",
)
_ID_WORDS = ("id", "key", "uuid", "guid", "code", "number", "no", "nr")


@dataclass(frozen=True)
class ColumnGuess:
    """One column as the sample shows it: the contract's name, the file's name, the dtype and the rules seen."""

    name: str
    source: str
    dtype: str
    rows: int
    nulls: int
    distinct: int
    min: float | int | None = None
    max: float | int | None = None
    allowed: tuple | None = None
    timezone: str | None = None  # datetimes carrying an offset or a zone
    timezone_note: str = ""  # how that zone was read from them, TODO when it could not be told
    observed: str = ""  # datetimes: first .. last, as text
    note: str = ""

    @property
    def nullable(self) -> bool:
        return self.nulls > 0

    @property
    def empty(self) -> bool:
        return self.nulls == self.rows


@dataclass(frozen=True)
class Inferred:
    """A contract guessed from a sample, with the reasons behind its guesses."""

    dataset: str
    columns: tuple[ColumnGuess, ...]
    key: tuple[str, ...]
    key_note: str
    timestamp: str | None
    timezone: str
    timezone_note: str
    rows: int
    dates: tuple[dt.date, ...] = field(default=())  # dates the timestamp places rows on, oldest first

    def column(self, name: str) -> ColumnGuess:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


# -- reading ------------------------------------------------------------------------------


def sample_format(path: str | Path) -> str:
    """'parquet' or 'csv' from the file name (.parquet, .pq, .csv, .csv.gz, .txt.gz ...)."""
    name = Path(path).name.lower().removesuffix(".gz").removesuffix(".bz2").removesuffix(".zst").removesuffix(".xz")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise ConfigError(f"{path}: cannot tell the format from the name; expected .parquet, .csv or .csv.gz")


def read_sample(path: str | Path, max_rows: int = MAX_SAMPLE_ROWS) -> pd.DataFrame:
    """The first `max_rows` rows, read as batchml reads the source: CSV values as text, Parquet typed."""
    fmt = sample_format(path)
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            batches = list(itertools.islice(pf.iter_batches(batch_size=max_rows), 1))
            table = pa.Table.from_batches(batches, schema=pf.schema_arrow) if batches else pf.schema_arrow.empty_table()
            return table.to_pandas()
        return pd.read_csv(
            path,
            dtype=object,
            compression="infer",
            sep=None if str(path).lower().removesuffix(".gz").endswith(".tsv") else ",",
            engine="python" if str(path).lower().removesuffix(".gz").endswith(".tsv") else "c",
            keep_default_na=False,
            na_values=[""],
            nrows=max_rows,
            encoding="utf-8",
            encoding_errors="surrogateescape",
        )
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read the sample: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise SchemaError(
            f"{path}: cannot be read as {fmt}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


# -- names --------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """'HTTPStatusCode' -> 'http_status_code', 'StoreID' -> 'store_id', 'Unit Price' -> 'unit_price'."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", str(name))
    s = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)
    return s or "column"


def _contract_names(columns) -> list[str]:
    """Snake-case names, unique: a second column mapping to a taken name keeps a numbered one."""
    out, taken = [], set()
    for c in columns:
        name = snake_case(c)
        if name in taken:
            name = next(f"{name}_{i}" for i in itertools.count(2) if f"{name}_{i}" not in taken)
        taken.add(name)
        out.append(name)
    return out


def _words(name: str) -> list[str]:
    return [w for w in snake_case(name).split("_") if w]


def _has_word(name: str, words) -> bool:
    return any(
        w == word or (len(word) > 2 and (w.startswith(word) or w.endswith(word)))
        for w in _words(name)
        for word in words
    )


def is_id_like(name: str) -> bool:
    return any(w in _ID_WORDS or w.endswith("id") for w in _words(name))


# -- columns ------------------------------------------------------------------------------


def _text_dtype(text: pd.Series) -> str:
    """The dtype text values denote: integer, float, boolean, datetime or string."""
    if text.empty:
        return "float"  # always empty: a number is the least surprising guess
    if text.str.fullmatch(_INT_RE).all():
        return "integer"
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and np.isfinite(numbers.to_numpy(dtype="float64")).all():
        return "float"
    if text.str.lower().isin(_BOOL_WORDS).all():
        return "boolean"
    if text.str.match(_DATE_RE).sum() >= len(text) - _few(len(text)):
        return "datetime"
    return "string"


def _few(n: int) -> int:
    """How many values of `n` may be unparsable in a column still taken for datetimes."""
    return int(n * MAX_UNPARSED_DATES)


def _dtype_of(values: pd.Series) -> tuple[str, str | None]:
    """(contract dtype, timezone of aware datetimes or None) of a sample column."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime", str(dtype.tz)
    if pd.api.types.is_datetime64_dtype(dtype):
        return "datetime", None
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", None
    if pd.api.types.is_integer_dtype(dtype):
        return "integer", None
    if pd.api.types.is_float_dtype(dtype):
        return "float", None
    text = (
        values.dropna()
        .map(lambda v: v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v))
        .astype(object)
        .str.strip()
    )
    kind = _text_dtype(text)
    if kind != "datetime":
        return kind, None
    offsets = text.str.extract(f"({_OFFSET_RE})", expand=False)
    if offsets.isna().all():
        return "datetime", None
    return "datetime", "|".join(sorted(offsets.dropna().unique()))  # the zone is named from them by _zone_name


def _offset_minutes(offset: str) -> int:
    if offset.upper() == "Z":
        return 0
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:]))


def _zone_of_offsets(offsets) -> tuple[str, str]:
    """(IANA zone, note) for UTC offsets: UTC for Z/+00:00, Etc/GMT-N for one whole-hour offset, else UTC with a
    TODO."""
    minutes = {_offset_minutes(o) for o in offsets}
    if minutes == {0}:
        return "UTC", ""
    if len(minutes) == 1 and next(iter(minutes)) % 60 == 0:
        hours = next(iter(minutes)) // 60
        return (
            f"Etc/GMT{-hours:+d}",
            f"the sample's times carry the offset {next(iter(offsets))}",
        )  # POSIX sign: Etc/GMT-2 is two hours ahead of UTC
    shown = ", ".join(sorted(set(offsets)))
    if len(minutes) == 1:
        return (
            "UTC",
            f"TODO: the sample's times carry the offset {shown}, which no whole-hour zone has; set the IANA zone they "
            "were recorded in",
        )
    return (
        "UTC",
        f"TODO: the sample's times carry several offsets ({shown}: daylight saving?); set the IANA zone they were "
        "recorded in (e.g. Europe/Berlin)",
    )


_FIXED_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-]\d{2}:?\d{2})$", re.IGNORECASE)


def _zone_name(tz: str | None) -> str | None:
    """An IANA zone for a sample's zone or offsets (`Europe/Paris`, `UTC+02:00` as pyarrow writes a fixed offset,
    `+02:00|+02:00`)."""
    return _zone_and_note(tz)[0]


def _zone_and_note(tz: str | None) -> tuple[str | None, str]:
    if tz is None:
        return None, ""
    if tz in ("UTC", "utc", "Z", "+00:00", "UTC+00:00"):
        return "UTC", ""
    offsets = tz.split("|")
    fixed = [
        m.group(1) if (m := _FIXED_OFFSET_RE.match(o.strip())) else ("Z" if o.strip().upper() == "Z" else None)
        for o in offsets
    ]
    if all(fixed):
        return _zone_of_offsets(fixed)
    try:
        zoneinfo.ZoneInfo(tz)
        return tz, ""
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC", f"TODO: the sample's zone {tz} is not an IANA zone name; set the one its times were recorded in"


def _nice(value: float, step: float, up: bool) -> float:
    n = math.ceil(value / step) if up else math.floor(value / step)
    out = round(n * step, 12)
    return max(out, value) if up else min(out, value)


def observed_range(lo, hi, dtype: str) -> tuple:
    """min/max rounded outward to two significant digits of the larger magnitude; small integers exact."""
    if dtype == "integer":
        lo, hi = int(lo), int(hi)
        big = max(abs(lo), abs(hi))
        if big < 1000:
            return lo, hi
        step = 10 ** (int(math.log10(big)) - 1)
        return int(_nice(lo, step, False)), int(_nice(hi, step, True))
    lo, hi = float(lo), float(hi)
    big = max(abs(lo), abs(hi))
    if big == 0:
        return 0.0, 0.0
    step = 10.0 ** (math.floor(math.log10(big)) - 1)
    return float(_nice(lo, step, False)), float(_nice(hi, step, True))


def infer_column(values: pd.Series, name: str | None = None) -> tuple[ColumnGuess, pd.Series]:
    """The guess for one sample column, and its values as the contract will type them."""
    source = str(values.name)
    name = name or snake_case(source)
    dtype, tz = _dtype_of(values)
    zone, zone_note = _zone_and_note(tz)
    typed, unparsable, _ = coerce_column(values, Column(name=name, dtype=dtype), zone or "UTC")
    bad = int(unparsable.sum())
    if bad and not (
        dtype == "datetime" and bad <= _few(int(values.notna().sum()))
    ):  # the contract's parser disagrees with the guess: keep the text
        dtype, tz, zone, zone_note, bad = "string", None, None, "", 0
        typed, _, _ = coerce_column(values, Column(name=name, dtype="string"), "UTC")
    present = typed.dropna()
    nulls = int(typed.isna().sum()) - bad  # an unparsable value is not a null: its row is quarantined
    guess = ColumnGuess(
        name=name,
        source=source,
        dtype=dtype,
        rows=len(values),
        nulls=nulls,
        distinct=int(present.nunique()),
        timezone=zone,
        timezone_note=zone_note,
    )
    if bad:
        examples = ", ".join(repr(v) for v in pd.Series(values[np.asarray(unparsable)]).astype(str).unique()[:3])
        guess = replace(
            guess, note=f"{bad} of {len(values)} values are not datetimes ({examples}): their rows will be quarantined"
        )
    if present.empty:
        return replace(guess, note="always empty in the sample: the dtype is a guess"), typed
    if dtype in ("integer", "float"):
        lo, hi = observed_range(present.min(), present.max(), dtype)
        guess = replace(guess, min=lo, max=hi)
    elif dtype == "datetime":
        guess = replace(guess, observed=f"{present.min()} .. {present.max()}")
    elif dtype == "string" and guess.distinct <= min(MAX_ALLOWED, max(1, len(present) // 5)) and not is_id_like(name):
        guess = replace(guess, allowed=tuple(sorted(str(v) for v in present.unique())))
    return guess, typed


# -- key, timestamp, timezone -------------------------------------------------------------


def guess_timestamp(columns) -> str | None:
    """The datetime column most likely to place a row on a date: a start/creation/event time
    by its name, with no nulls; else the first datetime column."""
    best, best_score = None, None
    for c in columns:
        if c.dtype != "datetime" or c.empty:
            continue
        score = 0
        score += 3 if _has_word(c.name, _START_WORDS) else 0
        score += 1 if _has_word(c.name, _TIME_WORDS) else 0
        score -= 4 if _has_word(c.name, _END_WORDS) else 0
        score += 2 if not c.nullable else 0
        if best_score is None or score > best_score:
            best, best_score = c.name, score
    return best


def _key_score(c: ColumnGuess, timestamp: str | None) -> int:
    score = {"datetime": 2, "integer": 1, "string": 1, "boolean": -1, "float": -3}[c.dtype]
    score += 3 if is_id_like(c.name) else 0
    score += 1 if c.name == timestamp else 0
    return score


def _unique(hashes: list[np.ndarray]) -> bool:
    combined = hashes[0].copy()
    for h in hashes[1:]:
        combined = combined * np.uint64(1_000_003) ^ h
    return not pd.Series(combined).duplicated().any()


def guess_key(typed: pd.DataFrame, columns, timestamp: str | None) -> tuple[tuple[str, ...], str]:
    """(key columns, why): a unique id; else the smallest unique combination of ids and datetimes;
    else any unique column; else the smallest unique combination of any columns. Never a column with nulls."""
    columns = list(columns)
    full = [c for c in columns if not c.nullable]
    if not full:
        return (columns[0].name,), "no column is free of nulls in the sample: TODO name the columns that identify a row"
    ranked = sorted(full, key=lambda c: -_key_score(c, timestamp))  # stable: file order among equals
    hashes = {c.name: pd.util.hash_pandas_object(typed[c.name], index=False).to_numpy() for c in full}
    preferred = [c for c in ranked if c.dtype != "float" and (is_id_like(c.name) or c.dtype == "datetime")]
    others = [c for c in ranked if c.dtype != "float"]
    for pool, single_only in ((preferred, False), (others, True), (others, False)):
        found = _smallest_unique(pool, hashes, timestamp, max_size=1 if single_only else MAX_KEY_COLUMNS)
        if found:
            names = tuple(c.name for c in sorted(found, key=columns.index))
            if len(names) == 1:
                return names, f"{names[0]} is unique in the sample"
            return (
                names,
                f"no id is unique in the sample; ({', '.join(names)}) is the smallest combination that is (ids and "
                "datetimes first)",
            )
    names = tuple(c.name for c in full)
    if _unique([hashes[n] for n in names]):
        return (
            names,
            "only all the columns without nulls together are unique in the sample: TODO name the columns that identify "
            "a row",
        )
    dups = int(pd.Series(_combined(hashes, names)).duplicated().sum())
    return (
        names,
        f"the sample has {dups} duplicated rows, so no key is unique (duplicates are quarantined): TODO name the "
        "columns that identify a row",
    )


def _smallest_unique(pool, hashes, timestamp, max_size: int):
    """The best-scored smallest combination of `pool` unique in the sample, or None."""
    pool = pool[:_KEY_CANDIDATES]
    for size in range(1, min(max_size, len(pool)) + 1):
        found = [combo for combo in itertools.combinations(pool, size) if _unique([hashes[c.name] for c in combo])]
        if found:
            return max(found, key=lambda combo: sum(_key_score(c, timestamp) for c in combo))
    return None


def _combined(hashes, names) -> np.ndarray:
    out = hashes[names[0]].copy()
    for n in names[1:]:
        out = out * np.uint64(1_000_003) ^ hashes[n]
    return out


def infer_contract(frame: pd.DataFrame, dataset: str, *, label: str | None = None) -> Inferred:
    """A contract guessed from a sample frame (column names as the file gives them); `label` (either name) is never part
    of the key."""
    if frame.columns.duplicated().any():
        raise SchemaError(
            f"the sample has duplicated column names: {sorted(set(frame.columns[frame.columns.duplicated()]))}"
        )
    names = _contract_names(frame.columns)
    guesses, typed = [], {}
    for source, name in zip(frame.columns, names, strict=True):
        g, values = infer_column(frame[source], name)
        guesses.append(g)
        typed[name] = values
    typed_frame = pd.DataFrame(typed)
    timestamp = guess_timestamp(guesses)
    zoned = [(g, g.timezone) for g in guesses if g.timezone and g.name == timestamp] or [
        (g, g.timezone) for g in guesses if g.timezone
    ]
    if zoned:
        zoned_guess, timezone = zoned[0]
        todo = zoned_guess.timezone_note if zoned_guess.timezone_note.startswith("TODO") else ""
        tz_note = todo or "the sample's times carry this zone (or offset); dates are cut in it"
    else:
        timezone = "UTC"
        tz_note = (
            "TODO: the sample's times have no zone; they are read as wall-clock times of this one, and dates are cut "
            "in it. "
        )
        tz_note += "Set the zone they were recorded in"
    not_key = {label, snake_case(label)} if label else set()
    key, key_note = guess_key(
        typed_frame, [g for g in guesses if g.name not in not_key and g.source not in not_key] or guesses, timestamp
    )
    dates: tuple[dt.date, ...] = ()
    if timestamp:
        ts = typed_frame[timestamp].dropna()
        if not ts.empty:
            dates = tuple(sorted({d.date() for d in ts.dt.normalize().unique()}))
    return Inferred(
        dataset=dataset,
        columns=tuple(guesses),
        key=key,
        key_note=key_note,
        timestamp=timestamp,
        timezone=timezone,
        timezone_note=tz_note,
        rows=len(frame),
        dates=dates,
    )
