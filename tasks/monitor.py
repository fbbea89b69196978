"""ExtractLabels, DetectDrift, Metrics and CheckMetrics: is a date healthy?"""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.monitor.checks import flat_metrics
from batchml.stats.drift import drift_report, window_dates
from batchml.scoring.predictions import profile_specs
from batchml.stats.profile import window_profile
from batchml.base.errors import BatchmlError
from batchml.store.layout import LABELS
from batchml.dataset.extract import extract_labels
from batchml.monitor.monitoring import date_checks, read_json, realized_of, write_json
from batchml.store.layout import monitoring_file
from batchml.store.layout import PREDICTIONS
from batchml.scoring.predictions import profile_path
from batchml.base.provenance import new_run_id
from batchml.monitor.baseline import baseline_reference
from tasks.config import cache_dir, check_thresholds, checks, drift, drift_thresholds, hooks, load_contract, make_registry, make_source, make_storage, source
from tasks.extract import SourceData
from tasks.model import read_pin
from tasks.score import ScorePredictions
from tasks.targets import PartitionTarget, StorageFileTarget
from tasks.identity import InProject


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
        return labels_arrived(self.date)


class ExtractLabels(InProject, luigi.Task):
    """labels/date=D: the labels of the rows of D, once they have arrived."""

    date = luigi.DateParameter()

    def requires(self):
        return LabelsArrived(self.date)

    def output(self) -> PartitionTarget:
        return PartitionTarget(LABELS, self.date)

    def run(self):
        extract_labels(make_source(), load_contract(), make_storage(), self.date, transform=hooks()["labels"], run_id=new_run_id())


class DetectDrift(InProject, luigi.Task):
    """monitoring/date=D/drift.json: the date against the pinned version's reference profile."""

    date = luigi.DateParameter()

    def requires(self):
        return ScorePredictions(self.date)

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "drift.json"))

    def run(self):
        storage = make_storage()
        pin = read_pin(self.date)
        reference = make_registry().reference_profile(pin, cache_dir())
        daily = read_json(storage, profile_path(self.date))
        have, days = 0, drift().baseline_days
        if reference is None:
            reference, have = baseline_reference(storage, pin, self.date, days)
        if reference is None or daily is None:
            result = {
                "verdict": f"collecting baseline ({have} of {days} dates)",
                "reason": f"models:/{pin.name}/{pin.version} carries no reference profile of batchml's: "
                f"its reference is the sum of its first {days} scored dates ({have} in so far)",
                "drifted_share": None,
                "drifted_features": [],
                "features": {},
                "prediction": None,
            }
        else:
            thresholds = drift_thresholds()
            current = window_profile(
                {d.isoformat(): self._profile(storage, d, pin) for d in window_dates(self.date, thresholds.window_days)}, profile_specs(reference)
            )
            result = drift_report(reference, current, list(reference["columns"]), thresholds)
        result["model"] = {"name": pin.name, "version": pin.version}
        write_json(storage, self.output().relative, result)
        self.set_status_message(f"{result['verdict']}: {', '.join(result['drifted_features']) or 'no feature'} drifted")

    def _profile(self, storage, date: dt.date, pin) -> dict | None:
        """A window date's daily profile, when it was scored by the same version (same reference bins)."""
        if date == self.date:
            return read_json(storage, profile_path(date))
        manifest = storage.manifest(PREDICTIONS, date)
        if manifest is None or manifest.model.get("version") != pin.version:
            return None
        return read_json(storage, profile_path(date))


class Metrics(InProject, luigi.Task):
    """monitoring/date=D/metrics.json: data quality, prediction statistics, realized error of D - lag.

    Writes the numbers whatever they say; CheckMetrics turns breaches into a failure. Labels
    that have not arrived leave the realized metrics pending, never the date failed; once
    they arrive, the date is incomplete again and the next run fills them in, without
    re-scoring.
    """

    date = luigi.DateParameter()

    @property
    def labelled_date(self) -> dt.date:
        return self.date - dt.timedelta(days=source().label_lag_days)

    def requires(self):
        return {"scores": ScorePredictions(self.date), "drift": DetectDrift(self.date)}

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "metrics.json"))

    def complete(self) -> bool:
        done = read_json(make_storage(), self.output().relative)
        if done is None:
            return False
        return not (done["numbers"].get("realized_status") == "pending" and labels_arrived(self.labelled_date))

    def run(self):
        storage, registry = make_storage(), make_registry()
        contract = load_contract()
        labelled = self.labelled_date
        status = "not scored"
        if storage.is_committed(PREDICTIONS, labelled) or SourceData(labelled).complete():
            status = "pending"
            if labels_arrived(labelled):
                yield [ScorePredictions(labelled), ExtractLabels(labelled)]  # scored in this run too: realized metrics are not lost
                status = "available"
        pin = read_pin(self.date)
        realized, holdout = (None, None)
        if status == "available":
            realized, holdout = realized_of(
                storage, labelled, contract, read_pin(labelled).classes, lambda v, metric: _holdout(registry, v, metric), window_days=drift().window_days
            )
        result = date_checks(
            storage,
            self.date,
            pin=pin,
            reference=registry.reference_profile(pin, cache_dir()),
            contract=contract,
            thresholds=check_thresholds(),
            trailing_days=checks().trailing_days,
            realized=realized,
            holdout=holdout,
            status=status,
        )
        result["labelled_date"] = labelled.isoformat()
        result["window_days"] = drift().window_days
        write_json(storage, self.output().relative, result)
        drifted = read_json(storage, monitoring_file(self.date, "drift.json"))
        registry.log_daily(
            self.date.isoformat(),
            flat_metrics(result, drifted if drifted and drifted.get("features") else None),
            {"status": result["status"], "drift_verdict": drifted["verdict"], "model_version": result["model"]["version"]},
            {"metrics.json": result, "drift.json": drifted},
        )


def _holdout(registry, version: str, metric: str) -> float | None:
    """A version's holdout value of `metric`, as batchml tagged it at registration."""
    value = registry.version_tags(version).get(f"holdout_{metric}")
    return float(value) if value else None


class CheckMetrics(InProject, luigi.Task):
    """Fails the date when a check breached an error threshold (see [checks] warn_only)."""

    date = luigi.DateParameter()
    priority = 10  # before the report, so a one-worker run renders the checks it just made

    def requires(self):
        return Metrics(self.date)

    def _breaches(self) -> list[dict]:
        result = read_json(make_storage(), monitoring_file(self.date, "metrics.json"))
        if result is None:
            return [{"name": "metrics.json missing"}]
        warn_only = set(checks().warn_only)
        return [c for c in result["checks"] if not c["ok"] and c["name"] not in warn_only]

    def complete(self) -> bool:
        return self.requires().complete() and not self._breaches()

    def run(self):
        breaches = self._breaches()
        if breaches:
            causes = "; ".join(f"{c['name']} = {c['value']:.4g} outside {c['bound']}" for c in breaches)
            raise MetricBreach(f"{self.date}: {causes} ({monitoring_file(self.date, 'metrics.json')})")
