"""Daily metric checks: data quality, prediction statistics and realized performance.

Each check is a number, a bound and a severity; a breached `error` check fails the date,
a breached `warn` check is reported and logged only.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from batchml.features import KEY, LABEL
from batchml.training import regression_metrics


@dataclass(frozen=True)
class CheckThresholds:
    trailing_days: int = 7
    min_row_ratio: float = 0.5
    max_row_ratio: float = 2.0
    max_null_rate: float = 0.01
    max_quarantine_rate: float = 0.02
    max_prediction_mean_shift: float = 0.5
    max_mae_ratio: float = 1.5
    min_label_coverage: float = 0.9
    warn_only: tuple[str, ...] = field(default=("realized_mae_ratio", "label_coverage", "prediction_mean_shift"))


@dataclass
class Check:
    name: str
    value: float | None
    bound: str
    ok: bool
    severity: str

    @property
    def breached_error(self) -> bool:
        return not self.ok and self.severity == "error"


def _check(name: str, value, low=None, high=None, thresholds: CheckThresholds | None = None) -> Check:
    ok = value is None or ((low is None or value >= low) and (high is None or value <= high))
    bound = " and ".join(b for b in (f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else "") if b)
    severity = "warn" if thresholds and name in thresholds.warn_only else "error"
    return Check(name, None if value is None else float(value), bound, ok, severity)


def realized_performance(predictions: pd.DataFrame, labels: pd.DataFrame) -> dict:
    """MAE, RMSE, R2, MAPE of predictions against arrived labels, with the label coverage."""
    joined = predictions[[KEY, "prediction"]].merge(labels[[KEY, LABEL]], on=KEY, how="inner")
    metrics = regression_metrics(joined[LABEL].to_numpy(), joined["prediction"].to_numpy()) if len(joined) else {}
    return {**metrics, "labelled": int(len(joined)), "scored": int(len(predictions)), "coverage": len(joined) / len(predictions) if len(predictions) else 0.0}


def run_checks(
    *,
    rows_in: int,
    trailing_rows: list[int],
    quarantined: int,
    null_rates: dict[str, float],
    prediction: dict,
    reference_prediction: dict,
    realized: dict | None,
    champion_mae: float | None,
    thresholds: CheckThresholds,
) -> dict:
    """Every number of a date's checks and their verdict: ok, warn or fail."""
    t = thresholds
    checks: list[Check] = []
    median = statistics.median(trailing_rows) if trailing_rows else None
    checks.append(_check("row_count_ratio", rows_in / median if median else None, t.min_row_ratio, t.max_row_ratio, t))
    checks.append(_check("quarantine_rate", quarantined / rows_in if rows_in else 0.0, None, t.max_quarantine_rate, t))
    for column, rate in sorted(null_rates.items()):
        checks.append(_check(f"null_rate.{column}", rate, None, t.max_null_rate, t))
    ref_mean = reference_prediction.get("mean")
    shift = abs(prediction["mean"] / ref_mean - 1) if ref_mean and prediction.get("mean") is not None else None
    checks.append(_check("prediction_mean_shift", shift, None, t.max_prediction_mean_shift, t))
    if realized:
        ratio = realized["mae"] / champion_mae if champion_mae and "mae" in realized else None
        checks.append(_check("realized_mae_ratio", ratio, None, t.max_mae_ratio, t))
        checks.append(_check("label_coverage", realized["coverage"], t.min_label_coverage, None, t))
    failed = [c for c in checks if c.breached_error]
    warned = [c for c in checks if not c.ok and not c.breached_error]
    return {
        "status": "fail" if failed else "warn" if warned else "ok",
        "failed": [c.name for c in failed],
        "warned": [c.name for c in warned],
        "checks": [asdict(c) for c in checks],
        "numbers": {
            "rows_in": rows_in,
            "rows_trailing_median": median,
            "quarantined": quarantined,
            "prediction": {k: prediction.get(k) for k in ("mean", "std", "null_rate", "count")},
            "realized": realized,
            "champion_holdout_mae": champion_mae,
        },
        "thresholds": asdict(t),
    }


def flat_metrics(report: dict, drift: dict | None = None) -> dict[str, float]:
    """The numbers of a date as flat `name: value` pairs for MLflow."""
    out: dict[str, float] = {}
    for c in report["checks"]:
        if c["value"] is not None:
            out[c["name"]] = c["value"]
    realized = report["numbers"].get("realized") or {}
    for k in ("mae", "rmse", "r2", "mape", "coverage"):
        if realized.get(k) is not None:
            out[f"realized_{k}"] = realized[k]
    pred = report["numbers"]["prediction"]
    for k in ("mean", "std"):
        if pred.get(k) is not None:
            out[f"prediction_{k}"] = pred[k]
    out["rows_in"] = report["numbers"]["rows_in"]
    if drift:
        out["drift_share"] = drift["drifted_share"]
        for name, col in drift["features"].items():
            for method in ("psi", "js", "wasserstein"):
                if method in col:
                    out[f"drift_{method}.{name}"] = col[method]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}
