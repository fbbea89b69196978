"""batchml.monitor.estimated on small data: windows by hand, the estimate's error and its check, the stored files."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from batchml.dataset.contract import Contract
from batchml.model.pin import ModelPin
from batchml.monitor.estimated import (
    ESTIMATOR_CHECK,
    EstimationPolicy,
    combine,
    date_estimate,
    estimator_from_files,
    fit_estimator,
    flat_estimates,
    not_yet,
    registered_estimator_files,
    with_estimate_error,
)
from batchml.stats.estimators import FITTED_ON_REFERENCE, NOT_YET_AVAILABLE, estimate_classification
from batchml.store.documents import write_document
from batchml.store.storage import open_storage

DAY = dt.date(2026, 5, 4)
PIN = ModelPin(name="m", version="3", sha256="s", alias="champion", run_id="r", classes=("no", "yes"))
CONTRACT = Contract.from_dict(
    {
        "dataset": "rows",
        "key": "id",
        "columns": {"id": {"dtype": "integer", "nullable": False}, "y": {"dtype": "string", "nullable": False}},
        "label": {"column": "y", "task": "classification", "classes": ["no", "yes"]},
    },
    path="rows.yaml",
)


def estimate(day: dt.date, rows: int, metrics: dict, errors: dict, version: str = "3") -> dict:
    return {
        "date": day.isoformat(),
        "version": version,
        "model": {"name": "m", "version": version},
        "status": FITTED_ON_REFERENCE,
        "rows": rows,
        "metrics": metrics,
        "sampling_error": errors,
    }


def test_a_window_is_row_weighted_rmse_as_the_root_of_the_mean_square_and_bands_as_independent_dates():
    got = combine(
        [
            estimate(DAY, 100, {"mae": 2.0, "rmse": 3.0}, {"mae": 0.1, "rmse": 0.3}),
            estimate(DAY, 300, {"mae": 4.0, "rmse": 5.0}, {"mae": 0.2, "rmse": None}),
            estimate(DAY, 0, {}, {}),  # a date without an estimate counts for nothing
        ]
    )
    assert got["rows"] == 400
    assert got["metrics"]["mae"] == pytest.approx((100 * 2 + 300 * 4) / 400)
    assert got["metrics"]["rmse"] == pytest.approx(math.sqrt((100 * 9 + 300 * 25) / 400))
    assert got["sampling_error"]["mae"] == pytest.approx(math.sqrt((100 * 0.1) ** 2 + (300 * 0.2) ** 2) / 400)
    assert got["sampling_error"]["rmse"] is None  # one date's band unknown: the window's too


def test_a_date_without_an_estimator_has_no_numbers_and_says_why(tmp_path):
    storage = open_storage(tmp_path)
    write_document(storage, f"monitoring/date={DAY - dt.timedelta(days=1)}/estimated.json", estimate(DAY, 10, {}, {}))
    got = date_estimate(
        storage, DAY, PIN, not_yet("classification", "waiting for 2 more labelled dates"), CONTRACT, window_days=3
    )
    assert (got["status"], got["status_detail"], got["rows"], got["metrics"], got["sampling_error"]) == (
        NOT_YET_AVAILABLE,
        "waiting for 2 more labelled dates",
        0,
        {},
        {},
    )
    assert got["window"] == {"window_days": 3, "dates": [], "rows": 0, "metrics": {}, "sampling_error": {}}
    assert json.loads(json.dumps(got, allow_nan=False)) == got  # plain JSON: no NaN anywhere


def metrics_json(labelled: dt.date, realized: dict, version: str = "3", status: str = "ok") -> dict:
    return {
        "status": status,
        "failed": [],
        "warned": [],
        "task": "classification",
        "checks": [],
        "numbers": {"realized": {**realized, "date": labelled.isoformat(), "model_version": version}},
    }


def test_the_estimate_error_is_recorded_and_the_check_warns_at_k_wrong_dates_of_the_same_version(tmp_path):
    storage = open_storage(tmp_path)
    policy = EstimationPolicy()  # roc_auc off by more than 0.03 beyond 2 sampling errors, on 2 of the last 3
    labelled, before = DAY - dt.timedelta(days=1), DAY - dt.timedelta(days=2)
    write_document(
        storage,
        f"monitoring/date={labelled}/estimated.json",
        estimate(labelled, 500, {"roc_auc": 0.9, "accuracy": 0.8}, {"roc_auc": 0.01, "accuracy": 0.02}),
    )
    # The day before: this version's estimate was off by 0.1 on `before`; another version's error does not count.
    earlier = {
        "estimate_error": {
            "date": before.isoformat(),
            "version": "3",
            "metrics": {
                "roc_auc": {
                    "estimated": 0.9,
                    "realized": 0.8,
                    "error": 0.1,
                    "relative_error": 0.125,
                    "sampling_error": 0.01,
                }
            },
        }
    }
    write_document(storage, f"monitoring/date={DAY - dt.timedelta(days=1)}/metrics.json", earlier)

    got = with_estimate_error(storage, DAY, metrics_json(labelled, {"roc_auc": 0.85, "accuracy": 0.79}), policy)
    error = got["estimate_error"]
    assert (error["date"], error["version"], error["dates"]) == (labelled.isoformat(), "3", [labelled.isoformat()])
    assert error["metrics"]["roc_auc"] == pytest.approx(
        {"estimated": 0.9, "realized": 0.85, "error": 0.05, "relative_error": 0.05 / 0.85, "sampling_error": 0.01}
    )
    assert error["metrics"]["accuracy"]["error"] == pytest.approx(0.01)
    (check,) = [c for c in got["checks"] if c["name"] == ESTIMATOR_CHECK]
    assert (check["ok"], check["severity"], check["value"]) == (False, "warn", 2.0)
    assert check["detail"]["wrong_dates"] == [before.isoformat(), labelled.isoformat()]
    assert (got["status"], got["warned"], got["failed"]) == ("warn", [ESTIMATOR_CHECK], [])

    earlier["estimate_error"]["version"] = "2"  # another version's estimator
    write_document(storage, f"monitoring/date={DAY - dt.timedelta(days=1)}/metrics.json", earlier)
    got = with_estimate_error(storage, DAY, metrics_json(labelled, {"roc_auc": 0.85}), policy)
    (check,) = [c for c in got["checks"] if c["name"] == ESTIMATOR_CHECK]
    assert check["ok"] and check["detail"]["wrong_dates"] == [labelled.isoformat()] and got["status"] == "ok"


def test_no_estimate_of_the_labelled_date_or_estimation_off_leaves_metrics_json_as_it_was(tmp_path):
    storage = open_storage(tmp_path)
    labelled = DAY - dt.timedelta(days=1)
    metrics = metrics_json(labelled, {"roc_auc": 0.85})
    assert with_estimate_error(storage, DAY, metrics, EstimationPolicy()) == metrics
    write_document(storage, f"monitoring/date={labelled}/estimated.json", estimate(labelled, 5, {"roc_auc": 0.5}, {}))
    assert with_estimate_error(storage, DAY, metrics, EstimationPolicy(enabled=False)) == metrics
    assert "estimate_error" in with_estimate_error(storage, DAY, metrics, EstimationPolicy())


def test_a_regressors_check_is_on_mae_by_a_relative_margin():
    check = EstimationPolicy(relative_margin=0.2, k=1, n=4).check("regression")
    assert (check.metric, check.margin, check.relative, check.k, check.n) == ("mae", 0.2, True, 1, 4)
    assert EstimationPolicy().check("classification").metric == "roc_auc"


def test_mlflow_gets_estimates_bands_and_errors_under_their_own_names():
    estimated = estimate(DAY, 9, {"mae": 2.0, "rmse": None}, {"mae": 0.1, "rmse": None})
    metrics = {"estimate_error": {"metrics": {"mae": {"error": -0.5}, "rmse": {"error": None}}}}
    assert flat_estimates(estimated, metrics) == {
        "estimated_mae": 2.0,
        "estimated_mae_sampling_error": 0.1,
        "estimate_error_mae": -0.5,
    }
    assert flat_estimates(None, None) == {}


def files_reader(files: dict[str, bytes]):
    return lambda name: files.get(f"estimator/{name}")


def test_estimators_round_trip_through_their_files_and_too_few_rows_say_so():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=400), "c": rng.choice(["u", "v"], 400)})
    prediction = x["a"].to_numpy()
    truth = prediction + rng.normal(scale=1 + (x["c"] == "v"), size=400)
    loss = fit_estimator("regression", x, {"prediction": prediction}, truth, None, fitted_on="holdout")
    files = registered_estimator_files(loss)
    assert set(files) == {"estimator/meta.json", "estimator/loss_model.skops"}
    assert json.loads(files["estimator/meta.json"]) == {
        "task": "regression",
        "status": FITTED_ON_REFERENCE,
        "rows": 400,
        "fitted_on": "holdout",
    }
    back = estimator_from_files("regression", files_reader(files))
    assert back.loss_model.columns == ["a", "c"]
    np.testing.assert_array_equal(
        back.loss_model.absolute.predict(x.assign(c=x["c"].map({"u": 0.0, "v": 1.0}), __prediction__=prediction)),
        loss.loss_model.absolute.predict(x.assign(c=x["c"].map({"u": 0.0, "v": 1.0}), __prediction__=prediction)),
    )

    p = rng.uniform(size=300)
    outputs = {"proba_no": 1 - p, "proba_yes": p}
    labels = np.where(rng.uniform(size=300) < p, "yes", "no")
    calibrator = fit_estimator("classification", x.iloc[:0], outputs, labels, ["no", "yes"], fitted_on="holdout")
    back = estimator_from_files("classification", files_reader(registered_estimator_files(calibrator)))
    assert back.calibrator == calibrator.calibrator and back.status == FITTED_ON_REFERENCE
    assert estimator_from_files("classification", files_reader({})) is None  # no meta.json: no estimator

    few = fit_estimator("regression", x.head(5), {"prediction": prediction[:5]}, truth[:5], None, fitted_on="D1..D2")
    assert few.status == NOT_YET_AVAILABLE and few.detail.startswith("could not be fitted on D1..D2: ")
    assert "at least 20 are needed" in few.detail


def test_sampling_errors_drawn_on_a_sample_of_rows_match_those_drawn_on_every_row():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=40_000)
    proba = np.column_stack([1 - p, p])
    calibrator = {"kind": "isotonic per class", "classes": [0, 1], "maps": [None, None], "status": FITTED_ON_REFERENCE}
    every = estimate_classification(proba, [0, 1], calibrator, draw_rows=0)
    sampled = estimate_classification(proba, [0, 1], calibrator, draw_rows=10_000)
    assert {m: sampled[m] for m in ("accuracy", "roc_auc")} == {m: every[m] for m in ("accuracy", "roc_auc")}
    # accuracy's band is the Bernoulli standard error: sqrt(sum p(1-p)) / n of the calibrated chance of being right
    right = np.maximum(p, 1 - p)
    bernoulli = math.sqrt((right * (1 - right)).sum()) / len(p)
    assert every["sampling_error"]["accuracy"] == pytest.approx(bernoulli, rel=0.15)
    assert sampled["sampling_error"]["accuracy"] == pytest.approx(bernoulli, rel=0.15)
    assert sampled["sampling_error"]["roc_auc"] == pytest.approx(every["sampling_error"]["roc_auc"], rel=0.25)


def commit(storage, dataset: str, day: dt.date, frame: pd.DataFrame) -> None:
    from tests.conftest import make_manifest

    with storage.writer(dataset, day) as w:
        frame.to_parquet(w.path / "part-00000.parquet")
        w.commit(make_manifest(len(frame), dataset=dataset, date=day))


def test_a_regressors_labelled_rows_join_on_the_key_and_take_every_feature_when_its_signature_names_none(tmp_path):
    from batchml.monitor.estimated import labelled_rows

    storage = open_storage(tmp_path)
    contract = Contract.from_dict(
        {
            "dataset": "rows",
            "key": "id",
            "columns": {
                "id": {"dtype": "integer", "nullable": False},
                "a": {"dtype": "float", "nullable": False},
                "b": {"dtype": "string", "nullable": False},
                "y": {"dtype": "float", "nullable": True},
            },
            "label": "y",
        },
        path="rows.yaml",
    )
    commit(storage, "features", DAY, pd.DataFrame({"id": [1, 2, 3], "a": [0.5, 1.5, 2.5], "b": ["u", "v", "u"]}))
    commit(storage, "predictions", DAY, pd.DataFrame({"id": [3, 1, 2], "prediction": [30.0, 10.0, 20.0]}))
    commit(storage, "labels", DAY, pd.DataFrame({"id": [2, 3, 1], "y": [21.0, None, 9.0]}))
    unsigned = ModelPin(name="m", version="1", sha256="s", alias="", run_id="")
    inputs, outputs, truth = labelled_rows(storage, [DAY], contract, unsigned)
    rows = pd.concat([inputs, outputs], axis=1).assign(y=truth).sort_values("a").reset_index(drop=True)
    expected = pd.DataFrame({"a": [0.5, 1.5], "b": ["u", "v"], "prediction": [10.0, 20.0], "y": [9.0, 21.0]})
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)  # row 3 has no label: left out
    signed = ModelPin(name="m", version="1", sha256="s", alias="", run_id="", inputs=("a",))
    assert list(labelled_rows(storage, [DAY], contract, signed)[0].columns) == ["a"]


def test_a_large_regressor_date_is_estimated_on_a_sample_with_the_band_of_every_row():
    from batchml.monitor.estimated import estimate_rows

    rng = np.random.default_rng(2)
    x = pd.DataFrame({"a": rng.uniform(0, 4, 20_000)})
    prediction = x["a"].to_numpy()
    truth = prediction + rng.normal(scale=0.5 + x["a"], size=len(x))  # the error grows with a
    estimator = fit_estimator(
        "regression", x.head(4000), {"prediction": prediction[:4000]}, truth[:4000], None, fitted_on="r"
    )
    outputs = pd.DataFrame({"prediction": prediction})
    every = estimate_rows(estimator, outputs, x, None, most_rows=0)
    sampled = estimate_rows(estimator, outputs, x, None, most_rows=4000)
    assert every["metrics"] == pytest.approx(
        {
            "mae": estimator.loss_model.absolute.predict(x.assign(__prediction__=prediction)).mean(),
            "rmse": every["metrics"]["rmse"],
        }
    )
    assert sampled["metrics"] == pytest.approx(every["metrics"], rel=0.02)
    assert sampled["metrics"] != every["metrics"]  # a sample was read
    assert sampled["sampling_error"] == pytest.approx(every["sampling_error"], rel=0.05)  # the band of 20,000 rows


def test_a_regressors_date_is_sampled_before_its_predictions_are_joined_with_its_features(tmp_path):
    from batchml.monitor.estimated import estimate_rows, scored_rows

    storage = open_storage(tmp_path)
    ids = np.arange(50)
    commit(storage, "features", DAY, pd.DataFrame({"id": ids, "a": ids * 1.0, "b": ids % 3}))
    commit(storage, "predictions", DAY, pd.DataFrame({"id": ids[::-1], "prediction": ids[::-1] * 2.0}))
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.uniform(0, 50, 400)})
    truth = 2 * x["a"].to_numpy() + rng.normal(size=400)
    estimator = fit_estimator("regression", x, {"prediction": 2 * x["a"].to_numpy()}, truth, None, fitted_on="r")
    pin = ModelPin(name="m", version="1", sha256="s", alias="", run_id="", inputs=("a",))
    outputs, inputs, rows = scored_rows(storage, DAY, pin, estimator, ["id"], most_rows=10)
    assert (len(outputs), list(inputs.columns), rows) == (10, ["a"], 50)
    np.testing.assert_array_equal(outputs["prediction"].to_numpy(), 2 * inputs["a"].to_numpy())  # joined row by row
    every = scored_rows(storage, DAY, pin, estimator, ["id"], most_rows=0)
    assert len(every[0]) == 50
    sampled = estimate_rows(estimator, outputs, inputs, None, rows=rows)
    alone = estimate_rows(estimator, outputs, inputs, None)  # the same 10 rows as a date of 10 rows
    assert sampled["metrics"] == alone["metrics"]
    assert sampled["sampling_error"]["mae"] == pytest.approx(alone["sampling_error"]["mae"] * math.sqrt(10 / 50))


def test_metrics_json_carries_the_dates_own_estimate_beside_its_realized_numbers(tmp_path):
    storage = open_storage(tmp_path)
    labelled = DAY - dt.timedelta(days=1)
    metrics = metrics_json(labelled, {"roc_auc": 0.85})
    own = estimate(DAY, 500, {"roc_auc": 0.88, "accuracy": 0.8}, {"roc_auc": 0.01, "accuracy": 0.02})
    write_document(storage, f"monitoring/date={DAY}/estimated.json", own)
    got = with_estimate_error(storage, DAY, metrics, EstimationPolicy())
    assert got["estimated"] == {k: own[k] for k in ("version", "status", "metrics", "sampling_error")}
    assert with_estimate_error(storage, DAY, metrics, EstimationPolicy(enabled=False)) == metrics
