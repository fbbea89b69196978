"""Daily metric checks: data quality, prediction statistics and realized performance.

Each check is a number, a bound and a severity; a breached `error` check fails the date,
a breached `warn` check is reported and logged only.

Null rates (`null_rate.<column>`)
---------------------------------
A column the contract declares `nullable` has nulls on a healthy date, so its null rate is
compared with its reference, never with one fixed limit. The rate is measured on the
contract's valid rows before the features hook (`contract.validate` counts them; a hook that
fills missing text with "" cannot hide them), and, for a column of the same name in the
hook's output, on what was scored (a hook that adds nulls is seen): the worse of the two is
the check. The outputs and the hook's own columns are measured on what was scored.

With a reference rate p on N rows and n rows on the date, the limit is

    p + max(max_null_rate, (null_rate_factor - 1) * p, NULL_Z * sqrt(p (1 - p) (1/n + 1/N)))

a rise of at least `max_null_rate` (absolute) and of `null_rate_factor` times the reference
(relative: real tables' null shares wander from day to day far more than sampling does),
and never less than the noise floor of the two row counts (the binomial standard error at
NULL_Z sigmas: 3 fails a healthy date about once in 700 from sampling alone). A column with
no nulls in its reference keeps the old rule: `max_null_rate` is its limit. With the
defaults a 5% column fails above 10% (plus the floor on a small date): a jump to 40% fails.
A column's `max_null_rate` in the contract is an absolute cap on top: the limit is never above it.

The reference of a validated column is, in order: the training window's valid rows (the
version's reference profile, `reference["validated"]`); else the committed dates among the
`trailing_days` before D (their features manifests); else none, and only the contract's cap
applies (a version registered before this was recorded, a foreign model, the first date:
what is normal is not known yet, and a fixed limit would fail every healthy date of a
column that is null by nature). The reference of a scored column is the reference profile's
null rate; without one, the date's own validated rate of the same column (a hook may pass the
source's nulls through), else 0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from batchml.base.setting import count, number, setting, share
from batchml.stats.metrics import PRIMARY, lower_is_better, model_metrics


@dataclass(frozen=True)
class CheckThresholds:
    """[checks] settings: the bounds of the daily checks, and which only warn (the home of their defaults)."""

    trailing_days: int = count(7, "Dates whose median row count a date is compared with.")
    min_row_ratio: float = number(0.5, "Rows in / trailing median below this fails.", low=0)
    max_row_ratio: float = number(2.0, "Rows in / trailing median above this fails.", low=0, low_open=True)
    max_null_rate: float = share(
        0.01,
        "A column's null rate may exceed its reference's by this much (the limit of a column with no null in its "
        "reference); see batchml/monitor/checks.py.",
    )
    null_rate_factor: float = number(
        2.0,
        "A column's null rate may reach this multiple of its reference's (nullable columns: null shares wander from "
        "day to day).",
        low=1,
    )
    max_quarantine_rate: float = share(0.02, "Quarantined / rows in above this fails.")
    max_prediction_mean_shift: float = number(
        0.5, "Regression: |mean prediction / reference mean - 1| above this breaches.", low=0
    )
    max_class_share_shift: float = share(
        0.2, "Classification: largest change of a class's mean probability against the reference above this breaches."
    )
    max_error_ratio: float = number(
        1.5,
        "Realized primary metric against the model's holdout value (>1 is worse, whatever the metric's direction) "
        "above this breaches.",
        low=0,
        low_open=True,
    )
    min_label_coverage: float = share(0.9, "Labelled share of the scored rows of D - label_lag below this breaches.")
    warn_only: tuple[str, ...] = setting(
        ("realized_error_ratio", "label_coverage", "prediction_mean_shift", "class_share_shift"),
        "Checks that only warn; all others fail the date.",
    )


@dataclass
class Check:
    name: str
    value: float | None
    bound: str
    ok: bool
    severity: str
    detail: dict | None = None  # what the bound was made of (null rates: the column, the reference and the limit)

    @property
    def breached_error(self) -> bool:
        return not self.ok and self.severity == "error"


def _check(name: str, value, low=None, high=None, thresholds: CheckThresholds | None = None) -> Check:
    ok = value is None or ((low is None or value >= low) and (high is None or value <= high))
    bound = " and ".join(
        b for b in (f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else "") if b
    )
    severity = "warn" if thresholds and name in thresholds.warn_only else "error"
    return Check(name, None if value is None else float(value), bound, ok, severity)


NULL_Z = 3.0  # sigmas of the binomial noise floor of a null rate


@dataclass(frozen=True)
class NullRate:
    """One column's null rate on a date, with what it is compared with."""

    column: str
    rate: float
    rows: int
    measured_on: str  # "validated rows" (before the features hook) or "scored rows"
    reference: float | None = None
    reference_rows: int = 0
    reference_from: str = ""  # "training window", "trailing dates ...", ...
    cap: float | None = None  # the contract's max_null_rate of the column


def null_limit(n: NullRate, t: CheckThresholds) -> float | None:
    """The highest null rate `n` may have (see the module docstring); None: no limit applies."""
    if n.reference is None:
        return n.cap
    p = n.reference
    variance = p * (1 - p) * ((1 / n.rows if n.rows else 0.0) + (1 / n.reference_rows if n.reference_rows else 0.0))
    limit = p + max(t.max_null_rate, (t.null_rate_factor - 1) * p, NULL_Z * math.sqrt(variance))
    return min(limit, n.cap) if n.cap is not None else limit


def null_check(candidates: list[NullRate], t: CheckThresholds) -> Check:
    """The check of one column from its measurements (validated and scored): the one furthest above its limit."""

    def excess(n: NullRate) -> float:
        limit = null_limit(n, t)
        return -math.inf if limit is None else n.rate - limit

    worst = max(candidates, key=excess)
    limit = null_limit(worst, t)
    if limit is None:
        bound = "no reference yet (and no max_null_rate in the contract)"
    elif worst.reference is None:
        bound = f"<= {limit:.4g} (the contract's max_null_rate; no reference yet)"
    else:
        capped = " capped by the contract's max_null_rate" if worst.cap is not None and limit == worst.cap else ""
        bound = f"<= {limit:.4g} (reference {worst.reference:.4g} from {worst.reference_from}{capped})"
    severity = "warn" if f"null_rate.{worst.column}" in t.warn_only else "error"
    detail = {**asdict(worst), "limit": limit}
    return Check(f"null_rate.{worst.column}", worst.rate, bound, limit is None or worst.rate <= limit, severity, detail)


def null_rates_of(
    contract, daily: dict, reference: dict | None, validated, trailing, trailing_dates: list[str]
) -> list[NullRate]:
    """Every column's null-rate measurements of a date, each with its reference.

    `daily` is the date's profile of what was scored (the features and outputs),
    `reference` the version's reference profile (or None), `validated` the date's
    `NullCounts` (None for a date extracted before they were counted), `trailing` those of
    the dates before it (`extract.trailing_nulls`).
    """
    from batchml.dataset.nulls import NullCounts
    from batchml.model.onnx_io import PREDICTION

    reference = reference or {}
    trained = NullCounts.from_json(reference.get("validated"))
    outputs = reference.get("outputs") or ({PREDICTION: reference["prediction"]} if reference.get("prediction") else {})
    scored_ref = {**outputs, **(reference.get("columns") or {})}
    label = contract.label.column if contract.label else None
    out: list[NullRate] = []
    for col in contract.columns:
        if not col.nullable or col.name == label or validated is None or validated.rate(col.name) is None:
            continue  # a non-nullable column has no null valid row; the label's nulls are label coverage's
        known = next(
            (
                (c, src)
                for c, src in ((trained, "the training window"), (trailing, f"the dates {', '.join(trailing_dates)}"))
                if c and c.rate(col.name) is not None
            ),
            None,
        )
        base = NullRate(col.name, validated.rate(col.name), validated.rows, "validated rows", cap=col.max_null_rate)
        if known:
            counts, where = known
            base = NullRate(
                **{
                    **asdict(base),
                    "reference": counts.rate(col.name),
                    "reference_rows": counts.rows,
                    "reference_from": f"{where} ({counts.rows} valid rows)",
                }
            )
        out.append(base)
    for name, column in (daily.get("columns") or {}).items():
        cap = contract.column(name).max_null_rate if name in contract.names else None
        if name in scored_ref:
            ref, ref_rows, where = (
                scored_ref[name].get("null_rate", 0.0),
                int(scored_ref[name].get("count", 0)),
                "the training rows as scored",
            )
        elif validated is not None and validated.rate(name) is not None:
            ref, ref_rows, where = (
                validated.rate(name),
                0,
                "the date's validated rows (the hook may pass their nulls through)",
            )
        else:
            ref, ref_rows, where = 0.0, 0, "none: no null expected"
        out.append(
            NullRate(
                name, float(column["null_rate"]), int(column.get("count", 0)), "scored rows", ref, ref_rows, where, cap
            )
        )
    return out


def realized_performance(
    predictions: pd.DataFrame, labels: pd.DataFrame, *, key: list[str], label: str, task: str, classes=None
) -> dict:
    """The task's metrics of predictions against arrived labels (joined on the key), with the label coverage."""
    joined = predictions.merge(labels[[*key, label]], on=key, how="inner")
    joined = joined[joined[label].notna()]  # rows whose label the source could not give
    metrics = (
        model_metrics(task, joined[label].to_numpy(), {c: joined[c].to_numpy() for c in joined.columns}, classes)
        if len(joined)
        else {}
    )
    return {
        **metrics,
        "labelled": int(len(joined)),
        "scored": int(len(predictions)),
        "coverage": len(joined) / len(predictions) if len(predictions) else 0.0,
    }


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
    null_rates: dict[str, float] | None = None,
    nulls: Sequence[NullRate] = (),
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
    `nulls` are the columns' null rates with their references (`null_rates_of`); plain
    `null_rates` have none (a column with no null expected: `max_null_rate` is the limit).
    """
    t = thresholds
    primary = PRIMARY[task]
    checks: list[Check] = []
    median = statistics.median(trailing_rows) if trailing_rows else None
    checks.append(_check("row_count_ratio", rows_in / median if median else None, t.min_row_ratio, t.max_row_ratio, t))
    checks.append(_check("quarantine_rate", quarantined / rows_in if rows_in else 0.0, None, t.max_quarantine_rate, t))
    measured = [
        *nulls,
        *(NullRate(c, r, 0, "scored rows", 0.0, 0, "none: no null expected") for c, r in (null_rates or {}).items()),
    ]
    for column in sorted({n.column for n in measured}):
        checks.append(null_check([n for n in measured if n.column == column], t))
    if task == "classification":
        if class_shares and reference_shares:
            shift = max(abs(class_shares.get(c, 0.0) - reference_shares.get(c, 0.0)) for c in reference_shares)
            checks.append(_check("class_share_shift", shift, None, t.max_class_share_shift, t))
    else:
        ref_mean = (reference_prediction or {}).get("mean")
        mean_shift = abs(prediction["mean"] / ref_mean - 1) if ref_mean and prediction.get("mean") is not None else None
        checks.append(_check("prediction_mean_shift", mean_shift, None, t.max_prediction_mean_shift, t))
    if realized:
        checks.append(
            _check("realized_error_ratio", error_ratio(realized, holdout, primary), None, t.max_error_ratio, t)
        )
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
    for c, value in (report["numbers"].get("class_shares") or {}).items():
        out[f"class_share.{c}"] = value
    out["rows_in"] = report["numbers"]["rows_in"]
    if drift:
        out["drift_share"] = drift["drifted_share"]
        for name, col in drift["features"].items():
            for method in ("psi", "js", "wasserstein"):
                if method in col:
                    out[f"drift_{method}.{name}"] = col[method]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}
