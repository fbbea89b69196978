import datetime as dt

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from batchml.features import FEATURES, LABEL, model_matrix
from batchml.schema import Schema
from batchml.sources import SyntheticSource
from batchml.training import labelled_frame, labelled_window, regression_metrics, to_onnx_bytes, train_model
from tests.conftest import SCHEMA


@pytest.fixture(scope="module")
def frame():
    src = SyntheticSource(rows_per_day=4000, seed=3, bad_row_share=0.01)
    return labelled_frame(src, Schema.load(SCHEMA), labelled_window(dt.date(2026, 5, 10), 3), max_rows=9000, seed=1)


def test_labelled_frame_samples_valid_rows_from_each_date(frame):
    assert len(frame) == 9000
    assert sorted(frame["date"].unique()) == [dt.date(2026, 5, 8), dt.date(2026, 5, 9), dt.date(2026, 5, 10)]
    assert (frame["passenger_count"] >= 1).all() and (frame[LABEL] > 0).all()


def test_onnx_export_matches_scikit_learn_on_float64(frame):
    model = train_model(frame, seed=0, max_iter=30)
    session = ort.InferenceSession(to_onnx_bytes(model), providers=["CPUExecutionProvider"])
    onnx_pred = session.run(None, {session.get_inputs()[0].name: model_matrix(frame)})[0].ravel()
    np.testing.assert_allclose(onnx_pred, model.predict(frame[list(FEATURES)]), rtol=1e-4, atol=0.05)


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.uniform(100, 2000, 500)
    p = y + rng.normal(0, 50, 500)
    m = regression_metrics(y, p)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert m["mape"] == pytest.approx(np.mean(np.abs((p - y) / y)))
