"""Every path of the storage layout, relative to the storage root; nothing else builds one.

    <dataset>/date=YYYY-MM-DD/part-*.parquet              committed data (features, quarantine, labels, predictions)
    <dataset>/date=YYYY-MM-DD/_MANIFEST.json              what was committed, written last: the commit
    <dataset>/_staging/date=YYYY-MM-DD/<run>/             a write in progress
    <dataset>/_locks/date=YYYY-MM-DD.lock (.json on S3)   one writer per date at a time
    _locks/<name>.lock (.json on S3)                      one writer of a shared document at a time (alerts)
    <dataset>/_trash/date=YYYY-MM-DD.<id>                 the old date during a replace without atomic exchange
    features/_pending/date=YYYY-MM-DD.json                a date whose quarantine and features commit together
    quarantine/_rejected/date=YYYY-MM-DD.<run>.parquet    rows of a date refused for too many rejects
    predictions/date=YYYY-MM-DD/_profile.json             the date's profile, committed with its predictions
    monitoring/date=YYYY-MM-DD/<name>                     drift, metrics, decisions, durations, report
    monitoring/index.html                                 the dashboard over every date
    monitoring/alerts.json                                which alert conditions hold, which events were sent
    pins/date=YYYY-MM-DD.json                             the model version pinned for a date
    _models/<sha256>.onnx, _models/<sha256>.json          a pinned model where remote workers read it
    _catalog/catalog.db                                   the embedded Iceberg catalog (SQLite; batchml.store.tables)
    _tables/<dataset>/metadata/                           a dataset's Iceberg table metadata
    _tables/<dataset>/data/date=YYYY-MM-DD/<id>-part-*.parquet  the table's files: links to committed files
    _tables/<dataset>/history/date=YYYY-MM-DD/<snapshot>.json   a commit of the date whose snapshot was expired
    _estimators/<model>/<version>/<file>                  the performance estimator of a version batchml did not
    train, fitted on its first labelled dates

Readers skip `_`- and `.`-prefixed names, so staging, locks and trash are never data.
"""

from __future__ import annotations

import datetime as dt
import re

FEATURES, QUARANTINE, LABELS, PREDICTIONS = "features", "quarantine", "labels", "predictions"
DATASETS = (FEATURES, QUARANTINE, LABELS, PREDICTIONS)
MANIFEST = "_MANIFEST.json"
PROFILE_FILE = "_profile.json"
MONITORING = "monitoring"
INDEX = f"{MONITORING}/index.html"
ALERT_STATE = f"{MONITORING}/alerts.json"
PINS = "pins"
MODELS = "_models"
CATALOG = "_catalog/catalog.db"
TABLES = "_tables"
DATE_GLOB = "date=*"
DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def date_dir(date: dt.date) -> str:
    """The folder name of a date: `date=YYYY-MM-DD` (hive partitioning)."""
    return f"date={date.isoformat()}"


def date_of(name: str) -> dt.date | None:
    """The date a `date=YYYY-MM-DD` folder name holds (the last path segment), or None."""
    m = DATE_DIR.match(name.rstrip("/").rsplit("/", 1)[-1])
    return dt.date.fromisoformat(m.group(1)) if m else None


def partition(dataset: str, date: dt.date) -> str:
    return f"{dataset}/{date_dir(date)}"


def manifest(dataset: str, date: dt.date) -> str:
    return f"{partition(dataset, date)}/{MANIFEST}"


def staging(dataset: str, date: dt.date) -> str:
    """The parent of every run's staging folder of a date; a run writes into `<staging>/<run>/`."""
    return f"{dataset}/_staging/{date_dir(date)}"


def lock(dataset: str, date: dt.date, suffix: str) -> str:
    """A date's lock file (`.lock`, a local flock) or lease object (`.json`, on an object store)."""
    return f"{dataset}/_locks/{date_dir(date)}{suffix}"


def named_lock(name: str, suffix: str) -> str:
    """The lock of a shared document (`alerts`): a local flock (`.lock`) or a lease object (`.json`)."""
    return f"_locks/{name}{suffix}"


def trash(dataset: str) -> str:
    return f"{dataset}/_trash"


def trash_name(date: dt.date, token: str) -> str:
    """The name of a replaced date's folder inside `trash(dataset)`."""
    return f"{date_dir(date)}.{token}"


PENDING = f"{FEATURES}/_pending"


def pending(date: dt.date) -> str:
    """The marker of a date between its quarantine and its features commits: while it exists, neither is visible
    (batchml.store.visibility)."""
    return f"{PENDING}/{date_dir(date)}.json"


def rejected(date: dt.date, run_id: str) -> str:
    return f"{QUARANTINE}/_rejected/{date_dir(date)}.{run_id}.parquet"


def profile(date: dt.date) -> str:
    return f"{partition(PREDICTIONS, date)}/{PROFILE_FILE}"


def monitoring_dir(date: dt.date) -> str:
    return f"{MONITORING}/{date_dir(date)}"


def monitoring_file(date: dt.date, name: str) -> str:
    """One result file of a date, e.g. monitoring/date=D/drift.json."""
    return f"{monitoring_dir(date)}/{name}"


def report_href(date: dt.date | str) -> str:
    """A date's report relative to the dashboard (monitoring/index.html)."""
    day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    return f"{date_dir(day)}/report.html"


def pin(date: dt.date) -> str:
    return f"{PINS}/{date_dir(date)}.json"


def model_file(sha256: str, suffix: str = ".onnx") -> str:
    """A pinned model put beside the data (`.onnx`), and its pin (`.json`, written after: it marks the model whole)."""
    return f"{MODELS}/{sha256}{suffix}"


ESTIMATORS = "_estimators"


def estimator_file(model: str, version: str, name: str) -> str:
    """A file of the performance estimator fitted for a version batchml did not train (batchml.monitor.estimated)."""
    return f"{ESTIMATORS}/{model}/{version}/{name}"


def is_remote(root: str) -> bool:
    """Whether a storage root is an object store URL (s3://...), not a local folder (a path or file://)."""
    return "://" in root and not root.startswith("file://")


def table_history(dataset: str, date: dt.date) -> str:
    """The folder of a date's history entries whose snapshots retention dropped (one JSON file per snapshot)."""
    return f"{TABLES}/{dataset}/history/{date_dir(date)}"


def table_data(dataset: str, date: dt.date) -> str:
    """The folder of a date's files in the dataset's Iceberg table (hard links to the committed files)."""
    return f"{TABLES}/{dataset}/data/{date_dir(date)}"
