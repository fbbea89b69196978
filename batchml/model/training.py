"""Training data and the trained model: the labelled window, the project's recipe, the ONNX export.

batchml keeps the window, the sampling, the export, logging, registration and the gate;
the project's `[training] recipe` owns the estimator.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from batchml.base.errors import HookError, MissingInput
from batchml.base.hooks import call_hook
from batchml.base.progress import Progress
from batchml.base.setting import count, setting
from batchml.dataset.contract import Contract, validate
from batchml.dataset.features import labels_of, model_inputs
from batchml.dataset.nulls import NullCounts
from batchml.dataset.sources import Source

log = logging.getLogger(__name__)
RECIPE_HOOK = "[training] recipe"


@dataclass(frozen=True)
class TrainingPolicy:
    """[training] settings: the project's recipe, the labelled window and sampling (the home of their defaults;
    `params`, a dict, is the Luigi section's own and reaches the recipe as TrainingSettings.params)."""

    recipe: str = setting(
        "",
        "module:function: (labelled training frame, TrainingSettings) -> a fitted scikit-learn-API estimator. "
        "Empty: retraining is unavailable.",
    )
    window_days: int = count(14, "Days of labelled history a model trains on.")
    max_rows: int = count(500_000, "Rows sampled from that window at most.")
    seed: int = count(7, "Seed of sampling and training (numpy takes 0 to 2**32 - 1).", least=0, most=2**32 - 1)


@dataclass(frozen=True)
class TrainingSettings:
    """What a recipe is told: the inputs, the label, the task, a seed and its own parameters."""

    inputs: tuple[str, ...]
    label: str
    task: str
    seed: int
    classes: tuple | None = None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FittedModel:
    """A recipe's fitted estimator, with what scoring, metrics and registration need to know of it."""

    estimator: object
    inputs: list[str]  # the columns it was fitted on, in order
    classes: list | None  # its classes_ as fitted (None for a regressor)
    named: list | None  # the classes that name the proba_<class> columns, in the contract's order


def labelled_window(end: dt.date, days: int) -> list[dt.date]:
    """The `days` dates ending at `end` (inclusive), oldest first."""
    return [end - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]


def labelled_frame(
    source: Source,
    contract: Contract,
    dates: list[dt.date],
    *,
    features: str = "",
    labels: str = "",
    max_rows: int,
    seed: int,
    nulls: NullCounts | None = None,
) -> pd.DataFrame:
    """Model inputs joined with their labels over `dates`, sampled down to `max_rows`.

    Rows come through the same validation and features transform as scoring, so a model
    never trains on rows it would refuse to score. Labels come from `[labels] transform`
    on the same rows, or from the source's labels feed. Dates without rows are skipped.
    `nulls`, when given, adds up the nulls of the valid rows of the dates trained on (all of them, before sampling).
    """
    label = contract.require_label().column
    per_date = max(1, max_rows // max(1, len(dates)))
    parts = []
    progress = Progress(log)
    for i, date in enumerate(dates):
        try:  # a date without rows, or whose labels have not arrived, is not trained on
            checked = [validate(b, contract, date, origin=o) for o, b in source.batches(date)]
            rows = pd.concat([c.valid for c in checked], ignore_index=True)
            truth = labels_of(rows, contract, labels) if labels else source.labels(date)
        except MissingInput as exc:
            log.warning("training window: %s skipped: %s", date, exc)
            progress.update(i + 1, len(dates), f"training: read {i + 1} of {len(dates)} dates ({date}: skipped)")
            continue
        if nulls is not None:
            for c in checked:
                nulls.add(len(c.valid), c.null_counts)
        inputs = model_inputs(rows, contract, features)
        on = list(contract.key)
        joined = inputs.drop(columns=[label], errors="ignore").merge(
            truth[[*on, label]], on=on, how="inner", validate="one_to_one"
        )
        if len(joined) > per_date:
            joined = joined.sample(per_date, random_state=seed + i)
        parts.append(joined.assign(date=date))
        progress.update(
            i + 1, len(dates), f"training: read {i + 1} of {len(dates)} dates ({date}: {len(joined)} labelled rows)"
        )
    if not parts:
        raise MissingInput(f"no labelled rows in {dates[0]}..{dates[-1]} to train on")
    frame = pd.concat(parts, ignore_index=True)
    keep = frame[label].notna().to_numpy().copy()
    if contract.task == "regression":
        keep &= np.isfinite(frame[label].to_numpy(dtype="float64", na_value=np.nan))
    return frame[keep].reset_index(drop=True)


def split_holdout(frame: pd.DataFrame, seed: int, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): each row held out with probability `share`, drawn from `seed`.

    Rows are held out across every date of the window, so the holdout metrics average over
    its weekdays instead of describing one day of the week. When one side would be empty,
    the whole frame stands in for it.
    """
    held = np.random.default_rng(seed).random(len(frame)) < share
    train = frame[~held] if (~held).any() and held.any() else frame
    return train, frame[held] if held.any() else frame


def recipe_settings(
    contract: Contract, columns, *, transformed: bool, seed: int, params: dict | None = None
) -> TrainingSettings:
    """What the recipe is told. Its inputs are the features hook's columns less the key, label and date
    (`transformed`), else the contract's default inputs less the key."""
    target = contract.require_label()
    label = target.column
    inputs = (
        [c for c in columns if c not in (*contract.key, label, "date")]
        if transformed
        else [c for c in contract.default_inputs if c not in contract.key]
    )
    return TrainingSettings(
        inputs=tuple(inputs),
        label=label,
        task=contract.task,
        seed=seed,
        classes=target.classes,
        params=dict(params or {}),
    )


def fit_model(recipe: str, train: pd.DataFrame, settings: TrainingSettings) -> FittedModel:
    """The recipe fitted on `train`, with the inputs it was fitted on and its classes (named in the settings' order when
    they list them)."""
    estimator = fit_recipe(recipe, train.reset_index(drop=True), settings)
    classes = model_classes(estimator) if settings.task == "classification" else None
    named = list(settings.classes) if classes and settings.classes else classes
    return FittedModel(estimator, fitted_inputs(estimator, settings), classes, named)


def fit_recipe(recipe: str, frame: pd.DataFrame, settings: TrainingSettings):
    """The project's recipe fitted on the training frame; checked to be a scikit-learn-API estimator."""
    model = call_hook(RECIPE_HOOK, recipe, frame, settings)
    if not hasattr(model, "predict"):
        raise HookError(
            f"{RECIPE_HOOK} = {recipe} returned {type(model).__name__}, expected a fitted estimator with predict()"
        )
    if settings.task == "classification" and not hasattr(model, "predict_proba"):
        raise HookError(
            f"{RECIPE_HOOK} = {recipe} returned {type(model).__name__} without predict_proba; a classifier must give "
            "probabilities"
        )
    return model


def fitted_inputs(model, settings: TrainingSettings) -> list[str]:
    """The columns the model was fitted on, in order (scikit-learn records them for DataFrames)."""
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else list(settings.inputs)


def model_classes(model) -> list | None:
    classes = getattr(model, "classes_", None)
    return [c.item() if hasattr(c, "item") else c for c in classes] if classes is not None else None


def estimator_outputs(model, frame: pd.DataFrame, classes, who: str = "the model") -> dict[str, np.ndarray]:
    """A fitted estimator's `prediction` (and `proba_<class>` in `classes` order, matched to its `classes_` by
    identity)."""
    from batchml.model.onnx_io import PREDICTION, class_outputs

    if not classes:
        return {PREDICTION: np.asarray(model.predict(frame), dtype="float64")}
    return class_outputs(model.predict_proba(frame), model_classes(model), classes, who)


def outputs_disagree(have: dict, want: dict, classes, *, rtol: float, atol: float) -> str:
    """Empty when two sets of outputs agree (a classifier's probabilities, a regressor's prediction), else by how much
    not."""
    from batchml.model.onnx_io import PREDICTION, proba_columns

    names = proba_columns(classes) if classes else [PREDICTION]
    a = np.column_stack([np.asarray(have[c], dtype="float64") for c in names])
    b = np.column_stack([np.asarray(want[c], dtype="float64") for c in names])
    if np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
        return ""
    return f"{float(np.nanmax(np.abs(a - b))):.3g}"


def to_onnx_bytes(
    model, sample: pd.DataFrame, *, classes=None, rtol: float = 1e-3, atol: float = 1e-3
) -> tuple[bytes | None, str]:
    """The model as ONNX, checked against its own predictions on `sample`; (None, why) when it cannot be.

    All-numeric inputs become one float32 tensor in input order (the fastest feed);
    mixed inputs one input per column, as skl2onnx does for DataFrames. A classifier's ONNX
    model records in its metadata which class each probability column is (its `classes_`),
    and is checked class by class against `predict_proba`.
    """
    import json

    from skl2onnx import to_onnx

    from batchml.model.onnx_io import CLASSES_METADATA, onnx_feed, onnx_outputs

    numeric = all(
        pd.api.types.is_numeric_dtype(sample[c].dtype) and not pd.api.types.is_bool_dtype(sample[c].dtype)
        for c in sample.columns
    )
    options = {id(_final_step(model)): {"zipmap": False}} if classes else None
    try:
        if numeric:
            x = sample.to_numpy(dtype=np.float32, na_value=np.nan)
            onx = to_onnx(model, x, target_opset={"": 17, "ai.onnx.ml": 3}, options=options)
        else:
            onx = to_onnx(model, onnx_frame(sample), target_opset={"": 17, "ai.onnx.ml": 3}, options=options)
        if classes:  # skl2onnx's probability columns follow classes_
            onx.metadata_props.add(key=CLASSES_METADATA, value=json.dumps(model_classes(model)))
        blob = onx.SerializeToString()
        import onnxruntime as ort

        session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        got = onnx_outputs(session, onnx_feed(session, onnx_frame(sample), tuple(sample.columns)), len(sample), classes)
    except Exception as exc:  # an estimator skl2onnx cannot convert: scored with pyfunc instead
        return None, f"ONNX export failed: {type(exc).__name__}: {' '.join(str(exc).split())}"  # whole, on one line
    worst = outputs_disagree(got, estimator_outputs(model, sample, classes), classes, rtol=rtol, atol=atol)
    if worst:
        return None, f"ONNX export disagrees with the model by up to {worst} on {len(sample)} rows"
    return blob, "onnx export matches the model"


def _final_step(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def onnx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Text as object columns (skl2onnx maps them to string tensors), integers as int64."""
    out = {}
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            out[c] = s.astype(object).where(s.notna(), "").astype(str).to_numpy(dtype=object)
        elif pd.api.types.is_integer_dtype(s.dtype):
            out[c] = s.to_numpy(dtype="float64", na_value=np.nan) if s.isna().any() else s.to_numpy(dtype="int64")
        else:
            out[c] = s.to_numpy(dtype="float32", na_value=np.nan)  # float32: ONNX Runtime's tree ops take no doubles
    return pd.DataFrame(out)
