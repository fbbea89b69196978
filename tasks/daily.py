"""DailyScore: the daily job for one date, as one wrapper over every stage."""

from __future__ import annotations

import luigi

from batchml.predictions import PREDICTIONS
from tasks.config import make_storage
from tasks.monitor import CheckMetrics
from tasks.report import DailyReport
from tasks.retrain import RetrainIfDrifted
from tasks.identity import InProject


class DailyScore(InProject, luigi.WrapperTask):
    """Everything the daily job produces and checks for one date."""

    date = luigi.DateParameter()

    def requires(self):
        return [CheckMetrics(self.date), RetrainIfDrifted(self.date), DailyReport(self.date)]

    def complete(self) -> bool:
        """Every stage done, and the date's predictions whole: a rerun of a finished date reads them once against
        their manifest's sha256 and fails naming a bad file (the stages' own checks compare sizes only)."""
        if not super().complete():
            return False
        make_storage().verify(PREDICTIONS, self.date, checksums=True)
        return True

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        """Complete dates for RangeDaily: one listing of committed predictions, then the stages' complete() on those."""
        scored = make_storage().committed_dates(PREDICTIONS)
        return [d for d in parameter_tuples if d in scored and luigi.WrapperTask.complete(cls(date=d))]
