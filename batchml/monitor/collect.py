"""Reading a date's monitoring documents from storage: one listing of its folder, then only the files it holds.

Each JSON document of the date is read at most once, and its predictions and features
manifests; report.html is listed, never read. What the documents say is summary.py's part.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, is_dataclass

from batchml.monitor.summary import DateRecord
from batchml.store import layout
from batchml.store.documents import monitored_dates, read_document
from batchml.store.layout import FEATURES, LABELS, PREDICTIONS, monitoring_file
from batchml.store.storage import Storage


def date_records(storage: Storage) -> list[DateRecord]:
    """The documents of every monitored date, oldest first."""
    return [date_record(storage, d) for d in monitored_dates(storage)]


def date_record(storage: Storage, date: dt.date) -> DateRecord:
    """The raw documents of a date: its monitoring JSON files and its manifests (None when absent)."""
    names = set(storage.list_names(layout.monitoring_dir(date)))

    def document(key: str) -> dict | None:
        return read_document(storage, monitoring_file(date, f"{key}.json")) if f"{key}.json" in names else None

    docs: DateRecord = {
        "date": date.isoformat(),
        "has_report": "report.html" in names,
        "metrics": document("metrics"),
        "drift": document("drift"),
        "retrain": document("retrain"),
        "rollback": document("rollback"),
        "failure": document("failure"),
        "estimated": document("estimated"),
        "predictions": _manifest_dict(storage.manifest(PREDICTIONS, date)),
        "features": _manifest_dict(storage.manifest(FEATURES, date)),
    }
    if not (
        docs["metrics"] or docs["drift"] or docs["failure"] or docs["predictions"]
    ):  # only then can it be a label-only date
        docs["labels"] = storage.manifest(LABELS, date) is not None
    return docs


def _manifest_dict(manifest) -> dict | None:
    if manifest is None:
        return None
    return asdict(manifest) if is_dataclass(manifest) and not isinstance(manifest, type) else dict(manifest)
