"""The manifest of a committed date, and reading and checking dates through it.

A committed date's folder holds its data files and `_MANIFEST.json`, written last. The
manifest lists every data file with its size and the sha256 of its content, so a date is
whole if and only if its manifest exists and every listed file is there with that size and
that checksum. Both storage kinds (batchml.store.storage, batchml.store.objectstore) read and check
dates through `ManifestReader`; neither imports the other.

Checks come in two strengths: `verify(dataset, date)` compares sizes (one listing, cheap
enough for every run of a task), `verify(..., checksums=True)` streams every file through
sha256 (`batchml verify`). Scoring checks the sha256 of the bytes it reads as it reads them,
and writers hash the bytes they write (`parquet_file`), so a commit need not read them back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any

from batchml.base.errors import IntegrityError
from batchml.store.layout import MANIFEST

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

CHECKSUM = "sha256"  # hardware-accelerated (SHA-NI) in OpenSSL: faster here than blake2b, and what model pins use
_CHUNK = 1 << 20


@dataclass
class Manifest:
    """What a committed date holds and where it came from."""

    dataset: str
    date: str
    rows: dict[str, int]
    schema_hash: str
    input_fingerprint: str
    code_version: str
    run_id: str
    files: list[dict] = field(default_factory=list)
    model: dict | None = None
    extra: dict = field(default_factory=dict)
    # What shaped the outputs (batchml.base.provenance.shaped_by): features and quarantine record it
    # at extraction. Empty in manifests written before it was recorded: unknown, never "changed".
    shaped_by: dict = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: object = "") -> Manifest:
        """A manifest from its text; text that is not one (cut short, not JSON, fields missing) raises IntegrityError
        naming `where`."""
        try:
            return cls(**json.loads(text))
        except (
            ValueError,
            TypeError,
        ) as exc:  # json's JSONDecodeError is a ValueError; a missing or unknown field a TypeError
            raise UnreadableManifest(str(where or MANIFEST), _first_line(exc)) from exc


class UnreadableManifest(IntegrityError):
    """A committed date's manifest that cannot be read (cut short, not JSON, fields missing): the date is damaged, and
    this names its file."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: unreadable manifest: {reason}")
        self.where, self.reason = where, reason


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def checksum(fh: IO[bytes]) -> str:
    """The sha256 of a binary file object's content, read in 1 MiB chunks (never whole into memory)."""
    digest = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def parquet_file(table: pa.Table, **options: Any) -> tuple[pa.Buffer, str]:
    """`table` as the bytes of one Parquet file with page checksums (and pyarrow's `options`), made in memory, and the
    sha256 of those bytes: a writer writes them whole and hands (size, sha256) to the commit (`written_checksum`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, write_page_checksum=True, **options)
    data = sink.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def written_checksum(digests: dict[str, tuple[int, str]], name: str, size: int) -> str | None:
    """The sha256 a staged file's writer took of the bytes it wrote (`digests`: name -> (size, sha256)); None when it
    took none, or the file's size is not what it wrote (the commit then reads the file)."""
    known = digests.get(name)
    return known[1] if known is not None and known[0] == size else None


def file_entry(name: str, size: int, sha256: str, rows: int | None = None) -> dict:
    """A data file as the manifest lists it."""
    entry = {"path": name, "size": int(size), CHECKSUM: sha256}
    if rows is not None:
        entry["rows"] = int(rows)
    return entry


@dataclass(frozen=True)
class Problem:
    """One committed file that disagrees with its manifest or cannot be read."""

    dataset: str
    date: dt.date
    path: str  # the file's name in the date's folder
    what: str  # missing | unlisted | resized | checksum | unreadable: <reader error>

    def line(self, url: str) -> str:
        """`<dataset> <date>: <file url>: <what is wrong>`, as `batchml verify` prints it."""
        described = {
            "unlisted": f"not listed in {MANIFEST}",
            "resized": f"size differs from {MANIFEST}",
            "checksum": f"sha256 differs from {MANIFEST}",
        }
        return f"{self.dataset} {self.date}: {url}: {described.get(self.what, self.what)}"


class ManifestReader:
    """Reading and checking committed dates through their manifests, for every kind of storage root.

    A subclass provides `manifest`, `partition_url`, `_data_sizes` (the data files in a
    date's folder, name -> size), `_open_data` (one of them, binary) and `strict_listing`
    (whether a file the manifest does not list is a fault, or a leftover a writer removes).
    """

    strict_listing = True
    # Called as after_commit(dataset, date, manifest) once a date's commit is published, still under the date's lock or
    # lease; batchml.project.context sets it to register the date in its Iceberg table (batchml.store.tables).
    after_commit: Callable[[str, dt.date, Manifest], object] | None = None
    # The Iceberg tables batchml reads committed dates through (batchml.store.tables.Tables), set by
    # batchml.project.context when [tables] is enabled; None: the manifests and the folders alone.
    tables: Any = None

    if TYPE_CHECKING:  # what a subclass provides (declared for the type checker only)

        def manifest(self, dataset: str, date: dt.date) -> Manifest | None: ...

        def partition_url(self, dataset: str, date: dt.date) -> str: ...

        def _data_sizes(self, dataset: str, date: dt.date) -> dict[str, int]: ...

        def _open_data(self, dataset: str, date: dt.date, name: str) -> IO[bytes]: ...

    def committed_manifest(self, dataset: str, date: dt.date) -> Manifest:
        manifest = self.manifest(dataset, date)
        if manifest is None:
            raise IntegrityError(f"{self.partition_url(dataset, date)}: not committed (no {MANIFEST})")
        return manifest

    def files(self, dataset: str, date: dt.date) -> list[str]:
        """The data files of a committed date, as its manifest lists them: what a safe reader reads. With `tables`
        set, the table's files of the date, healed first where the table is not at the manifest."""
        manifest = self.committed_manifest(dataset, date)
        through = None if self.tables is None else self.tables.files_of(self, dataset, date, manifest)
        if through is not None:
            return through
        return [f"{self.partition_url(dataset, date)}/{f['path']}" for f in manifest.files]

    def read_table(self, dataset: str, date: dt.date, columns: list[str] | None = None) -> pd.DataFrame:
        """A committed date as one pandas frame, read through its manifest with Parquet page checksums verified.

        A file that cannot be read raises IntegrityError naming the dataset, the date and the file.
        """
        import pandas as pd

        frames = []
        for url in self.files(dataset, date):
            try:
                frames.append(pd.read_parquet(url, columns=columns, page_checksum_verification=True))
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid and ArrowIOError are both
                raise IntegrityError(f"{dataset} {date}: {url}: unreadable: {exc}") from exc
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def problems(
        self, dataset: str, date: dt.date, *, checksums: bool = False, readable: bool = False
    ) -> list[Problem]:
        """How a committed date's files disagree with its manifest: sizes, then sha256 and Parquet readability if
        asked."""
        return self._problems(
            dataset, date, self.committed_manifest(dataset, date), checksums=checksums, readable=readable
        )

    def _problems(
        self, dataset: str, date: dt.date, manifest: Manifest, *, checksums: bool, readable: bool
    ) -> list[Problem]:
        found = self._data_sizes(dataset, date)
        listed = {f["path"]: f for f in manifest.files}
        out = [Problem(dataset, date, name, "missing") for name in sorted(set(listed) - set(found))]
        if self.strict_listing:
            out += [Problem(dataset, date, name, "unlisted") for name in sorted(set(found) - set(listed))]
        for name in sorted(set(listed) & set(found)):
            if found[name] != listed[name]["size"]:
                out.append(Problem(dataset, date, name, "resized"))
            elif (
                checksums
                and listed[name].get(CHECKSUM)
                and self._checksum(dataset, date, name) != listed[name][CHECKSUM]
            ):
                out.append(Problem(dataset, date, name, "checksum"))
            elif readable and name.endswith(".parquet"):
                error = self._unreadable(dataset, date, name)
                if error:
                    out.append(Problem(dataset, date, name, f"unreadable: {error}"))
        return out

    def verify(self, dataset: str, date: dt.date, *, checksums: bool = False) -> Manifest:
        """The manifest of a date, after checking that its files agree with it (sizes; sha256 too with `checksums`)."""
        manifest = self.committed_manifest(dataset, date)
        problems = self._problems(dataset, date, manifest, checksums=checksums, readable=False)
        if problems:
            kinds: dict[str, list[str]] = {}
            for p in problems:
                kinds.setdefault({"checksum": "checksum differs"}.get(p.what, p.what), []).append(p.path)
            listed = ", ".join(f"{kind} {names}" for kind, names in kinds.items())
            raise IntegrityError(f"{self.partition_url(dataset, date)}: files disagree with {MANIFEST} ({listed})")
        return manifest

    def _checksum(self, dataset: str, date: dt.date, name: str) -> str:
        with self._open_data(dataset, date, name) as fh:
            return checksum(fh)

    def _unreadable(self, dataset: str, date: dt.date, name: str) -> str | None:
        """The reader's error for a Parquet file, read one row group at a time with page checksums verified; None if it
        reads."""
        import pyarrow.parquet as pq

        try:
            with self._open_data(dataset, date, name) as fh:
                parquet = pq.ParquetFile(fh, page_checksum_verification=True)
                for i in range(parquet.num_row_groups):
                    parquet.read_row_group(i)
        except (OSError, ValueError) as exc:
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None
