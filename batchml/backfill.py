"""Which dates of a range need work: missing, stale (scored by another version), failed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from batchml.layout import PREDICTIONS, monitoring_file
from batchml.monitoring import read_json
from batchml.storage import Storage


@dataclass
class BackfillPlan:
    missing: list[dt.date] = field(default_factory=list)
    stale: list[dt.date] = field(default_factory=list)
    failed: list[dt.date] = field(default_factory=list)

    def lines(self, champion: str | None) -> list[str]:
        def show(dates):
            return ", ".join(d.isoformat() for d in dates) or "none"

        return [
            f"missing ({len(self.missing)}): {show(self.missing)}",
            f"stale, scored by another version than the champion v{champion} ({len(self.stale)}): {show(self.stale)}",
            f"failed or unfinished ({len(self.failed)}): {show(self.failed)}",
        ]


def plan(storage: Storage, dates: list[dt.date], champion_version: str | None) -> BackfillPlan:
    """Classify `dates` from one listing of predictions plus each scored date's results."""
    scored = storage.committed_dates(PREDICTIONS)
    out = BackfillPlan()
    for date in dates:
        if date not in scored:
            out.missing.append(date)
            continue
        manifest = storage.manifest(PREDICTIONS, date)
        if champion_version is not None and manifest.model["version"] != champion_version:
            out.stale.append(date)
        metrics = read_json(storage, monitoring_file(date, "metrics.json"))
        report = storage.read_text(monitoring_file(date, "report.html"))
        if metrics is None or metrics.get("status") == "fail" or report is None:
            out.failed.append(date)
    return out
