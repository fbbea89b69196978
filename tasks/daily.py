"""DailyScore: the daily job for one date, as one wrapper over every stage."""

from __future__ import annotations

import logging

import luigi

from batchml.base.errors import IntegrityError
from batchml.monitor.backfill import damage, heal_command
from batchml.store.layout import PREDICTIONS
from tasks.config import context, make_storage
from tasks.identity import InProject
from tasks.monitor import CheckMetrics
from tasks.report import DailyReport
from tasks.retrain import RetrainIfDrifted
from tasks.score import ScorePredictions

log = logging.getLogger("batchml")

# (storage root, date) found not done by this process: the run produces it, checksumming what it commits.
_PRODUCING: set[tuple[str, object]] = set()


class DailyScore(InProject, luigi.WrapperTask):
    """Everything the daily job produces and checks for one date."""

    date = luigi.DateParameter()

    def requires(self):
        """Every stage of the date."""
        # ScorePredictions directly too: predictions deleted after the date finished are scored
        # again with the date's pin, though the stages derived from them are complete.
        return [
            ScorePredictions(self.date),
            CheckMetrics(self.date),
            RetrainIfDrifted(self.date),
            DailyReport(self.date),
        ]

    def complete(self) -> bool:
        """Every stage done and the date whole; a damaged date fails naming its files and the command that heals it.

        Every call makes the cheap check (one listing and one manifest read per dataset:
        manifests readable, every listed file present at its size, nothing half-committed).
        Reading every byte against its sha256 costs a read of the whole date (about 0.6 GB/s
        here, 4% of scoring it), so it is done only where a date is found done: the rerun of a
        finished date, which would otherwise exit 0 over a flipped byte. A date this process
        produced is not read again after its run: what it committed was checksummed on commit,
        and its features before scoring. Predictions that are simply absent are scored again
        with the date's pin (ScorePredictions is required directly for that). RangeDaily's
        bulk_complete makes the cheap check only; `batchml verify` and `Backfill --dry-run`
        read every date whole.
        """
        storage = make_storage()
        self._fail_if_damaged(
            [d for d in damage(storage, self.date, checksums=False) if not (d.dataset == PREDICTIONS and d.absent)]
        )
        here = (storage.url(), self.date)
        if not (storage.is_committed(PREDICTIONS, self.date) and super().complete()):
            _PRODUCING.add(here)
            return False
        if here in _PRODUCING:
            _PRODUCING.discard(here)
        else:
            self._fail_if_damaged(damage(storage, self.date, checksums=True))
        for dataset in context().heal_tables(self.date):  # a run killed between a manifest and its table commit
            log.warning("%s %s: its Iceberg table was behind its manifest; re-committed", dataset, self.date)
        return True

    def _fail_if_damaged(self, bad: list) -> None:
        if bad:
            files = "; ".join(f"{make_storage().url(d.path)}: {d.described()}" for d in bad)
            raise IntegrityError(f"{self.date} is damaged: {files}. Heal it with: {heal_command(self.date)}")

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        """Complete dates for RangeDaily: one listing of committed predictions, then the stages' complete() and the
        cheap check on those.

        A damaged date is left incomplete, so its DailyScore names the damage (a deleted date is just missing)."""
        storage = make_storage()
        scored = storage.committed_dates(PREDICTIONS)
        return [
            d
            for d in parameter_tuples
            if d in scored and not damage(storage, d, checksums=False) and luigi.WrapperTask.complete(cls(date=d))
        ]
