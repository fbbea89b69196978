"""DailyReport: the monitoring page of a date, and the index across dates."""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.extract import FEATURES
from batchml.monitoring import history, monitoring_file, read_durations, read_json
from batchml.predictions import PREDICTIONS, profile_path
from tasks.config import cache_dir, make_registry, make_storage, report
from tasks.model import read_pin
from tasks.monitor import DetectDrift, Metrics
from tasks.retrain import RetrainIfDrifted
from tasks.score import ScorePredictions
from tasks.targets import StorageFileTarget


class DailyReport(luigi.Task):
    """monitoring/date=D/report.html, and monitoring/index.html across every date."""

    date = luigi.DateParameter()

    def requires(self):
        return {"scores": ScorePredictions(self.date), "drift": DetectDrift(self.date), "metrics": Metrics(self.date), "retrain": RetrainIfDrifted(self.date)}

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "report.html"))

    def run(self):
        from batchml.dashboard import write_index
        from batchml.report import render_daily_report

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
            reference=make_registry().reference_profile(pin, cache_dir()),
            daily=read_json(storage, profile_path(self.date)),
            metrics=read_json(storage, monitoring_file(self.date, "metrics.json")),
            history=history(storage, self.date, report().trend_days),
            retrain=_decisions(storage, self.date),
        )
        storage.write_text(self.output().relative, page)
        write_index(storage)


def _decisions(storage, date: dt.date) -> dict | None:
    """The date's retraining decision, with a rollback made on that date if any."""
    decision = read_json(storage, monitoring_file(date, "retrain.json"))
    rollback = read_json(storage, monitoring_file(date, "rollback.json"))
    if rollback:
        decision = {**(decision or {}), "rollback": f"{rollback['from_version']} -> {rollback['to_version']}: {rollback['reason']}"}
    return decision
