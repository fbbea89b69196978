"""A model's life: train on a labelled window, register with its evidence, set aliases."""

from __future__ import annotations

import datetime as dt
import logging

from batchml.features import CATEGORICAL, FEATURES, LABEL
from batchml.profile import reference_profile
from batchml.registry import Registry
from batchml.schema import Schema
from batchml.sources import Source
from batchml.training import labelled_frame, labelled_window, regression_metrics, to_onnx_bytes, train_model

log = logging.getLogger(__name__)


def train_and_register(
    source: Source,
    schema: Schema,
    registry: Registry,
    *,
    window_end: dt.date,
    window_days: int,
    max_rows: int,
    max_iter: int,
    seed: int,
    reason: str,
) -> str:
    """Train on the labelled window ending at `window_end`, register the model, return its version.

    The last date of the window is held out: its metrics are the version's
    training-time reference for realized error later.
    """
    dates = labelled_window(window_end, window_days)
    frame = labelled_frame(source, schema, dates, max_rows=max_rows, seed=seed)
    holdout = frame["date"] == dates[-1]
    train = frame[~holdout] if (~holdout).any() and holdout.any() else frame
    model = train_model(train, seed=seed, max_iter=max_iter)
    valid = frame[holdout] if holdout.any() else frame
    metrics = {f"holdout_{k}": v for k, v in regression_metrics(valid[LABEL], model.predict(valid[list(FEATURES)])).items()}
    metrics["train_rows"] = len(train)

    profile = reference_profile(train[list(FEATURES)], categorical=CATEGORICAL)
    profile["prediction"] = reference_profile(
        train.assign(prediction=model.predict(train[list(FEATURES)]))[["prediction"]]
    )["columns"]["prediction"]
    version = registry.register(
        model,
        train,
        onnx_bytes=to_onnx_bytes(model),
        profile=profile,
        params={"estimator": type(model).__name__, "max_iter": max_iter, "seed": seed, "window_start": dates[0].isoformat(), "window_end": dates[-1].isoformat(), "max_rows": max_rows},
        metrics=metrics,
        tags={"reason": reason, "window_start": dates[0].isoformat(), "window_end": dates[-1].isoformat(), "holdout_mae": f"{metrics['holdout_mae']:.3f}"},
        feature_names=list(FEATURES),
    )
    log.info("trained version %s on %s..%s (%d rows): holdout MAE %.1f s", version, dates[0], dates[-1], len(train), metrics["holdout_mae"])
    return version
