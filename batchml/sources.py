"""Where a date's raw trips and their labels come from: synthetic, files, or SQL.

Every source yields a date as (origin, DataFrame) batches so memory stays bounded and an
error can name the file or query it came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import Protocol

import fsspec
import pandas as pd

from batchml import synthetic
from batchml.errors import MissingInput, SchemaError
from batchml.features import KEY, LABEL


class Source(Protocol):
    def exists(self, date: dt.date) -> bool: ...

    def batches(self, date: dt.date) -> Iterator[tuple[str, pd.DataFrame]]: ...

    def labels(self, date: dt.date) -> pd.DataFrame: ...

    def has_labels(self, date: dt.date) -> bool: ...

    def fingerprint(self, date: dt.date) -> str: ...


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class SyntheticSource:
    """Generated trips; labels are the same rows' true durations."""

    def __init__(self, *, rows_per_day: int, seed: int, drift_start: dt.date | None = None, bad_row_share: float = 0.0, chunk_rows: int = 250_000):
        self.params = dict(rows=rows_per_day, seed=seed, drift_start=drift_start, bad_row_share=bad_row_share, chunk_rows=chunk_rows)

    def exists(self, date: dt.date) -> bool:
        return True

    def batches(self, date):
        for i, chunk in enumerate(synthetic.trips(date, **self.params)):
            yield f"synthetic:{date}#{i}", chunk.drop(columns=[LABEL])

    def labels(self, date):
        return pd.concat([c[[KEY, LABEL]] for c in synthetic.trips(date, **self.params)], ignore_index=True)

    def has_labels(self, date):
        return True

    def fingerprint(self, date):
        return _digest({"kind": "synthetic", "date": date, **self.params})


class FileSource:
    """Parquet or CSV files under an fsspec path with `{date}` in it (a folder or a file).

    `path = s3://raw/trips/date={date}` reads every file in that folder;
    `path = /data/trips_{date}.csv` reads one file.
    """

    def __init__(self, *, path: str, labels_path: str = "", fmt: str = "parquet", storage_options: dict | None = None):
        if "{date}" not in path:
            raise ValueError(f"[source] path must contain '{{date}}': {path!r}")
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"[source] format must be parquet or csv, not {fmt!r}")
        self.path, self.labels_path, self.fmt, self.options = path, labels_path, fmt, storage_options or {}

    def _files(self, template: str, date: dt.date) -> list[str]:
        url = template.format(date=date.isoformat())
        fs, path = fsspec.core.url_to_fs(url, **self.options)
        if fs.isdir(path):
            files = sorted(p for p in fs.ls(path, detail=False) if p.rsplit("/", 1)[-1].endswith(f".{self.fmt}"))
        else:
            files = [path] if fs.exists(path) else []
        return [fs.unstrip_protocol(p) for p in files]

    def exists(self, date):
        return bool(self._files(self.path, date))

    def _read(self, url: str) -> pd.DataFrame:
        try:
            with fsspec.open(url, "rb", **self.options) as fh:
                return pd.read_parquet(fh) if self.fmt == "parquet" else pd.read_csv(fh)
        except Exception as exc:  # any parser error: name the file, keep the cause
            raise SchemaError(f"{url}: cannot be read as {self.fmt}: {type(exc).__name__}: {exc}") from exc

    def batches(self, date):
        files = self._files(self.path, date)
        if not files:
            raise MissingInput(f"no {self.fmt} files for {date} at {self.path.format(date=date.isoformat())}")
        for url in files:
            yield url, self._read(url)

    def has_labels(self, date):
        return bool(self.labels_path) and bool(self._files(self.labels_path, date))

    def labels(self, date):
        files = self._files(self.labels_path, date) if self.labels_path else []
        if not files:
            raise MissingInput(f"no labels for {date} at {self.labels_path.format(date=date.isoformat())!r}")
        frame = pd.concat([self._read(u) for u in files], ignore_index=True)
        for col in (KEY, LABEL):
            if col not in frame.columns:
                raise SchemaError(f"{files[0]}: missing required column {col} (labels)")
        return frame[[KEY, LABEL]]

    def fingerprint(self, date):
        fs, _ = fsspec.core.url_to_fs(self.path.format(date=date.isoformat()), **self.options)
        return _digest([(u, fs.info(u).get("size"), str(fs.info(u).get("mtime", fs.info(u).get("LastModified")))) for u in self._files(self.path, date)])


class SqlSource:
    """A SQL query through SQLAlchemy with the date bound as `:date` (ISO text)."""

    def __init__(self, *, url: str, query: str, labels_query: str = "", chunk_rows: int = 250_000):
        import sqlalchemy

        if ":date" not in query:
            raise ValueError("[source] query must use the bound parameter :date")
        self.engine = sqlalchemy.create_engine(url)
        self.url, self.query, self.labels_query, self.chunk_rows = url, query, labels_query, chunk_rows

    def _params(self, date):
        return {"date": date.isoformat()}

    def exists(self, date):
        import sqlalchemy

        with self.engine.connect() as conn:
            probe = sqlalchemy.text(f"SELECT 1 FROM ({self.query}) AS q LIMIT 1")
            return conn.execute(probe, self._params(date)).first() is not None

    def batches(self, date):
        import sqlalchemy

        origin = f"{self.engine.url.render_as_string(hide_password=True)} query for {date}"
        with self.engine.connect() as conn:
            chunks = pd.read_sql(sqlalchemy.text(self.query), conn, params=self._params(date), chunksize=self.chunk_rows)
            for i, chunk in enumerate(chunks):
                yield f"{origin}#{i}", chunk

    def has_labels(self, date):
        import sqlalchemy

        if not self.labels_query:
            return False
        with self.engine.connect() as conn:
            probe = sqlalchemy.text(f"SELECT 1 FROM ({self.labels_query}) AS q LIMIT 1")
            return conn.execute(probe, self._params(date)).first() is not None

    def labels(self, date):
        import sqlalchemy

        if not self.labels_query:
            raise MissingInput("[source] labels_query is not set")
        with self.engine.connect() as conn:
            frame = pd.read_sql(sqlalchemy.text(self.labels_query), conn, params=self._params(date))
        if frame.empty:
            raise MissingInput(f"no labels for {date} from {self.labels_query!r}")
        return frame[[KEY, LABEL]]

    def fingerprint(self, date):
        return _digest({"kind": "sql", "url": self.engine.url.render_as_string(hide_password=True), "query": self.query, "date": date})
