"""Training frames through the project's hooks, ONNX export with a parity check, task-aware metrics."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss, mean_absolute_error, mean_squared_error, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from batchml.base.errors import HookError
from batchml.dataset.contract import Contract
from batchml.dataset.sources import GeneratorSource
from batchml.model.onnx_io import PREDICTION
from batchml.model.training import (
    TrainingSettings,
    fit_model,
    fit_recipe,
    labelled_frame,
    labelled_window,
    recipe_settings,
    split_holdout,
    to_onnx_bytes,
)
from batchml.scoring.scoring import ModelSpec, predict_partition
from batchml.stats.metrics import classification_metrics, regression_metrics
from tests.conftest import CONTRACT, TAXI_INPUTS

INPUTS = list(TAXI_INPUTS)


@pytest.fixture(scope="module")
def frame():
    src = GeneratorSource(
        generator="taxi_hooks:trips", options={"rows_per_day": 4000, "seed": 3, "bad_row_share": 0.01}
    )
    dates = labelled_window(dt.date(2026, 5, 10), 3)
    return labelled_frame(
        src,
        Contract.load(CONTRACT),
        dates,
        features="taxi_hooks:features",
        labels="taxi_hooks:duration",
        max_rows=9000,
        seed=1,
    )


def test_labelled_frame_samples_valid_rows_of_each_date_with_key_inputs_and_label(frame):
    assert 8900 < len(frame) <= 9000  # rows without a usable label (impossible durations) are dropped
    assert sorted(frame["date"].unique()) == [dt.date(2026, 5, 8), dt.date(2026, 5, 9), dt.date(2026, 5, 10)]
    assert {"vendor_id", "pickup_datetime", *INPUTS, "trip_duration_s"} <= set(frame.columns)
    assert (frame["passenger_count"] >= 1).all() and (frame["trip_duration_s"] > 0).all()


def test_the_recipe_fits_and_its_onnx_export_matches_scikit_learn(frame):
    settings = TrainingSettings(
        inputs=tuple(INPUTS), label="trip_duration_s", task="regression", seed=0, params={"max_iter": 30}
    )
    model = fit_recipe("taxi_hooks:recipe", frame, settings)
    blob, note = to_onnx_bytes(model, frame[INPUTS].head(500))
    assert blob is not None, note
    spec = ModelSpec("unused", "x", "onnx", tuple(INPUTS), ("vendor_id",), "m", "1")
    import onnxruntime as ort

    import batchml.scoring.scoring as scoring

    scoring._models["x"] = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    try:
        got = predict_partition(frame.head(2000), spec)
    finally:
        scoring._models.pop("x")
    np.testing.assert_allclose(got[PREDICTION], model.predict(frame[INPUTS].head(2000)), rtol=1e-4, atol=0.05)


def test_the_holdout_is_a_share_of_every_date_and_the_whole_frame_stands_in_for_an_empty_side(frame):
    train, holdout = split_holdout(frame, 7, 0.1)
    assert sorted([*train.index, *holdout.index]) == list(frame.index)  # disjoint, and together the frame
    for date, rows in frame.groupby("date"):
        share = (holdout["date"] == date).sum() / len(rows)
        assert 0.07 < share < 0.13, (date, share)  # about a tenth of each date's ~3000 rows
    assert split_holdout(frame, 7, 0.1)[1].index.equals(holdout.index)  # the seed decides
    for share in (0.0, 1.0):  # nothing (or everything) held out: the whole frame on both sides
        train, holdout = split_holdout(frame, 7, share)
        assert train.index.equals(frame.index) and holdout.index.equals(frame.index)


def test_the_recipe_is_told_the_transformed_columns_or_the_contracts_inputs(frame):
    contract = Contract.load(CONTRACT)
    told = recipe_settings(contract, frame.columns, transformed=True, seed=4, params={"max_iter": 5})
    assert set(told.inputs) == set(frame.columns) - {*contract.key, contract.label.column, "date"}
    assert (told.label, told.task, told.seed, told.params) == ("trip_duration_s", "regression", 4, {"max_iter": 5})
    plain = recipe_settings(contract, frame.columns, transformed=False, seed=4)
    assert plain.inputs == tuple(c for c in contract.default_inputs if c not in contract.key) and plain.params == {}


def classifier(frame: pd.DataFrame, settings: TrainingSettings):
    return LogisticRegression(max_iter=200).fit(frame[list(settings.inputs)], frame[settings.label])


def test_a_fitted_classifier_names_its_probability_columns_in_the_contracts_order():
    rng = np.random.default_rng(2)
    x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    x["y"] = np.where(x["a"] > 0.5, "yes", np.where(x["a"] < -0.5, "no", "maybe"))
    settings = TrainingSettings(
        inputs=("b", "a"), label="y", task="classification", seed=0, classes=("yes", "no", "maybe")
    )
    fitted = fit_model("tests.unit.test_training:classifier", x, settings)
    assert fitted.inputs == ["b", "a"] and fitted.classes == ["maybe", "no", "yes"]  # scikit-learn sorts classes_
    assert fitted.named == ["yes", "no", "maybe"]


def test_a_fitted_regressor_has_no_classes(frame):
    settings = TrainingSettings(
        inputs=tuple(INPUTS), label="trip_duration_s", task="regression", seed=0, params={"max_iter": 5}
    )
    fitted = fit_model("taxi_hooks:recipe", frame.head(500), settings)
    assert fitted.inputs == INPUTS and fitted.classes is None and fitted.named is None


def test_a_recipe_that_fails_is_named(frame):
    settings = TrainingSettings(inputs=tuple(INPUTS), label="trip_duration_s", task="regression", seed=0)
    with pytest.raises(HookError, match=r"\[training\] recipe = taxi_hooks:features raised TypeError"):
        fit_recipe("taxi_hooks:features", frame, settings)


def test_a_pipeline_with_text_categories_and_nulls_exports_with_one_input_per_column():
    rng = np.random.default_rng(0)
    n = 600
    x = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "pro", "team"], n),
            "spend": rng.gamma(2, 10, n),
            "tenure": rng.integers(1, 60, n).astype("int64"),
        }
    )
    x.loc[::17, "spend"] = np.nan
    y = (x["plan"].eq("basic") & (x["tenure"] < 12)).astype(int).to_numpy()
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]), ("num", SimpleImputer(), ["spend", "tenure"])]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(x, y)
    blob, note = to_onnx_bytes(model, x, classes=[0, 1])
    assert blob is not None, note


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.uniform(100, 2000, 500)
    p = y + rng.normal(0, 50, 500)
    m = regression_metrics(y, p)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert m["mape"] == pytest.approx(np.mean(np.abs((p - y) / y)))


def test_classification_metrics_agree_with_scikit_learn_binary_and_multiclass():
    rng = np.random.default_rng(1)
    y = rng.choice(["no", "yes"], 400)
    p1 = np.clip(0.5 + 0.3 * (y == "yes") + rng.normal(0, 0.2, 400), 0.01, 0.99)
    proba = np.column_stack([1 - p1, p1])
    m = classification_metrics(y, proba, ["no", "yes"])
    assert m["log_loss"] == pytest.approx(log_loss(y, proba, labels=["no", "yes"]))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y == "yes", p1))
    assert m["f1"] == pytest.approx(f1_score(y, np.where(p1 >= 0.5, "yes", "no"), pos_label="yes"))
    assert m["brier"] == pytest.approx(2 * np.mean((p1 - (y == "yes")) ** 2))
    y3 = rng.choice([0, 1, 2], 300)
    p3 = rng.dirichlet([1, 1, 1], 300)
    m3 = classification_metrics(y3, p3, [0, 1, 2])
    assert m3["roc_auc"] == pytest.approx(roc_auc_score(y3, p3, multi_class="ovr"))
