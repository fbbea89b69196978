"""Backfill, RescoreDate, ReextractDate and HealDate: run a range's missing dates; re-score stale,
re-extract changed ones (at the source, or in what shapes their outputs) and heal corrupt ones on request."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing

import luigi

from batchml.base.errors import IntegrityError
from batchml.base.progress import Progress
from batchml.base.provenance import shaped_by
from batchml.monitor.backfill import damage, plan, reshaped
from batchml.scoring.predictions import scored_from
from batchml.store.layout import FEATURES, PREDICTIONS, QUARANTINE, monitoring_file
from tasks.config import hooks, load_contract, make_registry, make_source, make_storage, mlflow
from tasks.daily import DailyScore
from tasks.extract import extract
from tasks.identity import InProject
from tasks.model import champion_pin, read_pin, resolve_runtime
from tasks.score import score_date, scoring_inputs
from tasks.targets import PinTarget

log = logging.getLogger("batchml")
DERIVED = ("drift.json", "metrics.json", "report.html")  # recomputed after a re-score; decisions are kept


class RescoreDate(InProject, luigi.Task):
    """Re-pin a scored date to the current champion and score it again (on request only)."""

    date = luigi.DateParameter()

    def complete(self) -> bool:
        """Whether the date's predictions were made by the version holding the alias now."""
        manifest = make_storage().manifest(PREDICTIONS, self.date)
        champion = make_registry().version_by_alias(mlflow().alias)
        return manifest is not None and champion is not None and manifest.model["version"] == str(champion.version)

    def run(self):
        """Pin the champion (its runtime decided on the date's features), score the date again with it, then derive the
        rest again."""
        pin, old = champion_pin(), make_storage().manifest(PREDICTIONS, self.date).model["version"]
        if old != pin.version:  # run() starts over after the yield below: re-score only once
            pin = resolve_runtime(
                pin, make_storage().verify(FEATURES, self.date)
            )  # before the re-pin: an outage leaves the pin as it was
            model_url, reference = scoring_inputs(pin, self.date)
            PinTarget(self.date).replace(pin)  # the request is the re-pin
            _score_again(self.date, pin, model_url, reference)
            log.info("%s re-scored: version %s -> %s", self.date, old, pin.version)
        yield DailyScore(self.date)  # drift, metrics and report again, against the new version


class ReextractDate(InProject, luigi.Task):
    """Re-extract a date whose source, contract or features hook changed since its features were committed, and re-score
    it with its pin (on request only)."""

    date = luigi.DateParameter()

    def complete(self) -> bool:
        """Whether the date's features come from the source, contract and hook of now, and its predictions from those
        features."""
        return not _extracted_from_other(
            make_storage().manifest(FEATURES, self.date), self.date
        ) and not _scored_from_other(self.date)

    def run(self):
        """Extract the date again, score it again with its pin, then derive the rest again."""
        # Each step is guarded: run() starts over after the yield, and after a crash between steps.
        old = make_storage().manifest(FEATURES, self.date)
        if _extracted_from_other(old, self.date):
            result = extract(self.date, replace=True)
            log.info(
                "%s re-extracted: %d rows in (were %s), %d quarantined",
                self.date,
                result.rows_in,
                old.rows["in"] if old else "none",
                result.rows_rejected,
            )
        if _scored_from_other(self.date):
            pin = read_pin(self.date)
            _score_again(self.date, pin, *scoring_inputs(pin, self.date))
            log.info(
                "%s re-scored from its new features with its pinned models:/%s/%s", self.date, pin.name, pin.version
            )
        yield DailyScore(self.date)  # drift, metrics and report again, from the new rows


class Unhealable(IntegrityError):
    """A damaged date that --reprocess corrupt cannot make again: the cause says why."""


class HealDate(InProject, luigi.Task):
    """Make a damaged date whole (on request only: `Backfill --reprocess corrupt`).

    Features or quarantine damaged: extracted again from the source (when it still has the
    date) and re-scored with the date's pinned version; predictions damaged or missing:
    re-scored from the features with that version. Drift, metrics and the report are then
    derived again. The date fails, naming why, when it cannot be healed.
    """

    date = luigi.DateParameter()

    def complete(self) -> bool:
        """Whether the date is whole (sha256 too) and every stage done."""
        try:
            return DailyScore(self.date).complete()
        except IntegrityError:
            return False

    def run(self):
        """Extract again what is damaged, score again with the date's pin, then derive the rest again."""
        # Each step is guarded: run() starts over after the yield, and after a crash between steps.
        bad = damage(make_storage(), self.date, checksums=True)
        hurt = {d.dataset for d in bad}
        if hurt & {FEATURES, QUARANTINE}:
            _extract_again(self.date, bad)
        if (
            hurt & {FEATURES, QUARANTINE, PREDICTIONS} and PinTarget(self.date).exists()
        ):  # without a pin the date was never scored: DailyScore scores it
            pin = read_pin(self.date)
            _score_again(self.date, pin, *scoring_inputs(pin, self.date))
            log.info("%s healed: re-scored with its pinned models:/%s/%s", self.date, pin.name, pin.version)
        yield DailyScore(self.date)  # drift, metrics and report again


def _extract_again(date: dt.date, bad: list) -> None:
    """Extract a damaged date again from the source; Unhealable when the source no longer has it."""
    named = "; ".join(f"{make_storage().url(d.path)}: {d.described()}" for d in bad)
    if not make_source().exists(date):
        raise Unhealable(
            f"{date} cannot be healed: the source no longer has the date, so its features and quarantine cannot be "
            f"extracted again ({named})"
        )
    result = extract(date, replace=True)
    log.info(
        "%s healed: features and quarantine extracted again (%d rows in, %d quarantined); was: %s",
        date,
        result.rows_in,
        result.rows_rejected,
        named,
    )


def _shaped_now() -> dict[str, str]:
    """What would shape a date's outputs if it were extracted now."""
    return shaped_by(load_contract(), hooks()["features"])


def _extracted_from_other(features, date: dt.date) -> bool:
    """No features yet, or they were extracted from other source rows or by another contract or features hook."""
    return (
        features is None
        or features.input_fingerprint != make_source().fingerprint(date)
        or bool(reshaped(features.shaped_by, _shaped_now()))
    )


def _scored_from_other(date: dt.date) -> bool:
    """The date's committed predictions were scored from other features than those committed now."""
    storage = make_storage()
    predictions = storage.manifest(PREDICTIONS, date)
    return predictions is not None and predictions.input_fingerprint != scored_from(storage.manifest(FEATURES, date))


def _score_again(date: dt.date, pin, model_url: str, reference: dict | None) -> None:
    """Replace a committed date's predictions, then drop what was derived from the old ones."""
    printed = Progress(log)

    def progress(done: int, total: int) -> None:
        printed.update(
            done, total, f"re-scored {done} of {total} partitions of {date} with models:/{pin.name}/{pin.version}"
        )

    score_date(date, pin, model_url, reference, progress, replace=True)
    for name in DERIVED:
        make_storage().delete(monitoring_file(date, name))


class Backfill(InProject, luigi.WrapperTask):
    """Every date of [start, stop) that needs work; --dry-run only lists them."""

    start = luigi.DateParameter()
    stop = luigi.DateParameter(description="Exclusive, as in RangeDaily.")
    dry_run = luigi.BoolParameter(
        default=False, description="List missing, stale, failed, corrupt and changed dates; run nothing."
    )
    reprocess = luigi.ChoiceParameter(
        choices=["none", "stale", "changed", "corrupt"],
        default="none",
        description=(
            "'stale': re-score dates scored by another version than @champion. 'changed': re-extract and re-score "
            "dates whose source, contract or features hook (name or code) changed since extraction (with their pinned "
            "version). 'corrupt': heal dates whose features, quarantine or predictions are damaged, missing or "
            "half-committed (re-extracted from the source, re-scored with their pin)."
        ),
    )
    newest_first = luigi.BoolParameter(default=False, description="Schedule the newest dates first.")

    def _dates(self) -> list[dt.date]:
        """Every date of [start, stop)."""
        return [self.start + dt.timedelta(days=i) for i in range((self.stop - self.start).days)]

    def requires(self):
        """The dates that need work, as the tasks that do it (none with --dry-run: the plan is printed instead)."""
        champion = make_registry().version_by_alias(mlflow().alias)
        todo = plan(
            make_storage(),
            self._dates(),
            str(champion.version) if champion else None,
            source=make_source(),
            shaped=_shaped_now(),
        )
        for line in todo.lines(str(champion.version) if champion else None):
            log.info("backfill %s..%s: %s", self.start, self.stop, line)
        if self.dry_run:
            print("\n".join(todo.lines(str(champion.version) if champion else None)))
            return []
        tasks = [DailyScore(d) for d in sorted(set(todo.missing) | set(todo.failed))]
        if self.reprocess == "stale":
            tasks += [RescoreDate(d) for d in todo.stale if d not in todo.missing]
        if self.reprocess == "changed":
            tasks = [t for t in tasks if t.date not in todo.to_reprocess] + [
                ReextractDate(d) for d in todo.to_reprocess
            ]
        elif todo.to_reprocess:
            log.warning(
                "backfill: the source, contract or features hook of %s changed since extraction; they are not "
                "re-extracted (--reprocess changed does)",
                ", ".join(d.isoformat() for d in todo.to_reprocess),
            )
        if self.reprocess == "corrupt":
            tasks = [t for t in tasks if t.date not in todo.corrupt] + [HealDate(d) for d in sorted(todo.corrupt)]
            for d, why in sorted(todo.unhealable.items()):
                log.warning("backfill: %s is corrupt and cannot be healed: %s", d, why)
        elif (
            todo.corrupt
        ):  # their DailyScore fails naming the damage and the command that heals it (or re-scores deleted predictions)
            tasks += [DailyScore(d) for d in sorted(todo.corrupt) if d not in {t.date for t in tasks}]
            log.warning(
                "backfill: %s damaged, missing or half-committed (listed by --dry-run); not healed: --reprocess "
                "corrupt heals them",
                ", ".join(d.isoformat() for d in sorted(todo.corrupt)),
            )
        # Luigi's worker adds requirements last-listed first, and runs tasks of equal
        # priority in the order they were added: list the dates that should run first last.
        tasks.sort(key=lambda t: t.date, reverse=not self.newest_first)
        ids = {t.task_id for t in tasks}
        if self.task_id not in _RUNS or _RUNS[self.task_id].ids != ids:  # Luigi calls requires() more than once per run
            _RUNS[self.task_id] = _Run(ids, multiprocessing.Value("i", 0), Progress(log))
            log.info("backfill %s..%s: %d date(s) to run", self.start, self.stop, len(tasks))
        return tasks


class _Run:
    """A running backfill's dates; the counter is shared memory, so dates done in forked workers (--workers N) count
    too."""

    def __init__(self, ids: set[str], done, progress: Progress):
        self.ids, self.done, self.progress = ids, done, progress


_RUNS: dict[str, _Run] = {}


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _date_done(task):
    """backfill: date 3 of 30: 2026-06-03 done (elapsed seconds), and the bar on a terminal."""
    if isinstance(task, Backfill):
        _RUNS.pop(task.task_id, None)  # the next run of the same range counts from zero
    for run in _RUNS.values():
        if task.task_id in run.ids:
            with run.done.get_lock():
                run.done.value += 1
                done = run.done.value
            run.progress.update(done, len(run.ids), f"backfill: date {done} of {len(run.ids)}: {task.date} done")
