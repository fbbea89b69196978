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
