"""Small JSON documents under the storage root: a date's monitoring results, a baseline's files.

A document is written whole through the storage (atomic on every kind of root), redacted
first so no credential reaches it (batchml.base.redact), and read back as what was written;
an absent document reads as None.
"""

from __future__ import annotations

import datetime as dt
import json

from batchml.base.redact import redacted
from batchml.store import layout
from batchml.store.storage import Storage


def read_document(storage: Storage, relative: str) -> dict | None:
    """The JSON document at `relative` under the root, or None when it was not written."""
    text = storage.read_text(relative)
    return json.loads(text) if text is not None else None


def write_document(storage: Storage, relative: str, body: dict) -> None:
    """Write a JSON document whole, redacted (no credential in a document), keys sorted, dates as ISO text."""
    storage.write_text(relative, json.dumps(redacted(body), indent=2, sort_keys=True, default=str))


def monitored_dates(storage: Storage) -> list[dt.date]:
    """Every date with a monitoring folder, oldest first."""
    return sorted(d for d in map(layout.date_of, storage.list_names(layout.MONITORING)) if d is not None)
