"""What the daily monitoring reads from storage: trailing history and per-date results."""

from __future__ import annotations

import datetime as dt
import json

from batchml import layout
from batchml.layout import MONITORING, monitoring_file
from batchml.storage import Storage

__all__ = ["MONITORING", "history", "monitored_dates", "monitoring_file", "read_durations", "read_json", "record_duration", "trailing_rows", "write_json"]


def read_json(storage: Storage, relative: str) -> dict | None:
    text = storage.read_text(relative)
    return json.loads(text) if text is not None else None


def write_json(storage: Storage, relative: str, body: dict) -> None:
    storage.write_text(relative, json.dumps(body, indent=2, sort_keys=True, default=str))


def record_duration(storage: Storage, date: dt.date, task: str, seconds: float) -> None:
    """One file per task, so tasks of a date that finish at once (--workers N) never race."""
    storage.write_text(monitoring_file(date, f"durations/{task}.json"), json.dumps({"task": task, "seconds": round(float(seconds), 3)}))


def read_durations(storage: Storage, date: dt.date) -> dict[str, float]:
    """Seconds per task family of a date's last run of each task."""
    out = {}
    for name in storage.list_names(monitoring_file(date, "durations")):
        body = read_json(storage, monitoring_file(date, f"durations/{name}"))
        if body:
            out[body["task"]] = body["seconds"]
    return out


def trailing_rows(storage: Storage, dataset: str, date: dt.date, days: int) -> list[int]:
    """Rows in of the committed dates among the `days` before `date`."""
    out = []
    for i in range(1, days + 1):
        m = storage.manifest(dataset, date - dt.timedelta(days=i))
        if m is not None:
            out.append(m.rows["in"])
    return out


def monitored_dates(storage: Storage) -> list[dt.date]:
    return sorted(d for d in map(layout.date_of, storage.list_names(MONITORING)) if d is not None)


def history(storage: Storage, date: dt.date, days: int) -> list[dict]:
    """The last `days` dates up to `date` (oldest first) with the numbers the trends plot."""
    rows = []
    for i in range(days - 1, -1, -1):
        d = date - dt.timedelta(days=i)
        metrics = read_json(storage, monitoring_file(d, "metrics.json"))
        drift = read_json(storage, monitoring_file(d, "drift.json"))
        if metrics is None and drift is None:
            continue
        realized = (metrics or {}).get("numbers", {}).get("realized") or {}
        rows.append(
            {
                "date": d.isoformat(),
                "status": (metrics or {}).get("status", "missing"),
                "rows_in": (metrics or {}).get("numbers", {}).get("rows_in"),
                "drift_share": (drift or {}).get("drifted_share"),
                "drift_verdict": (drift or {}).get("verdict"),
                "realized_mae": realized.get("mae"),
                "prediction_mean": (metrics or {}).get("numbers", {}).get("prediction", {}).get("mean"),
            }
        )
    return rows
