"""Entry points: `luigi --module pipelines DailyScore --date D`, `RangeDaily --of DailyScore`."""

from __future__ import annotations

import atexit
import logging
import sys

import luigi
import luigi.tools.range

from batchml.failures import clear_failure, failure_of, one_line, record_failure
from batchml.monitoring import record_duration
from pipelines import startup
from pipelines.defaults import apply_defaults
from tasks.config import make_storage
from tasks.backfill import Backfill, ReextractDate, RescoreDate  # noqa: F401
from tasks.daily import DailyScore  # noqa: F401
from tasks.identity import InProject
from tasks.extract import ExtractFeatures, SourceData  # noqa: F401
from tasks.model import ChampionModel, ResolveModel  # noqa: F401
from tasks.monitor import CheckMetrics, DetectDrift, ExtractLabels, Metrics  # noqa: F401
from tasks.report import DailyReport, clear_logged_failure, log_date_failure  # noqa: F401
from tasks.retrain import RetrainIfDrifted, Rollback, TrainChallenger  # noqa: F401
from tasks.score import ScorePredictions  # noqa: F401

log = logging.getLogger("batchml")


class RangeDaily(InProject, luigi.tools.range.RangeDaily):
    """Luigi's RangeDaily (`--module pipelines RangeDaily --of DailyScore`), with the missing dates run oldest first.

    Luigi schedules a range's last-listed task first, so a backfill would start with its
    newest date: a cold start there would train on the dates the range then scores, and
    each date's realized metrics would wait for a later run.
    """

    def requires(self):
        return sorted(super().requires(), key=lambda task: task.date, reverse=not self.reverse)

    def missing_datetimes(self, finite_datetimes):
        """Any date task: one without a bulk_complete of its own (ExtractFeatures) is asked date by date, where Luigi would guess from file names."""
        if getattr(self.of.bulk_complete, "__func__", None) is luigi.Task.bulk_complete.__func__:
            return [d for d in finite_datetimes if not self._instantiate_task_cls(self.datetime_to_parameter(d)).complete()]
        return super().missing_datetimes(finite_datetimes)


# -- what a person reading the end of a run's output needs -------------------------------
_failures: list[str] = []


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_failure(task, exception):
    line = f"{task.task_id} failed: {type(exception).__name__}: {exception}"
    log.error(line)
    _failures.append(line)


@luigi.Task.event_handler(luigi.Event.BROKEN_TASK)
def _record_scheduling_error(task, exception):
    """An exception in requires() (or Luigi's own scheduling calls): the run's cause too."""
    _failures.append(f"{task.task_id} could not be scheduled: {one_line(exception)}")


class _CompleteErrors(logging.Filter):
    """Takes the cause of an exception in complete(), which Luigi only logs (as a traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.msg if isinstance(record.msg, str) else ""
        if text.startswith("Will not run ") and "due to error in complete() method" in text:
            task = text.removeprefix("Will not run ").split(" or any dependencies", 1)[0]
            _failures.append(f"{task} could not be scheduled: {_exception_line(text)}")
        return True


def _exception_line(traceback_text: str) -> str:
    """The `ExcType: message` line that ends a formatted traceback."""
    lines = [line for line in traceback_text.rstrip().splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if not line.startswith(" ") and head.replace(".", "").replace("_", "").isalnum() and head != "Traceback":
            return head.rsplit(".", 1)[-1] + line[len(head) :]  # TrackingStoreError, not batchml.preflight.TrackingStoreError
    return lines[-1]


logging.getLogger("luigi-interface").addFilter(_CompleteErrors())  # filters survive Luigi's logging setup; handlers do not


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_date_failure(task, exception):
    """monitoring/date=D/failure.json for the dashboard; recording never fails the run."""
    date = getattr(task, "date", None)
    if date is None or not hasattr(date, "isoformat"):
        return
    record = failure_of(task.get_task_family(), task.task_id, exception)
    try:
        record_failure(make_storage(), date, record)
    except Exception as exc:
        log.warning("could not record the failure of %s: %s", task.task_id, one_line(exc))
    log_date_failure(date, record.task, record.cause)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _clear_date_failure(task):
    """A date whose daily job succeeded is no longer failing."""
    if not isinstance(task, DailyScore):
        return
    cleared = False
    try:
        cleared = clear_failure(make_storage(), task.date)
    except Exception as exc:
        log.warning("could not clear the failure record of %s: %s", task.task_id, one_line(exc))
    if cleared:
        clear_logged_failure(task.date)


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def _record_duration(task, seconds):
    """Keep each task's duration next to the date's results, for the daily report."""
    date = getattr(task, "date", None)
    if date is None or not hasattr(date, "isoformat"):
        return
    try:
        record_duration(make_storage(), date, task.get_task_family(), seconds)
    except OSError as exc:  # durations are informative; never fail a run over them
        log.warning("could not record the duration of %s: %s", task.task_id, exc)


@atexit.register
def _print_causes():
    """Repeat the causes after Luigi's summary, so they are a run's last lines."""
    if _failures:
        print("\nbatchml: the run failed because:", file=sys.stderr)
        for line in _failures:
            print(f"  {line}", file=sys.stderr)


# -- before Luigi schedules anything ----------------------------------------------------------
apply_defaults(luigi.configuration.get_config())
if startup.is_luigi_command():  # a `luigi --module pipelines ...` run, not a library import
    startup.prepare(sys.argv[1:])
