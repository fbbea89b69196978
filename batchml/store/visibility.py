"""Which committed dates a reader sees: a date's quarantine, features and predictions appear together.

A date's quarantine and features are written by one run, in two commits (one per
dataset), and its predictions later by another task. So that no reader sees one of them
without the others, the features commit is the one marker of a date:

1. Before its first commit, the extraction writes `features/_pending/date=D.json`
   (batchml.store.layout.pending), then commits quarantine, then features, then removes the
   marker. While the marker exists, none of the date's features, quarantine or
   predictions is visible: a run killed anywhere in between leaves the date absent (or,
   when it was replacing the date, absent until the next run re-extracts it).
2. A quarantine is visible only while the date's features are committed: one left by a
   run killed between the two commits before this marker existed is not shown.
3. Predictions are committed by a later task, which reads the date's features through
   this view first: no run commits predictions of a date whose features are not visible.
   Between the features commit and the predictions commit a date has features and
   quarantine and no predictions: the date is extracted and not yet scored, a state of
   its own, not half a date. Predictions whose features were deleted afterwards are
   damage, which `batchml verify` reports (batchml.store.verify), not a state of the protocol.

Labels are a feed of their own and are not tied to the marker.

Both storage kinds (batchml.store.storage, batchml.store.objectstore) read through this class; what
they provide is `_raw_manifest` (the manifest file as it is), `_raw_committed` and
`_raw_dates`. Writers use the raw view: it is what is on disk.

Readers that list a dataset's folder themselves (pyarrow, DuckDB on `<root>/quarantine/`)
see each dataset's dates whole (one rename) but not the marker; `python -m batchml.store.reader`
lists the files of the dates this class shows.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from batchml.store import layout
from batchml.store.layout import FEATURES, PREDICTIONS, QUARANTINE

if TYPE_CHECKING:
    from batchml.store.manifest import Manifest

# The datasets that appear together; labels are a separate feed.
TOGETHER = (FEATURES, QUARANTINE, PREDICTIONS)


class DateVisibility:
    """The reader's view of committed dates, over the raw view a storage kind provides."""

    if TYPE_CHECKING:  # what a storage kind provides (declared for the type checker only)
        tables: Any  # batchml.store.tables.Tables, or None (batchml.store.manifest.ManifestReader)

        def _raw_manifest(self, dataset: str, date: dt.date) -> Manifest | None: ...

        def _raw_committed(self, dataset: str, date: dt.date) -> bool: ...

        def _raw_dates(self, dataset: str) -> set[dt.date]: ...

        def read_text(self, relative: str) -> str | None: ...

        def list_names(self, relative: str) -> list[str]: ...

    def manifest(self, dataset: str, date: dt.date) -> Manifest | None:
        """The committed manifest of a date, or None when the date is not committed or not visible."""
        manifest = self._raw_manifest(dataset, date)
        return None if manifest is None or self._hidden(dataset, date) else manifest

    def is_committed(self, dataset: str, date: dt.date) -> bool:
        return self._raw_committed(dataset, date) and not self._hidden(dataset, date)

    def committed_dates(self, dataset: str) -> set[dt.date]:
        """Every visible committed date of a dataset: its dates, less the markers' and (for quarantine) those without
        features. A dataset's dates come from its Iceberg table when `tables` is set (batchml.store.tables), else
        from a listing of its folder."""
        dates = self._dates(dataset)
        if dataset not in TOGETHER or not dates:
            return dates
        dates -= self.pending_dates()
        if dataset == QUARANTINE:
            dates &= self._dates(FEATURES)
        return dates

    def _dates(self, dataset: str) -> set[dt.date]:
        listed = None if self.tables is None else self.tables.dates(self, dataset, lambda: self._raw_dates(dataset))
        return self._raw_dates(dataset) if listed is None else listed

    def pending_dates(self) -> set[dt.date]:
        """Dates whose quarantine and features commits were begun and not finished (a run killed between them, or one
        under way)."""
        return {
            d for d in (layout.date_of(name.removesuffix(".json")) for name in self.list_names(layout.PENDING)) if d
        }

    def is_pending(self, date: dt.date) -> bool:
        return self.read_text(layout.pending(date)) is not None

    def _hidden(self, dataset: str, date: dt.date) -> bool:
        if dataset not in TOGETHER:
            return False
        if self.is_pending(date):
            return True
        return dataset == QUARANTINE and not self._raw_committed(FEATURES, date)
