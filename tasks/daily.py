"""DailyScore: the daily job for one date, as one wrapper over every stage."""

from __future__ import annotations

import luigi

from batchml.predictions import PREDICTIONS
from tasks.config import make_storage
from tasks.monitor import CheckMetrics
from tasks.report import DailyReport
from tasks.retrain import RetrainIfDrifted


class DailyScore(luigi.WrapperTask):
    """Everything the daily job produces and checks for one date."""

    date = luigi.DateParameter()

    def requires(self):
        return [CheckMetrics(self.date), RetrainIfDrifted(self.date), DailyReport(self.date)]

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        """Complete dates for RangeDaily: one listing of committed predictions, then complete() on those."""
        scored = make_storage().committed_dates(PREDICTIONS)
        return [d for d in parameter_tuples if d in scored and cls(date=d).complete()]
