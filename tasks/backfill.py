"""Backfill and RescoreDate: run a range's missing dates, and re-score stale ones on request."""

from __future__ import annotations

import datetime as dt
import logging

import luigi

from batchml.backfill import plan
from batchml.monitoring import monitoring_file
from batchml.predictions import model_for_workers, predict_date
from batchml.provenance import new_run_id
from batchml.baseline import baseline_bins, first_bins
from tasks.config import cache_dir, dask_client, load_contract, make_registry, make_storage, mlflow, retry_policy, runtime
from tasks.daily import DailyScore
from tasks.model import decide_runtime, pin_path

log = logging.getLogger("batchml")
DERIVED = ("drift.json", "metrics.json", "report.html")  # recomputed after a re-score; decisions are kept


class RescoreDate(luigi.Task):
    """Re-pin a scored date to the current champion and score it again (on request only)."""

    date = luigi.DateParameter()

    def complete(self) -> bool:
        manifest = make_storage().manifest("predictions", self.date)
        champion = make_registry().version_by_alias(mlflow().alias)
        return manifest is not None and champion is not None and manifest.model["version"] == str(champion.version)

    def run(self):
        storage, registry = make_storage(), make_registry()
        pin = registry.pin(mlflow().alias, cache_dir(), _classes())
        old = storage.manifest("predictions", self.date).model["version"]
        if old != pin.version:  # run() starts over after the yield below: re-score only once
            pin = decide_runtime(registry, pin, self.date)  # before the re-pin: an outage leaves the pin as it was
            local = registry.fetch(pin, cache_dir())
            model_path = model_for_workers(storage, pin, local)
            reference = registry.reference_profile(pin, cache_dir())
            if reference is None:
                reference = baseline_bins(storage, pin, lambda: first_bins(storage, pin, local, self.date, load_contract().key, runtime().parity_rows))
            storage.write_text(pin_path(self.date), pin.to_json())  # the request is the re-pin
            retry_policy().call(
                f"re-scoring {self.date} on Dask",
                lambda: predict_date(
                    storage,
                    self.date,
                    pin=pin,
                    model_path=model_path,
                    key=load_contract().key,
                    client=dask_client(),
                    run_id=new_run_id(),
                    reference=reference,
                    replace=True,
                ),
            )
            for name in DERIVED:
                storage.delete(monitoring_file(self.date, name))
            log.info("%s re-scored: version %s -> %s", self.date, old, pin.version)
        yield DailyScore(self.date)  # drift, metrics and report again, against the new version


def _classes():
    label = load_contract().label
    return label.classes if label and label.is_classification else None


class Backfill(luigi.WrapperTask):
    """Every date of [start, stop) that needs work; --dry-run only lists them."""

    start = luigi.DateParameter()
    stop = luigi.DateParameter(description="Exclusive, as in RangeDaily.")
    dry_run = luigi.BoolParameter(default=False, description="List missing, stale and failed dates; run nothing.")
    reprocess = luigi.ChoiceParameter(
        choices=["none", "stale"], default="none", description="'stale': re-score dates scored by another version than @champion."
    )
    newest_first = luigi.BoolParameter(default=False, description="Schedule the newest dates first.")

    def _dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.stop - self.start).days)]

    def requires(self):
        champion = make_registry().version_by_alias(mlflow().alias)
        todo = plan(make_storage(), self._dates(), str(champion.version) if champion else None)
        for line in todo.lines(str(champion.version) if champion else None):
            log.info("backfill %s..%s: %s", self.start, self.stop, line)
        if self.dry_run:
            print("\n".join(todo.lines(str(champion.version) if champion else None)))
            return []
        tasks = [DailyScore(d) for d in sorted(set(todo.missing) | set(todo.failed))]
        if self.reprocess == "stale":
            tasks += [RescoreDate(d) for d in todo.stale if d not in todo.missing]
        # Luigi's worker adds requirements last-listed first, and runs tasks of equal
        # priority in the order they were added: list the dates that should run first last.
        tasks.sort(key=lambda t: t.date, reverse=not self.newest_first)
        return tasks
