"""A date's OVERWRITE snapshot that keeps one manifest per month, so a year of daily commits reads like a month.

pyiceberg's overwrite writes a manifest for the files it adds and one for the entries it deletes, and carries every
other manifest over: after a year of daily commits the current snapshot lists 365 manifests (more with re-scores),
and every read and every commit reads that whole manifest list. Iceberg's remedy is merging manifests on commit
(`commit.manifest-merge.enabled`), which pyiceberg 0.12 applies to appends only, packing by size into one manifest for
the whole table; a reader of one date would then read every date's entries.

`DateOverwrite` is pyiceberg's overwrite (its deletes, validation and retries) with one more step before the manifest
list is written: the data manifests whose partitions lie within one calendar month are merged into one manifest for
that month (pyiceberg's own merge of a bin: the entries this snapshot added or deleted keep their status, the others
become EXISTING and entries deleted by earlier snapshots are dropped), and a manifest of earlier snapshots with no
live file left is not carried over (the manifests this snapshot wrote and merged are deleted: nothing lists them).
The current snapshot then lists one manifest per month holding data, a read of a
date opens the one manifest of its month (at most 31 dates' entries), and a commit rewrites only its month's.
A manifest whose partitions span months (written by another engine) is carried over as it is.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from pyiceberg.conversions import from_bytes
from pyiceberg.manifest import ManifestContent, ManifestFile
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _ManifestMergeManager, _OverwriteFiles
from pyiceberg.types import DateType

EPOCH = dt.date(1970, 1, 1)


class DateOverwrite(_OverwriteFiles):
    """An overwrite of one date's files whose snapshot lists one data manifest per month."""

    def _process_manifests(self, manifests: list[ManifestFile]) -> list[ManifestFile]:
        kept = [
            m
            for m in manifests
            if m.content != ManifestContent.DATA or m.added_snapshot_id == self.snapshot_id or _live(m)
        ]
        months: dict[tuple[int, int, int], list[ManifestFile]] = defaultdict(list)
        out: list[ManifestFile] = []
        for manifest in kept:
            month = _month(manifest) if manifest.content == ManifestContent.DATA else None
            if month is None:
                out.append(manifest)
            else:
                months[(manifest.partition_spec_id, *month)].append(manifest)
        merger = _ManifestMergeManager(
            target_size_bytes=0, min_count_to_merge=2, merge_enabled=True, snapshot_producer=self
        )
        for (spec_id, *_), group in sorted(months.items()):
            if len(group) == 1:
                out.append(group[0])
                continue
            out.append(merger._create_manifest(spec_id, group))
            for merged in group:  # this snapshot's own manifests, now in the month's: no snapshot will list them
                if merged.manifest_path in self._written_manifests:
                    self._written_manifests.remove(merged.manifest_path)
                    self._io.delete(merged.manifest_path)
        return out


def date_overwrite(tx: Any, io: Any, summary: dict[str, str]) -> DateOverwrite:
    """The producer `tx.update_snapshot(snapshot_properties=summary).overwrite()` gives, merging by month."""
    has_data = tx.table_metadata.snapshot_by_name("main") is not None
    return DateOverwrite(
        operation=Operation.OVERWRITE if has_data else Operation.APPEND,
        transaction=tx,
        io=io,
        snapshot_properties=summary,
    )


def _live(manifest: ManifestFile) -> bool:
    """Whether a manifest may hold a live file (counts unknown: assumed so)."""
    if manifest.added_files_count is None or manifest.existing_files_count is None:
        return True
    return manifest.added_files_count + manifest.existing_files_count > 0


def date_bounds(manifest: ManifestFile) -> tuple[dt.date, dt.date] | None:
    """The first and last date a data manifest's entries hold, by its first partition field's bounds in the manifest
    list (a date, in days since 1970); None when they are not known."""
    summary = manifest.partitions[0] if manifest.partitions else None
    if summary is None or summary.lower_bound is None or summary.upper_bound is None:
        return None
    try:
        low, high = (int(from_bytes(DateType(), bound)) for bound in (summary.lower_bound, summary.upper_bound))
        return EPOCH + dt.timedelta(days=low), EPOCH + dt.timedelta(days=high)
    except (ValueError, TypeError, OverflowError):
        return None


def _month(manifest: ManifestFile) -> tuple[int, int] | None:
    """The (year, month) all of a data manifest's partitions lie in; None when they span months or are not known."""
    bounds = date_bounds(manifest)
    if bounds is None or (bounds[0].year, bounds[0].month) != (bounds[1].year, bounds[1].month):
        return None
    return bounds[0].year, bounds[0].month
