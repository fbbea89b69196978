"""Which dates of a range need work: missing, stale (scored by another version), failed, corrupt, changed at the source.

A scored date is corrupt when a file of its predictions or features disagrees with its
manifest (size or sha256): read once per date, so a dry run names every bad file. A date
has changed when its source's fingerprint is not the one its features were extracted from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from batchml.failures import FAILURE
from batchml.layout import FEATURES, PREDICTIONS, monitoring_file
from batchml.monitoring import has_failed, read_json
from batchml.sources import Source
from batchml.storage import Storage


@dataclass
class BackfillPlan:
    missing: list[dt.date] = field(default_factory=list)
    stale: list[dt.date] = field(default_factory=list)
    failed: list[dt.date] = field(default_factory=list)
    corrupt: dict[dt.date, list[str]] = field(default_factory=dict)  # date -> "<dataset>/<file>: what"
    changed: list[dt.date] = field(default_factory=list)

    def lines(self, champion: str | None) -> list[str]:
        def show(dates):
            return ", ".join(d.isoformat() for d in dates) or "none"

        return [
            f"missing ({len(self.missing)}): {show(self.missing)}",
            f"stale, scored by another version than the champion v{champion} ({len(self.stale)}): {show(self.stale)}",
            f"failed or unfinished ({len(self.failed)}): {show(self.failed)}",
            f"corrupt, files disagree with their manifests ({len(self.corrupt)}): "
            + ("; ".join(f"{d} ({', '.join(bad)})" for d, bad in sorted(self.corrupt.items())) or "none"),
            f"changed at the source since extraction ({len(self.changed)}): {show(self.changed)}",
        ]


def plan(storage: Storage, dates: list[dt.date], champion_version: str | None, source: Source | None = None) -> BackfillPlan:
    """Classify `dates` from one listing of predictions plus each scored date's results (and, with `source`, its fingerprints)."""
    scored = storage.committed_dates(PREDICTIONS)
    out = BackfillPlan()
    for date in dates:
        failure = read_json(storage, monitoring_file(date, FAILURE))
        if date not in scored:
            (out.failed if has_failed(failure, None) else out.missing).append(date)  # as the dashboard says: failed at extraction is failed
            continue
        manifest = storage.manifest(PREDICTIONS, date)
        if champion_version is not None and manifest.model["version"] != champion_version:
            out.stale.append(date)
        metrics = read_json(storage, monitoring_file(date, "metrics.json"))
        report = storage.read_text(monitoring_file(date, "report.html"))
        if has_failed(failure, metrics) or metrics is None or report is None:
            out.failed.append(date)
        bad = [
            f"{p.dataset}/{p.path}: {p.what}"
            for ds in (FEATURES, PREDICTIONS)
            if storage.is_committed(ds, date)
            for p in storage.problems(ds, date, checksums=True)
        ]
        if bad:
            out.corrupt[date] = bad
    if source is not None:
        extracted = storage.committed_dates(FEATURES)
        out.changed = [d for d in dates if d in extracted and source_changed(storage, source, d)]
    return out


def source_changed(storage: Storage, source: Source, date: dt.date) -> bool:
    """The date's rows at the source are not what its features were extracted from (and can be read again)."""
    manifest = storage.manifest(FEATURES, date)
    return manifest is not None and manifest.input_fingerprint != source.fingerprint(date) and source.exists(date)
