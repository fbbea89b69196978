"""Entry points: `luigi --module pipelines DailyScore --date D`, `RangeDaily --of DailyScore`."""

from __future__ import annotations

import atexit
import datetime as dt
import gc
import json
import logging
import os
import sys
import tempfile
import uuid
import warnings

import luigi
import luigi.tools.range
from luigi.parameter import UnconsumedParameterWarning

from batchml.base.redact import redact
from batchml.monitor.failures import clear_failure, failure_of, one_line, record_failure
from batchml.monitor.monitoring import record_duration
from pipelines import startup
from pipelines.defaults import apply_defaults, redact_output
from tasks.alerts import tell_failure, tell_success
from tasks.backfill import Backfill, ReextractDate, RescoreDate  # noqa: F401
from tasks.config import make_source, make_storage, mlflow
from tasks.daily import DailyScore  # noqa: F401
from tasks.extract import ExtractFeatures, SourceData  # noqa: F401
from tasks.identity import InProject
from tasks.model import ChampionModel, ResolveModel  # noqa: F401
from tasks.monitor import CheckMetrics, DetectDrift, ExtractLabels, LabelsArrived, Metrics  # noqa: F401
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
        """Any date task: one without a bulk_complete of its own (ExtractFeatures) is asked date by date, where Luigi
        would guess from file names."""
        if getattr(self.of.bulk_complete, "__func__", None) is luigi.Task.bulk_complete.__func__:
            return [
                d for d in finite_datetimes if not self._instantiate_task_cls(self.datetime_to_parameter(d)).complete()
            ]
        return super().missing_datetimes(finite_datetimes)


# -- what a person reading the end of a run's output needs -------------------------------
class _Causes(list):
    """The run's causes. A task run in a forked worker process (`--workers N`) cannot append to the
    run's own list: it appends to a file, which the run's process reads back at its end."""

    def __init__(self):
        super().__init__()
        self.pid = os.getpid()
        self.spill = os.path.join(tempfile.gettempdir(), f"batchml-causes-{self.pid}-{uuid.uuid4().hex[:8]}.jsonl")

    def append(self, line: str) -> None:
        line = redact(line)  # printed last, and spilled to a file by worker processes
        if os.getpid() == self.pid:
            super().append(line)
            return
        with open(self.spill, "a") as fh:  # one short write each: lines of several workers do not interleave
            fh.write(json.dumps(line) + "\n")

    def collect(self) -> None:
        """Take in the causes of the run's worker processes."""
        try:
            with open(self.spill) as fh:
                self.extend(json.loads(line) for line in fh if line.strip())
            os.unlink(self.spill)
        except FileNotFoundError:
            pass


_failures = _Causes()


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_failure(task, exception):
    line = f"{task} failed: {type(exception).__name__}: {exception}"  # CheckMetrics(date=2026-06-12), not its hashed id
    log.error(line)
    _failures.append(line)


@luigi.Task.event_handler(luigi.Event.BROKEN_TASK)
def _record_scheduling_error(task, exception):
    """An exception in requires() (or Luigi's own scheduling calls): the run's cause too."""
    _failures.append(f"{task} could not be scheduled: {one_line(exception)}")


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
            return (
                head.rsplit(".", 1)[-1] + line[len(head) :]
            )  # TrackingStoreError, not batchml.model.preflight.TrackingStoreError
    return lines[-1]


logging.getLogger("luigi-interface").addFilter(
    _CompleteErrors()
)  # filters survive Luigi's logging setup; handlers do not


def _date_of(task) -> dt.date | None:
    """The date a task is for; None for a task with no date (a range, a wrapper)."""
    date = getattr(task, "date", None)
    return date if hasattr(date, "isoformat") else None


def _in_storage(what: str, write, *args, errors: type[BaseException] | tuple = Exception):
    """`write(storage, *args)`'s result; a failure (of `errors`) is logged as 'could not <what>', never raised: a
    monitoring record never fails the run it records."""
    try:
        return write(make_storage(), *args)
    except errors as exc:
        log.warning("could not %s: %s", what, one_line(exc))
        return None


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_date_failure(task, exception):
    """monitoring/date=D/failure.json for the dashboard; recording never fails the run."""
    if (date := _date_of(task)) is None:
        return
    record = failure_of(task.get_task_family(), task.task_id, exception)
    _in_storage(f"record the failure of {task}", record_failure, date, record)
    log_date_failure(date, record.task, record.cause)
    tell_failure(date, record.task, record.cause)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _clear_date_failure(task):
    """A date whose daily job succeeded is no longer failing."""
    if not isinstance(task, DailyScore):
        return
    tell_success(task.date)
    if _in_storage(f"clear the failure record of {task}", clear_failure, task.date):
        clear_logged_failure(task.date)


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def _record_duration(task, seconds):
    """Keep each task's duration next to the date's results, for the daily report."""
    if (date := _date_of(task)) is None:
        return
    # durations are informative; never fail a run over them
    family = task.get_task_family()
    _in_storage(f"record the duration of {task}", record_duration, date, family, seconds, errors=OSError)


@luigi.Task.event_handler(luigi.Event.DEPENDENCY_MISSING)
def _record_missing_input(task):
    """A date's rows or labels not at the source: the run's cause, naming where they were looked for."""
    if isinstance(task, (SourceData, LabelsArrived)):
        what = "labels" if isinstance(task, LabelsArrived) else "rows"
        _failures.append(f"{task} is missing: {_looked_for(task.date, labels=what == 'labels')}")


def _looked_for(date: dt.date, labels: bool) -> str:
    """Where the source looked for a date's rows (or labels) and found none."""
    from tasks.config import hooks, source

    cfg = source()
    if labels and hooks()["labels"]:
        labels = False  # labels come from the date's own rows
    try:
        if cfg.kind == "files":
            from batchml.dataset.sources import expand

            src = make_source()
            marker = None if labels else src.marker(date)
            if marker is not None and not _exists(marker):
                return f"its completeness marker {marker} is not there ([source] complete_marker)"
            template = src.labels_path if labels else src.path
            return (
                f"no {'labels' if labels else 'rows'} of {date} at {expand(template, date)} ([source] "
                f"{'labels_path' if labels else 'path'})"
            )
        if cfg.kind == "sql":
            return f"[source] {'labels_query' if labels else 'query'} returned no row for :date = {date}"
        return f"[source] generator {cfg.generator} gave no row of {date}"
    except Exception as exc:  # the cause of the missing data, not a second failure
        return f"the source could not be described: {one_line(exc)}"


def _exists(url: str) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _log_model_change(task):
    """One line for each promotion, rejection and rollback: the model a team's next dates are scored with."""
    if not isinstance(task, (RetrainIfDrifted, Rollback)):
        return
    try:
        from batchml.store.documents import read_document
        from batchml.store.layout import monitoring_file

        storage = make_storage()
        if isinstance(task, Rollback):
            r = read_document(storage, monitoring_file(task.date, "rollback.json")) or {}
            log.info(
                "rollback: @%s moved from v%s back to v%s from %s on: %s",
                mlflow().alias,
                r.get("from_version"),
                r.get("to_version"),
                task.date,
                r.get("reason"),
            )
            return
        d = read_document(storage, monitoring_file(task.date, "retrain.json")) or {}
        if d.get("decision") == "promoted":
            log.info(
                "promotion: challenger v%s replaces v%s as @%s (%s): %s",
                d["challenger_version"],
                d["champion_version"],
                mlflow().alias,
                task.date,
                d["reason"],
            )
        elif d.get("decision") == "rejected":
            log.info(
                "challenger v%s rejected, v%s stays @%s (%s): %s",
                d["challenger_version"],
                d["champion_version"],
                mlflow().alias,
                task.date,
                d["reason"],
            )
    except Exception as exc:  # informative: never fails the run
        log.warning("could not read the model decision of %s: %s", task, one_line(exc))


# The dates the run is about, [start, stop), for its closing table: set from the command line.
_dates: list[dt.date] = []


def date_range(task) -> tuple[dt.date, dt.date] | None:
    """The dates a DailyScore, RangeDaily or Backfill is about, [start, stop); None for other tasks."""
    if isinstance(task, DailyScore):
        return task.date, task.date + dt.timedelta(days=1)
    if isinstance(task, (RangeDaily, Backfill)) and task.start is not None and task.stop is not None:
        return task.start, task.stop
    return None


def _remember_dates(argv: list[str]) -> None:
    try:
        with startup.command_line_quietly(argv) as parser:
            found = date_range(parser.get_task_obj())
    except (Exception, SystemExit):  # --help, or a command line Luigi itself will reject with its message
        return
    if found:
        _dates[:] = found


def _print_table() -> None:
    """The per-date table (pipelines/summary.py), printed before the causes: a failed run's last lines stay its
    causes."""
    if not _dates:
        return
    from pipelines.summary import summary_lines

    try:
        lines = summary_lines(*_dates)
    except Exception as exc:  # a storage that cannot be read is the run's cause already
        log.warning("could not read what the run wrote: %s", one_line(exc))
        return
    print("\n" + "\n".join(lines), flush=True)


@atexit.register
def _print_causes():
    """The per-date table, then the causes after Luigi's summary, so they are a run's last lines."""
    _print_table()
    sys.stdout.flush()
    _failures.collect()
    if _failures:
        print("\nbatchml: the run failed because:", file=sys.stderr)
        for line in _failures:
            print(f"  {line}", file=sys.stderr)


def _no_collection_at_exit() -> None:
    """Exclude every object alive at exit from the garbage collector: the interpreter's teardown then clears its ~2,800
    modules
    without traversing them (0.8-0.9 s of CPU, a quarter of a small date's run); files, logs and the cluster are closed
    by then."""
    gc.freeze()


# A run's heap is mostly the modules it imports (MLflow, pandas, SQLAlchemy, pyiceberg). With Python's default
# thresholds (700, 10, 10) the cyclic collector went over all of it several times a run; at (5,000, 10, 10) it does
# not, and a 1,000-row DailyScore's fixed cost went from 2.88-2.93 s to 2.56-2.65 s (bench/score.py --measure daily).
# Garbage in cycles waits for 5,000 allocations instead of 700 (Python 3.13's own default is 2,000).
COLLECTOR_THRESHOLDS = (5_000, 10, 10)


# -- before Luigi schedules anything ----------------------------------------------------------
apply_defaults(luigi.configuration.get_config())
if startup.is_luigi_command():  # a `luigi --module pipelines ...` run, not a library import
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    atexit.register(
        _no_collection_at_exit
    )  # runs after the exit handlers registered later (the cluster's, MLflow's), before _print_causes
    # Luigi's warnings about its own parameters mean nothing to a user: RangeDaily's param_name
    # default (None, "not of type string") and settings of a task section the task does not take.
    warnings.filterwarnings("ignore", message=r'Parameter "param_name" with value "None" is not of type string')
    warnings.filterwarnings("ignore", category=UnconsumedParameterWarning)
    redact_output(luigi.configuration.get_config(), sys.argv[1:])  # before anything can print a setting
    startup.prepare(sys.argv[1:])
    _remember_dates(sys.argv[1:])
