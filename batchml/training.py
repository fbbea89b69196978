"""Training data, the estimator, its ONNX export and its evaluation."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from batchml.features import FEATURES, KEY, LABEL, build_features, model_matrix
from batchml.schema import Schema, validate
from batchml.sources import Source

log = logging.getLogger(__name__)


def labelled_window(end: dt.date, days: int) -> list[dt.date]:
    """The `days` dates ending at `end` (inclusive), oldest first."""
    return [end - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]


def labelled_frame(source: Source, schema: Schema, dates: list[dt.date], *, max_rows: int, seed: int) -> pd.DataFrame:
    """Valid features joined with their labels over `dates`, sampled down to `max_rows`.

    Rows come through the same validation and feature code as scoring, so a model never
    trains on rows it would refuse to score.
    """
    per_date = max(1, max_rows // max(1, len(dates)))
    parts = []
    for i, date in enumerate(dates):
        batches = [validate(b, schema, date, origin=o).valid for o, b in source.batches(date)]
        features = build_features(pd.concat(batches, ignore_index=True))
        joined = features.merge(source.labels(date), on=KEY, how="inner", validate="one_to_one")
        if len(joined) > per_date:
            joined = joined.sample(per_date, random_state=seed + i)
        parts.append(joined.assign(date=date))
    frame = pd.concat(parts, ignore_index=True)
    return frame[np.isfinite(frame[LABEL]) & (frame[LABEL] > 0)].reset_index(drop=True)


def train_model(frame: pd.DataFrame, *, seed: int, max_iter: int = 200) -> HistGradientBoostingRegressor:
    """A gradient-boosted tree regressor of trip duration on the model features (float64)."""
    model = HistGradientBoostingRegressor(max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=31, early_stopping=False, random_state=seed)
    model.fit(frame[list(FEATURES)], frame[LABEL].to_numpy())
    return model


def to_onnx_bytes(model) -> bytes:
    """The model as ONNX taking one float32 matrix `input` in FEATURES order."""
    from skl2onnx import to_onnx

    sample = model_matrix(pd.DataFrame({f: [0.0] for f in FEATURES}))
    return to_onnx(model, sample, target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString()


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R2 and MAPE (on rows with a positive truth)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    err = y_pred - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    pos = y_true > 0
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot else float("nan"),
        "mape": float(np.abs(err[pos] / y_true[pos]).mean()),
        "n": int(len(y_true)),
    }
