"""ExtractLabels, DetectDrift, Metrics, CheckMetrics and DailyReport: is a date healthy?"""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.checks import flat_metrics, realized_performance, run_checks
from batchml.drift import drift_report
from batchml.errors import BatchmlError
from batchml.extract import FEATURES, LABELS, extract_labels
from batchml.features import FEATURES as MODEL_FEATURES
from batchml.monitoring import history, monitored_dates, monitoring_file, read_durations, read_json, trailing_rows, write_json
from batchml.predictions import PREDICTIONS, profile_path
from batchml.provenance import new_run_id
from tasks.config import check_thresholds, checks, drift_thresholds, make_registry, make_source, make_storage, mlflow, report, source
from tasks.model import read_pin
from tasks.score import ScorePredictions
from tasks.targets import PartitionTarget, StorageFileTarget


class MetricBreach(BatchmlError):
    """A date's checks breached an error threshold."""


class LabelsArrived(luigi.ExternalTask):
    """The labels of a date at the source (they arrive label_lag_days after it)."""

    date = luigi.DateParameter()

    def complete(self) -> bool:
        return make_source().has_labels(self.date)


class ExtractLabels(luigi.Task):
    """labels/date=D: the true durations of the trips of D, once they have arrived."""

    date = luigi.DateParameter()

    def requires(self):
        return LabelsArrived(self.date)

    def output(self) -> PartitionTarget:
        return PartitionTarget(LABELS, self.date)

    def run(self):
        extract_labels(make_source(), make_storage(), self.date, run_id=new_run_id())


class DetectDrift(luigi.Task):
    """monitoring/date=D/drift.json: the date against the pinned version's reference profile."""

    date = luigi.DateParameter()

    def requires(self):
        return ScorePredictions(self.date)

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "drift.json"))

    def run(self):
        storage = make_storage()
        pin = read_pin(self.date)
        reference = make_registry().reference_profile(pin, mlflow().cache_dir)
        daily = read_json(storage, profile_path(self.date))
        result = drift_report(reference, daily, list(MODEL_FEATURES), drift_thresholds())
        result["model"] = {"name": pin.name, "version": pin.version}
        write_json(storage, self.output().relative, result)
        self.set_status_message(f"{result['verdict']}: {', '.join(result['drifted_features']) or 'no feature'} drifted")


class Metrics(luigi.Task):
    """monitoring/date=D/metrics.json: data quality, prediction statistics, realized error of D - lag.

    Writes the numbers whatever they say; CheckMetrics turns breaches into a failure.
    """

    date = luigi.DateParameter()

    @property
    def labelled_date(self) -> dt.date:
        return self.date - dt.timedelta(days=source().label_lag_days)

    def requires(self):
        return {"scores": ScorePredictions(self.date), "drift": DetectDrift(self.date), "labels": ExtractLabels(self.labelled_date)}

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "metrics.json"))

    def run(self):
        storage, registry = make_storage(), make_registry()
        predictions = storage.verify(PREDICTIONS, self.date)
        daily = read_json(storage, profile_path(self.date))
        reference = registry.reference_profile(read_pin(self.date), mlflow().cache_dir)
        realized, champion_mae = self._realized(storage, registry)
        result = run_checks(
            rows_in=predictions.rows["in"],
            trailing_rows=trailing_rows(storage, FEATURES, self.date, checks().trailing_days),
            quarantined=predictions.rows["quarantined"],
            null_rates={c: v["null_rate"] for c, v in daily["columns"].items()},
            prediction=daily["columns"]["prediction"],
            reference_prediction=reference["prediction"],
            realized=realized,
            champion_mae=champion_mae,
            thresholds=check_thresholds(),
        )
        result["labelled_date"] = self.labelled_date.isoformat()
        write_json(storage, self.output().relative, result)
        drift = read_json(storage, monitoring_file(self.date, "drift.json"))
        registry.log_daily(
            self.date.isoformat(),
            flat_metrics(result, drift),
            {"status": result["status"], "drift_verdict": drift["verdict"], "model_version": predictions.model["version"]},
            {"metrics.json": result, "drift.json": drift},
        )

    def _realized(self, storage, registry):
        """Realized performance of the labelled date, if it was scored; with its model's holdout MAE."""
        scored = storage.manifest(PREDICTIONS, self.labelled_date)
        if scored is None:
            return None, None
        preds = storage.read_table(PREDICTIONS, self.labelled_date, columns=["trip_id", "prediction"])
        labels = storage.read_table(LABELS, self.labelled_date)
        holdout = registry.version_tags(scored.model["version"]).get("holdout_mae")
        return {**realized_performance(preds, labels), "date": self.labelled_date.isoformat(), "model_version": scored.model["version"]}, (
            float(holdout) if holdout else None
        )


class CheckMetrics(luigi.Task):
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
            raise MetricBreach(f"{self.date}: {causes} (monitoring/date={self.date}/metrics.json)")


class DailyReport(luigi.Task):
    """monitoring/date=D/report.html, and monitoring/index.html across every date."""

    date = luigi.DateParameter()

    def requires(self):
        from tasks.retrain import RetrainIfDrifted

        return {"scores": ScorePredictions(self.date), "drift": DetectDrift(self.date), "metrics": Metrics(self.date), "retrain": RetrainIfDrifted(self.date)}

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "report.html"))

    def run(self):
        from batchml.report import render_daily_report, render_index, status_of

        storage = make_storage()
        predictions = storage.verify(PREDICTIONS, self.date)
        features = storage.manifest(FEATURES, self.date)
        pin = read_pin(self.date)
        summary = {
            "rows_in": predictions.rows["in"],
            "scored": predictions.rows["written"],
            "quarantined": predictions.rows["quarantined"],
            "top_reasons": features.extra.get("top_reasons", []),
            "model": predictions.model,
            "durations": read_durations(storage, self.date),
        }
        page = render_daily_report(
            self.date,
            summary=summary,
            drift=read_json(storage, monitoring_file(self.date, "drift.json")),
            reference=make_registry().reference_profile(pin, mlflow().cache_dir),
            daily=read_json(storage, profile_path(self.date)),
            metrics=read_json(storage, monitoring_file(self.date, "metrics.json")),
            history=history(storage, self.date, report().trend_days),
            retrain=_decisions(storage, self.date),
        )
        storage.write_text(self.output().relative, page)
        entries = []
        for d in monitored_dates(storage):
            metrics = read_json(storage, monitoring_file(d, "metrics.json"))
            drift = read_json(storage, monitoring_file(d, "drift.json"))
            entries.append(
                {
                    "date": d.isoformat(),
                    "status": status_of(metrics, drift),
                    "has_report": d == self.date or storage.read_text(monitoring_file(d, "report.html")) is not None,
                }
            )
        storage.write_text("monitoring/index.html", render_index(entries))


def _decisions(storage, date: dt.date) -> dict | None:
    """The date's retraining decision, with a rollback made on that date if any."""
    decision = read_json(storage, monitoring_file(date, "retrain.json"))
    rollback = read_json(storage, monitoring_file(date, "rollback.json"))
    if rollback:
        decision = {**(decision or {}), "rollback": f"{rollback['from_version']} -> {rollback['to_version']}: {rollback['reason']}"}
    return decision
