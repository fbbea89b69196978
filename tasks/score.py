"""ScorePredictions: predictions/date=D from the date's features and pinned model."""

from __future__ import annotations

import logging

import luigi

from batchml.store.layout import PREDICTIONS
from batchml.scoring.predictions import model_for_workers, predict_date
from batchml.base.progress import Progress
from batchml.base.provenance import new_run_id
from batchml.base.retry import one_line
from batchml.monitor.baseline import baseline_bins, first_bins
from tasks.config import cache_dir, dask_client, load_contract, make_registry, make_storage, retry_policy, runtime
from tasks.extract import ExtractFeatures
from tasks.model import ResolveModel, model_path, read_pin
from tasks.targets import PartitionTarget
from tasks.identity import InProject

log = logging.getLogger("batchml")


class ScorePredictions(InProject, luigi.Task):
    """predictions/date=D, and the date's profile on the model's reference bins, in one pass."""

    date = luigi.DateParameter()

    def requires(self):
        return {"features": ExtractFeatures(self.date), "model": ResolveModel(self.date)}

    def output(self) -> PartitionTarget:
        return PartitionTarget(PREDICTIONS, self.date)

    def run(self):
        pin = read_pin(self.date)
        registry, storage = make_registry(), make_storage()
        local = model_path(registry, pin, self.date)
        reference = registry.reference_profile(pin, cache_dir())
        if reference is None:  # a version batchml did not train: its dates are profiled on bins of its first scored date
            reference = baseline_bins(storage, pin, lambda: first_bins(storage, pin, local, self.date, load_contract().key, runtime().parity_rows))
        self.set_status_message(f"scoring with models:/{pin.name}/{pin.version}")
        self.set_progress_percentage(0)
        printed = Progress(log)

        def progress(done: int, total: int) -> None:
            printed.update(done, total, f"scored {done} of {total} partitions of {self.date} with models:/{pin.name}/{pin.version}")
            try:
                self.set_progress_percentage(int(100 * done / total))
                self.set_status_message(f"scored {done} of {total} partitions with models:/{pin.name}/{pin.version}")
            except Exception as exc:  # luigid not answering: progress is informative, scoring goes on
                log.warning("could not report progress to the scheduler: %s", one_line(exc))

        manifest = score_date(self.date, pin, model_for_workers(storage, pin, local), reference, progress)
        if manifest:
            self.set_status_message(f"committed {manifest.rows['written']} predictions with models:/{pin.name}/{pin.version}")


def score_date(date, pin, model_url: str, reference: dict | None, on_progress, *, replace: bool = False):
    """Commit a date's predictions with its pinned model on Dask, retried when the cluster goes away.

    Each try gets a new client if the last one lost its scheduler, and staging starts clean.
    """

    def attempt():
        return predict_date(
            make_storage(),
            date,
            pin=pin,
            model_path=model_url,
            key=load_contract().key,
            client=dask_client(),
            run_id=new_run_id(),
            reference=reference,
            on_progress=on_progress,
            replace=replace,
        )

    return retry_policy().call(f"{'re-' if replace else ''}scoring {date} on Dask", attempt)
