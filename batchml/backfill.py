"""Which dates of a range need work: missing, stale (scored by another version), failed, corrupt, changed.

A scored date is corrupt when a file of its predictions or features disagrees with its
manifest (size or sha256): read once per date, so a dry run names every bad file. A date
has changed at the source when its source's fingerprint is not the one its features were
extracted from, and changed in what shapes its outputs when the contract, the features
hook's name or code differ from what its features manifest records
(batchml.provenance.shaped_by). A manifest written before that was recorded is unknown:
listed, never re-processed on its own.
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
    changed: list[dt.date] = field(default_factory=list)  # at the source
    reshaped: dict[dt.date, list[str]] = field(default_factory=dict)  # date -> the parts that shape outputs and changed
    unshaped: list[dt.date] = field(default_factory=list)  # extracted before manifests recorded what shapes outputs

    @property
    def to_reprocess(self) -> list[dt.date]:
        """Dates `--reprocess changed` re-extracts and re-scores: changed at the source or in what shapes their outputs."""
        return sorted(set(self.changed) | set(self.reshaped))

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
            f"changed in what shapes outputs since extraction ({len(self.reshaped)}): "
            + ("; ".join(f"{d} ({', '.join(parts)})" for d, parts in sorted(self.reshaped.items())) or "none"),
        ] + ([f"not compared, extracted before manifests recorded what shapes outputs ({len(self.unshaped)}): {show(self.unshaped)}"] if self.unshaped else [])


def plan(
    storage: Storage, dates: list[dt.date], champion_version: str | None, source: Source | None = None, shaped: dict[str, str] | None = None
) -> BackfillPlan:
    """Classify `dates` from one listing of predictions plus each scored date's results.

    With `source`, dates whose source changed; with `shaped` (batchml.provenance.shaped_by
    of the current settings), dates whose features were made by something else.
    """
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
    if shaped is not None:
        for d in sorted(set(dates) & set(storage.committed_dates(FEATURES))):
            recorded = storage.manifest(FEATURES, d).shaped_by
            if not recorded:
                out.unshaped.append(d)
            elif parts := reshaped(recorded, shaped):
                out.reshaped[d] = parts
    return out


def reshaped(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The parts that shape outputs whose recorded value is not the current one (a part not recorded is not compared)."""
    return [part for part, value in current.items() if part in recorded and recorded[part] != value]


def source_changed(storage: Storage, source: Source, date: dt.date) -> bool:
    """The date's rows at the source are not what its features were extracted from (and can be read again)."""
    manifest = storage.manifest(FEATURES, date)
    return manifest is not None and manifest.input_fingerprint != source.fingerprint(date) and source.exists(date)
