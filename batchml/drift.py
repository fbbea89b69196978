"""Drift of a date's profile against the model version's reference profile.

Per column: PSI and Jensen-Shannon distance on the reference bins, Wasserstein distance
normalised by the reference std (numeric, bins represented by the mean value inside them),
and the chi-squared p-value (categorical). Statistics come from numpy and scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial import distance

PSI_EPSILON = 1e-4  # floor of a bin share, so an empty bin gives a finite PSI


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.2
    js: float = 0.1
    wasserstein: float = 0.1
    drift_share: float = 0.5
    numeric_methods: tuple[str, ...] = ("psi", "wasserstein")
    categorical_methods: tuple[str, ...] = ("psi", "js")
    exclude: tuple[str, ...] = field(default=())


def psi(ref_counts, cur_counts) -> float:
    p = _shares(ref_counts)
    q = _shares(cur_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref_counts, cur_counts) -> float:
    return float(distance.jensenshannon(np.asarray(ref_counts, float), np.asarray(cur_counts, float), base=2))


def wasserstein_normalized(ref: dict, cur: dict) -> float:
    """W1 between the binned distributions (bin means as support), divided by the reference std."""
    u, uw = _support(ref)
    v, vw = _support(cur)
    if not len(u) or not len(v) or not ref.get("std"):
        return 0.0
    return float(stats.wasserstein_distance(u, v, uw, vw) / ref["std"])


def chi2_pvalue(ref_counts, cur_counts) -> float:
    table = np.array([ref_counts, cur_counts], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table)[1])


def column_drift(ref: dict, cur: dict, thresholds: DriftThresholds) -> dict:
    """Every statistic of one column, and which deciding methods crossed their threshold."""
    values = {"psi": psi(ref["counts"], cur["counts"]), "js": js_distance(ref["counts"], cur["counts"])}
    if ref["kind"] == "numeric":
        values["wasserstein"] = wasserstein_normalized(ref, cur)
        deciding = thresholds.numeric_methods
    else:
        values["chi2_pvalue"] = chi2_pvalue(ref["counts"], cur["counts"])
        deciding = thresholds.categorical_methods
    over = [m for m in deciding if values[m] >= getattr(thresholds, m)]
    return {"kind": ref["kind"], **values, "deciding_methods": list(deciding), "over_threshold": over, "drifted": bool(over)}


def drift_report(reference: dict, daily: dict, features: list[str], thresholds: DriftThresholds) -> dict:
    """The drift verdict of a date: per feature, for the prediction, and for the dataset."""
    monitored = [f for f in features if f not in thresholds.exclude]
    per_feature = {f: column_drift(reference["columns"][f], daily["columns"][f], thresholds) for f in monitored}
    prediction = None
    if "prediction" in reference and "prediction" in daily["columns"]:
        prediction = column_drift(reference["prediction"], daily["columns"]["prediction"], thresholds)
    drifted = [f for f, r in per_feature.items() if r["drifted"]]
    share = len(drifted) / len(monitored) if monitored else 0.0
    return {
        "verdict": "drift" if share >= thresholds.drift_share else "no drift",
        "drifted_share": share,
        "drifted_features": drifted,
        "features": per_feature,
        "prediction": prediction,
        "excluded": list(thresholds.exclude),
        "thresholds": asdict(thresholds),
        "reference_rows": reference.get("rows"),
        "current_rows": daily.get("rows"),
    }


def _shares(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    shares = c / total if total else np.full(len(c), 1 / len(c))
    return np.maximum(shares, PSI_EPSILON)


def _support(col: dict) -> tuple[np.ndarray, np.ndarray]:
    means = np.array([m if m is not None else np.nan for m in col["bin_means"]], dtype=float)
    counts = np.asarray(col["counts"], dtype=float)
    keep = (counts > 0) & ~np.isnan(means)
    return means[keep], counts[keep]
