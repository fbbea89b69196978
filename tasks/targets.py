"""Luigi targets over the batchml storage contract."""

from __future__ import annotations

import datetime as dt

import luigi

from tasks.config import make_storage


class PartitionTarget(luigi.Target):
    """A committed date of a dataset: it exists once its manifest is published."""

    def __init__(self, dataset: str, date: dt.date):
        self.dataset, self.date = dataset, date

    def exists(self) -> bool:
        return make_storage().is_committed(self.dataset, self.date)

    @property
    def path(self) -> str:
        return str(make_storage().partition_path(self.dataset, self.date))

    def manifest(self):
        return make_storage().verify(self.dataset, self.date)


class StorageFileTarget(luigi.Target):
    """A small file under the storage root (a pin, a report), written atomically by batchml."""

    def __init__(self, relative: str):
        self.relative = relative

    def exists(self) -> bool:
        return make_storage().read_text(self.relative) is not None

    def read(self) -> str | None:
        return make_storage().read_text(self.relative)

    @property
    def path(self) -> str:
        return make_storage().url(self.relative)
