"""Checks of a tracking URI and its SQLite file before MLflow sees them, so a mistake is named.

MLflow takes a string without a scheme as a file-store path and answers that the file
backend is "in maintenance mode"; it reports a damaged SQLite file as "database disk image
is malformed" without saying which file. These checks say which setting or file is wrong.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from pathlib import Path

# scheme://rest: sqlite:///path, http(s)://host, postgresql+psycopg://..., databricks://profile
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class TrackingStoreError(ValueError):
    """The tracking URI or the store it names cannot be used; the message names which."""


def check_tracking_uri(uri: str) -> None:
    """Raise TrackingStoreError unless `uri` has the shape of a URI MLflow can open as a store."""
    if uri in ("databricks",) or uri.startswith("databricks-uc"):
        return
    if not _URI.match(uri):
        raise TrackingStoreError(
            f"[mlflow] tracking_uri {uri!r} is not a URI: expected sqlite:////abs/path.db, sqlite:///rel.db, http(s)://host:port or a database URL"
        )
    if uri.lower().startswith("sqlite:") and not uri.startswith("sqlite:///"):
        raise TrackingStoreError(f"[mlflow] tracking_uri {uri!r}: a SQLite URI is sqlite:/// followed by the file's path")
    if uri.startswith("file:"):
        raise TrackingStoreError(f"[mlflow] tracking_uri {uri!r}: MLflow's file store is not supported; use sqlite:///path/mlflow.db")


@functools.cache
def check_sqlite_store(uri: str) -> None:
    """Raise TrackingStoreError when a `sqlite:///` store's file exists but is unreadable, empty or not a database.

    An empty file is refused rather than initialised: it is what a truncated registry looks
    like, and starting a new registry over it would lose the versions and aliases it held.
    Once per process and URI (every task makes a Registry); a missing file is a new store.
    """
    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    if not db.exists():
        return
    if not db.is_file():
        raise TrackingStoreError(f"tracking store {db}: not a file")
    if not os.access(db, os.R_OK | os.W_OK):
        raise TrackingStoreError(f"tracking store {db}: not readable and writable by this user")
    if db.stat().st_size == 0:
        raise TrackingStoreError(f"tracking store {db}: empty file (0 bytes), not an MLflow database; restore it or remove it to start a new registry")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(1)").fetchall()]
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise TrackingStoreError(f"tracking store {db}: {exc}") from exc
    if problems != ["ok"]:
        detail = " ".join(" ".join(problems).split())
        raise TrackingStoreError(f"tracking store {db}: database disk image is malformed ({detail})")
