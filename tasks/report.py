"""DailyReport: the monitoring page of a date, and the index across dates; a date's failure in MLflow."""

from __future__ import annotations

import datetime as dt
import logging

import luigi

from batchml.monitor.baseline import reference_for
from batchml.monitor.failures import one_line
from batchml.monitor.monitoring import report_inputs
from batchml.store.layout import monitoring_file
from tasks.config import cache_dir, make_registry, make_storage, report
from tasks.identity import InProject
from tasks.monitor import DetectDrift, Metrics
from tasks.retrain import RetrainIfDrifted
from tasks.score import scored
from tasks.targets import StorageFileTarget


class DailyReport(InProject, luigi.Task):
    """monitoring/date=D/report.html, and monitoring/index.html across every date."""

    date = luigi.DateParameter()

    def requires(self):
        """Every result the page shows, and the date's pin."""
        return {
            **scored(self.date),
            "drift": DetectDrift(self.date),
            "metrics": Metrics(self.date),
            "retrain": RetrainIfDrifted(self.date),
        }

    def output(self) -> StorageFileTarget:
        """The date's page."""
        return StorageFileTarget(monitoring_file(self.date, "report.html"))

    def run(self):
        """Render the date's page and the index, and log the page beside the date's numbers in MLflow."""
        from batchml.monitor.dashboard import write_index
        from batchml.monitor.report import render_daily_report

        storage, registry = make_storage(), make_registry()
        reference, _ = reference_for(storage, registry, self.input()["model"].load(), self.date, cache_dir=cache_dir())
        page = render_daily_report(
            self.date, **report_inputs(storage, self.date, reference=reference, trend_days=report().trend_days)
        )
        self.output().dump(page)
        write_index(storage)
        registry.log_daily(self.date.isoformat(), {}, {}, {"report.html": page})


log = logging.getLogger("batchml")


def log_date_failure(date: dt.date, task: str, cause: str) -> None:
    """The date's MLflow monitoring run FAILED with the task and cause as tags (cause free of credentials:
    failures.failure_of).

    Called by the failure handler for every failed task of a date, so a date that failed
    before its checks has a run too. Never raises: the task's own failure is the cause.
    """
    try:
        make_registry().log_failure(date.isoformat(), task, cause)
    except Exception as exc:
        log.warning("could not log the failure of %s(date=%s) to MLflow: %s", task, date, one_line(exc))


def clear_logged_failure(date: dt.date) -> None:
    """The date's daily job succeeded: its MLflow run loses the failure tags and ends on its checks' status. Never
    raises."""
    try:
        make_registry().clear_failure(date.isoformat())
    except Exception as exc:
        log.warning("could not clear the failure of %s in MLflow: %s", date, one_line(exc))
