"""Processes that log monitoring to MLflow at the same instant: one experiment, one run per date, one timeline.

Two pods running one date, or the first dates of a `luigi --workers N` backfill, log to a
model's monitoring experiment before it or their dates' runs exist. Each process here is a
fresh interpreter on one real SQLite store, released together by a barrier just before its
first log, as separate runs are.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest

from batchml.model.registry import STEP_ORIGIN_TAG, Registry
from batchml.store.storage import Storage

MODEL = "churn"
DAYS = [dt.date(2026, 7, 3), dt.date(2026, 7, 1), dt.date(2026, 7, 2)]


def _log(uri: str, root: str | None, day: dt.date, index: int, barrier, results) -> None:
    """Log one date's numbers (its index as `rows_in`), released with the others; None or the error."""
    try:
        registry = Registry(uri, MODEL, lock=Storage(root).locked if root else None)
        registry.client.search_experiments(max_results=1)  # the store opened before the race, as a task's is
        barrier.wait(timeout=120)
        registry.log_daily(day.isoformat(), {"rows_in": float(index)}, {"status": "ok"}, {"metrics.json": {"i": index}})
        results.put((index, None))
    except BaseException as exc:  # the test shows it
        barrier.abort()
        results.put((index, f"{type(exc).__name__}: {exc}"))


def log_at_once(uri: str, root: str | None, days: list[dt.date]) -> None:
    """Log `days[i]` from process i, every process released at once; fails with any process's error."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(days)), ctx.Queue()
    procs = [ctx.Process(target=_log, args=(uri, root, day, i, barrier, results)) for i, day in enumerate(days)]
    for proc in procs:
        proc.start()
    try:
        errors = {i: error for i, error in (results.get(timeout=300) for _ in procs) if error}
    finally:
        for proc in procs:
            proc.join(timeout=60)
    assert not errors, errors


@pytest.fixture
def store(tmp_path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Registry(uri, MODEL).client.search_registered_models(max_results=1)  # created before the processes start
    return uri


def test_processes_logging_new_dates_at_once_share_one_experiment_one_run_per_date_and_one_timeline(store, tmp_path):
    days = [day for day in DAYS for _ in range(2)]  # every date logged by two processes: two pods
    log_at_once(store, str(tmp_path / "data"), days)

    client = Registry(store, MODEL).client
    experiments = [e for e in client.search_experiments() if e.name.startswith(MODEL)]
    assert [e.name for e in experiments] == [f"{MODEL}-monitoring"]
    runs = client.search_runs([experiments[0].experiment_id])
    by_date: dict[str, list] = {}
    for run in runs:
        by_date.setdefault(run.data.tags.get("date", "timeline"), []).append(run)
    assert sorted(by_date) == sorted([d.isoformat() for d in DAYS] + ["timeline"])
    assert all(len(found) == 1 for found in by_date.values()), {k: len(v) for k, v in by_date.items()}

    # the origin is one of the dates, and every process counted its steps from it
    origin = dt.date.fromisoformat(experiments[0].tags[STEP_ORIGIN_TAG])
    assert origin in DAYS
    (timeline,) = by_date["timeline"]
    points = client.get_metric_history(timeline.info.run_id, "rows_in")
    assert sorted((p.step, int(p.value)) for p in points) == sorted(
        ((days[i] - origin).days, i) for i in range(len(days))
    )
    for day in DAYS:  # both processes of a date logged into its one run
        (run,) = by_date[day.isoformat()]
        values = {int(p.value) for p in client.get_metric_history(run.info.run_id, "rows_in")}
        assert values == {i for i, d in enumerate(days) if d == day}


def test_without_a_project_lock_processes_creating_the_monitoring_experiment_at_once_all_log(store):
    """A registry outside a project has no shared lock: the experiment's creation that loses finds the winner's."""
    log_at_once(store, None, [DAYS[0]] * 3)

    client = Registry(store, MODEL).client
    experiment = client.get_experiment_by_name(f"{MODEL}-monitoring")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.date = '{DAYS[0]}'")
    logged = {int(p.value) for run in runs for p in client.get_metric_history(run.info.run_id, "rows_in")}
    assert logged == {0, 1, 2}
