"""Date-partitioned datasets with an all-or-nothing commit.

Layout under the storage root:

    <root>/<dataset>/date=YYYY-MM-DD/part-*.parquet   committed data
    <root>/<dataset>/date=YYYY-MM-DD/_MANIFEST.json   what was committed (written last)
    <root>/<dataset>/_staging/date=YYYY-MM-DD/<run>/  a write in progress
    <root>/<dataset>/_locks/date=YYYY-MM-DD.lock      one writer per date at a time

(every path from batchml.store.layout). The manifest lists each file's name, size and sha256
(batchml.store.manifest). Readers (pyarrow, Dask, DuckDB, Spark) skip `_`-prefixed names, so they see a date only
once it is committed. A write holds the date's lock, removes staging left by crashed
runs, writes into its own staging folder, writes the manifest last, and publishes the
folder with one rename that never replaces a committed date unless asked to.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchml.base.errors import IntegrityError
from batchml.base.faults import failpoint
from batchml.base.setting import count, seconds, setting
from batchml.store import layout
from batchml.store.layout import MANIFEST
from batchml.store.manifest import Manifest, ManifestReader, checksum, file_entry, written_checksum
from batchml.store.visibility import DateVisibility

if TYPE_CHECKING:
    from batchml.store.objectstore import ObjectStorage

__all__ = [
    "MANIFEST",
    "Manifest",
    "ManifestReader",
    "NoSpaceLeft",
    "PartitionWriter",
    "Storage",
    "StorageSettings",
    "naming_a_full_disk",
    "open_storage",
]


class NoSpaceLeft(OSError):
    """A write that found the disk full (ENOSPC), naming the dataset, the date and where it was writing."""


@contextlib.contextmanager
def naming_a_full_disk(dataset: str, date: dt.date | None, where: object) -> Iterator[None]:
    """Turn a full disk inside the block into NoSpaceLeft naming `dataset`, `date` and the path `where` (innermost block
    wins)."""
    try:
        yield
    except NoSpaceLeft:
        raise
    except OSError as exc:
        if exc.errno != errno.ENOSPC and "No space left on device" not in str(exc):
            raise
        of = f"{dataset} of {date}" if date else dataset
        raise NoSpaceLeft(
            errno.ENOSPC,
            f"No space left on device writing {of} to {where}: free space there and run again (nothing was committed)",
        ) from exc


@dataclass(frozen=True)
class StorageSettings:
    """[storage] settings: where datasets live, one partition per date (the home of their defaults)."""

    root: str = setting(
        "data",
        "Storage root: a folder (relative to the project), or s3://bucket/prefix (endpoint and credentials from the "
        "environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).",
    )
    lease_seconds: float = seconds(
        60.0, "Object stores: a date's write lease; a crashed writer's lease expires after this long."
    )
    rows_per_file: int = count(250_000, "Rows per Parquet file of features; one Dask partition each.")


def open_storage(
    root: str | os.PathLike, *, lease_seconds: float = StorageSettings.lease_seconds
) -> Storage | ObjectStorage:
    """The storage at `root`: a local folder, or an object store URL (s3://bucket/prefix)."""
    text = str(root)
    if layout.is_remote(text):
        from batchml.store.objectstore import ObjectStorage

        return ObjectStorage(text, lease_seconds=lease_seconds)
    return Storage(text.removeprefix("file://"))


class Storage(DateVisibility, ManifestReader):
    """A storage root on the local filesystem; batchml.store.objectstore has the object store one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"Storage({str(self.root)!r})"

    # -- layout ---------------------------------------------------------------------------
    def dataset_path(self, dataset: str) -> Path:
        return self.root / dataset

    def partition_path(self, dataset: str, date: dt.date) -> Path:
        return self.root / layout.partition(dataset, date)

    def manifest_path(self, dataset: str, date: dt.date) -> Path:
        return self.root / layout.manifest(dataset, date)

    def url(self, relative: str = "") -> str:
        """Where `relative` lives, as a path or URL any fsspec-aware reader accepts."""
        return str(self.root / relative) if relative else str(self.root)

    def partition_url(self, dataset: str, date: dt.date) -> str:
        return self.url(layout.partition(dataset, date))

    def open(self, relative: str, mode: str = "rb") -> IO[Any]:
        """A file under the root (writes create folders); for rejected rows and the like."""
        if "w" in mode:
            (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
        return open(self.root / relative, mode)

    def delete(self, relative: str) -> None:
        (self.root / relative).unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------------------
    # What is on disk; readers go through batchml.store.visibility (`manifest`, `is_committed`, `committed_dates`).
    def _raw_manifest(self, dataset: str, date: dt.date) -> Manifest | None:
        """The manifest file of a date as it is, or None when there is none."""
        try:
            path = self.manifest_path(dataset, date)
            return Manifest.from_json(path.read_text(), path)
        except FileNotFoundError:
            return None

    def _raw_committed(self, dataset: str, date: dt.date) -> bool:
        return self.manifest_path(dataset, date).exists()

    def _raw_dates(self, dataset: str) -> set[dt.date]:
        """Every date of a dataset with a manifest, from one listing of its folder."""
        base = self.dataset_path(dataset)
        if not base.exists():
            return set()
        out = set()
        for entry in os.scandir(base):
            date = layout.date_of(entry.name)
            if date and os.path.exists(os.path.join(entry.path, MANIFEST)):
                out.add(date)
        return out

    def _data_sizes(self, dataset: str, date: dt.date) -> dict[str, int]:
        """The data files in a date's folder, name -> size (`_` and `.` names are not data)."""
        try:
            return {
                e.name: e.stat().st_size
                for e in os.scandir(self.partition_path(dataset, date))
                if not e.name.startswith(("_", "."))
            }
        except FileNotFoundError:
            return {}

    def _open_data(self, dataset: str, date: dt.date, name: str) -> IO[bytes]:
        return open(self.partition_path(dataset, date) / name, "rb")

    def read_text(self, relative: str) -> str | None:
        """A small file under the root (pins, reports), or None when absent."""
        try:
            return (self.root / relative).read_text()
        except FileNotFoundError:
            return None

    def list_names(self, relative: str) -> list[str]:
        """Names in a folder under the root, sorted; hidden and temporary names left out."""
        try:
            return sorted(e.name for e in os.scandir(self.root / relative) if not e.name.startswith("."))
        except FileNotFoundError:
            return []

    # -- writing --------------------------------------------------------------------------
    def write_once(self, relative: str, text: str) -> bool:
        """Create a small file atomically unless it exists; False when another run made it first."""
        final, tmp = self._beside(relative, text)
        try:
            os.link(tmp, final)  # fails if `final` exists: first writer wins, atomically
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    def write_text(self, relative: str, text: str) -> None:
        """Replace a small file atomically (readers see the old or the new text)."""
        with naming_a_full_disk(relative.split("/", 1)[0], None, self.root / relative):
            final, tmp = self._beside(relative, text)
            os.replace(tmp, final)

    def _beside(self, relative: str, text: str) -> tuple[Path, Path]:
        """The final path of a small file, and `text` written to a hidden temporary file beside it."""
        final = self.root / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(text)
        return final, tmp

    @contextlib.contextmanager
    def writer(self, dataset: str, date: dt.date, *, replace: bool = False) -> Iterator[PartitionWriter]:
        """Hold the date's lock and give a fresh staging folder to write the date into.

        Inside the block, `writer.committed` tells whether another run committed the date
        meanwhile; the caller should then stop. Staging is removed on the way out unless
        it was published.
        """
        failpoint(f"writer.{dataset}")
        with self.date_lock(dataset, date):
            self._recover(dataset, date)
            staging_parent = self.root / layout.staging(dataset, date)
            shutil.rmtree(staging_parent, ignore_errors=True)  # leftovers of crashed runs
            staging = staging_parent / uuid.uuid4().hex[:12]
            staging.mkdir(parents=True)
            writer = PartitionWriter(self, dataset, date, staging, replace=replace)
            try:
                with naming_a_full_disk(dataset, date, staging):
                    yield writer
            finally:
                shutil.rmtree(staging_parent, ignore_errors=True)

    @contextlib.contextmanager
    def date_lock(self, dataset: str, date: dt.date) -> Iterator[None]:
        """Hold the date's lock for the block, as its writer does (a table heal takes it: batchml.store.tables)."""
        lock_path = self.root / layout.lock(dataset, date, ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
            yield

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold the lock `name` for the block: one writer of a shared document at a time."""
        path = self.root / layout.named_lock(name, ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
            yield

    def _recover(self, dataset: str, date: dt.date) -> None:
        """Under the date's lock: finish or undo what a crashed replace left in _trash."""
        final = self.partition_path(dataset, date)
        for old in sorted((self.root / layout.trash(dataset)).glob(layout.trash_name(date, "*"))):
            if not final.exists() and (old / MANIFEST).exists():
                os.rename(old, final)  # crashed between the two renames: the old date comes back
            else:
                shutil.rmtree(old, ignore_errors=True)

    def _publish(self, staging: Path, final: Path, replace: bool, dataset: str, date: dt.date) -> None:
        """Move a complete staging folder into place with one rename (one exchange to replace)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        if replace and final.exists():
            if _exchange(staging, final):  # readers see the old date or the new one, never neither
                shutil.rmtree(staging, ignore_errors=True)  # it holds the old date now
                return
            # No atomic exchange on this filesystem: two renames. A crash between them
            # leaves the old date in _trash, and the next writer of the date puts it back.
            trash = self.root / layout.trash(dataset) / layout.trash_name(date, uuid.uuid4().hex[:8])
            trash.parent.mkdir(exist_ok=True)
            os.rename(final, trash)
            os.rename(staging, final)
            shutil.rmtree(trash, ignore_errors=True)
            return
        if final.exists():  # a folder without manifest: a pre-manifest crash of an old layout
            if (final / MANIFEST).exists():
                raise IntegrityError(f"{final}: already committed; refusing to replace it")
            shutil.rmtree(final)
        os.rename(staging, final)


class PartitionWriter:
    """A date being written: files go into `path`, then `commit()` publishes them."""

    def __init__(self, storage: Storage, dataset: str, date: dt.date, path: Path, *, replace: bool):
        self.storage, self.dataset, self.date, self.path, self.replace = storage, dataset, date, path, replace
        self.published = False

    @property
    def url(self) -> str:
        """Where the date's files are staged: give it to writers that take a folder."""
        return str(self.path)

    def open(self, name: str, mode: str = "wb") -> IO[Any]:
        return open(self.path / name, mode)

    @property
    def committed(self) -> bool:
        """True when the date is already committed and this writer should not replace it."""
        return not self.replace and self.storage._raw_committed(self.dataset, self.date)

    def commit(
        self,
        manifest: Manifest,
        file_rows: dict[str, int] | None = None,
        digests: dict[str, tuple[int, str]] | None = None,
    ) -> Manifest:
        """Record the staged files in the manifest (name, size, sha256), write it last, and publish the date.

        A file's sha256 is the one its writer took of the bytes it wrote (`digests`: name ->
        (size, sha256)), else the file is read once, in chunks, for it.
        """
        with naming_a_full_disk(self.dataset, self.date, self.path):
            committed = self._commit(manifest, file_rows or {}, digests or {})
        if self.storage.after_commit is not None:  # the date's Iceberg snapshot (batchml.store.tables)
            self.storage.after_commit(self.dataset, self.date, committed)
        return committed

    def _commit(self, manifest: Manifest, file_rows: dict[str, int], digests: dict[str, tuple[int, str]]) -> Manifest:
        manifest.files = []
        for p in sorted(self.path.iterdir()):
            if not p.name.startswith(("_", ".")):
                size = p.stat().st_size
                digest = written_checksum(digests, p.name, size)
                if digest is None:
                    with open(p, "rb") as fh:
                        digest = checksum(fh)
                manifest.files.append(file_entry(p.name, size, digest, file_rows.get(p.name)))
        failpoint(f"commit.{self.dataset}.files")
        manifest_tmp = self.path / ".manifest.tmp"
        manifest_tmp.write_text(manifest.to_json())
        with open(manifest_tmp) as fh:
            os.fsync(fh.fileno())
        os.rename(manifest_tmp, self.path / MANIFEST)
        failpoint(f"commit.{self.dataset}.manifest")
        self.storage._publish(
            self.path, self.storage.partition_path(self.dataset, self.date), self.replace, self.dataset, self.date
        )
        self.published = True
        return manifest


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))
