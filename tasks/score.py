"""ScorePredictions: predictions/date=D from the date's features and pinned model."""

from __future__ import annotations

import datetime as dt
import logging

import luigi

from batchml.base.progress import Progress
from batchml.base.provenance import new_run_id
from batchml.base.retry import one_line
from batchml.model.pin import ModelPin
from batchml.monitor.baseline import first_bins, reference_for
from batchml.scoring.predictions import model_for_workers, predict_date
from batchml.store.layout import PREDICTIONS
from tasks.config import (
    cache_dir,
    dask_client,
    load_contract,
    make_registry,
    make_storage,
    retry_policy,
    runtime,
    scoring_here,
)
from tasks.extract import ExtractFeatures
from tasks.model import ResolveModel, model_path
from tasks.targets import PartitionTask

log = logging.getLogger("batchml")


class ScorePredictions(PartitionTask):
    """predictions/date=D, and the date's profile on the model's reference bins, in one pass."""

    dataset = PREDICTIONS

    def requires(self):
        """The date's features and its pinned model."""
        return {"features": ExtractFeatures(self.date), "model": ResolveModel(self.date)}

    def run(self):
        """Score the date on Dask with its pin, reporting progress to the scheduler."""
        pin = self.input()["model"].load()
        model_url, reference = scoring_inputs(pin, self.date)
        self.set_status_message(f"scoring with models:/{pin.name}/{pin.version}")
        self.set_progress_percentage(0)
        manifest = score_date(self.date, pin, model_url, reference, self._progress(pin))
        if manifest:
            self.set_status_message(
                f"committed {manifest.rows['written']} predictions with models:/{pin.name}/{pin.version}"
            )

    def _progress(self, pin: ModelPin):
        """A progress callback: a line on the log, and the percentage and message on the scheduler (never failing the
        date)."""
        printed = Progress(log)

        def progress(done: int, total: int) -> None:
            printed.update(
                done, total, f"scored {done} of {total} partitions of {self.date} with models:/{pin.name}/{pin.version}"
            )
            try:
                self.set_progress_percentage(int(100 * done / total))
                self.set_status_message(f"scored {done} of {total} partitions with models:/{pin.name}/{pin.version}")
            except Exception as exc:  # luigid not answering: progress is informative, scoring goes on
                log.warning("could not report progress to the scheduler: %s", one_line(exc))

        return progress


def scoring_inputs(pin: ModelPin, date: dt.date) -> tuple[str, dict | None]:
    """What scoring a date with `pin` needs: the model's URL for the workers, and the reference its profile is counted
    on.

    The reference follows baseline.reference_for: the version's own, else the baseline bins
    made from a sample of the first date it scored.
    """
    registry, storage = make_registry(), make_storage()
    local = model_path(registry, pin, date)
    bins = lambda: first_bins(storage, pin, local, date, load_contract().key, runtime().parity_rows)  # noqa: E731
    reference, _ = reference_for(storage, registry, pin, date, cache_dir=cache_dir(), make_bins=bins)
    return model_for_workers(storage, pin, local), reference


def score_date(date, pin, model_url: str, reference: dict | None, on_progress, *, replace: bool = False):
    """Commit a date's predictions with its pinned model on Dask, retried when the cluster goes away.

    Each try gets a new client if the last one lost its scheduler, and staging starts clean.
    """

    def attempt():
        rows, threads = scoring_here()  # a small date: on threads of this process, the cluster never started
        return predict_date(
            make_storage(),
            date,
            pin=pin,
            model_path=model_url,
            key=load_contract().key,
            client=dask_client,
            run_id=new_run_id(),
            reference=reference,
            on_progress=on_progress,
            replace=replace,
            in_process_rows=rows,
            threads_here=threads,
        )

    return retry_policy().call(f"{'re-' if replace else ''}scoring {date} on Dask", attempt)


def scored(date: dt.date) -> dict[str, luigi.Task]:
    """What a task judging a date's predictions requires: the predictions (with their profile) and the date's pin."""
    return {"scores": ScorePredictions(date), "model": ResolveModel(date)}
