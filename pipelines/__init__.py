"""Entry points: `luigi --module pipelines DailyScore --date D`, `RangeDaily --of DailyScore`."""

from __future__ import annotations

import logging

import luigi
from luigi.tools.range import RangeDaily  # noqa: F401  (so `--module pipelines RangeDaily` finds it)

from batchml.predictions import PREDICTIONS
from tasks.config import make_storage
from tasks.extract import ExtractFeatures, SourceData  # noqa: F401
from tasks.model import ChampionModel, ResolveModel  # noqa: F401
from tasks.score import ScorePredictions

log = logging.getLogger("batchml")

# The datasets whose committed manifests together mean "this date is done".
DAILY_OUTPUTS = (PREDICTIONS,)


class DailyScore(luigi.WrapperTask):
    """Everything the daily job produces for one date."""

    date = luigi.DateParameter()

    def requires(self):
        return ScorePredictions(self.date)

    @classmethod
    def bulk_complete(cls, parameter_tuples):
        """Complete dates from one manifest listing per dataset (RangeDaily calls this)."""
        storage = make_storage()
        done = set.intersection(*(storage.committed_dates(d) for d in DAILY_OUTPUTS))
        return [d for d in parameter_tuples if d in done]


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _one_line_cause(task, exception):
    """Name the failed task and its cause on one line, after Luigi's traceback."""
    log.error("%s failed: %s: %s", task.task_id, type(exception).__name__, exception)
