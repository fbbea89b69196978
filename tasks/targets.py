"""Luigi targets over the batchml storage contract: each loads the value it holds and dumps it whole.

A task reads what it needs from `self.input()` and writes `self.output()`; the path of
every target comes from batchml.store.layout, and every write goes through the storage
(atomic on every kind of root).
"""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.model.pin import ModelPin
from batchml.store import layout
from batchml.store.documents import read_document, write_document
from batchml.store.manifest import Manifest
from tasks.config import make_storage
from tasks.identity import InProject


class PartitionTarget(luigi.Target):
    """A committed date of a dataset: it exists once its manifest is published; it loads as that manifest."""

    def __init__(self, dataset: str, date: dt.date):
        self.dataset, self.date = dataset, date

    def exists(self) -> bool:
        """Whether the date's manifest is published (the date is committed whole)."""
        return make_storage().is_committed(self.dataset, self.date)

    @property
    def path(self) -> str:
        """The date's partition folder."""
        return str(make_storage().partition_path(self.dataset, self.date))

    def load(self) -> Manifest:
        """The date's manifest, verified against the files it lists (IntegrityError names what differs)."""
        return make_storage().verify(self.dataset, self.date)


class StorageFileTarget(luigi.Target):
    """A small file under the storage root (a page), written whole by batchml."""

    def __init__(self, relative: str):
        self.relative = relative

    def exists(self) -> bool:
        """Whether the file was written."""
        return make_storage().read_text(self.relative) is not None

    def read(self) -> str | None:
        """The file's text, or None when it was not written."""
        return make_storage().read_text(self.relative)

    def dump(self, text: str) -> None:
        """Write the file whole."""
        make_storage().write_text(self.relative, text)

    @property
    def path(self) -> str:
        """The file's URL."""
        return make_storage().url(self.relative)


class PinTarget(StorageFileTarget):
    """pins/date=D.json: the model version a date is scored with; it loads as a ModelPin."""

    def __init__(self, date: dt.date):
        super().__init__(layout.pin(date))
        self.date = date

    def load(self) -> ModelPin:
        """The date's pin; FileNotFoundError when the date has none yet."""
        text = self.read()
        if text is None:
            raise FileNotFoundError(f"{self.path}: {self.date} has no pinned model; run ResolveModel first")
        return ModelPin.from_json(text)

    def dump(self, pin: ModelPin) -> None:
        """Pin the date once: a concurrent run that pinned first keeps its pin."""
        make_storage().write_once(self.relative, pin.to_json())

    def replace(self, pin: ModelPin) -> None:
        """Pin the date again (a re-score on request)."""
        make_storage().write_text(self.relative, pin.to_json())


class DocumentTarget(StorageFileTarget):
    """monitoring/date=D/<name>.json: a date's monitoring document; it loads as the document."""

    def __init__(self, date: dt.date, name: str):
        super().__init__(layout.monitoring_file(date, name))
        self.date, self.name = date, name

    def load(self) -> dict | None:
        """The document, or None when it was not written."""
        return read_document(make_storage(), self.relative)

    def dump(self, body: dict) -> None:
        """Write the document whole, redacted."""
        write_document(make_storage(), self.relative, body)


class PartitionTask(InProject, luigi.Task):
    """A task whose output is a date's committed partition of `dataset` (features, labels, predictions)."""

    date = luigi.DateParameter()
    dataset: str  # set by each task

    def output(self) -> PartitionTarget:
        """The date's committed partition."""
        return PartitionTarget(self.dataset, self.date)


class DocumentTask(InProject, luigi.Task):
    """A task whose output is one monitoring document of a date, monitoring/date=D/<document>."""

    date = luigi.DateParameter()
    document: str  # set by each task: drift.json, metrics.json, ...

    def output(self) -> DocumentTarget:
        """The date's document."""
        return DocumentTarget(self.date, self.document)
