"""Distribution profiles: the reference made at training time, binned on fixed edges.

A profile is plain JSON: per column, either numeric quantile bin edges with counts, or the
categories with counts, plus null rate, quantiles, mean and std. Later profiles of daily
data are counted on the reference's edges so the two can be compared bin by bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
N_BINS = 10


def reference_profile(frame: pd.DataFrame, categorical: tuple[str, ...] = (), n_bins: int = N_BINS) -> dict:
    """Profile every column of `frame`; bins are quantile edges (numeric) or categories."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if name in categorical:
            categories = np.sort(values.dropna().unique()).tolist()
            columns[name] = {"kind": "categorical", "categories": categories}
        else:
            arr = values.to_numpy(dtype="float64", na_value=np.nan)
            arr = arr[~np.isnan(arr)]
            inner = np.unique(np.quantile(arr, np.linspace(0, 1, n_bins + 1)[1:-1])) if len(arr) else np.array([])
            columns[name] = {"kind": "numeric", "edges": inner.tolist()}
        columns[name].update(summarize(values, columns[name]))
    return {"rows": int(len(frame)), "columns": columns}


def bin_counts(values: pd.Series, spec: dict) -> np.ndarray:
    """Counts on a reference column's bins; numeric bins are open at both ends.

    Categorical counts have one more slot at the end for categories the reference never saw.
    """
    if spec["kind"] == "categorical":
        cats = np.asarray(spec["categories"])
        arr = values.dropna().to_numpy()
        idx = np.searchsorted(cats, arr)
        idx = np.clip(idx, 0, len(cats) - 1) if len(cats) else idx
        known = (cats[idx] == arr) if len(cats) else np.zeros(len(arr), bool)
        counts = np.bincount(idx[known], minlength=len(cats))
        return np.append(counts, int((~known).sum()))
    arr = values.to_numpy(dtype="float64", na_value=np.nan)
    arr = arr[~np.isnan(arr)]
    return np.bincount(np.searchsorted(np.asarray(spec["edges"]), arr, side="right"), minlength=len(spec["edges"]) + 1)


def summarize(values: pd.Series, spec: dict) -> dict:
    """Counts on the bins plus the moments and quantiles of one column."""
    n = len(values)
    nulls = int(values.isna().sum())
    out = {"count": n, "null_rate": nulls / n if n else 0.0, "counts": bin_counts(values, spec).tolist()}
    if spec["kind"] == "numeric":
        arr = values.to_numpy(dtype="float64", na_value=np.nan)
        arr = arr[~np.isnan(arr)]
        if len(arr):
            out.update(
                mean=float(arr.mean()),
                std=float(arr.std()),
                quantiles={str(q): float(v) for q, v in zip(QUANTILES, np.quantile(arr, QUANTILES))},
            )
    return out
