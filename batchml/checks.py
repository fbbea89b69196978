"""Daily metric checks: data quality, prediction statistics and realized performance.

Each check is a number, a bound and a severity; a breached `error` check fails the date,
a breached `warn` check is reported and logged only.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from batchml.metrics import PRIMARY, lower_is_better, model_metrics


@dataclass(frozen=True)
class CheckThresholds:
    trailing_days: int = 7
    min_row_ratio: float = 0.5
    max_row_ratio: float = 2.0
    max_null_rate: float = 0.01
    max_quarantine_rate: float = 0.02
    max_prediction_mean_shift: float = 0.5
    max_class_share_shift: float = 0.2
    max_error_ratio: float = 1.5
    min_label_coverage: float = 0.9
    warn_only: tuple[str, ...] = field(default=("realized_error_ratio", "label_coverage", "prediction_mean_shift", "class_share_shift"))


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


def realized_performance(predictions: pd.DataFrame, labels: pd.DataFrame, *, key: list[str], label: str, task: str, classes=None) -> dict:
    """The task's metrics of predictions against arrived labels (joined on the key), with the label coverage."""
    joined = predictions.merge(labels[[*key, label]], on=key, how="inner")
    joined = joined[joined[label].notna()]  # rows whose label the source could not give
    metrics = model_metrics(task, joined[label].to_numpy(), {c: joined[c].to_numpy() for c in joined.columns}, classes) if len(joined) else {}
    return {**metrics, "labelled": int(len(joined)), "scored": int(len(predictions)), "coverage": len(joined) / len(predictions) if len(predictions) else 0.0}


def error_ratio(realized: dict, holdout: float | None, metric: str) -> float | None:
    """How much worse the realized primary metric is than at training time (> 1 is worse, either direction)."""
    value = realized.get(metric)
    if value is None or not holdout or not np.isfinite(value):
        return None
    return value / holdout if lower_is_better(metric) else holdout / value if value else None


def run_checks(
    *,
    rows_in: int,
    trailing_rows: list[int],
    quarantined: int,
    null_rates: dict[str, float],
    prediction: dict,
    reference_prediction: dict,
    realized: dict | None,
    holdout: float | None,
    thresholds: CheckThresholds,
    task: str = "regression",
    class_shares: dict[str, float] | None = None,
    reference_shares: dict[str, float] | None = None,
    realized_status: str = "available",
) -> dict:
    """Every number of a date's checks and their verdict: ok, warn or fail.

    Realized metrics are for the labelled date (D - lag); `realized_status` says whether
    they are available, pending (labels not arrived yet) or impossible (date not scored).
    """
    t = thresholds
    primary = PRIMARY[task]
    checks: list[Check] = []
    median = statistics.median(trailing_rows) if trailing_rows else None
    checks.append(_check("row_count_ratio", rows_in / median if median else None, t.min_row_ratio, t.max_row_ratio, t))
    checks.append(_check("quarantine_rate", quarantined / rows_in if rows_in else 0.0, None, t.max_quarantine_rate, t))
    for column, rate in sorted(null_rates.items()):
        checks.append(_check(f"null_rate.{column}", rate, None, t.max_null_rate, t))
    if task == "classification":
        if class_shares and reference_shares:
            shift = max(abs(class_shares.get(c, 0.0) - reference_shares.get(c, 0.0)) for c in reference_shares)
            checks.append(_check("class_share_shift", shift, None, t.max_class_share_shift, t))
    else:
        ref_mean = (reference_prediction or {}).get("mean")
        shift = abs(prediction["mean"] / ref_mean - 1) if ref_mean and prediction.get("mean") is not None else None
        checks.append(_check("prediction_mean_shift", shift, None, t.max_prediction_mean_shift, t))
    if realized:
        checks.append(_check("realized_error_ratio", error_ratio(realized, holdout, primary), None, t.max_error_ratio, t))
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
            "prediction": {k: prediction.get(k) for k in ("mean", "std", "null_rate", "count", "quantiles")},
            "class_shares": class_shares,
            "realized": realized,
            "realized_status": realized_status,
            f"champion_holdout_{primary}": holdout,
            "champion_holdout": holdout,
        },
        "task": task,
        "primary_metric": primary,
        "thresholds": asdict(t),
    }


def flat_metrics(report: dict, drift: dict | None = None) -> dict[str, float]:
    """The numbers of a date as flat `name: value` pairs for MLflow."""
    out: dict[str, float] = {}
    for c in report["checks"]:
        if c["value"] is not None:
            out[c["name"]] = c["value"]
    realized = report["numbers"].get("realized") or {}
    for k in ("mae", "rmse", "r2", "mape", "log_loss", "roc_auc", "accuracy", "f1", "brier", "coverage"):
        if realized.get(k) is not None:
            out[f"realized_{k}"] = realized[k]
    pred = report["numbers"]["prediction"]
    for k in ("mean", "std"):
        if pred.get(k) is not None and isinstance(pred.get(k), (int, float)):
            out[f"prediction_{k}"] = pred[k]
    for c, share in (report["numbers"].get("class_shares") or {}).items():
        out[f"class_share.{c}"] = share
    out["rows_in"] = report["numbers"]["rows_in"]
    if drift:
        out["drift_share"] = drift["drifted_share"]
        for name, col in drift["features"].items():
            for method in ("psi", "js", "wasserstein"):
                if method in col:
                    out[f"drift_{method}.{name}"] = col[method]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}
