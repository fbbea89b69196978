"""Estimated performance through DailyScore: made at registration, written per date, checked when labels arrive.

The taxi project (a regressor batchml trains), the homes project of tests/e2e/test_any_model.py
as a classifier batchml trains with the recipe below, and the same classifier registered with
MLflow's own APIs; every estimate compared with the estimator core called directly on the
committed rows with the stored estimator.
"""

from __future__ import annotations

import datetime as dt
import json

import luigi
import mlflow
import numpy as np
import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

import pipelines
from batchml.stats.estimators import (
    FITTED_ON_REFERENCE,
    calibrate,
    calibrator_from_json,
    estimate_classification,
    estimate_regression,
    loss_model_from_bytes,
)
from tasks.config import make_storage, model_name, tracking_uri
from tasks.daily import DailyScore
from tasks.model import read_pin
from tests.conftest import KEY, TAXI_INPUTS
from tests.e2e.test_any_model import DAY, INPUTS, log_sklearn, project  # noqa: F401 (project is a fixture)


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def document(day: dt.date, name: str) -> dict | None:
    text = make_storage().read_text(f"monitoring/date={day}/{name}")
    return None if text is None else json.loads(text)


def run_artifact(run_id: str, path: str, tmp_path) -> bytes:
    """An artifact of an MLflow run, downloaded with MLflow's own client (not batchml's cache)."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri())
    return open(client.download_artifacts(run_id, path, str(tmp_path)), "rb").read()


def test_a_regressor_gets_its_loss_model_at_registration_and_each_date_its_estimate(pipeline, day, tmp_path):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    pin = read_pin(day)
    meta = json.loads(run_artifact(pin.run_id, "estimator/meta.json", tmp_path))
    assert meta["status"] == FITTED_ON_REFERENCE and meta["rows"] > 1000
    loss_model = loss_model_from_bytes(run_artifact(pin.run_id, "estimator/loss_model.skops", tmp_path))
    assert loss_model.columns == list(TAXI_INPUTS)

    storage = make_storage()
    rows = storage.read_table("predictions", day, columns=[*KEY, "prediction"]).merge(
        storage.read_table("features", day, columns=[*KEY, *TAXI_INPUTS]), on=KEY
    )
    want = estimate_regression(rows[list(TAXI_INPUTS)], rows["prediction"], loss_model)
    got = document(day, "estimated.json")
    assert (got["version"], got["status"], got["task"], got["rows"]) == (
        pin.version,
        FITTED_ON_REFERENCE,
        "regression",
        storage.manifest("predictions", day).rows["written"],
    )
    assert got["metrics"] == pytest.approx({"mae": want["mae"], "rmse": want["rmse"]}, rel=1e-9)
    assert got["sampling_error"] == pytest.approx(want["sampling_error"], rel=1e-9)
    assert got["window"]["dates"] == [day.isoformat()] and got["window"]["metrics"] == pytest.approx(got["metrics"])

    # Two days later (label lag 2) the labels of `day` are in: its estimate against its realized MAE and RMSE.
    later = day + dt.timedelta(days=2)
    assert build(DailyScore(later)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    metrics = document(later, "metrics.json")
    realized, error = metrics["numbers"]["realized"], metrics["estimate_error"]
    assert (error["date"], error["version"]) == (day.isoformat(), pin.version)
    for name in ("mae", "rmse"):
        assert error["metrics"][name]["estimated"] == pytest.approx(got["metrics"][name])
        assert error["metrics"][name]["error"] == pytest.approx(got["metrics"][name] - realized[name])
    # The loss model, fitted on the same weeks' held-out rows, is within 10% of the realized MAE on a healthy date.
    assert abs(error["metrics"]["mae"]["relative_error"]) < 0.1
    (check,) = [c for c in metrics["checks"] if c["name"] == "estimator"]
    assert check["ok"] and check["detail"]["check"]["metric"] == "mae" and check["detail"]["check"]["relative"]


def recipe(frame: pd.DataFrame, settings):
    """A batchml recipe for the homes classifier: one-hot text, imputed numbers, a logistic regression."""
    from tests.e2e.test_any_model import sklearn_pipeline

    return sklearn_pipeline("classification").fit(frame[list(settings.inputs)], frame[settings.label])


FLIP_FROM = DAY + dt.timedelta(days=5)


def flipped_segment(rows: pd.DataFrame) -> pd.Series:
    """The homes segment, with low and high swapped on the rows listed from FLIP_FROM: labels stop following inputs."""
    import homes_hooks

    segment = pd.Series(homes_hooks.segment(rows), index=rows.index)
    swapped = segment.map({"low": "high", "high": "low", "mid": "mid"})
    return swapped.where(rows["listed_at"] >= pd.Timestamp(FLIP_FROM), segment)


def test_a_classifier_gets_its_calibrator_at_registration_and_each_date_its_expected_accuracy(project, tmp_path):
    hooks, apply = project
    apply(
        "homes_estimated",
        "classification",
        labels={"transform": "homes_hooks:segment"},
        source={"label_lag_days": "1"},
        training={"recipe": "tests.tasks.test_estimated_flow:recipe", "window_days": "3", "params": "{}"},
        mlflow={"cold_start": "true"},
    )
    assert build(DailyScore(DAY)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    pin = read_pin(DAY)
    calibrator = calibrator_from_json(run_artifact(pin.run_id, "estimator/calibrator.json", tmp_path).decode())
    assert calibrator["classes"] == ["high", "low", "mid"] and calibrator["status"] == FITTED_ON_REFERENCE

    rows = make_storage().read_table("predictions", DAY)
    raw = rows[["proba_high", "proba_low", "proba_mid"]].to_numpy(dtype="float64")
    classes = np.array(calibrator["classes"])
    assert (rows["prediction"].to_numpy() == classes[raw.argmax(axis=1)]).all()  # predictions are the argmax
    got = document(DAY, "estimated.json")
    assert (got["version"], got["status"], got["task"], got["rows"]) == (
        pin.version,
        FITTED_ON_REFERENCE,
        "classification",
        len(rows),
    )
    # By hand: a row predicted j is right with its calibrated probability of j; accuracy is their mean.
    calibrated = calibrate(raw, calibrator)
    assert got["metrics"]["accuracy"] == pytest.approx(calibrated[np.arange(len(rows)), raw.argmax(axis=1)].mean())
    want = estimate_classification(raw, list(classes), calibrator, rows["prediction"])
    assert got["metrics"] == pytest.approx({m: want[m] for m in got["metrics"]}, rel=1e-9)
    assert got["sampling_error"] == pytest.approx(want["sampling_error"], rel=1e-9)
    assert set(got["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}


def monitoring_run_metrics(day: dt.date) -> dict[str, float]:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri())
    experiment = client.get_experiment_by_name(f"{model_name()}-monitoring")
    (run,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.date = '{day}'")
    return run.data.metrics


def test_a_version_registered_with_mlflow_gets_its_estimator_from_its_first_labelled_dates_and_a_warning_when_labels_stop_following_inputs(  # noqa: E501
    project,
):
    hooks, apply = project
    apply(
        "homes_foreign",
        "classification",
        labels={"transform": "tests.tasks.test_estimated_flow:flipped_segment"},
        source={"label_lag_days": "1"},
    )
    log_sklearn(hooks, "classification", "homes_foreign")
    days = [DAY + dt.timedelta(days=i) for i in range(8)]
    for day in days:  # in order: each date's estimator is the one its predecessors' labels allow
        assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    estimated = {d: document(d, "estimated.json") for d in days}
    # The first run scores DAY and, for its realized metrics, DAY - 1: the version's first dates. baseline_days = 2
    # (the homes fixture): their labels are due (lag 1) by DAY + 1, whose estimate is the first.
    first = DAY - dt.timedelta(days=1)
    waiting = [document(first, "estimated.json"), estimated[DAY]]
    assert [(e["status"], e["metrics"], e["rows"]) for e in waiting] == [("not yet available", {}, 0)] * 2
    assert all(e["status_detail"].endswith("; waiting for 2 more labelled dates") for e in waiting)
    assert {estimated[d]["status"] for d in days[1:]} == {"from first labelled dates"}
    assert estimated[days[1]]["estimator"] == {"rows": 2400, "fitted_on": f"{first}..{DAY}"}
    assert make_storage().read_text("_estimators/homes_foreign/1/meta.json") is not None

    metrics = {d: document(d, "metrics.json") for d in days}
    assert all("estimate_error" not in metrics[d] for d in days[:2])  # DAY - 1 and DAY had no estimate
    for d in days[2:]:
        labelled = d - dt.timedelta(days=1)
        error = metrics[d]["estimate_error"]
        assert error["date"] == labelled.isoformat()
        realized = metrics[d]["numbers"]["realized"]
        for name, e in error["metrics"].items():
            assert e["estimated"] == pytest.approx(estimated[labelled]["metrics"][name])
            assert e["realized"] == pytest.approx(realized[name])
            assert e["error"] == pytest.approx(e["estimated"] - e["realized"])
    check = {d: next(c for c in metrics[d]["checks"] if c["name"] == "estimator") for d in days[2:]}
    healthy, first_flip, second_flip = days[2:6], days[6], days[7]
    assert all(check[d]["ok"] and check[d]["detail"]["wrong_dates"] == [] for d in healthy)
    assert abs(metrics[healthy[0]]["estimate_error"]["metrics"]["roc_auc"]["error"]) < 0.03
    assert check[first_flip]["ok"] and check[first_flip]["detail"]["wrong_dates"] == [FLIP_FROM.isoformat()]
    assert not check[second_flip]["ok"] and check[second_flip]["severity"] == "warn"
    assert check[second_flip]["detail"]["wrong_dates"] == [FLIP_FROM.isoformat(), days[6].isoformat()]
    assert metrics[second_flip]["status"] == "warn" and "estimator" in metrics[second_flip]["warned"]
    # MLflow: the date's monitoring run carries the estimate, its band and, once labels are in, its error.
    logged = monitoring_run_metrics(second_flip)
    assert logged["estimated_roc_auc"] == pytest.approx(estimated[second_flip]["metrics"]["roc_auc"])
    assert logged["estimated_roc_auc_sampling_error"] == pytest.approx(
        estimated[second_flip]["sampling_error"]["roc_auc"]
    )
    assert logged["estimate_error_roc_auc"] == pytest.approx(
        metrics[second_flip]["estimate_error"]["metrics"]["roc_auc"]["error"]
    )


def noisy_price(rows: pd.DataFrame) -> pd.Series:
    """The homes price with noise that grows with the area (seeded by each row's id): what the loss model learns."""
    import homes_hooks

    noise = np.random.default_rng(rows["id"].to_numpy() % 7919).normal(size=len(rows))
    return pd.Series(homes_hooks.price(rows) + noise * rows["area"].fillna(120.0) / 4, index=rows.index)


def test_a_regressor_registered_with_mlflow_gets_its_loss_model_from_its_first_labelled_dates(project):
    import base64

    hooks, apply = project
    apply(
        "homes_regressor",
        "regression",
        labels={"transform": "tests.tasks.test_estimated_flow:noisy_price"},
        source={"label_lag_days": "1"},
    )
    log_sklearn(hooks, "regression", "homes_regressor")
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    for day in days:
        assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    assert document(DAY, "estimated.json")["status"] == "not yet available"
    got = document(days[1], "estimated.json")
    assert got["status"] == "from first labelled dates" and got["task"] == "regression"

    storage = make_storage()
    stored = storage.read_text("_estimators/homes_regressor/1/loss_model.skops.b64")
    loss_model = loss_model_from_bytes(base64.b64decode(stored))
    assert loss_model.columns == INPUTS and loss_model.rows == 2400
    rows = storage.read_table("predictions", days[1], columns=["id", "prediction"]).merge(
        storage.read_table("features", days[1]), on="id"
    )
    want = estimate_regression(rows[INPUTS], rows["prediction"], loss_model)
    assert got["metrics"] == pytest.approx({"mae": want["mae"], "rmse": want["rmse"]}, rel=1e-9)
    error = document(days[2], "metrics.json")["estimate_error"]
    assert error["date"] == days[1].isoformat() and abs(error["metrics"]["mae"]["relative_error"]) < 0.1
