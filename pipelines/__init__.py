"""Entry points: `luigi --module pipelines DailyScore --date D`, `RangeDaily --of DailyScore`."""

from __future__ import annotations

import atexit
import logging
import sys

import luigi
from luigi.tools.range import RangeDaily  # noqa: F401  (so `--module pipelines RangeDaily` finds it)

from batchml.monitoring import record_duration
from tasks.config import make_storage
from tasks.backfill import Backfill, RescoreDate  # noqa: F401
from tasks.daily import DailyScore  # noqa: F401
from tasks.extract import ExtractFeatures, SourceData  # noqa: F401
from tasks.model import ChampionModel, ResolveModel  # noqa: F401
from tasks.monitor import CheckMetrics, DetectDrift, ExtractLabels, Metrics  # noqa: F401
from tasks.report import DailyReport  # noqa: F401
from tasks.retrain import RetrainIfDrifted, Rollback, TrainChallenger  # noqa: F401
from tasks.score import ScorePredictions  # noqa: F401

log = logging.getLogger("batchml")


# -- what a person reading the end of a run's output needs -------------------------------
_failures: list[str] = []


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_failure(task, exception):
    line = f"{task.task_id} failed: {type(exception).__name__}: {exception}"
    log.error(line)
    _failures.append(line)


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
