"""Committed dates as Apache Iceberg snapshots: one table per dataset, partitioned by the date (pyiceberg 0.12).

The manifest stays batchml's commit and integrity record (batchml.store.manifest); the table is
what other engines read. After a date's manifest commit, `Tables.commit_date` makes one Iceberg
transaction that removes the date's previous data files from the table and adds the new ones:
one OVERWRITE snapshot per committed date, whose summary carries `batchml.date`,
`batchml.model_version`, `batchml.rows` and `batchml.run`.

Layout (batchml.store.layout):

    _catalog/catalog.db                                  the embedded SQLite catalog (when `catalog` is "")
    _tables/<dataset>/metadata/                           the table's metadata (JSON, manifest lists, manifests)
    _tables/<dataset>/data/date=YYYY-MM-DD/<id>-part-*.parquet   the data files the table references

The table's data files are the committed files themselves, hard-linked (one inode, no copy;
copied where links are impossible, e.g. an object store) under an immutable unique name. A
date's folder reuses `part-00000.parquet` on every re-score and a replace removes the old
folder, so registering the folder's paths directly would make an earlier snapshot read the
later bytes; the links keep each snapshot's files until `expire` drops the snapshot.

The files do not hold the `date` column (it is the hive folder name), so pyiceberg's
`add_files`, which infers an identity partition from the column's min/max statistics, would
record a null partition. The data files are built here the way `add_files` builds them (the
same Parquet statistics, no field ids needed: the table carries a name mapping) with the
partition value set from the date. Iceberg readers (pyiceberg, DuckDB, Spark) fill an identity
partition column missing from a file from that value.

A kill between the manifest commit and the table commit leaves the table at the date's old
files: `check` reports it and `sync` (run by `batchml verify --repair`) commits the manifest's
files again. `commit_date` is idempotent: a date whose table files already are the manifest's
makes no new snapshot. Commits of different dates from several processes conflict only on the
catalog pointer; pyiceberg refreshes and retries them (`commit.retry.num-retries`).

batchml reads what it writes through the tables: the project context sets `storage.tables`, and the storage's
`files(dataset, date)` and `committed_dates(dataset)` then ask `files_of` and `dates` here. A date's files are the
table's current ones, after comparing them with the date's manifest (the integrity record) and healing the date under
its lock where they disagree; a dataset's dates come from the current snapshot's manifest list. Each table is loaded
once per process for reads (`loaded`) and replaced by this process's own commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchml.base.errors import ConfigError, IntegrityError
from batchml.base.faults import failpoint
from batchml.base.setting import count, names, setting
from batchml.store import layout

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

DATE = "date"
# Snapshot summary properties written with every date's commit.
P_DATE, P_MODEL, P_ROWS, P_RUN = "batchml.date", "batchml.model_version", "batchml.rows", "batchml.run"
# Commits of different dates conflict only on the catalog's pointer: pyiceberg refreshes and retries them. Daily runs
# of a backfill commit many dates at once, more than its default 4 retries absorb.
# Commits of other dates retry (each date is its own conflict scope); a commit deletes metadata files beyond the
# last 20, so a year of daily commits keeps the metadata folder small (snapshots are expired by `expire`).
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "20",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "2000",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
# Set on a table once every date its dataset's folder held was found in it (batchml's reads then list dates from the
# table alone; before, a root that predates the tables is registered from one listing of its folder).
P_COMPLETE = "batchml.dates-complete"


@dataclass(frozen=True)
class TableSettings:
    """[tables] settings: the Iceberg catalog the committed dates are registered in (the home of their defaults)."""

    catalog: str = setting(
        "",
        'The Iceberg catalog: "" for the embedded SQLite catalog, _catalog/catalog.db in the storage root (a local '
        "root; an object-store root with no catalog keeps no tables), a SQLAlchemy URL (postgresql+psycopg://user@host"
        "/db, sqlite:////abs/path.db) for a SQL catalog, or rest+http(s)://host/path for a REST catalog. Secrets "
        "belong in the environment (PGPASSWORD), not here.",
    )
    namespace: str = setting("batchml", "The catalog namespace holding the tables (one per dataset).")
    enabled: bool = setting(
        True, "Register every committed date of the datasets below as a snapshot of its Iceberg table."
    )
    datasets: tuple[str, ...] = names(
        layout.DATASETS,
        "The datasets with an Iceberg table (one per dataset, partitioned by date).",
        layout.DATASETS,
    )
    keep_snapshots_days: int = count(
        30,
        "Days a snapshot stays readable as of its time; then a date's commit (or `batchml expire`) drops it and the "
        "files only it referenced, keeping its history entry. The current snapshot is always kept.",
    )

    def kept_for(self, root: str) -> bool:
        """Whether a storage root's dates go to tables: enabled, and a catalog to keep them in. An object-store root
        with the embedded catalog has none (SQLite needs a local file): its dates are kept as before, folders and
        manifests, until [tables] catalog names one."""
        return self.enabled and bool(self.catalog.strip() or not layout.is_remote(str(root)))


def _days(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


class Tables:
    """The Iceberg tables of one storage root: commit a date, read it (as of a time), list its history, expire."""

    def __init__(self, root: str | os.PathLike, settings: TableSettings | None = None):
        self.settings = settings or TableSettings()
        text = str(root)
        self.remote = layout.is_remote(text)
        self.root = (
            text.rstrip("/") if self.remote else os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
        )
        self._catalog: Catalog | None = None
        # dataset -> its table as this process last loaded or committed it (batchml's own reads; commits load afresh)
        self._loaded: dict[str, Table | None] = {}

    def __repr__(self) -> str:
        return f"Tables({self.root!r}, catalog={self.settings.catalog or 'embedded'!r})"

    # -- catalog and tables ---------------------------------------------------------------
    def _url(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    @property
    def catalog(self) -> Catalog:
        """The catalog the settings name, made on first use (the embedded one creates its database)."""
        if self._catalog is None:
            self._catalog = self._open_catalog()
        return self._catalog

    def _open_catalog(self) -> Catalog:
        uri = self.settings.catalog.strip()
        props = {"warehouse": self._url(layout.TABLES)}
        if self.remote:  # fsspec, as batchml's storage: the endpoint and credentials of the environment (AWS_*)
            props["py-io-impl"] = "pyiceberg.io.fsspec.FsspecFileIO"
        if uri.startswith("rest+"):
            from pyiceberg.catalog.rest import RestCatalog

            return RestCatalog("batchml", uri=uri.removeprefix("rest+"), **props)
        if not uri:
            if self.remote:
                raise ConfigError(
                    f"[tables] catalog is empty (the embedded SQLite catalog) but the storage root {self.root} is "
                    "not a local folder: SQLite needs a local file; set [tables] catalog to a PostgreSQL URL or a "
                    "REST catalog"
                )
            path = os.path.join(self.root, layout.CATALOG)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            uri = f"sqlite:///{path}"
        if "://" not in uri:
            raise ConfigError(
                f"[tables] catalog = {uri!r}: not a catalog; give a SQLAlchemy URL (postgresql+psycopg://..., "
                "sqlite:///...), rest+https://... or leave it empty for the embedded catalog"
            )
        return _sql_catalog(uri, props)

    def catalog_exists(self) -> bool:
        """False for an embedded catalog not made yet: a root none of whose dates was registered."""
        return bool(self.settings.catalog.strip()) or (
            not self.remote and os.path.exists(os.path.join(self.root, layout.CATALOG))
        )

    def identifier(self, dataset: str) -> tuple[str, str]:
        return (self.settings.namespace, dataset)

    def table(self, dataset: str) -> Table | None:
        """The dataset's table, or None before its first commit. Metadata that cannot be read (cut short, not JSON,
        gone) raises IntegrityError naming its file."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError, ValidationError

        try:
            return self.catalog.load_table(self.identifier(dataset))
        except (NoSuchTableError, NoSuchNamespaceError):
            return None
        except (ValidationError, FileNotFoundError, UnicodeDecodeError) as exc:
            lines = [
                line.strip() for line in str(exc).splitlines() if line.strip() and "further information" not in line
            ] or [type(exc).__name__]
            reason = lines[-1].split(" [type=", 1)[0]  # pydantic's last line says what is wrong, and where
            raise IntegrityError(
                f"{self._metadata_location(dataset)}: unreadable metadata of table {'.'.join(self.identifier(dataset))}"
                f": {reason}"
            ) from exc

    def _metadata_location(self, dataset: str) -> str:
        """The metadata file a SQL catalog points the dataset's table at (the table's name in other catalogs)."""
        from pyiceberg.catalog.sql import IcebergTables, SqlCatalog

        if isinstance(self.catalog, SqlCatalog):
            from sqlalchemy import select
            from sqlalchemy.orm import Session

            with Session(self.catalog.engine) as session:
                location = session.scalar(
                    select(IcebergTables.metadata_location).where(
                        IcebergTables.catalog_name == self.catalog.name,
                        IcebergTables.table_namespace == self.settings.namespace,
                        IcebergTables.table_name == dataset,
                    )
                )
            if location:
                return str(location)
        return ".".join(self.identifier(dataset))

    def _create(self, dataset: str, schema: pa.Schema) -> Table:
        """The dataset's table with `schema` plus an optional `date` column, partitioned by identity(date); a table
        another process created meanwhile is loaded instead."""
        import pyarrow as pa
        from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, TableAlreadyExistsError

        if DATE not in schema.names:
            schema = schema.append(pa.field(DATE, pa.date32(), nullable=True))
        try:
            self.catalog.create_namespace(self.settings.namespace)
        except NamespaceAlreadyExistsError:
            pass
        except Exception:  # created by another process between pyiceberg's check and its insert: a unique-key error
            if not self.catalog.namespace_exists(self.settings.namespace):
                raise
        try:
            tx = self.catalog.create_table_transaction(
                self.identifier(dataset),
                schema=schema,
                location=self._url(f"{layout.TABLES}/{dataset}"),
                properties=TABLE_PROPERTIES,
            )
            with tx.update_spec() as spec:
                spec.add_identity(DATE)
            tx.set_properties({"schema.name-mapping.default": _name_mapping(tx.table_metadata.schema())})
            tx.commit_transaction()  # gives the staged table, which a retried commit could not refresh: load it
            created = self.table(dataset)
            assert created is not None
            return created
        # Another process created it first: pyiceberg says so, or its retry (TABLE_PROPERTIES) finds it cannot
        # refresh a table that was only staged (ValueError).
        except (TableAlreadyExistsError, CommitFailedException, ValueError):
            table = self.table(dataset)
            if table is None:
                raise
            return table

    # -- commit ---------------------------------------------------------------------------
    def commit_date(
        self,
        dataset: str,
        date: dt.date,
        files: list[str],
        model_version: str | None = None,
        *,
        run: str = "",
        sha256: dict[str, str] | None = None,
    ) -> int:
        """Make `files` (a committed date's data files, full paths or URLs) the table's rows of `date`, in one
        OVERWRITE snapshot; its id. Idempotent: files already current for the date make no new snapshot.

        `sha256` (file name -> checksum, as the manifest lists them) names each table file after its content; files
        not in it are read for their checksum."""
        import pyarrow.parquet as pq
        from pyiceberg.exceptions import ValidationException

        table = self.table(dataset)
        names = {
            src: _table_name(os.path.basename(src), (sha256 or {}).get(os.path.basename(src)) or self._sum(src))
            for src in files
        }
        # Links are cheap: placed first on a local root, so that a commit of the same bytes again relinks them.
        placed = [self._place(dataset, date, src, names[src]) for src in files] if not self.remote else []
        current = table.current_snapshot() if table is not None else None
        before = sorted(self._held(table, date))  # the date's files now: unchanged by a failed attempt, or it fails
        if current is not None and sorted(names.values()) == before:
            self._loaded[dataset] = table
            return current.snapshot_id
        placed = placed or [self._place(dataset, date, src, names[src]) for src in files]
        failpoint(f"tables.{dataset}.placed")
        schemas = [pq.read_schema(p, filesystem=self._fs) for p in placed]
        if table is None:
            table = self._create(dataset, _merged(schemas))
        for _ in range(3):
            try:
                committed = self._overwrite(table, dataset, date, placed, schemas, model_version, run)
                break
            except ValidationException as exc:
                fresh = self.table(dataset)
                if fresh is None or sorted(self._held(fresh, date)) != before:
                    raise IntegrityError(
                        f"{dataset} {date}: table {'.'.join(self.identifier(dataset))}: another commit of this date "
                        f"landed while this one was being made; this one committed nothing to the table ({exc}). "
                        "`batchml verify` compares the table with the date's manifest; `--repair` makes them agree"
                    ) from exc
                # Nothing changed the date: pyiceberg's planning of the deletes missed a file it listed (seen once in
                # 365 re-scores, not reproduced): the snapshot is built again on the table as loaded now.
                log.warning("%s %s: table commit retried: %s", dataset, date, exc)
                table = fresh
        else:
            raise IntegrityError(f"{dataset} {date}: table {'.'.join(self.identifier(dataset))}: commit failed 3 times")
        self._loaded[dataset] = committed  # this process's reads see its own commit without loading the table again
        snapshot = committed.current_snapshot()
        assert snapshot is not None
        self._expire_due(dataset, committed)
        return snapshot.snapshot_id

    def _overwrite(
        self,
        table: Table,
        dataset: str,
        date: dt.date,
        placed: list[str],
        schemas: list,
        model_version: str | None,
        run: str,
    ) -> Table:
        """One transaction: the schema evolved for new columns, then one OVERWRITE snapshot replacing the date's
        files with `placed`; the table as committed."""
        from pyiceberg.expressions.parser import parse

        from batchml.store.month_manifests import date_overwrite

        tx = table.transaction()
        if any(name not in tx.table_metadata.schema().column_names for s in schemas for name in s.names):
            with tx.update_schema() as update:
                for s in schemas:
                    update.union_by_name(s)
            tx.set_properties({"schema.name-mapping.default": _name_mapping(tx.table_metadata.schema())})
        data_files = [self._data_file(tx, date, p) for p in placed]
        rows = sum(f.record_count for f in data_files)
        summary = {
            P_DATE: date.isoformat(),
            P_MODEL: str(model_version or ""),
            P_ROWS: str(rows),
            P_RUN: run,
        }
        with date_overwrite(tx, table.io, summary) as overwrite:  # one manifest per month: reads stay fast
            # The date is the conflict scope: a retry after another process committed another date goes through;
            # after another commit of this date it fails (serializable per date).
            overwrite.delete_by_predicate(parse(_on(date)))
            for old in self._date_files(tx.table_metadata, table.io, date):
                overwrite.delete_data_file(old)
            for new in data_files:
                overwrite.append_data_file(new)
        failpoint(f"tables.{dataset}.commit")
        return tx.commit_transaction()

    @property
    def _fs(self) -> Any:
        """The pyarrow filesystem of a remote root (None: local paths)."""
        if not self.remote:
            return None
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        return PyFileSystem(FSSpecHandler(fsspec.core.url_to_fs(self.root)[0]))

    def _sum(self, src: str) -> str:
        from batchml.store.manifest import checksum

        if self.remote:
            import fsspec

            with fsspec.open(src, "rb") as fh:
                return checksum(fh)
        with open(src.removeprefix("file://"), "rb") as fh:
            return checksum(fh)

    def _place(self, dataset: str, date: dt.date, src: str, name: str) -> str:
        """The table's own immutable path for a committed file, named after its content: a hard link to it (a copy
        where links are impossible). On an object store, a file of that name is the same content already placed. On a
        local root, a link to another file of that name (an earlier commit of the same bytes: a re-score or
        re-extraction that gave them again) is replaced by a link to this committed, just checksummed file: the earlier
        file may have been damaged in place since (its date's folder holds the same inode), and snapshots naming the
        path read the same content either way."""
        dst = self._url(f"{layout.table_data(dataset, date)}/{name}")
        if self.remote:
            if not _exists(self, dst):
                import fsspec

                fsspec.core.url_to_fs(self.root)[0].copy(src, dst)
            return dst
        path = src.removeprefix("file://")
        with contextlib.suppress(FileNotFoundError):
            if os.path.samefile(path, dst):
                return dst
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{os.path.dirname(dst)}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            os.link(path, tmp)
        except OSError:  # another filesystem, or links not allowed: a copy, same bytes (one placed already is kept)
            if os.path.exists(dst):
                return dst
            shutil.copyfile(path, tmp)
        os.replace(tmp, dst)  # atomic: a reader of the path sees one whole file or the other, of the same content
        return dst

    def _data_file(self, tx: Any, date: dt.date, path: str) -> DataFile:
        """A DataFile as pyiceberg's add_files builds it (Parquet footer statistics), with the date's partition."""
        import pyarrow.parquet as pq
        from pyiceberg.io.pyarrow import (
            compute_statistics_plan,
            data_file_statistics_from_parquet_metadata,
            parquet_path_to_id_mapping,
        )
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
        from pyiceberg.typedef import Record

        metadata = tx.table_metadata
        input_file = tx._table.io.new_input(path)
        with input_file.open() as stream:
            parquet = pq.read_metadata(stream)
        schema = metadata.schema()
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=parquet,
            stats_columns=compute_statistics_plan(schema, metadata.properties),
            parquet_column_mapping=parquet_path_to_id_mapping(schema),
        )
        date_id = schema.find_field(DATE).field_id
        if date_id in statistics.column_aggregates:
            agg = statistics.column_aggregates[date_id]
            if agg.current_min != agg.current_max or agg.current_min not in (_days(date), date):
                raise ValueError(
                    f"{path}: column {DATE!r} holds {agg.current_min}..{agg.current_max}, not only {date}: a date's "
                    "file holds that date's rows only"
                )
        return DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=path,
            file_format=FileFormat.PARQUET,
            partition=Record(_days(date)),
            file_size_in_bytes=len(input_file),
            sort_order_id=None,
            spec_id=metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **_with_date_bounds(statistics.to_serialized_dict(), date_id, date),
        )

    # -- reading --------------------------------------------------------------------------
    @staticmethod
    def _date_files(metadata: Any, io: Any, date: dt.date, snapshot_id: int | None = None) -> list[DataFile]:
        """The data files of `date` in a snapshot (the current one by default), by their partition: every file of the
        date, one of no rows too. A scan with the date as row filter leaves such a file out (its row count says no row
        can match), so a date whose quarantine was empty read as behind its manifest, and every run's end committed it
        again."""
        from pyiceberg.manifest import ManifestContent

        from batchml.store.month_manifests import EPOCH, date_bounds

        snapshot = metadata.current_snapshot() if snapshot_id is None else metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return []
        day = (date - EPOCH).days
        files = []
        for manifest in snapshot.manifests(io):
            bounds = date_bounds(manifest)
            if manifest.content != ManifestContent.DATA or (bounds is not None and not bounds[0] <= date <= bounds[1]):
                continue
            entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
            files += [entry.data_file for entry in entries if entry.data_file.partition[0] == day]
        return files

    def current_files(self, dataset: str, date: dt.date) -> list[DataFile]:
        """The table's data files of `date` now (empty before the date's first commit)."""
        table = self.table(dataset)
        return [] if table is None else self._date_files(table.metadata, table.io, date)

    def read_date(self, dataset: str, date: dt.date, as_of: dt.datetime | int | None = None) -> pa.Table:
        """A date's rows as the table holds them now, as of a time (the snapshot current then) or as of a snapshot
        id."""

        table = self.table(dataset)
        if table is None:
            raise LookupError(f"{dataset}: no table in the catalog ({self}): no date was committed to it")
        snapshot_id = as_of if isinstance(as_of, int) else None
        if isinstance(as_of, dt.datetime):
            stamp = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
            snapshot = table.snapshot_as_of_timestamp(int(stamp.timestamp() * 1000))
            if snapshot is None:
                raise LookupError(f"{dataset} {date}: the table has no snapshot as of {as_of.isoformat()}")
            snapshot_id = snapshot.snapshot_id
        return table.scan(row_filter=_on(date), snapshot_id=snapshot_id).to_arrow()

    def history(self, dataset: str, date: dt.date) -> list[dict]:
        """Every commit of `date`, oldest first: snapshot id, committed_at, model_version, rows, operation, run, and
        `expired` (its snapshot dropped by retention: listed, no longer readable as of its time)."""
        table = self.table(dataset)
        if table is None:
            return []
        entries = {e["snapshot"]: {**e, "expired": True} for e in self._records(dataset, date)}
        for snap in table.metadata.snapshots:
            entry = _entry(snap)
            if entry is not None and entry["date"] == date.isoformat():
                entries[snap.snapshot_id] = {**entry, "expired": False}
        out = sorted(entries.values(), key=lambda e: e["committed_at"])
        for entry in out:
            del entry["date"]
        return out

    # -- checking and healing ---------------------------------------------------------------
    def check(self, dataset: str, date: dt.date, manifest_files: list[dict]) -> list[str]:
        """How the table's current files of `date` disagree with the date's manifest (its `files` entries: path, size),
        one line each; empty when they agree."""
        table = self.table(dataset)
        where = f"{dataset} {date}: table {'.'.join(self.identifier(dataset))}"
        if table is None:
            return [f"{where}: not in the catalog (the date's manifest commit was not followed by its table commit)"]
        current = self._date_files(table.metadata, table.io, date)
        by_name = {os.path.basename(f.file_path): f for f in current}
        listed = {_table_name(f["path"], f.get("sha256", "")): f for f in manifest_files}
        out = [
            f"{where}: {listed[name]['path']} (sha256 {name.split('-', 1)[0]}...) is in the manifest but not the table"
            for name in sorted(set(listed) - set(by_name))
        ]
        out += [
            f"{where}: {by_name[name].file_path} is in the table but not the manifest"
            for name in sorted(set(by_name) - set(listed))
        ]
        for name in sorted(set(listed) & set(by_name)):
            data = by_name[name]
            if data.file_size_in_bytes != listed[name]["size"]:
                out.append(f"{where}: {data.file_path}: size differs from the manifest")
            elif not _exists(self, data.file_path):
                out.append(f"{where}: {data.file_path}: missing")
            elif _size(self, data.file_path) != data.file_size_in_bytes:
                out.append(f"{where}: {data.file_path}: size differs from the table's metadata")
        return out

    def commit_manifest(self, storage: Any, dataset: str, date: dt.date, manifest: Any) -> int:
        """Commit a date's manifest (just committed to `storage`) to the table: its files, checksums, model version and
        run; the snapshot id. Storage calls it after each commit, under the date's lock (batchml.project.context)."""
        folder = storage.partition_url(dataset, date)
        model = (manifest.model or {}).get("version")
        return self.commit_date(
            dataset,
            date,
            [f"{folder}/{f['path']}" for f in manifest.files],
            None if model is None else str(model),
            run=manifest.run_id,
            sha256={f["path"]: f["sha256"] for f in manifest.files if f.get("sha256")},
        )

    def sync(self, storage: Any, dataset: str, date: dt.date) -> int | None:
        """Commit a committed date's manifest files to the table unless they are its current files already (the heal
        of a kill between the two commits, `batchml verify --repair`); the snapshot id, or None when the date is not
        committed."""
        manifest = storage.manifest(dataset, date)
        return None if manifest is None else self.commit_manifest(storage, dataset, date, manifest)

    # -- batchml's own reads ------------------------------------------------------------------
    # The storage consults these when the context sets `storage.tables` (batchml.project.context): the files of a
    # committed date and the committed dates of a dataset come from the table, the manifest being the integrity record.
    def loaded(self, dataset: str) -> Table | None:
        """The dataset's table as this process last loaded or committed it (one load per process and dataset); None
        before its first commit. Reads only: commits load the table afresh."""
        if dataset not in self._loaded:
            self._loaded[dataset] = self.table(dataset) if self.catalog_exists() else None
        return self._loaded[dataset]

    def files_of(self, storage: Any, dataset: str, date: dt.date, manifest: Any) -> list[str] | None:
        """The files of a committed date as its table holds them now, in its manifest's order; None for a dataset
        without a table. Where the table and `manifest` disagree (a run killed between its manifest and table
        commits, or a commit of another process since this one loaded the table), the date is healed first, under its
        lock, and its files read again: never a mixture of the two."""
        if dataset not in self.settings.datasets:
            return None
        table = self.loaded(dataset)
        held = self._held(table, date)
        if set(held) != set(_wanted(manifest)):
            manifest = self.heal(storage, dataset, date, why="reading it")[0] or manifest
            held = self._held(self._loaded.get(dataset), date)
        missing = [path for name, path in _wanted(manifest).items() if name not in held]
        if missing:  # only if the date changed again between the heal and this read: a later call sees it whole
            raise IntegrityError(
                f"{dataset} {date}: table {'.'.join(self.identifier(dataset))} does not hold {', '.join(missing)} of "
                "the date's manifest after healing it"
            )
        return [held[name] for name in _wanted(manifest)]

    def heal(self, storage: Any, dataset: str, date: dt.date, why: str = "") -> tuple[Any, bool]:
        """Under the date's lock (a lease on an object store): commit the date's manifest files to the table unless
        they are its current files already. The manifest read under the lock (None when the date is not committed) and
        whether a commit was needed; with `why`, that commit is logged as a warning naming the dataset and the date."""
        with storage.date_lock(dataset, date):
            manifest = storage.manifest(dataset, date)
            table = self.table(dataset) if self.catalog_exists() else None
            self._loaded[dataset] = table
            if manifest is None or set(self._held(table, date)) == set(_wanted(manifest)):
                return manifest, False
            self.commit_manifest(storage, dataset, date, manifest)
        if why:
            log.warning(  # the words of DailyScore's heal (tasks/daily.py), then what this one did
                "%s %s: its Iceberg table was behind its manifest; re-committed the manifest's files to table %s "
                "before %s (a run stopped between the two commits, or the date was committed with [tables] disabled)",
                dataset,
                date,
                ".".join(self.identifier(dataset)),
                why,
            )
        return manifest, True

    def _held(self, table: Table | None, date: dt.date) -> dict[str, str]:
        """The table's current files of `date`: table file name -> its path."""
        if table is None:
            return {}
        return {os.path.basename(f.file_path): f.file_path for f in self._date_files(table.metadata, table.io, date)}

    def dates(self, storage: Any, dataset: str, listed: Callable[[], set[dt.date]]) -> set[dt.date] | None:
        """The dates the dataset's table holds, from its current snapshot's manifests (no listing of the folder; a
        month's manifest read once per process); None for a dataset without a table. Until a table is known to hold
        every date of its folder (a root that predates the tables, or no table yet), the folder is listed once
        (`listed`) and each committed date missing from the table is healed first."""
        if dataset not in self.settings.datasets:
            return None
        table = self.loaded(dataset)
        if table is None or table.properties.get(P_COMPLETE) != "true":
            return self._register(storage, dataset, listed())
        return _partition_dates(table)

    def _register(self, storage: Any, dataset: str, folder: set[dt.date]) -> set[dt.date]:
        """Heal each date of `folder` the table lacks, then mark the table as holding them all."""
        from pyiceberg.exceptions import CommitFailedException

        table = self.loaded(dataset)
        held = _partition_dates(table) if table is not None else set()
        for date in sorted(folder - held):
            # A date not visible (its extraction under way: `_pending`) is left to its writer, whose lock this process
            # may hold.
            if (
                storage.manifest(dataset, date) is not None
                and self.heal(storage, dataset, date, why="listing the dates")[0]
            ):
                held.add(date)
        table = self._loaded.get(dataset)
        if table is not None:
            try:
                with table.transaction() as tx:
                    tx.set_properties({P_COMPLETE: "true"})
                self._loaded[dataset] = table
            except CommitFailedException:  # another process committed meanwhile: the next process marks it
                pass
        return held

    # -- retention --------------------------------------------------------------------------
    def expire(self, now: dt.datetime, datasets: tuple[str, ...] = layout.DATASETS) -> int:
        """Drop every snapshot committed more than `keep_snapshots_days` before `now` except each table's current one,
        and the table files only they referenced; how many snapshots were dropped. The dates those snapshots committed
        stay listed by `history` (from the records written before the drop), no longer readable as of their time."""
        return sum(self._expire(dataset, now) for dataset in datasets)

    def remove_orphans(
        self, now: dt.datetime, datasets: tuple[str, ...] = layout.DATASETS, grace: dt.timedelta = dt.timedelta(days=1)
    ) -> list[str]:
        """Delete the files under each table's `data/` and its manifests and manifest lists under `metadata/` that no
        snapshot references and that are older than `grace` (a commit under way has not referenced its files yet):
        what a commit or an expiry stopped by a kill left behind. The deleted paths. The `metadata.json` versions are
        the table's own to keep or delete (`write.metadata.previous-versions-max`)."""
        cutoff = (now - grace).timestamp()
        removed: list[str] = []
        for dataset in datasets if self.catalog_exists() else ():
            table = self.table(dataset)
            if table is None:
                continue
            referenced = {_plain(path) for path in _referenced(table)}
            for path, modified in _files_under(self, self._url(f"{layout.TABLES}/{dataset}")):
                if "/history/" in path or path.endswith(".metadata.json") or _plain(path) in referenced:
                    continue
                if modified < cutoff:
                    _remove(self, path)
                    removed.append(path)
        return removed

    def _expire(self, dataset: str, now: dt.datetime) -> int:
        from pyiceberg.exceptions import CommitFailedException

        cutoff = int((now - dt.timedelta(days=self.settings.keep_snapshots_days)).timestamp() * 1000)
        for attempt in range(3):  # a date committed meanwhile by another process: plan again on the new metadata
            table = self.table(dataset)
            current = table.current_snapshot() if table is not None else None
            if table is None or current is None:
                return 0
            old = [
                s for s in table.metadata.snapshots if s.timestamp_ms < cutoff and s.snapshot_id != current.snapshot_id
            ]
            if not old:
                return 0
            for snap in old:  # before the drop: a kill after it leaves records of snapshots still there (one listing)
                self._record(dataset, snap)
            before = _referenced(table)
            try:
                table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
            except CommitFailedException:
                if attempt == 2:
                    raise
                continue
            table = self.catalog.load_table(self.identifier(dataset))
            self._loaded[dataset] = table
            # The data files (links), manifests and manifest lists only the dropped snapshots referenced; a commit
            # under way elsewhere builds on the current snapshot, which is kept, and its new files are in neither set.
            for path in sorted(before - _referenced(table)):
                _remove(self, path)
            return len(old)
        raise AssertionError("unreachable")

    def _expire_due(self, dataset: str, table: Table) -> None:
        """After a commit: expire the table's snapshots when its oldest is past retention (about once a day for a
        daily run), so that a year of commits keeps the metadata, and with it every read and commit, small without
        anyone running `batchml expire`. Another process committing meanwhile leaves it to the next commit."""
        from pyiceberg.exceptions import CommitFailedException

        now = dt.datetime.now(dt.UTC)
        cutoff = (now - dt.timedelta(days=self.settings.keep_snapshots_days)).timestamp() * 1000
        current = table.metadata.current_snapshot_id
        if not any(s.timestamp_ms < cutoff and s.snapshot_id != current for s in table.metadata.snapshots):
            return
        try:
            dropped = self._expire(dataset, now)
        except (CommitFailedException, OSError) as exc:
            log.warning(
                "%s: expiring snapshots older than %d days left to the next commit: %s",
                dataset,
                self.settings.keep_snapshots_days,
                exc,
            )
            return
        log.info("%s: expired %d snapshots older than %d days", dataset, dropped, self.settings.keep_snapshots_days)

    def _record(self, dataset: str, snap: Any) -> None:
        """Keep what a snapshot committed (its date's history entry) in a small JSON file beside the table."""
        entry = _entry(snap)
        if entry is None:
            return
        folder = layout.table_history(dataset, dt.date.fromisoformat(entry["date"]))
        record = json.dumps({**entry, "committed_at": entry["committed_at"].isoformat()})
        self._files.write_text(f"{folder}/{snap.snapshot_id}.json", record)

    def _records(self, dataset: str, date: dt.date) -> list[dict]:
        """The history entries of `date` kept for its expired snapshots."""
        folder, out = layout.table_history(dataset, date), []
        for name in self._files.list_names(folder):
            text = self._files.read_text(f"{folder}/{name}") if name.endswith(".json") else None
            if text:
                entry = json.loads(text)
                out.append({**entry, "committed_at": dt.datetime.fromisoformat(entry["committed_at"])})
        return out

    @functools.cached_property
    def _files(self) -> Any:
        """The storage root's small-file reads and writes (batchml.store.storage), for the history records."""
        from batchml.store.storage import open_storage

        return open_storage(self.root)


def _with_date_bounds(stats: dict[str, Any], date_id: int, date: dt.date) -> dict[str, Any]:
    """A file's statistics with the date as its `date` column's bounds: the file does not hold the column (it is the
    folder's name), and without bounds a filter on the date (the overwrite's conflict scope, a reader's pruning)
    cannot rule out the files of other dates."""
    from pyiceberg.conversions import to_bytes
    from pyiceberg.types import DateType

    bound = to_bytes(DateType(), _days(date))
    return {
        **stats,
        "lower_bounds": {**(stats.get("lower_bounds") or {}), date_id: bound},
        "upper_bounds": {**(stats.get("upper_bounds") or {}), date_id: bound},
    }


def _sql_catalog(uri: str, props: dict[str, str]) -> Catalog:
    """A SQL catalog; its first use creates its tables, and processes starting together race to create them: the
    losers find them made (SQLAlchemy's 'already exists') and open the catalog again."""
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.exc import DBAPIError

    for attempt in range(3):
        try:
            return SqlCatalog("batchml", uri=uri, **props)
        except DBAPIError as exc:
            if attempt == 2 or "already exists" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _wanted(manifest: Any) -> dict[str, str]:
    """A manifest's files as the table names them: table file name -> the file's name in the date's folder."""
    return {_table_name(f["path"], f.get("sha256", "")): f["path"] for f in manifest.files}


# Manifest path -> the dates its live entries hold. Manifests are immutable: one read per process serves every later
# listing (past months' manifests are carried unchanged from snapshot to snapshot).
_MANIFEST_DATES: dict[str, frozenset[dt.date]] = {}


def _partition_dates(table: Table) -> set[dt.date]:
    """The dates with data files in the table's current snapshot. A manifest holding one date (its partition summary's
    bounds are equal) says so in the manifest list; a month's manifest (batchml.store.month_manifests) or one spanning
    several dates (rewritten by another engine) is read for its entries, once per process."""
    from pyiceberg.manifest import ManifestContent

    from batchml.store.month_manifests import EPOCH, date_bounds

    snapshot = table.current_snapshot()
    if snapshot is None:
        return set()
    out = set()
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        live = (
            None
            if manifest.added_files_count is None
            else manifest.added_files_count + (manifest.existing_files_count or 0)
        )
        if live == 0:
            continue  # deleted entries only
        bounds = date_bounds(manifest)
        if live is not None and bounds is not None and bounds[0] == bounds[1]:
            out.add(bounds[0])
            continue
        if manifest.manifest_path not in _MANIFEST_DATES:
            if len(_MANIFEST_DATES) > 4096:
                _MANIFEST_DATES.clear()
            _MANIFEST_DATES[manifest.manifest_path] = frozenset(
                EPOCH + dt.timedelta(days=entry.data_file.partition[0])
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
            )
        out |= _MANIFEST_DATES[manifest.manifest_path]
    return out


def _on(date: dt.date) -> str:
    """The row filter of one date (pyiceberg parses it; on the partition column it prunes whole files)."""
    return f"{DATE} = '{date.isoformat()}'"


def _name_mapping(schema: Any) -> str:
    return schema.name_mapping.model_dump_json()


def _merged(schemas: list[pa.Schema]) -> pa.Schema:
    import pyarrow as pa

    return pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])


def _table_name(name: str, sha256: str) -> str:
    """A table file's name: the committed file's name after the start of its sha256 (content, not run, names it)."""
    return f"{sha256[:24]}-{name}"


def _size(tables: Tables, path: str) -> int:
    if tables.remote:
        import fsspec

        return int(fsspec.core.url_to_fs(path)[0].size(path))
    return os.path.getsize(path.removeprefix("file://"))


def _exists(tables: Tables, path: str) -> bool:
    if tables.remote:
        import fsspec

        return bool(fsspec.core.url_to_fs(path)[0].exists(path))
    return os.path.exists(path.removeprefix("file://"))


def _remove(tables: Tables, path: str) -> None:
    if tables.remote:
        import fsspec

        fs = fsspec.core.url_to_fs(path)[0]
        if fs.exists(path):
            fs.rm(path)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path.removeprefix("file://"))


def _referenced(table: Table) -> set[str]:
    """Every file any snapshot of the table references: data files, manifests and manifest lists (each manifest read
    once: snapshots share them)."""
    manifests = {m.manifest_path: m for snap in table.metadata.snapshots for m in snap.manifests(table.io)}
    data = {
        e.data_file.file_path
        for manifest in manifests.values()
        for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    }
    return data | set(manifests) | {snap.manifest_list for snap in table.metadata.snapshots}


def _entry(snap: Any) -> dict | None:
    """A snapshot's history entry (None for one that committed no date: made by another engine)."""
    summary = snap.summary
    if summary is None or not summary.get(P_DATE):
        return None
    return {
        "snapshot": snap.snapshot_id,
        "date": summary.get(P_DATE),
        "committed_at": dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, dt.UTC),
        "model_version": summary.get(P_MODEL) or None,
        "rows": int(summary.get(P_ROWS, "0")),
        "operation": summary.operation.value,
        "run": summary.get(P_RUN) or None,
    }


def _plain(path: str) -> str:
    """A path as a table's metadata and a listing both name it: no file:// scheme."""
    return path.removeprefix("file://")


def _files_under(tables: Tables, folder: str) -> list[tuple[str, float]]:
    """Every file below `folder` with its modification time (seconds since the epoch)."""
    if tables.remote:
        import fsspec

        fs = fsspec.core.url_to_fs(folder)[0]
        out = []
        for path, info in fs.find(folder, detail=True).items():
            stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
            seconds = stamp.timestamp() if isinstance(stamp, dt.datetime) else float(stamp or 0)
            out.append((fs.unstrip_protocol(path), seconds))
        return out
    out = []
    for where, _, files in os.walk(_plain(folder)):
        for name in files:
            path = os.path.join(where, name)
            with contextlib.suppress(FileNotFoundError):
                out.append((path, os.path.getmtime(path)))
    return out
