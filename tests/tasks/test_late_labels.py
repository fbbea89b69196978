"""Late labels are normal: the date succeeds with its realized metrics pending, and a later run fills them in."""

import datetime as dt
import json

import luigi
import pandas as pd
from luigi.execution_summary import LuigiStatusCode
from taxi_hooks import duration
from taxi_synthetic import trips

from pipelines import DailyScore
from tasks.config import make_storage
from tests.conftest import KEY


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def write_date(folder, date: dt.date, *, labels: bool) -> None:
    rows = pd.concat(trips(date, rows_per_day=3000, seed=5), ignore_index=True)
    rows.to_parquet(folder / f"trips_{date}.parquet")
    if labels:
        rows[KEY].assign(trip_duration_s=duration(rows)).to_parquet(folder / f"labels_{date}.parquet")


def test_a_date_whose_labelled_date_has_no_labels_yet_succeeds_and_is_filled_in_later(pipeline, day, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    labelled = day - dt.timedelta(days=2)
    for d in (labelled - dt.timedelta(days=i) for i in range(6)):  # history to train on, with labels
        write_date(raw, d, labels=d != labelled)
    write_date(raw, day, labels=False)
    files = {
        "kind": "files",
        "path": str(raw / "trips_{date}.parquet"),
        "labels_path": str(raw / "labels_{date}.parquet"),
        "label_lag_days": "2",
    }
    pipeline({"source": files, "labels": {"transform": ""}})

    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS  # no labels for D - 2: not a failure
    storage = make_storage()
    metrics = json.loads(storage.read_text(f"monitoring/date={day}/metrics.json"))
    assert metrics["numbers"]["realized_status"] == "pending" and metrics["numbers"]["realized"] is None
    scored = storage.manifest("predictions", day).run_id
    assert DailyScore(day).complete()

    write_date(raw, labelled, labels=True)  # the labels arrive
    assert not DailyScore(day).complete()  # the date has work again: its realized metrics
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    metrics = json.loads(storage.read_text(f"monitoring/date={day}/metrics.json"))
    assert metrics["numbers"]["realized_status"] == "available" and metrics["numbers"]["realized"]["labelled"] > 2900
    assert storage.manifest("predictions", day).run_id == scored  # filled in without re-scoring
