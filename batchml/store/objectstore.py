"""Date-partitioned datasets on an object store (s3://bucket/prefix), all-or-nothing per date.

Object stores have no rename, so the manifest is the commit:

1. A writer takes the date's lease, `<dataset>/_locks/date=D.json`, created with a
   conditional PUT (If-None-Match: *) and renewed while it works. A lease whose holder
   died expires after `lease_seconds`; the next writer takes it over with a PUT
   conditional on the expired lease's ETag, so two writers never both win.
2. Holding the lease, it removes what crashed writers left: staging, files in the date's
   folder that its manifest does not list, and unfinished multipart uploads.
3. It writes into `<dataset>/_staging/date=D/<run>/`, copies the staged data files into
   `<dataset>/date=D/` under names that carry the run (`part-00000-<run>.parquet`), and
   then PUTs `_MANIFEST.json`: one PUT, atomic, the commit. A replace deletes the old
   files only after the new manifest is in place.
4. A writer that stopped renewing (a frozen VM, a long pause) may wake up after another
   took its lease over. So the commit renews the lease before its copies and its manifest
   PUT, and that PUT is conditional on the manifest it read (none, or the old one's ETag):
   a writer that lost the date removes what it copied and fails, committing nothing.

A reader that goes through the manifest (`files`, `read_table`, `committed_dates`) sees a
date whole or not at all. A reader that lists the prefix (DuckDB, Spark, pyarrow on
`s3://.../predictions/`) can, while a commit is copying, see part of a new date, or the
old and the new files of a replaced date together; see the README.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

import fsspec

from batchml.base.errors import IntegrityError
from batchml.base.faults import failpoint
from batchml.store import layout
from batchml.store.layout import MANIFEST
from batchml.store.manifest import Manifest, ManifestReader, checksum, file_entry, written_checksum
from batchml.store.visibility import DateVisibility

log = logging.getLogger(__name__)


class ObjectStorage(DateVisibility, ManifestReader):
    """The Storage interface on an fsspec object store; endpoint and credentials from the environment."""

    def __init__(self, root: str, *, lease_seconds: float = 60.0):
        # No listings cache: other processes commit under our feet, and a cached listing of a
        # date's folder would hide a manifest PUT after it (fsspec answers "not found" from it).
        self.fs, path = fsspec.core.url_to_fs(root, use_listings_cache=False)
        self.protocol = root.split("://", 1)[0]
        self.base = path.rstrip("/")  # bucket/prefix
        self.root = f"{self.protocol}://{self.base}"
        self.lease_seconds = lease_seconds

    def __repr__(self) -> str:
        return f"ObjectStorage({self.root!r})"

    # -- layout ---------------------------------------------------------------------------
    def _key(self, relative: str) -> str:
        return f"{self.base}/{relative}" if relative else self.base

    def url(self, relative: str = "") -> str:
        return f"{self.protocol}://{self._key(relative)}"

    def dataset_path(self, dataset: str) -> str:
        return self.url(dataset)

    def partition_path(self, dataset: str, date: dt.date) -> str:
        return self.url(layout.partition(dataset, date))

    partition_url = partition_path

    def _partition_key(self, dataset: str, date: dt.date) -> str:
        return self._key(layout.partition(dataset, date))

    # -- reading --------------------------------------------------------------------------
    # What is in the store; readers go through batchml.store.visibility (`manifest`, `is_committed`, `committed_dates`).
    def _raw_manifest(self, dataset: str, date: dt.date) -> Manifest | None:
        try:
            return Manifest.from_json(
                self.fs.cat_file(self._key(layout.manifest(dataset, date))).decode(),
                self.url(layout.manifest(dataset, date)),
            )
        except FileNotFoundError:
            return None

    def _raw_committed(self, dataset: str, date: dt.date) -> bool:
        return self.fs.exists(self._key(layout.manifest(dataset, date)))

    def _raw_dates(self, dataset: str) -> set[dt.date]:
        """Every date of a dataset with a manifest, from one listing."""
        out = set()
        for key in self.fs.glob(f"{self._key(dataset)}/{layout.DATE_GLOB}/{MANIFEST}"):
            date = layout.date_of(key.rsplit("/", 1)[0])
            if date:
                out.add(date)
        return out

    # Files of a crashed writer that its manifest does not list may sit in a date's folder
    # until the next writer of the date removes them: not a fault here.
    strict_listing = False

    def _data_sizes(self, dataset: str, date: dt.date) -> dict[str, int]:
        """The data files in a date's folder, name -> size, from one listing."""
        try:
            infos = self.fs.ls(self._partition_key(dataset, date), detail=True)
        except FileNotFoundError:
            return {}
        sizes = {info["name"].rsplit("/", 1)[1]: info["size"] for info in infos}
        return {name: size for name, size in sizes.items() if not name.startswith(("_", "."))}

    def _open_data(self, dataset: str, date: dt.date, name: str) -> IO[bytes]:
        return self.fs.open(
            f"{self._partition_key(dataset, date)}/{name}", "rb", block_size=1 << 22, cache_type="readahead"
        )

    def read_text(self, relative: str) -> str | None:
        try:
            return self.fs.cat_file(self._key(relative)).decode()
        except FileNotFoundError:
            return None

    def list_names(self, relative: str) -> list[str]:
        try:
            entries = self.fs.ls(self._key(relative), detail=False)
        except FileNotFoundError:
            return []
        return sorted(name for name in (e.rstrip("/").rsplit("/", 1)[1] for e in entries) if not name.startswith("."))

    def open(self, relative: str, mode: str = "rb") -> IO[Any]:
        return self.fs.open(self._key(relative), mode)

    def delete(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._key(relative))

    # -- writing --------------------------------------------------------------------------
    def write_text(self, relative: str, text: str) -> None:
        """One PUT: readers see the old or the new text."""
        self.fs.pipe_file(self._key(relative), text.encode())

    def write_once(self, relative: str, text: str) -> bool:
        """Create a small object unless it exists (a conditional PUT); False when another run made it first."""
        return self._put_if(self._key(relative), text.encode(), none_match=True) is not None

    def _put_if(self, key: str, body: bytes, *, none_match: bool = False, match: str | None = None) -> str | None:
        """PUT `body` if the key does not exist (`none_match`) or still has ETag `match`; the new ETag, or None."""
        bucket, name = key.split("/", 1)
        condition = {"IfNoneMatch": "*"} if none_match else {"IfMatch": match}
        try:
            answer = self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=body, **condition)
        except FileExistsError:  # s3fs's name for 412 PreconditionFailed
            return None
        except OSError as exc:
            if "ConditionalRequestConflict" in repr(exc.__cause__):  # a concurrent conditional write won
                return None
            raise
        return answer["ETag"]

    @contextlib.contextmanager
    def writer(self, dataset: str, date: dt.date, *, replace: bool = False) -> Iterator[ObjectPartitionWriter]:
        failpoint(f"writer.{dataset}")
        with self._lease(dataset, date) as still_held:
            self._recover(dataset, date)
            staging = self._key(f"{layout.staging(dataset, date)}/{uuid.uuid4().hex[:12]}")
            writer = ObjectPartitionWriter(self, dataset, date, staging, replace=replace, still_held=still_held)
            try:
                yield writer
            finally:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(staging, recursive=True)

    @contextlib.contextmanager
    def _lease(self, dataset: str, date: dt.date) -> Iterator[Callable[[], None]]:
        """Hold the date's lease for the block, renewing it at a third of its length.

        Yields `still_held()`: renews the lease now, and raises IntegrityError if it was lost.
        """
        key = self._key(layout.lock(dataset, date, ".json"))
        with self._held(key, f"{dataset} {date}", self.partition_url(dataset, date)) as still_held:
            yield still_held

    @contextlib.contextmanager
    def date_lock(self, dataset: str, date: dt.date) -> Iterator[None]:
        """Hold the date's lease for the block, as its writer does (a table heal takes it: batchml.store.tables)."""
        with self._lease(dataset, date):
            yield

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold the lease `name` for the block: one writer of a shared document at a time."""
        with self._held(self._key(layout.named_lock(name, ".json")), name, self.url(layout.named_lock(name, ""))):
            yield

    @contextlib.contextmanager
    def _held(self, key: str, what: str, where: str) -> Iterator[Callable[[], None]]:
        """Hold the lease object `key` (of `what`, at `where`) for the block, renewed at a third of its length."""
        owner = uuid.uuid4().hex
        held: dict[str, Any] = {"etag": self._acquire(key, owner), "renewed": time.monotonic(), "lost": False}
        guard = threading.Lock()  # the renewing thread and the writer's checks
        stop = threading.Event()

        def renew() -> bool:
            with guard:
                if held["lost"]:
                    return False
                try:
                    etag = self._put_if(key, self._lease_body(owner), match=held["etag"])
                except Exception as exc:  # the store not answering: try again while the lease lasts
                    if time.monotonic() - held["renewed"] < self.lease_seconds:
                        log.warning("%s: could not renew the lease of %s: %s", self.root, what, exc)
                        return True
                    etag = None
                if etag is not None:
                    held.update(etag=etag, renewed=time.monotonic())
                    return True
                held["lost"] = True
                log.error("%s: lost the lease of %s", self.root, what)
                return False

        def keep() -> None:
            while not stop.wait(self.lease_seconds / 3) and renew():
                pass

        def still_held() -> None:
            if not renew():
                raise IntegrityError(f"{where}: lost the lease of {what} to another writer; nothing committed")

        thread = threading.Thread(target=keep, name=f"lease {what}", daemon=True)
        thread.start()
        try:
            yield still_held
        finally:
            stop.set()
            thread.join()
            if not held["lost"]:
                bucket, name = key.split("/", 1)
                with contextlib.suppress(Exception):
                    self.fs.call_s3("delete_object", Bucket=bucket, Key=name, IfMatch=held["etag"])

    def _lease_body(self, owner: str) -> bytes:
        return json.dumps({"owner": owner, "expires": time.time() + self.lease_seconds}).encode()

    def _acquire(self, key: str, owner: str) -> str:
        wait = 0.05
        while True:
            etag = self._put_if(key, self._lease_body(owner), none_match=True)
            if etag is not None:
                return etag
            try:
                info = self.fs.info(key)
                held = json.loads(self.fs.cat_file(key))
            except FileNotFoundError:
                continue  # released meanwhile: try again at once
            if held["expires"] < time.time():  # its holder died: take it over, unless another run just did
                etag = self._put_if(key, self._lease_body(owner), match=info["ETag"])
                if etag is not None:
                    log.warning("%s: took over an expired lease (%s)", self.root, key)
                    return etag
            time.sleep(wait)  # held by a live run: wait for it, as a file lock would
            wait = min(wait * 2, 1.0)

    def _recover(self, dataset: str, date: dt.date) -> None:
        """Under the lease: remove staging, unlisted files and unfinished uploads of crashed writers."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._key(layout.staging(dataset, date)), recursive=True)
        folder = self._partition_key(dataset, date)
        manifest = self._raw_manifest(dataset, date)
        listed = {f["path"] for f in manifest.files} if manifest else set()
        with contextlib.suppress(FileNotFoundError):
            for key in self.fs.ls(folder, detail=False):
                name = key.rsplit("/", 1)[1]
                if not name.startswith("_") and name not in listed:
                    self.fs.rm_file(key)
        bucket, prefix = self._key(dataset).split("/", 1)
        uploads = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=f"{prefix}/").get("Uploads", [])
        for upload in uploads:
            if f"/{layout.date_dir(date)}/" in upload["Key"]:
                self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


class ObjectPartitionWriter:
    """A date being written on an object store: stage files at `url`, then `commit()`."""

    def __init__(
        self,
        storage: ObjectStorage,
        dataset: str,
        date: dt.date,
        staging: str,
        *,
        replace: bool,
        still_held: Callable[[], None] = lambda: None,
    ) -> None:
        self.storage, self.dataset, self.date, self.staging, self.replace = storage, dataset, date, staging, replace
        self.still_held = still_held  # raises once another writer has taken the date's lease over
        self.run = staging.rsplit("/", 1)[1][:8]
        self.published = False

    @property
    def url(self) -> str:
        return f"{self.storage.protocol}://{self.staging}"

    def open(self, name: str, mode: str = "wb") -> IO[Any]:
        return self.storage.fs.open(f"{self.staging}/{name}", mode)

    @property
    def committed(self) -> bool:
        return not self.replace and self.storage._raw_committed(self.dataset, self.date)

    def commit(
        self,
        manifest: Manifest,
        file_rows: dict[str, int] | None = None,
        digests: dict[str, tuple[int, str]] | None = None,
    ) -> Manifest:
        """Copy the staged files into the date's folder under run-unique names, then PUT the manifest.

        The manifest records each file's size and sha256: the one its writer took of the bytes
        it wrote (`digests`: name -> (size, sha256)), else streamed from the staged object (one
        read, in 4 MiB blocks) before its server-side copy.
        """
        fs, file_rows, digests = self.storage.fs, file_rows or {}, digests or {}
        folder = self.storage._partition_key(self.dataset, self.date)
        try:
            seen = fs.info(f"{folder}/{MANIFEST}")["ETag"]  # before reading it: the PUT below is conditional on it
        except FileNotFoundError:
            seen = None
        old = self.storage._raw_manifest(self.dataset, self.date)
        if old is not None and not self.replace:
            raise IntegrityError(
                f"{self.storage.partition_url(self.dataset, self.date)}: already committed; refusing to replace it"
            )
        self.still_held()
        manifest.files, copied = [], []
        try:
            for info in sorted(fs.ls(self.staging, detail=True), key=lambda i: i["name"]):
                name = info["name"].rsplit("/", 1)[1]
                if name.startswith(("_", ".")):
                    fs.copy(info["name"], f"{folder}/{name}")  # side files (the profile): one PUT each
                    continue
                stem, dot, ext = name.partition(".")
                final = f"{stem}-{self.run}{dot}{ext}"
                digest = written_checksum(digests, name, info["size"])
                if digest is None:
                    with fs.open(info["name"], "rb", block_size=1 << 22, cache_type="readahead") as fh:
                        digest = checksum(fh)
                copied.append(f"{folder}/{final}")
                fs.copy(info["name"], copied[-1])
                manifest.files.append(file_entry(final, info["size"], digest, file_rows.get(name)))
            # Staging is not needed once copied: removed before the commit, a writer killed
            # right after its manifest PUT leaves nothing behind but its (expiring) lease.
            fs.rm(self.staging, recursive=True)
            failpoint(f"commit.{self.dataset}.files")
            self.still_held()
            # The commit: a PUT that fails if another writer committed since `seen`.
            if (
                self.storage._put_if(
                    f"{folder}/{MANIFEST}", manifest.to_json().encode(), none_match=seen is None, match=seen
                )
                is None
            ):
                raise IntegrityError(
                    f"{self.storage.partition_url(self.dataset, self.date)}: another writer committed the date "
                    "meanwhile; nothing committed"
                )
        except BaseException:
            for key in copied:  # named after this run: no other writer's manifest lists them
                with contextlib.suppress(Exception):
                    fs.rm_file(key)
            raise
        failpoint(f"commit.{self.dataset}.manifest")
        if old is not None:
            keep = {f["path"] for f in manifest.files}
            for f in old.files:
                if f["path"] not in keep:
                    with contextlib.suppress(FileNotFoundError):
                        fs.rm_file(f"{folder}/{f['path']}")
        self.published = True
        if self.storage.after_commit is not None:  # the date's Iceberg snapshot (batchml.store.tables)
            self.storage.after_commit(self.dataset, self.date, manifest)
        return manifest
