"""A date's last failure, for the monitoring dashboard: monitoring/date=D/failure.json.

Written when any task of the date fails, removed when the date's daily job succeeds, so
the file's presence is the date's state: failing, and why. Both re-render the dashboard at
once, so monitoring/index.html never shows a failed date as it was before; a dashboard that
cannot be rendered is logged, never raised: it must not mask the failure being recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from batchml.base.redact import redact
from batchml.store.documents import read_document, write_document
from batchml.store.layout import monitoring_file
from batchml.store.storage import Storage

FAILURE = "failure.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureRecord:
    task: str  # the task family, e.g. ScorePredictions
    task_id: str
    cause: str  # one line: "ExcType: message", credentials removed
    at: str  # ISO time, UTC


def one_line(exc: BaseException) -> str:
    """`ExcType: first line of the message`, as a dashboard cell can show it."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def failure_of(task: str, task_id: str, exc: BaseException, at: dt.datetime | None = None) -> FailureRecord:
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return FailureRecord(task=task, task_id=task_id, cause=redact(one_line(exc)), at=when.isoformat(timespec="seconds"))


def record_failure(storage: Storage, date: dt.date, record: FailureRecord) -> None:
    """Write the record, then re-render the dashboard so the date shows failed with its cause now."""
    write_document(storage, monitoring_file(date, FAILURE), asdict(record))
    refresh_dashboard(storage)


def clear_failure(storage: Storage, date: dt.date) -> bool:
    """Remove a date's failure record (and re-render the dashboard) if it has one; whether it had."""
    path = monitoring_file(date, FAILURE)
    if storage.read_text(path) is None:
        return False
    storage.delete(path)
    refresh_dashboard(storage)
    return True


def read_failure(storage: Storage, date: dt.date) -> FailureRecord | None:
    body = read_document(storage, monitoring_file(date, FAILURE))
    return FailureRecord(**body) if body else None


def refresh_dashboard(storage: Storage) -> bool:
    """Re-render monitoring/index.html; False (and a warning) when it cannot be, never an exception."""
    try:
        from batchml.monitor.dashboard import write_index

        write_index(storage)
        return True
    except Exception as exc:  # the dashboard is informative: the cause being recorded matters more
        log.warning("could not re-render the monitoring dashboard: %s", one_line(exc))
        return False
