"""ExtractLabels, DetectDrift, Metrics and CheckMetrics: is a date healthy?"""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.base.errors import BatchmlError
from batchml.base.provenance import new_run_id
from batchml.dataset.extract import extract_labels
from batchml.monitor.baseline import reference_for
from batchml.monitor.estimated import (
    ESTIMATED,
    ESTIMATOR_CHECK,
    awaited_labels,
    date_estimate,
    first_dates_estimator,
    own_estimator,
    with_estimate_error,
)
from batchml.monitor.monitoring import date_drift, date_metrics, log_date_metrics
from batchml.store.layout import LABELS, PREDICTIONS
from tasks.alerts import tell_breaches, tell_drift
from tasks.config import (
    cache_dir,
    check_thresholds,
    checks,
    drift,
    drift_thresholds,
    estimation,
    estimation_policy,
    hooks,
    load_contract,
    make_registry,
    make_source,
    make_storage,
    source,
)
from tasks.extract import SourceData
from tasks.identity import InProject
from tasks.model import read_pin
from tasks.score import ScorePredictions, scored
from tasks.targets import DocumentTask, PartitionTask


class MetricBreach(BatchmlError):
    """A date's checks breached an error threshold."""


def labels_arrived(date: dt.date) -> bool:
    """Labels of `date` can be had: from its own rows with [labels] transform, or from the labels feed."""
    src = make_source()
    return src.exists(date) if hooks()["labels"] else src.has_labels(date)


class LabelsArrived(InProject, luigi.ExternalTask):
    """The labels of a date at the source (they arrive label_lag_days after it)."""

    date = luigi.DateParameter()

    def complete(self) -> bool:
        """Whether the date's labels can be had."""
        return labels_arrived(self.date)


class ExtractLabels(PartitionTask):
    """labels/date=D: the labels of the rows of D, once they have arrived."""

    dataset = LABELS

    def requires(self):
        """The date's labels at the source."""
        return LabelsArrived(self.date)

    def run(self):
        """Extract and commit the date's labels."""
        extract_labels(
            make_source(), load_contract(), make_storage(), self.date, transform=hooks()["labels"], run_id=new_run_id()
        )


class DetectDrift(DocumentTask):
    """monitoring/date=D/drift.json: the date against the pinned version's reference profile."""

    document = "drift.json"

    def requires(self):
        """The date's predictions (and its profile), and its pin."""
        return scored(self.date)

    def run(self):
        """Compare the date's window with the version's reference (or its baseline, once collected)."""
        storage, pin, days = make_storage(), self.input()["model"].load(), drift().baseline_days
        reference, have = reference_for(
            storage, make_registry(), pin, self.date, cache_dir=cache_dir(), baseline_days=days
        )
        result = date_drift(storage, self.date, pin, reference, have, baseline_days=days, thresholds=drift_thresholds())
        self.output().dump(result)
        tell_drift(self.date, result)
        self.set_status_message(f"{result['verdict']}: {', '.join(result['drifted_features']) or 'no feature'} drifted")


class EstimatePerformance(DocumentTask):
    """monitoring/date=D/estimated.json: the date's performance estimated from its predictions, before its labels."""

    document = ESTIMATED

    def requires(self):
        """The date's predictions and its pin."""
        return scored(self.date)

    def run(self):
        """Estimate the date with its version's estimator (fitted at registration, or on its first labelled dates)."""
        storage, pin, contract = make_storage(), self.input()["model"].load(), load_contract()
        days, lag = drift().baseline_days, source().label_lag_days
        estimator = own_estimator(make_registry(), pin, contract.task, cache_dir())
        if estimator is None:  # a version batchml did not train: its first labelled dates, once due
            yield [ExtractLabels(d) for d in awaited_labels(storage, pin, self.date, days, lag) if labels_arrived(d)]
            estimator = first_dates_estimator(storage, pin, contract, self.date, days, lag)
        result = date_estimate(storage, self.date, pin, estimator, contract, window_days=drift().window_days)
        self.output().dump(result)
        self.set_status_message(f"{result['status']}: {result['metrics']}")


def estimated_of(date: dt.date) -> dict:
    """EstimatePerformance of `date` when [estimation] is enabled, keyed "estimated" (nothing otherwise)."""
    return {"estimated": EstimatePerformance(date)} if estimation().enabled else {}


class Metrics(DocumentTask):
    """monitoring/date=D/metrics.json: data quality, prediction statistics, realized error of D - lag.

    Writes the numbers whatever they say; CheckMetrics turns breaches into a failure. Labels
    that have not arrived leave the realized metrics pending, never the date failed; once
    they arrive, the date is incomplete again and the next run fills them in, without
    re-scoring.
    """

    document = "metrics.json"

    @property
    def labelled_date(self) -> dt.date:
        """The date whose labels have arrived by this date (label_lag_days before it)."""
        return self.date - dt.timedelta(days=source().label_lag_days)

    def requires(self):
        """The date's predictions, its drift document and its pin."""
        return {**scored(self.date), "drift": DetectDrift(self.date), **estimated_of(self.date)}

    def complete(self) -> bool:
        """Written, and not waiting for labels that have arrived since."""
        done = self.output().load()
        if done is None:
            return False
        return not (done["numbers"].get("realized_status") == "pending" and labels_arrived(self.labelled_date))

    def run(self):
        """The date's checks, and the labelled date's realized performance once its labels are in (scored in this run if
        need be)."""
        labelled, status = self.labelled_date, self._realized_status()
        if status == "available":
            yield [
                ScorePredictions(labelled),
                ExtractLabels(labelled),
                *estimated_of(labelled).values(),
            ]  # scored in this run too: realized metrics are not lost
        storage, registry, pin = make_storage(), make_registry(), self.input()["model"].load()
        reference, _ = reference_for(storage, registry, pin, self.date, cache_dir=cache_dir())
        result = date_metrics(
            storage,
            self.date,
            labelled,
            pin=pin,
            labelled_pin=read_pin(labelled) if status == "available" else None,
            status=status,
            holdout_of=lambda v, metric: _holdout(registry, v, metric),
            window_days=drift().window_days,
            reference=reference,
            contract=load_contract(),
            thresholds=check_thresholds(),
            trailing_days=checks().trailing_days,
        )
        result = with_estimate_error(storage, self.date, result, estimation_policy())
        self.output().dump(result)
        tell_breaches(self.date, result, self._estimated(), registry)
        log_date_metrics(registry, self.date, result, self.input()["drift"].load(), self._estimated())

    def _estimated(self) -> dict | None:
        """The date's estimate, when [estimation] made one."""
        return self.input()["estimated"].load() if "estimated" in self.input() else None

    def _realized_status(self) -> str:
        """Where the labelled date's labels stand: "not scored" (no rows), "pending" (not arrived) or "available"."""
        labelled = self.labelled_date
        if not (make_storage().is_committed(PREDICTIONS, labelled) or SourceData(labelled).complete()):
            return "not scored"
        return "available" if labels_arrived(labelled) else "pending"


def _holdout(registry, version: str, metric: str) -> float | None:
    """A version's holdout value of `metric`, as batchml tagged it at registration."""
    value = registry.version_tags(version).get(f"holdout_{metric}")
    return float(value) if value else None


class CheckMetrics(InProject, luigi.Task):
    """Fails the date when a check breached an error threshold (see [checks] warn_only)."""

    date = luigi.DateParameter()
    priority = 10  # before the report, so a one-worker run renders the checks it just made

    def requires(self):
        """The date's metrics document."""
        return Metrics(self.date)

    def _breaches(self) -> list[dict]:
        result = self.input().load()
        if result is None:
            return [{"name": "metrics.json missing"}]
        warn_only = {*checks().warn_only, ESTIMATOR_CHECK}  # the estimator's check warns, never fails
        return [c for c in result["checks"] if not c["ok"] and c["name"] not in warn_only]

    def complete(self) -> bool:
        """The metrics are complete and no check breached an error threshold."""
        return self.requires().complete() and not self._breaches()

    def run(self):
        """Fail naming every breached check, its value and bound."""
        breaches = self._breaches()
        if breaches:
            causes = "; ".join(f"{c['name']} = {c['value']:.4g} outside {c['bound']}" for c in breaches)
            raise MetricBreach(f"{self.date}: {causes} ({self.input().relative})")
