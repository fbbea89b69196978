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
    """Raise TrackingStoreError unless `uri` has the shape of a URI MLflow can open as a store, with a store installed
    for it."""
    problem = tracking_uri_problem(uri)
    if problem:
        raise TrackingStoreError(f"[mlflow] tracking_uri {without_userinfo(uri)!r}: {problem}")


def tracking_uri_problem(uri: str) -> str:
    """Why MLflow cannot open `uri` as its tracking and registry store, or "" when it can."""
    if uri in ("databricks",) or uri.startswith("databricks-uc"):
        return ""
    if not _URI.match(uri):
        return "not a URI: expected sqlite:////abs/path.db, sqlite:///rel.db, http(s)://host:port or a database URL"
    if uri.lower().startswith("sqlite:") and not uri.startswith("sqlite:///"):
        return "a SQLite URI is sqlite:/// followed by the file's path"
    if uri.startswith("file:"):
        return "MLflow's file store is not supported; use sqlite:///path/mlflow.db"
    scheme = uri.split("://", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    if base in _REST_SCHEMES or scheme == "sqlite":  # sqlite: Python's own driver (sqlalchemy's import costs 0.2 s)
        return ""
    if base in _DATABASES:  # MLflow's SQLAlchemy store: the dialect and its driver must be installed
        return sql_url_problem(uri)
    return _plugin_store_problem(uri)


# Schemes MLflow itself serves over REST, and the databases of its SQLAlchemy store
# (mlflow.store.db.db_types.DATABASE_ENGINES): known without importing mlflow (about 1.2 s).
_REST_SCHEMES = frozenset({"http", "https", "databricks", "databricks-uc", "uc"})
_DATABASES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


def _plugin_store_problem(uri: str) -> str:
    """Any other scheme is served only by a plugin registered through MLflow's entry points (mlflow.tracking_store,
    mlflow.model_registry_store)."""
    from mlflow.tracking._model_registry.utils import _get_store_registry
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry
    from mlflow.utils.uri import get_uri_scheme

    scheme = get_uri_scheme(uri)
    for what, known in (
        ("tracking", _tracking_store_registry._registry),
        ("model registry", _get_store_registry()._registry),
    ):
        if scheme not in known:
            names = ", ".join(sorted(k for k in known if k not in ("", "file")))  # the file store is refused above
            return (
                f"no installed MLflow {what} store handles the scheme {scheme!r} (installed: {names}; a plugin adds "
                "one through its entry point)"
            )
    return ""


def sql_url_problem(url: str) -> str:
    """Why SQLAlchemy cannot connect to `url` as given (not a URL, no such dialect, its driver not installed), or ""
    when it can try."""
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(url).get_dialect()
    except NoSuchModuleError:  # a subclass of ArgumentError
        return f"no installed SQLAlchemy dialect handles the scheme {url.split('://', 1)[0]!r}"
    except ArgumentError:
        return "not a SQLAlchemy URL (dialect+driver://user@host/database)"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return f"the driver of {dialect.name}+{dialect.driver} is not installed ({exc})"
    return ""


def filesystem_problem(url: str) -> str:
    """Why fsspec cannot open `url` (a protocol no installed filesystem handles, or one whose package is missing), or ""
    when it can."""
    if "://" not in url and "::" not in url:
        return ""  # a local path
    import fsspec

    for link in url.split("::"):
        protocol = link.split("://", 1)[0] if "://" in link else link
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            return f"no installed fsspec filesystem handles the protocol {protocol!r}"
        except ImportError as exc:
            return f"the filesystem of {protocol!r} needs a package that is not installed ({exc})"
    return ""


def without_userinfo(url: str) -> str:
    """`url` with no user or password: what a message may show of a URL setting."""
    return _USERINFO.sub(r"\g<scheme>", url)


# A user with no '/', or user:password where the password may hold '/' (SQLAlchemy reads it to the last '@').
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/:@]*:[^@]*|[^/:@]*)@")


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
        raise TrackingStoreError(
            f"tracking store {db}: empty file (0 bytes), not an MLflow database; restore it or remove it to start a "
            "new registry"
        )
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(1)").fetchall()]
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise TrackingStoreError(f"tracking store {db}: {exc}") from exc
    if problems != ["ok"]:
        detail = " ".join(" ".join(problems).split())
        raise TrackingStoreError(f"tracking store {db}: database disk image is malformed ({detail})")
