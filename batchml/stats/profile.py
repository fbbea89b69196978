"""Distribution profiles on fixed bins: the reference made at training time, and daily ones.

A reference profile is plain JSON: per column either numeric quantile bin edges or the
categories, with counts on those bins, the mean value inside each bin, null rate,
quantiles, mean and std. A daily profile is counted on the reference's bins, partition by
partition, as one flat vector per column, so partitions combine by addition (a Dask tree
reduction) and the data is read once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
N_BINS = 20


def reference_profile(frame: pd.DataFrame, categorical: tuple[str, ...] = (), n_bins: int = N_BINS) -> dict:
    """Profile every column of `frame`; bins are quantile edges (numeric) or categories."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        arr = _finite(values) if name not in categorical else np.empty(0)
        if name in categorical:
            if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
                categories = np.sort(values.dropna().unique()).tolist()
            else:
                categories = sorted({_category_key(v) for v in values.dropna().astype(object)})
            spec = {"kind": "categorical", "categories": categories}
        else:
            inner = np.unique(np.quantile(arr, np.linspace(0, 1, n_bins + 1)[1:-1])) if len(arr) else np.array([])
            spec = {"kind": "numeric", "edges": inner.tolist()}
        columns[name] = {**spec, **finalize(spec, partial_profile(values, spec))}
        if spec["kind"] == "numeric" and len(arr):
            columns[name]["quantiles"] = {
                str(q): float(v) for q, v in zip(QUANTILES, np.quantile(arr, QUANTILES), strict=True)
            }
    return {"rows": int(len(frame)), "columns": columns}


def n_bins(spec: dict) -> int:
    """Numeric: one more bin than inner edges (both ends open). Categorical: one slot for unseen."""
    return len(spec["edges"]) + 1 if spec["kind"] == "numeric" else len(spec["categories"]) + 1


def partial_profile(values: pd.Series, spec: dict) -> np.ndarray:
    """One column of one partition as a flat vector that adds up across partitions.

    Layout: counts per bin, [numeric: sum of values per bin], nulls, n, sum, sum of squares.
    This runs on every row the pipeline scores, beside the model, so the common shapes
    take the short ways: integer columns on integer categories are counted with one
    `bincount` of their values, and numbers are binned by comparing with each edge.
    """
    k = n_bins(spec)
    if spec["kind"] == "categorical" and not _numeric_categories(spec["categories"], values):
        return _text_partial(values, spec["categories"], k)
    if spec["kind"] == "categorical":
        counted = _integer_partial(values, spec["categories"])
        if counted is not None:
            return counted
    arr = values.to_numpy(dtype="float64", na_value=np.nan)
    valid = ~np.isnan(arr)
    x = arr[valid] if not valid.all() else arr
    if spec["kind"] == "numeric":
        idx = _bin_index(x, np.asarray(spec["edges"], dtype="float64"))
        counts = np.bincount(idx, minlength=k)
        sums = np.bincount(idx, weights=x, minlength=k)
        head = np.concatenate([counts, sums])
    else:
        head = np.bincount(_category_index(x, spec["categories"]), minlength=k).astype("float64")
    # einsum, not np.dot: dot wakes the BLAS thread pool, whose spinning threads take a core
    # from ONNX Runtime for longer than the product itself (measured in bench/).
    tail = [len(arr) - len(x), len(arr), float(x.sum()), float(np.einsum("i,i->", x, x))]
    return np.concatenate([head, tail]).astype("float64")


_COMPARED_EDGES = 64  # up to this many edges, one comparison per edge beats a binary search per value (7x at 19)
_COUNTED_SPAN = 1 << 16  # integer categories within this span are counted by value


def _bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value: how many edges are <= it (`searchsorted(..., side="right")`)."""
    if len(edges) >= _COMPARED_EDGES:
        return np.searchsorted(edges, x, side="right")
    idx = np.zeros(len(x), np.uint8)
    for edge in edges:
        idx += x >= edge
    return idx


def _integer_partial(values: pd.Series, categories: list) -> np.ndarray | None:
    """The partial profile of an integer column on integer categories, from one count per value;
    None when the column or the categories have another shape (the general way applies)."""
    if not (isinstance(values.dtype, np.dtype) and values.dtype.kind == "i") or not categories:
        return None
    cats = np.asarray(categories, dtype="float64")
    lo, hi = cats.min(), cats.max()
    if not np.array_equal(cats, np.floor(cats)) or hi - lo >= _COUNTED_SPAN:
        return None
    x = values.to_numpy().astype(np.int64, copy=False)
    span = int(hi - lo) + 1
    offset = x - int(lo)
    outside = (offset < 0) | (offset >= span)
    rest = x[outside].astype("float64") if outside.any() else np.empty(0)  # unseen, and summed one by one
    if len(rest):
        offset = np.where(outside, span, offset)
    by_value = np.bincount(offset, minlength=span + 1)[:span].astype("float64")
    value = np.arange(int(lo), int(hi) + 1, dtype="float64")
    known = by_value[cats.astype(np.int64) - int(lo)]
    total = float(np.einsum("i,i->", by_value, value)) + float(rest.sum())
    squares = float(np.einsum("i,i,i->", by_value, value, value)) + float(np.einsum("i,i->", rest, rest))
    return np.concatenate([known, [len(x) - known.sum(), 0.0, len(x), total, squares]])


def _numeric_categories(categories: list, values: pd.Series) -> bool:
    if categories:
        return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in categories)
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def _text_partial(values: pd.Series, categories: list, k: int) -> np.ndarray:
    """Counts of text or boolean categories (unseen ones in the last slot); no sums."""
    present = values.notna().to_numpy()
    codes = pd.Categorical(
        values.astype(object).where(values.notna(), None).map(_category_key), categories=categories
    ).codes
    codes = np.where(codes < 0, k - 1, codes)[present]
    head = np.bincount(codes, minlength=k).astype("float64")
    return np.concatenate([head, [len(values) - int(present.sum()), len(values), 0.0, 0.0]])


def _category_key(value):
    """Categories as JSON keeps them: text, or booleans as 'True'/'False'."""
    return None if value is None else str(value)


def _category_index(x: np.ndarray, categories: list) -> np.ndarray:
    """Slot of each value among `categories`; unseen values go to the last slot."""
    cats = np.asarray(categories, dtype="float64")
    unseen = len(cats)
    if unseen and np.array_equal(cats, np.arange(cats[0], cats[0] + unseen)):  # e.g. ids 1..265: direct
        idx = x - cats[0]
        known = (idx >= 0) & (idx < unseen) & (idx == np.floor(idx))
        return np.where(known, idx, unseen).astype(np.intp)
    idx = np.searchsorted(cats, x)
    known = idx < unseen
    known[known] = cats[idx[known]] == x[known]
    return np.where(known, idx, unseen)


def finalize(spec: dict, vector: np.ndarray) -> dict:
    """Counts, bin means, null rate, mean and std from a summed partial profile vector."""
    k = n_bins(spec)
    counts = vector[:k]
    nulls, n, total, squares = vector[-4:]
    valid = n - nulls
    out = {
        "count": int(n),
        "null_rate": float(nulls / n) if n else 0.0,
        "counts": counts.astype("int64").tolist(),
        "mean": float(total / valid) if valid else None,
        "std": float(np.sqrt(max(squares / valid - (total / valid) ** 2, 0.0))) if valid else None,
    }
    if spec["kind"] == "numeric":
        sums = vector[k : 2 * k]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["bin_means"] = [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]
    return out


def profile_partition(
    frame: pd.DataFrame, specs: dict[str, dict], extra: dict[str, pd.Series] | None = None
) -> dict[str, np.ndarray]:
    """Partial profiles of every profiled column of one partition (`extra` adds columns without copying it)."""
    extra = extra or {}
    return {name: partial_profile(extra[name] if name in extra else frame[name], spec) for name, spec in specs.items()}


def add_profiles(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Combine partial profiles (associative, so Dask can reduce them as a tree)."""
    present = [p for p in parts if p]
    if not present:
        return {}
    return {name: np.sum([p[name] for p in present], axis=0) for name in present[0]}


def daily_profile(partial: dict[str, np.ndarray], specs: dict[str, dict]) -> dict:
    return {
        "rows": int(next(iter(partial.values()))[-3]) if partial else 0,
        "columns": {n: finalize(specs[n], v) for n, v in partial.items()},
    }


def _finite(values: pd.Series) -> np.ndarray:
    arr = values.to_numpy(dtype="float64", na_value=np.nan)
    return arr[~np.isnan(arr)]


def profile_vector(spec: dict, column: dict) -> np.ndarray:
    """The additive vector of a finalized column (the inverse of `finalize`), so saved daily profiles add up.

    Counts, nulls and n come back exactly; bin sums, sum and sum of squares to float rounding.
    """
    k = n_bins(spec)
    counts = np.asarray(column["counts"], dtype="float64")
    n = float(column["count"])
    nulls = float(round(column["null_rate"] * n))
    valid = n - nulls
    mean = column["mean"] or 0.0
    std = column["std"] or 0.0
    head = [counts]
    if spec["kind"] == "numeric":
        means = np.array([m if m is not None else 0.0 for m in column.get("bin_means", [None] * k)], dtype="float64")
        head.append(means * counts)
    tail = [nulls, n, mean * valid, (std * std + mean * mean) * valid]
    return np.concatenate([*head, tail])


def window_profile(profiles: dict[str, dict | None], specs: dict[str, dict]) -> dict:
    """The sum of the daily profiles of a window's dates: one profile, as if the rows were profiled together.

    `profiles` maps each date of the window (ISO string) to its daily profile, or None when the
    date has none; missing dates are skipped and listed. Columns absent from a profile are
    skipped for that date. Every profile must be counted on `specs` (the same model version's
    reference): a column with another number of bins raises ValueError. The result has the
    shape of `daily_profile`, plus `window_days` (dates asked for), `dates` (dates summed) and `missing`.
    """
    present = {d: p for d, p in sorted(profiles.items()) if p}
    vectors: dict[str, np.ndarray] = {}
    for profile in present.values():
        for name, column in profile["columns"].items():
            if name in specs:
                if len(column["counts"]) != n_bins(specs[name]):
                    raise ValueError(
                        f"{name}: {len(column['counts'])} bins in a daily profile, {n_bins(specs[name])} in the "
                        "reference"
                    )
                v = profile_vector(specs[name], column)
                vectors[name] = vectors[name] + v if name in vectors else v
    rows = sum(int(p.get("rows", 0)) for p in present.values())
    out = {"rows": rows, "columns": {n: finalize(specs[n], v) for n, v in vectors.items()}}
    return {
        **out,
        "window_days": len(profiles),
        "dates": list(present),
        "missing": sorted(d for d, p in profiles.items() if not p),
    }


def date_profiles(frame: pd.DataFrame, dates: pd.Series, specs: dict[str, dict]) -> dict[str, dict]:
    """Daily profiles (on the reference bins `specs`) of each date of a multi-day frame, keyed by ISO date.

    Stored with a reference profile (as `reference["dates"]`), they let drift compare a date with
    the reference dates of the same weekdays, and they add up like any daily profiles.
    """
    keys = pd.to_datetime(dates).dt.date.to_numpy()
    out = {}
    for day in sorted(set(keys)):
        part = frame[keys == day]
        out[day.isoformat()] = daily_profile(
            profile_partition(part, {n: s for n, s in specs.items() if n in part.columns}), specs
        )
    return out


def binned_quantiles(spec: dict, column: dict, qs=(0.05, 0.5, 0.95)) -> dict[str, float] | None:
    """Quantiles of a daily profile's numeric column, read off its bins (linear inside a bin).

    The outer bins are open: their mean value stands in for the missing edge. Exact to within
    one bin's width, which is all a monitoring chart needs, at no cost over the data.
    """
    counts = np.asarray(column.get("counts") or [], dtype="float64")
    total = counts.sum()
    if spec.get("kind") != "numeric" or not total:
        return None
    edges = list(spec["edges"])
    means = [m if m is not None else np.nan for m in column.get("bin_means") or [None] * len(counts)]
    lows = [means[0], *edges]
    highs = [*edges, means[-1]]
    cum = np.cumsum(counts)
    out = {}
    for q in qs:
        i = int(np.searchsorted(cum, q * total, side="left"))
        i = min(i, len(counts) - 1)
        before = cum[i - 1] if i else 0.0
        lo, hi = lows[i], highs[i]
        if np.isnan(lo) or np.isnan(hi):
            value = means[i] if not np.isnan(means[i]) else (lo if np.isnan(hi) else hi)
        else:
            value = lo + (hi - lo) * ((q * total - before) / counts[i] if counts[i] else 0.5)
        out[str(q)] = float(value)
    return out
