"""A model's life: train on a labelled window, register with its evidence, set aliases."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from batchml.features import CATEGORICAL, FEATURES, LABEL, model_matrix
from batchml.profile import reference_profile
from batchml.registry import Registry
from batchml.scoring import onnx_session
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
    profile["prediction"] = reference_profile(train.assign(prediction=model.predict(train[list(FEATURES)]))[["prediction"]])["columns"]["prediction"]
    version = registry.register(
        model,
        train,
        onnx_bytes=to_onnx_bytes(model),
        profile=profile,
        params={
            "estimator": type(model).__name__,
            "max_iter": max_iter,
            "seed": seed,
            "window_start": dates[0].isoformat(),
            "window_end": dates[-1].isoformat(),
            "max_rows": max_rows,
        },
        metrics=metrics,
        tags={"reason": reason, "window_start": dates[0].isoformat(), "window_end": dates[-1].isoformat(), "holdout_mae": f"{metrics['holdout_mae']:.3f}"},
        feature_names=list(FEATURES),
    )
    log.info("trained version %s on %s..%s (%d rows): holdout MAE %.1f s", version, dates[0], dates[-1], len(train), metrics["holdout_mae"])
    return version


@dataclass(frozen=True)
class GatePolicy:
    primary: str = "mae"
    margin: float = 0.02  # the challenger's primary metric must be this much lower (relative)
    guards: tuple[str, ...] = ("rmse",)
    guard_tolerance: float = 0.02  # a guard metric may be at most this much higher (relative)


def evaluate_onnx(model_path: Path, sha256: str, frame: pd.DataFrame) -> dict[str, float]:
    """Metrics of an ONNX model (what is deployed, not the scikit-learn object) on labelled rows."""
    session = onnx_session(str(model_path), sha256)
    prediction = session.run(None, {session.get_inputs()[0].name: model_matrix(frame)})[0].ravel()
    return regression_metrics(frame[LABEL].to_numpy(), prediction)


def gate(challenger: dict[str, float], champion: dict[str, float], policy: GatePolicy) -> dict:
    """Promote only if the challenger wins the primary metric by the margin and loses no guard."""
    p = policy.primary
    wins = challenger[p] <= champion[p] * (1 - policy.margin)
    guards = {g: challenger[g] <= champion[g] * (1 + policy.guard_tolerance) for g in policy.guards}
    promoted = wins and all(guards.values())
    if promoted:
        reason = f"{p} {challenger[p]:.1f} vs champion {champion[p]:.1f} ({challenger[p] / champion[p] - 1:+.1%}), guards held"
    elif not wins:
        reason = f"{p} {challenger[p]:.1f} vs champion {champion[p]:.1f}: not better by the {policy.margin:.0%} margin"
    else:
        reason = f"guard metric(s) worse: {', '.join(g for g, ok in guards.items() if not ok)}"
    return {
        "decision": "promoted" if promoted else "rejected",
        "reason": reason,
        "challenger": challenger,
        "champion": champion,
        "guards_held": guards,
        "gate": asdict(policy),
    }
