"""What retraining reads and decides for a date: trailing verdicts, the policy, the window, the gate, a rollback.

The Luigi tasks in tasks/retrain.py call these and write what they return; everything
here is testable with a storage root and a registry, without a scheduler.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batchml.dataset.contract import Contract
from batchml.model.registry import Registry
from batchml.monitor.checks import error_ratio
from batchml.monitor.estimated import ESTIMATED
from batchml.monitor.notify import HoldoutOf, estimated_ratio
from batchml.retrain.lifecycle import GatePolicy, evaluate, gate
from batchml.retrain.policy import DayResult, RetrainPolicy, drift_onset, retrain_decision, training_window
from batchml.store import layout
from batchml.store.documents import monitored_dates, read_document
from batchml.store.layout import monitoring_file
from batchml.store.storage import Storage

PREVIOUS = "previous"  # the alias a promotion leaves on the version it replaced


@dataclass(frozen=True)
class RetrainPlan:
    """The policy's inputs beyond the verdicts: label lag, gate and window sizes, whether a recipe exists."""

    policy: RetrainPolicy
    label_lag: int
    gate_days: int
    window_days: int
    min_train_days: int
    recipe_available: bool


def day_results(storage: Storage, date: dt.date, days: int, holdout_of: HoldoutOf | None = None) -> list[DayResult]:
    """The drift verdict and realized-error ratio of the `days` dates ending at `date`, newest first; with
    `holdout_of` (the estimated trigger), the estimated primary metric's ratio to its version's holdout value too
    (monitoring/date=D/estimated.json, `estimated_ratio`)."""
    out = []
    for i in range(days):
        d = date - dt.timedelta(days=i)
        drift = read_document(storage, monitoring_file(d, "drift.json"))
        metrics = read_document(storage, monitoring_file(d, "metrics.json")) or {}
        numbers = metrics.get("numbers", {})
        ratio = error_ratio(
            numbers.get("realized") or {}, numbers.get("champion_holdout"), metrics.get("primary_metric", "mae")
        )
        estimated = (
            estimated_ratio(read_document(storage, monitoring_file(d, ESTIMATED)), holdout_of) if holdout_of else None
        )
        out.append(DayResult(d, (drift or {}).get("verdict"), ratio, 1.0 if ratio is not None else None, estimated))
    return out


def last_retrain(storage: Storage, date: dt.date) -> dt.date | None:
    """The newest date before `date` whose decision trained a challenger."""
    for d in reversed(monitored_dates(storage)):
        if d < date and (read_document(storage, monitoring_file(d, "retrain.json")) or {}).get("challenger_version"):
            return d
    return None


def gate_dates(date: dt.date, label_lag: int, gate_days: int) -> list[dt.date]:
    """The held-out dates: the newest `gate_days` labelled dates (labels lag the date)."""
    newest = date - dt.timedelta(days=label_lag)
    return [newest - dt.timedelta(days=i) for i in range(gate_days - 1, -1, -1)]


def decide(
    storage: Storage, date: dt.date, plan: RetrainPlan, holdout_of: HoldoutOf | None = None
) -> tuple[dict, tuple[dt.date, dt.date] | None]:
    """The policy's decision for `date`, and the training window when a challenger should be trained now.

    `holdout_of(version, metric)`: a version's holdout value, read for the estimated trigger only."""
    policy = plan.policy
    results = day_results(
        storage,
        date,
        policy.n + plan.window_days + plan.label_lag + plan.gate_days,
        holdout_of if "estimated" in policy.triggers else None,
    )
    scored = storage.committed_dates(layout.PREDICTIONS)
    decision = retrain_decision(
        date,
        results,
        last_retrain=last_retrain(storage, date),
        latest_scored=max(scored) if scored else None,
        policy=policy,
    )
    if decision["decision"] != "triggered":
        return decision, None
    if not plan.recipe_available:
        unavailable = {
            "decision": "unavailable",
            "trigger_reason": decision["reason"],
            "reason": "retraining unavailable: [training] recipe is not set",
        }
        return {**decision, **unavailable}, None
    onset = drift_onset(date, results) if decision["trigger"] == "drift" else None
    window = training_window(
        date,
        onset=onset,
        label_lag=plan.label_lag,
        gate_days=plan.gate_days,
        window_days=plan.window_days,
        min_days=plan.min_train_days,
    )
    if window is None:
        waiting = (
            f"{decision['reason']}; waiting for {plan.min_train_days} labelled dates since the drift onset {onset}"
        )
        return {**decision, "decision": "deferred", "reason": waiting}, None
    return decision, window


def gate_challenger(
    registry: Registry,
    contract: Contract,
    frame: pd.DataFrame,
    *,
    alias: str,
    challenger_version: str,
    cache_dir: str | Path,
    policy: GatePolicy,
    dates: list[dt.date],
) -> dict:
    """Evaluate challenger and champion as deployed on the same held-out rows; move `alias` if the challenger wins.

    The decision is recorded on the challenger's version tags either way; a promotion
    leaves @previous on the version it replaced, for a rollback.
    """
    label = contract.require_label()
    classes = label.classes if label.is_classification else None
    champion = registry.pin(alias, cache_dir, classes)
    challenger = registry.pin_version(challenger_version, cache_dir, classes)
    scores = {
        pin.version: evaluate(pin, registry.fetch(pin, cache_dir), frame, contract) for pin in (champion, challenger)
    }
    result = gate(scores[challenger.version], scores[champion.version], policy)
    evaluated = [d.isoformat() for d in dates]
    for key, value in {
        "gate": result["decision"],
        "gate_reason": result["reason"],
        "gate_dates": ",".join(evaluated),
    }.items():
        registry.client.set_model_version_tag(registry.name, challenger.version, key, value)
    registry.describe_version(
        challenger.version,
        f"{result['decision']} against v{champion.version} on {', '.join(evaluated)}: {result['reason']}.",
    )
    if result["decision"] == "promoted":
        registry.set_alias(PREVIOUS, champion.version)
        registry.set_alias(alias, challenger.version)
    return {
        "decision": result["decision"],
        "gate": result,
        "challenger_version": challenger.version,
        "champion_version": champion.version,
        "evaluated_on": evaluated,
    }


def roll_back(registry: Registry, *, alias: str, date: dt.date, reason: str, to_version: str | None) -> dict:
    """Move `alias` back to @previous (or `to_version`), tag the replaced version, and return the record."""
    current = registry.version_by_alias(alias)
    target = to_version or getattr(registry.version_by_alias(PREVIOUS), "version", None)
    if current is None or target is None:
        raise ValueError(
            f"nothing to roll back to: @{alias} is {getattr(current, 'version', None)}, @{PREVIOUS} is not set and no "
            "--to-version given"
        )
    target = str(target)
    registry.set_alias(alias, target)
    registry.set_alias(PREVIOUS, current.version)
    registry.client.set_model_version_tag(registry.name, current.version, "rolled_back", f"{date}: {reason}")
    return {
        "decision": "rolled back",
        "reason": reason,
        "from_version": str(current.version),
        "to_version": target,
        "date": date.isoformat(),
    }
