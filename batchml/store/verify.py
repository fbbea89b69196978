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

from batchml.base.errors import ConfigError
from batchml.store.layout import DATASETS, MANIFEST
from batchml.store.manifest import Problem, UnreadableManifest

if TYPE_CHECKING:
    from batchml.store.objectstore import ObjectStorage
    from batchml.store.storage import Storage


@dataclass
class Verification:
    """What a verify run checked and the bad files it found, each as one line naming its dataset, date and file."""

    dates: int = 0
    files: int = 0
    bad: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad

    def summary(self, datasets: tuple[str, ...], start: dt.date | None, stop: dt.date | None) -> str:
        scope = f"{', '.join(datasets)} in [{start or 'the first'}, {stop or 'the last'}{')' if stop else ']'}"
        if self.ok:
            return f"verified {self.files} files of {self.dates} committed dates of {scope}: all match their manifests"
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
