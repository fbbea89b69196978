"""What the tasks tell: one call per observation, through batchml.monitor.notify with [alerts] and Luigi's [email]."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence

from batchml.model.registry import Registry
from batchml.monitor.failures import one_line
from batchml.monitor.notify import (
    Delivery,
    HoldoutOf,
    Observation,
    breaches_observed,
    decision_observed,
    drift_observed,
    failure_observed,
    notify,
    rollback_observed,
    success_observed,
)
from tasks.config import alert_settings, checks, make_storage, model_name, project_name

log = logging.getLogger("batchml.tasks.alerts")


def delivery() -> Delivery:
    """Where alerts go: `[alerts]`, and Luigi's send_email with `[email] sender` and `receiver` when `email` is on."""
    settings = alert_settings()
    if not settings.email:
        return Delivery(settings)
    from luigi.notifications import email, send_email

    receiver = email().receiver
    return Delivery(settings, send_email, email().sender, (receiver,) if receiver else ())


def tell(date: dt.date, observe: Callable[[], Sequence[Observation]]) -> None:
    """Observe, then decide, deliver and record the date's alerts; never raises (batchml.monitor.notify)."""
    try:
        chosen = delivery()
        if chosen.enabled:  # nothing observed, read or kept when no alert can go anywhere
            notify(make_storage(), date, observe(), chosen)
    except Exception as exc:  # noqa: BLE001 - an alert never fails the date
        log.warning("alerts of %s: %s", date, one_line(exc))


def tell_drift(date: dt.date, drift: dict) -> None:
    """A drift onset (or its end), from the date's drift document."""
    tell(date, lambda: drift_observed(project_name(), model_name(), date, drift))


def tell_breaches(date: dt.date, metrics: dict, estimated: dict | None, registry: Registry) -> None:
    """The date's realized and estimated breaches (or their ends), from its metrics and its estimate."""
    tell(
        date,
        lambda: breaches_observed(
            project_name(),
            model_name(),
            date,
            metrics=metrics,
            estimated=estimated,
            holdout_of=holdout_of(registry),
            max_ratio=checks().max_error_ratio,
        ),
    )


def tell_decision(date: dt.date, decision: dict) -> None:
    """A promotion or a rejection, from the date's retrain decision."""
    tell(date, lambda: decision_observed(project_name(), model_name(), date, decision))


def tell_rollback(date: dt.date, record: dict) -> None:
    """A rollback, from its record."""
    tell(date, lambda: rollback_observed(project_name(), model_name(), date, record))


def tell_failure(date: dt.date, task: str, cause: str) -> None:
    """A task of the date failed, with its cause line."""
    tell(date, lambda: failure_observed(project_name(), date, task, cause))


def tell_success(date: dt.date) -> None:
    """The date's daily job succeeded: a failed date is failing no more."""
    tell(date, lambda: success_observed(project_name(), date))


def holdout_of(registry: Registry) -> HoldoutOf:
    """A version's holdout value of a metric: its `holdout_<metric>` tag, else its training run's metric; None when
    neither exists (a version batchml did not train)."""

    @functools.cache
    def value(version: str, metric: str) -> float | None:
        tag = registry.version_tags(version).get(f"holdout_{metric}")
        if tag:
            return float(tag)
        run_id = registry.client.get_model_version(registry.name, version).run_id
        found = registry.client.get_run(run_id).data.metrics.get(f"holdout_{metric}") if run_id else None
        return None if found is None else float(found)

    return value
