"""A date's alerts, from what its tasks found: observed, decided once per onset, delivered, and recorded.

The tasks call `notify` with what they observed about a date (the `*_observed` functions turn their
documents into observations: an `Alert` of a condition that holds, a `Cleared` one that does not, an
event). `notify` keeps the onset state in monitoring/alerts.json (batchml.monitor.alerts.decide: one
alert per onset, not one per date while a condition lasts), delivers what is new (bounded timeouts and
retries), and appends the alerts and the `DeliveryRecord`s to monitoring/date=D/alerts.json. It never
raises: an alert that cannot be decided, delivered or recorded is logged, and the date goes on.

What is observed, and where:
- `failed_date`: a task of the date failed (Luigi's failure event), cleared when its daily job succeeds;
- `drift_onset`: the drift verdict (`drift` holds, `no drift` clears; collecting a baseline says nothing);
- `estimated_breach`: the estimated primary metric (`ESTIMATED_PRIMARY`) of monitoring/date=D/estimated.json
  against the version's holdout value, worse than `[checks] max_error_ratio` allows (no estimate, or no
  holdout value: not evaluated);
- `realized_breach`: metrics.json's realized_error_ratio check (pending labels: not evaluated);
- `promotion`, `rejection`: the gate's decision in retrain.json; `rollback`: rollback.json.

Nothing is kept or sent when no webhook and no email is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from batchml.base.redact import redacted
from batchml.monitor.alerts import (
    Alert,
    AlertSettings,
    AlertState,
    Cleared,
    DeliveryRecord,
    EmailSender,
    decide,
    deliver,
)
from batchml.monitor.checks import error_ratio
from batchml.store.documents import read_document, write_document
from batchml.store.layout import ALERT_STATE, monitoring_file
from batchml.store.storage import Storage

log = logging.getLogger(__name__)

ALERTS = "alerts.json"  # monitoring/date=D/alerts.json, the alerts sent about the date and how they went
# The estimated metric compared with the holdout: the realized primary where it can be estimated (mae), else
# ROC AUC (a classifier's log loss cannot be estimated from its confidence).
ESTIMATED_PRIMARY = {"regression": "mae", "classification": "roc_auc"}
HoldoutOf = Callable[[str, str], "float | None"]  # (version, metric) -> the version's holdout value
Observation = Alert | Cleared


@dataclass(frozen=True)
class Delivery:
    """Where alerts go: `[alerts]`, and Luigi's email sender with its [email] sender and receivers."""

    settings: AlertSettings
    email_sender: EmailSender | None = None
    sender: str = ""
    recipients: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.webhooks) or (self.settings.email and self.email_sender is not None)


def notify(
    storage: Storage, date: dt.date, observed: Sequence[Observation], delivery: Delivery
) -> list[DeliveryRecord]:
    """Decide what is new in `observed`, deliver it and record it under the date; never raises."""
    if not delivery.enabled or not observed:
        return []
    try:
        with storage.locked("alerts"):  # tasks of other dates (--workers N) update the state too
            state = AlertState.from_dict(read_document(storage, ALERT_STATE), where=storage.url(ALERT_STATE))
            alerts, state = decide(state, observed)
            write_document(storage, ALERT_STATE, state.to_dict())
        if not alerts:
            return []
        records = deliver(
            alerts,
            delivery.settings,
            email_sender=delivery.email_sender,
            sender=delivery.sender,
            recipients=delivery.recipients,
        )
        _record(storage, date, alerts, records)
        return records
    except Exception as exc:  # noqa: BLE001 - an alert never fails the date
        log.warning("alerts of %s could not be sent or recorded: %s: %s", date, type(exc).__name__, exc)
        return []


def _record(storage: Storage, date: dt.date, alerts: Sequence[Alert], records: Sequence[DeliveryRecord]) -> None:
    """Append one entry (the alerts and how each delivery went) to monitoring/date=D/alerts.json."""
    path = monitoring_file(date, ALERTS)
    doc = read_document(storage, path) or {"sent": []}
    doc["sent"].append(
        {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "alerts": [a.to_dict() for a in alerts],
            "deliveries": [r.to_dict() for r in records],
        }
    )
    write_document(storage, path, redacted(doc))


# What the tasks observed, as observations


def failure_observed(project: str, date: dt.date, task: str, cause: str) -> list[Observation]:
    """A task of the date failed: the failed_date condition of the project holds, with the cause line."""
    return [
        Alert(
            "failed_date", project, date.isoformat(), f"{task} failed: {cause}", details={"task": task, "cause": cause}
        )
    ]


def success_observed(project: str, date: dt.date) -> list[Observation]:
    """The date's daily job succeeded: the project's failed_date condition no longer holds."""
    return [Cleared.of("failed_date", project, date)]


def drift_observed(project: str, model: str, date: dt.date, drift: Mapping | None) -> list[Observation]:
    """The drift verdict: `drift` holds the drift_onset condition, `no drift` clears it, anything else says nothing."""
    verdict = (drift or {}).get("verdict")
    if verdict == "no drift":
        return [Cleared.of("drift_onset", project, date, model=model)]
    if verdict != "drift":
        return []
    features = list(drift.get("drifted_features") or [])  # type: ignore[union-attr]
    share = drift.get("drifted_share")  # type: ignore[union-attr]
    shown = ", ".join(features[:5]) + (f" and {len(features) - 5} more" if len(features) > 5 else "")
    return [
        Alert(
            "drift_onset",
            project,
            date.isoformat(),
            f"drift in {len(features)} input{'s' * (len(features) != 1)}: {shown or 'the prediction'}",
            model=model,
            version=_version(drift),
            details={"drifted_share": share, "drifted_features": ", ".join(features)},
        )
    ]


def estimated_metric(estimated: Mapping | None) -> tuple[str, float] | None:
    """The estimated primary metric of an estimated.json and its value, when the date has a finite one."""
    if not estimated:
        return None
    metric = ESTIMATED_PRIMARY.get(str(estimated.get("task")))
    value = (estimated.get("metrics") or {}).get(metric) if metric else None
    if metric is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return metric, float(value)


def estimated_ratio(estimated: Mapping | None, holdout_of: HoldoutOf) -> float | None:
    """The estimated primary metric against its version's holdout value (> 1 is worse), or None when either is
    missing."""
    found = estimated_metric(estimated)
    version = (estimated or {}).get("version")
    if found is None or version is None:
        return None
    metric, value = found
    return error_ratio({metric: value}, holdout_of(str(version), metric), metric)


def breaches_observed(
    project: str,
    model: str,
    date: dt.date,
    *,
    metrics: Mapping | None,
    estimated: Mapping | None,
    holdout_of: HoldoutOf,
    max_ratio: float,
) -> list[Observation]:
    """The realized breach (metrics.json's realized_error_ratio check) and the estimated breach (the estimated
    primary metric worse than the version's holdout value by more than `max_ratio`), each when evaluated."""
    out: list[Observation] = []
    check = next((c for c in (metrics or {}).get("checks", []) if c.get("name") == "realized_error_ratio"), None)
    if check is not None and check.get("value") is not None:
        if check.get("ok"):
            out.append(Cleared.of("realized_breach", project, date, model=model))
        else:
            out.append(
                Alert(
                    "realized_breach",
                    project,
                    date.isoformat(),
                    f"realized {metrics.get('primary_metric', 'primary metric')} {check['value']:.3g} x the "  # type: ignore[union-attr]
                    f"holdout value, outside {check.get('bound')}",
                    model=model,
                    version=_version(metrics),
                    details={"labelled_date": (metrics or {}).get("labelled_date"), "ratio": check["value"]},
                )
            )
    ratio = estimated_ratio(estimated, holdout_of)
    if ratio is not None:
        metric, value = estimated_metric(estimated)  # type: ignore[misc]
        if ratio <= max_ratio:
            out.append(Cleared.of("estimated_breach", project, date, model=model))
        else:
            out.append(
                Alert(
                    "estimated_breach",
                    project,
                    date.isoformat(),
                    f"estimated {metric} {value:.4g}: {ratio:.2f} x the holdout value (limit {max_ratio:g})",
                    model=model,
                    version=str(estimated["version"]),  # type: ignore[index]
                    details={"metric": metric, "estimated": value, "ratio": round(ratio, 4)},
                )
            )
    return out


def decision_observed(project: str, model: str, date: dt.date, decision: Mapping | None) -> list[Observation]:
    """A promotion or a rejection by the gate (retrain.json), as an event; other decisions say nothing."""
    kind = {"promoted": "promotion", "rejected": "rejection"}.get(str((decision or {}).get("decision")))
    if kind is None:
        return []
    d: Mapping = decision  # type: ignore[assignment]
    challenger, champion = d.get("challenger_version"), d.get("champion_version")
    summary = (
        f"v{challenger} replaces v{champion}: {d.get('reason')}"
        if kind == "promotion"
        else f"v{challenger} rejected, v{champion} stays: {d.get('reason')}"
    )
    return [
        Alert(
            kind,
            project,
            date.isoformat(),
            " ".join(summary.split()),
            model=model,
            version=str(challenger),
            details={"trigger": d.get("trigger"), "trigger_reason": d.get("trigger_reason")},
        )
    ]


def rollback_observed(project: str, model: str, date: dt.date, record: Mapping) -> list[Observation]:
    """A rollback (rollback.json), as an event."""
    return [
        Alert(
            "rollback",
            project,
            date.isoformat(),
            " ".join(
                f"v{record['from_version']} rolled back to v{record['to_version']}: {record.get('reason')}".split()
            ),
            model=model,
            version=str(record["to_version"]),
        )
    ]


def _version(doc: Mapping | None) -> str | None:
    version = ((doc or {}).get("model") or {}).get("version")
    return None if version is None else str(version)
