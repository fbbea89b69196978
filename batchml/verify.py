"""Checking committed dates against their manifests: `batchml verify ROOT --start D --stop D`.

For every committed date of the datasets in [start, stop), each file the manifest lists
must be present, of its recorded size and sha256, and readable as Parquet with its page
checksums verified (one row group at a time). Works on any storage root (a folder or
s3://...); reads through the manifests only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from batchml.layout import DATASETS, MANIFEST
from batchml.manifest import Problem


@dataclass
class Verification:
    """What a verify run checked and the bad files it found, each as one line naming its dataset, date and file."""

    dates: int = 0
    files: int = 0
    bad: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad

    def summary(self, datasets: tuple[str, ...], start: dt.date, stop: dt.date) -> str:
        scope = f"{', '.join(datasets)} in [{start}, {stop})"
        if self.ok:
            return f"verified {self.files} files of {self.dates} committed dates of {scope}: all match their manifests"
        return f"{len(self.bad)} bad files among {self.files} files of {self.dates} committed dates of {scope}"


def verify_dates(storage, datasets: tuple[str, ...] = DATASETS, start: dt.date | None = None, stop: dt.date | None = None) -> Verification:
    """Check every committed date of `datasets` in [start, stop) (stop exclusive): sizes, sha256, Parquet page checksums."""
    out = Verification()
    for dataset in datasets:
        dates = sorted(d for d in storage.committed_dates(dataset) if (start is None or d >= start) and (stop is None or d < stop))
        for date in dates:
            out.dates += 1
            try:
                manifest = storage.committed_manifest(dataset, date)
                problems = storage.problems(dataset, date, checksums=True, readable=True)
            except (ValueError, TypeError, KeyError) as exc:  # a manifest that is not valid JSON or lacks fields
                out.bad.append(Problem(dataset, date, MANIFEST, f"unreadable manifest: {exc}").line(f"{storage.partition_url(dataset, date)}/{MANIFEST}"))
                continue
            out.files += len(manifest.files)
            for p in problems:
                out.bad.append(p.line(f"{storage.partition_url(dataset, date)}/{p.path}"))
    return out
