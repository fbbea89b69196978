"""DailyReport: the monitoring page of a date, and the index across dates."""

from __future__ import annotations


import luigi

from batchml.monitoring import monitoring_file, report_inputs
from tasks.config import cache_dir, make_registry, make_storage, report
from tasks.model import read_pin
from tasks.monitor import DetectDrift, Metrics
from tasks.retrain import RetrainIfDrifted
from tasks.score import ScorePredictions
from tasks.targets import StorageFileTarget
from tasks.identity import InProject


class DailyReport(InProject, luigi.Task):
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
        reference = make_registry().reference_profile(read_pin(self.date), cache_dir())
        page = render_daily_report(self.date, **report_inputs(storage, self.date, reference=reference, trend_days=report().trend_days))
        storage.write_text(self.output().relative, page)
        write_index(storage)
