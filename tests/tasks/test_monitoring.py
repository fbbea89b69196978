"""Drift, metrics and the report through luigi.build, checked against direct computations."""

import datetime as dt
import json

import luigi
import numpy as np
import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode
from scipy import stats
from scipy.spatial import distance

from batchml.dataset.contract import Contract
from batchml.dataset.sources import GeneratorSource
from batchml.model.training import labelled_frame, labelled_window
from batchml.monitor.monitoring import read_durations
from pipelines import DailyScore
from tasks.config import cache_dir, make_registry, make_storage
from tasks.model import read_pin
from tests.conftest import CONTRACT, TRIPS, trips

DRIFT_START = dt.date(2026, 6, 12)


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def monitoring(day, name):
    text = make_storage().read_text(f"monitoring/date={day}/{name}")
    return json.loads(text) if name.endswith(".json") else text


DRIFTING = {
    "source": {**trips(rows_per_day=10000, drift_start=DRIFT_START.isoformat()), "label_lag_days": "2"},
    "training": {"window_days": "8"},
}


@pytest.fixture
def drifting(pipeline):
    # A training window of 8 labelled dates: every weekday is in the reference (one is held out).
    pipeline(DRIFTING)


def test_the_first_drifted_date_is_flagged_and_names_the_shifted_features(drifting):
    days = [DRIFT_START - dt.timedelta(days=1), DRIFT_START]
    result = build(*(DailyScore(d) for d in days))
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    before, after = (monitoring(d, "drift.json") for d in days)
    assert before["verdict"] == "no drift" and before["drifted_features"] == []
    assert after["verdict"] == "drift"
    assert set(after["drifted_features"]) == {
        "dropoff_zone",
        "trip_distance",
        "passenger_count",
        "payment_type",
        "pickup_hour",
    }
    assert after["prediction"]["drifted"] and not before["prediction"]["drifted"]
    assert "pickup_weekday" not in after["features"]  # constant within a date: excluded, not judged


def test_pipeline_statistics_match_a_direct_computation_on_the_same_data(drifting, pipeline):
    pipeline({**DRIFTING, "drift": {"match_weekdays": "false"}})  # statistics against the whole reference
    day = DRIFT_START
    labelled = day - dt.timedelta(days=2)
    assert build(DailyScore(labelled), DailyScore(day)).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    drift = monitoring(day, "drift.json")
    reference = make_registry().reference_profile(read_pin(day), cache_dir())
    current = pd.read_parquet(storage.partition_path("features", day))

    # PSI and JS on the reference bins, straight from numpy and scipy.
    ref = reference["columns"]["trip_distance"]
    edges = np.concatenate([[-np.inf], ref["edges"], [np.inf]])
    p = np.maximum(np.asarray(ref["counts"]) / sum(ref["counts"]), 1e-4)
    q = np.maximum(np.histogram(current["trip_distance"], edges)[0] / len(current), 1e-4)
    assert drift["features"]["trip_distance"]["psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-6)
    assert drift["features"]["trip_distance"]["js"] == pytest.approx(
        distance.jensenshannon(ref["counts"], np.histogram(current["trip_distance"], edges)[0], base=2), rel=1e-6
    )

    # Wasserstein against the raw training rows the reference was made from
    # (same seeds, same code, the version's window).
    tags = make_registry().version_tags(read_pin(day).version)
    window_start, window_end = (dt.date.fromisoformat(tags[k]) for k in ("window_start", "window_end"))
    src = GeneratorSource(
        generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 10000, "drift_start": DRIFT_START.isoformat()}
    )
    dates = labelled_window(window_end, (window_end - window_start).days + 1)
    frame = labelled_frame(
        src,
        Contract.load(CONTRACT),
        dates,
        features="taxi_hooks:features",
        labels="taxi_hooks:duration",
        max_rows=20000,
        seed=3,
    )
    from batchml.retrain.lifecycle import HOLDOUT_SHARE

    train = frame[
        ~(np.random.default_rng(3).random(len(frame)) < HOLDOUT_SHARE)
    ]  # as train_and_register holds out (seed 3)
    exact = stats.wasserstein_distance(train["trip_distance"], current["trip_distance"]) / train["trip_distance"].std(
        ddof=0
    )
    assert drift["features"]["trip_distance"]["wasserstein"] == pytest.approx(exact, rel=0.05)

    # Realized MAE of D - label_lag from the committed predictions and labels, with pandas.
    metrics = monitoring(day, "metrics.json")
    preds = pd.read_parquet(storage.partition_path("predictions", labelled))
    labels = pd.read_parquet(storage.partition_path("labels", labelled))
    key = list(Contract.load(CONTRACT).key)
    joined = preds.merge(labels, on=key).dropna(subset=["trip_duration_s"])
    realized = metrics["numbers"]["realized"]
    assert realized["mae"] == pytest.approx((joined["prediction"] - joined["trip_duration_s"]).abs().mean(), rel=1e-6)
    assert realized["coverage"] == pytest.approx(len(joined) / len(preds))
    assert realized["date"] == labelled.isoformat()


def test_every_number_reaches_mlflow_and_the_report_has_its_sections(pipeline, day):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    registry = make_registry()
    experiment = registry.client.get_experiment_by_name("trip_duration-monitoring")
    (run,) = registry.client.search_runs([experiment.experiment_id], filter_string=f"tags.date = '{day}'")
    metrics = monitoring(day, "metrics.json")
    assert run.data.metrics["rows_in"] == metrics["numbers"]["rows_in"]
    assert run.data.metrics["quarantine_rate"] == pytest.approx(
        next(c["value"] for c in metrics["checks"] if c["name"] == "quarantine_rate")
    )
    assert "drift_psi.trip_distance" in run.data.metrics and run.data.tags["status"] == metrics["status"]
    assert run.info.run_name == f"monitor {day}" and "Daily monitoring" in experiment.tags["mlflow.note.content"]
    (timeline,) = registry.client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'timeline'")
    history = registry.client.get_metric_history(timeline.info.run_id, "rows_in")
    assert [(m.step, m.value) for m in history] == [
        (0, metrics["numbers"]["rows_in"])
    ]  # days since the first date logged
    page = monitoring(day, "report.html")
    for section in ('id="summary"', 'id="drift"', 'id="metrics"', 'id="trends"', 'id="retraining"'):
        assert section in page
    assert f"date={day}/report.html" in make_storage().read_text("monitoring/index.html")
    durations = read_durations(make_storage(), day)
    assert {"ExtractFeatures", "ScorePredictions", "DetectDrift"} <= set(durations)


def test_a_breach_fails_the_date_and_a_warn_only_setting_lets_it_pass(pipeline, day):
    pipeline({"checks": {"max_quarantine_rate": "0.0001"}})
    result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.FAILED
    assert monitoring(day, "metrics.json")["failed"] == ["quarantine_rate"]
    assert monitoring(day, "report.html") is not None  # the page shows the breach
    pipeline({"checks": {"max_quarantine_rate": "0.0001", "warn_only": '["quarantine_rate"]'}})
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS


def test_a_window_sums_profiles_and_realized_rows_of_the_dates_ending_at_d(pipeline, day):
    pipeline({"drift": {"window_days": "2", "exclude": json.dumps(["pickup_weekday", "is_weekend"])}})
    nxt = day + dt.timedelta(days=1)
    assert build(DailyScore(day), DailyScore(nxt)).status == LuigiStatusCode.SUCCESS
    drift, metrics = monitoring(nxt, "drift.json"), monitoring(nxt, "metrics.json")
    assert drift["window_days"] == 2 and drift["dates"] == [str(day), str(nxt)] and drift["rows"] > 5000
    realized = metrics["numbers"]["realized"]
    assert metrics["window_days"] == 2 and realized["dates"] == [
        str(day - dt.timedelta(days=2)),
        str(nxt - dt.timedelta(days=2)),
    ]
    assert realized["labelled"] > 5000  # two dates' labelled rows
