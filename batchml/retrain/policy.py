"""When to retrain: a pure function of the recorded daily results.

Triggers (`RetrainPolicy.triggers`), each with its own threshold, looked at in this order:
- `drift`: the drift verdict held on at least k of the last n dates with a verdict. Early, but it
  flags a shift in a feature the model barely uses as readily as one in its most important.
- `estimated`: the estimated primary metric (performance estimated before the labels arrive) is at
  least `estimated_increase` worse than the version's holdout value on at least k of the last n dates
  with an estimate. Early and weighted by what the model uses; blind to a change in how labels follow
  the inputs (concept drift), which the estimator assumes away.
- `realized`: the newest realized primary metric is `error_increase` worse than the holdout value.
  The truth, but late by the label lag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from batchml.base.setting import count, names, number, setting

TRIGGERS = ("drift", "estimated", "realized")


@dataclass(frozen=True)
class RetrainPolicy:
    """[retrain] settings of when a challenger is trained (the home of their defaults; the gate's are GatePolicy's)."""

    triggers: tuple[str, ...] = names(
        ("drift", "realized"),
        "What may trigger a retrain, any of: drift (k of n drift verdicts), estimated (estimated performance, k of n "
        "dates), realized (realized performance); see docs/operations.md.",
        choices=TRIGGERS,
    )
    k: int = count(3, "Retrain when the drift verdict (or the estimated degradation) held on at least k ...")
    n: int = count(5, "... of the last n dates with a verdict (with an estimate).")
    error_increase: float = number(
        0.3,
        "Or when the realized primary metric is this much worse (relative) than the model's holdout value (-1: "
        "always).",
        low=-1,
    )
    estimated_increase: float = number(
        0.3,
        "Trigger estimated: a date counts as degraded when its estimated primary metric (mae; roc_auc for "
        "classifiers) is this much worse (relative) than the version's holdout value.",
        low=0,
    )
    cooldown_days: int = count(7, "No retrain within this many days of the last one.", least=0)
    allow_in_backfill: bool = setting(False, "Let dates behind the latest scored date trigger a retrain.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "triggers", tuple(self.triggers))
        unknown = [t for t in self.triggers if t not in TRIGGERS]
        if unknown:
            raise ValueError(f"[retrain] triggers: {', '.join(map(repr, unknown))} not among {', '.join(TRIGGERS)}")


@dataclass(frozen=True)
class DayResult:
    date: dt.date
    drift_verdict: str | None = None
    realized_error: float | None = None  # the primary metric, oriented so that larger is worse
    model_holdout_error: float | None = None
    # the estimated primary metric against the version's holdout value: > 1 is worse, whatever its direction
    estimated_ratio: float | None = None


def retrain_decision(
    date: dt.date,
    results: list[DayResult],
    *,
    last_retrain: dt.date | None,
    latest_scored: dt.date | None,
    policy: RetrainPolicy,
) -> dict:
    """`triggered` or `not triggered`, with the reason, the trigger that fired and the numbers behind it."""
    upto = sorted((r for r in results if r.date <= date), key=lambda r: r.date)
    recent = [r for r in upto if r.drift_verdict is not None][-policy.n :]
    drifted = [r.date.isoformat() for r in recent if r.drift_verdict == "drift"]
    estimated = [(r.date, r.estimated_ratio - 1) for r in upto if r.estimated_ratio is not None][-policy.n :]
    degraded = [d.isoformat() for d, rise in estimated if rise >= policy.estimated_increase]
    latest = max((r for r in upto if r.realized_error is not None), key=lambda r: r.date, default=None)
    increase = (
        (latest.realized_error / latest.model_holdout_error - 1)
        if latest and latest.realized_error is not None and latest.model_holdout_error
        else None
    )
    numbers = {
        "drifted_dates": drifted,
        "dates_considered": [r.date.isoformat() for r in recent],
        "error_increase": increase,
        "estimated_degraded_dates": degraded,
        "estimated_dates_considered": [d.isoformat() for d, _ in estimated],
        "estimated_increase": {d.isoformat(): rise for d, rise in estimated},
        "last_retrain": last_retrain.isoformat() if last_retrain else None,
        "latest_scored": latest_scored.isoformat() if latest_scored else None,
        "policy": asdict(policy),
    }

    def decide(decision: str, reason: str, trigger: str | None = None) -> dict:
        return {"date": date.isoformat(), "decision": decision, "reason": reason, "trigger": trigger, **numbers}

    if latest_scored and date < latest_scored and not policy.allow_in_backfill:
        return decide("not triggered", f"backfill: {date} is behind the latest scored date {latest_scored}")
    if last_retrain and (date - last_retrain).days < policy.cooldown_days:
        return decide("not triggered", f"cooldown: last retrain {last_retrain}, {policy.cooldown_days} days must pass")
    if "drift" in policy.triggers and len(drifted) >= policy.k:
        return decide(
            "triggered",
            f"drift on {len(drifted)} of the last {len(recent)} dates (policy: {policy.k} of {policy.n})",
            "drift",
        )
    if "estimated" in policy.triggers and len(degraded) >= policy.k:
        worst = max(rise for _, rise in estimated)
        return decide(
            "triggered",
            f"estimated primary metric at least +{policy.estimated_increase:.0%} against the holdout value on "
            f"{len(degraded)} of the last {len(estimated)} dates with an estimate, up to {worst:+.0%} (policy: "
            f"{policy.k} of {policy.n})",
            "estimated",
        )
    if "realized" in policy.triggers and increase is not None and increase >= policy.error_increase:
        return decide(
            "triggered",
            f"realized primary metric {increase:+.0%} worse than the model's holdout value "
            f"(policy: +{policy.error_increase:.0%})",
            "realized",
        )
    parts = [
        f"drift on {len(drifted)} of the last {len(recent)} dates" if "drift" in policy.triggers else "",
        f"estimated degradation on {len(degraded)} of the last {len(estimated)} dates with an estimate"
        if "estimated" in policy.triggers
        else "",
        f"error increase {increase if increase is None else f'{increase:+.0%}'}"
        if "realized" in policy.triggers
        else "",
    ]
    return decide("not triggered", "; ".join(p for p in parts if p) or "no trigger set ([retrain] triggers is empty)")


def training_window(
    date: dt.date, *, onset: dt.date | None, label_lag: int, gate_days: int, window_days: int, min_days: int
) -> tuple[dt.date, dt.date] | None:
    """The labelled dates a challenger trains on, or None while too few exist yet.

    It ends before the held-out gate dates, and starts no earlier than the drift onset:
    a model meant to replace a drifted one learns from the data as it is now.
    """
    end = date - dt.timedelta(days=label_lag + gate_days)
    start = end - dt.timedelta(days=window_days - 1)
    if onset is not None and onset > start:
        start = onset
    return (start, end) if (end - start).days + 1 >= min_days else None


def drift_onset(date: dt.date, results: list[DayResult]) -> dt.date | None:
    """The first date of the run of drifted verdicts that ends at or just before `date`."""
    onset = None
    for r in sorted((r for r in results if r.date <= date), key=lambda r: r.date, reverse=True):
        if r.drift_verdict == "drift":
            onset = r.date
        elif onset is not None:
            break
    return onset
