"""A date's last failure, for the monitoring dashboard: monitoring/date=D/failure.json.

Written when any task of the date fails, removed when the date's daily job succeeds, so
the file's presence is the date's state: failing, and why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from batchml.monitoring import monitoring_file, read_json, write_json
from batchml.storage import Storage

FAILURE = "failure.json"


@dataclass(frozen=True)
class FailureRecord:
    task: str  # the task family, e.g. ScorePredictions
    task_id: str
    cause: str  # one line: "ExcType: message"
    at: str  # ISO time, UTC


def one_line(exc: BaseException) -> str:
    """`ExcType: first line of the message`, as a dashboard cell can show it."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def failure_of(task: str, task_id: str, exc: BaseException, at: dt.datetime | None = None) -> FailureRecord:
    when = (at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return FailureRecord(task=task, task_id=task_id, cause=one_line(exc), at=when.isoformat(timespec="seconds"))


def record_failure(storage: Storage, date: dt.date, record: FailureRecord) -> None:
    write_json(storage, monitoring_file(date, FAILURE), asdict(record))


def clear_failure(storage: Storage, date: dt.date) -> None:
    storage.delete(monitoring_file(date, FAILURE))


def read_failure(storage: Storage, date: dt.date) -> FailureRecord | None:
    body = read_json(storage, monitoring_file(date, FAILURE))
    return FailureRecord(**body) if body else None
