"""Which dates of a range need work: missing, stale (scored by another version), failed, corrupt, changed.

A date is corrupt when what `batchml verify` checks fails for its features, quarantine or
predictions (a file missing, resized or of another sha256; a manifest that cannot be read)
or when half of it is committed: features without their quarantine, predictions without
their features, or drift and metrics derived from predictions that are no longer there
(`damage`). Files are read once per date, so a dry run names every bad file; `Backfill
--reprocess corrupt` heals such a date (`heal_command`). A date has changed at the source
when its source's fingerprint is not the one its features were extracted from, and changed
in what shapes its outputs when the contract, the features hook's name or code differ from
what its features manifest records (batchml.base.provenance.shaped_by). A manifest written
before that was recorded is unknown: listed, never re-processed on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from batchml.dataset.sources import Source
from batchml.monitor.failures import FAILURE
from batchml.monitor.monitoring import has_failed
from batchml.store.documents import read_document
from batchml.store.layout import FEATURES, MANIFEST, PREDICTIONS, QUARANTINE, monitoring_file, partition
from batchml.store.manifest import UnreadableManifest
from batchml.store.storage import Storage


@dataclass
class BackfillPlan:
    missing: list[dt.date] = field(default_factory=list)
    stale: list[dt.date] = field(default_factory=list)
    failed: list[dt.date] = field(default_factory=list)
    corrupt: dict[dt.date, list[str]] = field(default_factory=dict)  # date -> "<dataset>/<file>: what"
    unhealable: dict[dt.date, str] = field(default_factory=dict)  # corrupt dates --reprocess corrupt cannot heal -> why
    changed: list[dt.date] = field(default_factory=list)  # at the source
    reshaped: dict[dt.date, list[str]] = field(default_factory=dict)  # date -> the parts that shape outputs and changed
    unshaped: list[dt.date] = field(default_factory=list)  # extracted before manifests recorded what shapes outputs

    @property
    def to_reprocess(self) -> list[dt.date]:
        """Dates `--reprocess changed` re-extracts and re-scores: changed at the source or in what shapes their
        outputs."""
        return sorted(set(self.changed) | set(self.reshaped))

    def lines(self, champion: str | None) -> list[str]:
        def show(dates):
            return ", ".join(d.isoformat() for d in dates) or "none"

        out = [
            f"missing ({len(self.missing)}): {show(self.missing)}",
            f"stale, scored by another version than the champion v{champion} ({len(self.stale)}): {show(self.stale)}",
            f"failed or unfinished ({len(self.failed)}): {show(self.failed)}",
            f"corrupt: damaged, missing or half-committed ({len(self.corrupt)}): "
            + ("; ".join(f"{d} ({', '.join(bad)})" for d, bad in sorted(self.corrupt.items())) or "none"),
            f"changed at the source since extraction ({len(self.changed)}): {show(self.changed)}",
            f"changed in what shapes outputs since extraction ({len(self.reshaped)}): "
            + ("; ".join(f"{d} ({', '.join(parts)})" for d, parts in sorted(self.reshaped.items())) or "none"),
        ]
        if self.unhealable:
            out.append(
                f"corrupt and not healable ({len(self.unhealable)}): "
                + "; ".join(f"{d} ({why})" for d, why in sorted(self.unhealable.items()))
            )
        if self.unshaped:
            out.append(
                f"not compared, extracted before manifests recorded what shapes outputs ({len(self.unshaped)}): "
                f"{show(self.unshaped)}"
            )
        return out


def plan(
    storage: Storage,
    dates: list[dt.date],
    champion_version: str | None,
    source: Source | None = None,
    shaped: dict[str, str] | None = None,
) -> BackfillPlan:
    """Classify `dates` from one listing of predictions plus each scored date's results.

    With `source`, dates whose source changed; with `shaped` (batchml.base.provenance.shaped_by
    of the current settings), dates whose features were made by something else.
    """
    scored = storage.committed_dates(PREDICTIONS)
    out = BackfillPlan()
    for date in dates:
        failure = read_document(storage, monitoring_file(date, FAILURE))
        if bad := damage(storage, date, checksums=True):
            out.corrupt[date] = [d.short() for d in bad]
            if source is not None and {d.dataset for d in bad} & {FEATURES, QUARANTINE} and not source.exists(date):
                out.unhealable[date] = (
                    "the source no longer has the date: features and quarantine cannot be extracted again"
                )
        if date not in scored:
            if has_failed(failure, None):
                out.failed.append(date)  # as the dashboard says: failed at extraction is failed
            elif date not in out.corrupt:  # predictions gone after the date finished: corrupt, not missing
                out.missing.append(date)
            continue
        manifest = _readable(storage, PREDICTIONS, date)
        if manifest is None:
            continue  # unreadable: corrupt, listed above
        if champion_version is not None and manifest.model["version"] != champion_version:
            out.stale.append(date)
        metrics = read_document(storage, monitoring_file(date, "metrics.json"))
        report = storage.read_text(monitoring_file(date, "report.html"))
        if has_failed(failure, metrics) or metrics is None or report is None:
            out.failed.append(date)
    if source is not None:
        extracted = storage.committed_dates(FEATURES)
        out.changed = [d for d in dates if d in extracted and source_changed(storage, source, d)]
    if shaped is not None:
        for d in sorted(set(dates) & set(storage.committed_dates(FEATURES))):
            if (features := _readable(storage, FEATURES, d)) is None:
                continue  # unreadable: corrupt, listed above
            if not features.shaped_by:
                out.unshaped.append(d)
            elif parts := reshaped(features.shaped_by, shaped):
                out.reshaped[d] = parts
    return out


HEALED = (
    FEATURES,
    QUARANTINE,
    PREDICTIONS,
)  # what `--reprocess corrupt` makes again: features and quarantine from the source, predictions from them
DERIVED_FROM_PREDICTIONS = ("drift.json", "metrics.json")


@dataclass(frozen=True)
class Damage:
    """One thing wrong with a committed date: a file (path under the storage root) and what."""

    dataset: str
    path: str  # e.g. features/date=D/part-00000.parquet, predictions/date=D/_MANIFEST.json, quarantine/date=D
    what: str

    @property
    def absent(self) -> bool:
        """The dataset of the date is not committed at all (half a date), rather than one of its files bad."""
        return self.path.count("/") == 1

    def described(self) -> str:
        """What is wrong, in words (the plan's `short` keeps the terse kind)."""
        words = {
            "missing": f"missing (listed in {MANIFEST})",
            "unlisted": f"not listed in {MANIFEST}",
            "resized": f"size differs from {MANIFEST}",
            "checksum": f"checksum differs from {MANIFEST} (sha256)",
        }
        return words.get(self.what, self.what)

    def short(self) -> str:
        """As the plan lists it: `<dataset>/<file>: what` (the date is the line's), or the date's folder for half a
        date."""
        folder = f"{self.dataset}/date="
        name = self.path.split("/", 2)[2] if self.path.startswith(folder) and self.path.count("/") >= 2 else self.path
        return f"{self.dataset}/{name}: {self.what}" if name != self.path else f"{self.path}: {self.what}"


def heal_command(date: dt.date) -> str:
    """The one command that heals a damaged date."""
    return f"luigi --module pipelines Backfill --start {date} --stop {date + dt.timedelta(days=1)} --reprocess corrupt"


def damage(storage: Storage, date: dt.date, *, checksums: bool) -> list[Damage]:
    """What is wrong with a date's features, quarantine and predictions; empty when they are whole.

    A file missing, resized, or (with `checksums`) of another sha256 than its manifest says;
    a manifest that cannot be read; half a date: features committed without their quarantine,
    predictions without their features, drift or metrics derived from predictions that are not
    committed. Without `checksums` it costs one listing and one manifest read per dataset
    (what DailyScore.complete() affords on every call); with them every file is read once.
    """
    out: list[Damage] = []
    committed: dict[str, bool] = {}
    for dataset in HEALED:
        try:
            manifest = storage.manifest(dataset, date)
        except UnreadableManifest as exc:
            committed[dataset] = True
            out.append(Damage(dataset, f"{partition(dataset, date)}/{MANIFEST}", f"unreadable manifest: {exc.reason}"))
            continue
        committed[dataset] = manifest is not None
        if manifest is not None:
            out += [
                Damage(dataset, f"{partition(dataset, date)}/{p.path}", p.what)
                for p in storage.problems(dataset, date, checksums=checksums)
            ]
    if committed[FEATURES] and not committed[QUARANTINE]:
        out.append(
            Damage(QUARANTINE, partition(QUARANTINE, date), f"not committed, though {partition(FEATURES, date)} is")
        )
    if committed[PREDICTIONS] and not committed[FEATURES]:
        out.append(
            Damage(FEATURES, partition(FEATURES, date), f"not committed, though {partition(PREDICTIONS, date)} is")
        )
    if not committed[PREDICTIONS] and committed[FEATURES]:
        derived = [
            name for name in DERIVED_FROM_PREDICTIONS if storage.read_text(monitoring_file(date, name)) is not None
        ]
        if derived:
            out.append(
                Damage(
                    PREDICTIONS,
                    partition(PREDICTIONS, date),
                    f"not committed, though {monitoring_file(date, derived[0])} was derived from it",
                )
            )
    return out


def _readable(storage: Storage, dataset: str, date: dt.date):
    """The date's manifest, or None when it is absent or cannot be read (a corrupt date, listed as such)."""
    try:
        return storage.manifest(dataset, date)
    except UnreadableManifest:
        return None


def reshaped(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The parts that shape outputs whose recorded value is not the current one (a part not recorded is not
    compared)."""
    return [part for part, value in current.items() if part in recorded and recorded[part] != value]


def source_changed(storage: Storage, source: Source, date: dt.date) -> bool:
    """The date's rows at the source are not what its features were extracted from (and can be read again)."""
    manifest = _readable(storage, FEATURES, date)
    return manifest is not None and manifest.input_fingerprint != source.fingerprint(date) and source.exists(date)
