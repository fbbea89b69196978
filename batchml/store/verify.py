"""Checking committed dates against their manifests: `batchml verify [ROOT] [--start D] [--stop D]`.

For every committed date of the datasets in [start, stop) (every committed date without
them), each file the manifest lists must be present, of its recorded size and sha256, and
readable as Parquet with its page checksums verified (one row group at a time). Works on any
storage root (a folder or s3://...); reads through the manifests only. Without ROOT, the
project's `[storage] root` from ./luigi.cfg. A folder that does not exist and a range whose
stop is not after its start are errors, not "0 files, all match".
"""

from __future__ import annotations

import configparser
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from batchml.base.errors import ConfigError, IntegrityError
from batchml.store.layout import DATASETS, MANIFEST
from batchml.store.manifest import Problem, UnreadableManifest

if TYPE_CHECKING:
    from batchml.store.objectstore import ObjectStorage
    from batchml.store.storage import Storage
    from batchml.store.tables import Tables, TableSettings


@dataclass
class Verification:
    """What a verify run checked and the bad files it found, each as one line naming its dataset, date and file."""

    dates: int = 0
    files: int = 0
    bad: list[str] = field(default_factory=list)
    tables: bool = False  # whether the dates' Iceberg tables were checked too
    repaired: list[str] = field(default_factory=list)  # dates re-committed to their table by --repair

    @property
    def ok(self) -> bool:
        return not self.bad

    def summary(self, datasets: tuple[str, ...], start: dt.date | None, stop: dt.date | None) -> str:
        scope = f"{', '.join(datasets)} in [{start or 'the first'}, {stop or 'the last'}{')' if stop else ']'}"
        if self.ok:
            tables = " and their Iceberg tables" if self.tables else ""
            return (
                f"verified {self.files} files of {self.dates} committed dates of {scope}: all match their "
                f"manifests{tables}"
            )
        return f"{len(self.bad)} bad files among {self.files} files of {self.dates} committed dates of {scope}"


def verify_dates(
    storage: Storage | ObjectStorage,
    datasets: tuple[str, ...] = DATASETS,
    start: dt.date | None = None,
    stop: dt.date | None = None,
) -> Verification:
    """Check every committed date of `datasets` in [start, stop) (stop exclusive): sizes, sha256, Parquet page
    checksums."""
    out = Verification()
    for dataset in datasets:
        dates = sorted(
            d for d in storage.committed_dates(dataset) if (start is None or d >= start) and (stop is None or d < stop)
        )
        for date in dates:
            out.dates += 1
            try:
                manifest = storage.committed_manifest(dataset, date)
                problems = storage.problems(dataset, date, checksums=True, readable=True)
            except UnreadableManifest as exc:  # not valid JSON, or fields missing
                out.bad.append(
                    Problem(dataset, date, MANIFEST, f"unreadable manifest: {exc.reason}").line(
                        f"{storage.partition_url(dataset, date)}/{MANIFEST}"
                    )
                )
                continue
            out.files += len(manifest.files)
            for p in problems:
                out.bad.append(p.line(f"{storage.partition_url(dataset, date)}/{p.path}"))
    return out


def verify_tables(
    storage: Storage | ObjectStorage,
    tables: Tables,
    out: Verification,
    datasets: tuple[str, ...],
    start: dt.date | None = None,
    stop: dt.date | None = None,
    *,
    repair: bool = False,
) -> Verification:
    """Check each committed date's table files against its manifest (batchml.store.tables); with `repair`, commit the
    manifest's files to the table where they differ (a run killed between its manifest and its table commit) and
    report only what is still wrong after."""
    out.tables = True
    for dataset in (d for d in datasets if d in tables.settings.datasets):
        try:
            tables.table(dataset)
        except IntegrityError as exc:  # its metadata unreadable: one line for the table, the other datasets checked
            out.bad.append(str(exc))
            continue
        for date in sorted(_in_range(storage.committed_dates(dataset), start, stop)):
            manifest = storage.manifest(dataset, date)
            if manifest is None:
                continue
            problems = tables.check(dataset, date, manifest.files)
            if problems and repair:
                tables.commit_manifest(storage, dataset, date, manifest)
                out.repaired.append(f"{dataset} {date}: re-committed to its table from {MANIFEST}")
                problems = tables.check(dataset, date, manifest.files)
            out.bad.extend(problems)
    return out


def _in_range(dates: set[dt.date], start: dt.date | None, stop: dt.date | None) -> set[dt.date]:
    return {d for d in dates if (start is None or d >= start) and (stop is None or d < stop)}


def project_root(folder: Path) -> str:
    """The storage root of the project in `folder`: its luigi.cfg's `[storage] root` (default `data`), relative paths
    resolved against the folder."""
    cfg = folder / "luigi.cfg"
    if not cfg.is_file():
        raise ConfigError(
            f"no ROOT given and no luigi.cfg in {folder}: give the storage root (a folder or s3://bucket/prefix) or "
            "run in a project folder"
        )
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(cfg)
    except configparser.Error as exc:
        raise ConfigError(f"{cfg}: not a valid config file: {exc}") from exc
    root = parser.get("storage", "root", fallback="data").strip() or "data"
    if "://" in root or os.path.isabs(os.path.expanduser(root)):
        return os.path.expanduser(root)
    return str(folder / root)


def project_tables(folder: Path) -> TableSettings:
    """The [tables] settings of the project in `folder` (its luigi.cfg), the defaults without one; a relative SQLite
    catalog path resolved against the folder."""
    import json

    from batchml.store.tables import TableSettings

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    cfg = folder / "luigi.cfg"
    try:
        parser.read(cfg if cfg.is_file() else [])
    except configparser.Error as exc:
        raise ConfigError(f"{cfg}: not a valid config file: {exc}") from exc
    if not parser.has_section("tables"):
        return TableSettings()
    section, default = parser["tables"], TableSettings()
    catalog = section.get("catalog", "").strip()
    if catalog.startswith("sqlite:///") and not catalog.startswith("sqlite:////"):
        catalog = f"sqlite:///{folder / catalog.removeprefix('sqlite:///')}"
    datasets_text = section.get("datasets", "").strip()
    if datasets_text.startswith("["):
        datasets = tuple(json.loads(datasets_text))
    elif datasets_text:
        datasets = tuple(d.strip() for d in datasets_text.replace("\n", ",").split(",") if d.strip())
    else:
        datasets = default.datasets
    try:
        return TableSettings(
            catalog=catalog,
            namespace=section.get("namespace", default.namespace).strip() or default.namespace,
            enabled=section.getboolean("enabled", default.enabled),
            datasets=datasets,
            keep_snapshots_days=section.getint("keep_snapshots_days", default.keep_snapshots_days),
        )
    except ValueError as exc:
        raise ConfigError(f"{cfg}: [tables]: {exc}") from exc


def check_scope(root: str, start: dt.date | None, stop: dt.date | None) -> None:
    """A local root that is not a folder, or a range with nothing in it, is a mistake to name, not an empty success."""
    if start is not None and stop is not None and stop <= start:
        raise ConfigError(
            f"--stop {stop} is not after --start {start}: the range [start, stop) holds no date (stop is exclusive)"
        )
    if "://" not in root or root.startswith("file://"):
        folder = Path(root.removeprefix("file://")).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"{folder}: {'not a folder' if folder.exists() else 'no such folder'} (the storage root to verify)"
            )
