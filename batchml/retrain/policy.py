"""When to retrain: a pure function of the recorded daily results."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from batchml.base.setting import count, number, setting


@dataclass(frozen=True)
class RetrainPolicy:
    """[retrain] settings of when a challenger is trained (the home of their defaults; the gate's are GatePolicy's)."""

    k: int = count(3, "Retrain when the drift verdict held on at least k ...")
    n: int = count(5, "... of the last n dates with a verdict.")
    error_increase: float = number(
        0.3,
        "Or when the realized primary metric is this much worse (relative) than the model's holdout value (-1: "
        "always).",
        low=-1,
    )
    cooldown_days: int = count(7, "No retrain within this many days of the last one.", least=0)
    allow_in_backfill: bool = setting(False, "Let dates behind the latest scored date trigger a retrain.")


@dataclass(frozen=True)
class DayResult:
    date: dt.date
    drift_verdict: str | None = None
    realized_error: float | None = None  # the primary metric, oriented so that larger is worse
    model_holdout_error: float | None = None


def retrain_decision(
    date: dt.date,
    results: list[DayResult],
    *,
    last_retrain: dt.date | None,
    latest_scored: dt.date | None,
    policy: RetrainPolicy,
) -> dict:
    """`triggered` or `not triggered`, with the reason and the numbers behind it."""
    recent = sorted((r for r in results if r.date <= date and r.drift_verdict is not None), key=lambda r: r.date)[
        -policy.n :
    ]
    drifted = [r.date.isoformat() for r in recent if r.drift_verdict == "drift"]
    latest = max(
        (r for r in results if r.date <= date and r.realized_error is not None), key=lambda r: r.date, default=None
    )
    increase = (
        (latest.realized_error / latest.model_holdout_error - 1)
        if latest and latest.realized_error is not None and latest.model_holdout_error
        else None
    )
    numbers = {
        "drifted_dates": drifted,
        "dates_considered": [r.date.isoformat() for r in recent],
        "error_increase": increase,
        "last_retrain": last_retrain.isoformat() if last_retrain else None,
        "latest_scored": latest_scored.isoformat() if latest_scored else None,
        "policy": asdict(policy),
    }

    def decide(decision: str, reason: str) -> dict:
        return {"date": date.isoformat(), "decision": decision, "reason": reason, **numbers}

    if latest_scored and date < latest_scored and not policy.allow_in_backfill:
        return decide("not triggered", f"backfill: {date} is behind the latest scored date {latest_scored}")
    if last_retrain and (date - last_retrain).days < policy.cooldown_days:
        return decide("not triggered", f"cooldown: last retrain {last_retrain}, {policy.cooldown_days} days must pass")
    if len(drifted) >= policy.k:
        return decide(
            "triggered", f"drift on {len(drifted)} of the last {len(recent)} dates (policy: {policy.k} of {policy.n})"
        )
    if increase is not None and increase >= policy.error_increase:
        return decide(
            "triggered",
            f"realized MAE {increase:+.0%} against the model's holdout MAE (policy: +{policy.error_increase:.0%})",
        )
    return decide(
        "not triggered",
        f"drift on {len(drifted)} of the last {len(recent)} dates; error increase "
        f"{increase if increase is None else f'{increase:+.0%}'}",
    )


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
