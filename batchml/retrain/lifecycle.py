"""A model's life: train on a labelled window with the project's recipe, register it with its
evidence, and compare a challenger with the champion on the same held-out rows."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batchml.base.errors import HookError, MissingInput
from batchml.base.progress import Progress
from batchml.base.setting import number
from batchml.dataset.contract import Contract, validate
from batchml.dataset.features import categorical_inputs
from batchml.dataset.nulls import NullCounts
from batchml.dataset.sources import Source
from batchml.model.onnx_io import PREDICTION, proba_columns
from batchml.model.packaged import Packaging, raw_example
from batchml.model.pin import ModelPin
from batchml.model.registry import Registry, TrainingRun, register_version
from batchml.model.training import (
    RECIPE_HOOK,
    FittedModel,
    estimator_outputs,
    fit_model,
    labelled_frame,
    labelled_window,
    recipe_settings,
    split_holdout,
    to_onnx_bytes,
)
from batchml.monitor.estimated import Estimator, fit_estimator, registered_estimator_files
from batchml.scoring.scoring import ModelSpec, predict_partition
from batchml.stats.metrics import PRIMARY, lower_is_better, model_metrics
from batchml.stats.profile import date_profiles, reference_profile

log = logging.getLogger(__name__)
HOLDOUT_SHARE = 0.1


@dataclass(frozen=True)
class Project:
    """The project's hooks and contract, as training needs them."""

    contract: Contract
    recipe: str
    features: str = ""
    labels: str = ""
    params: dict | None = None


def train_and_register(
    source: Source,
    project: Project,
    registry: Registry,
    *,
    window_end: dt.date,
    window_days: int,
    max_rows: int,
    seed: int,
    reason: str,
    run_name: str,
) -> str:
    """Train on the labelled window ending at `window_end`, register the model, return its version.

    A tenth of every date's rows is held out: its metrics are the version's training-time
    reference for realized error later, and the version's performance estimator is fitted on
    it (logged with the version: batchml.monitor.estimated).
    """
    contract, progress, nulls = project.contract, Progress(log), NullCounts()
    dates = labelled_window(window_end, window_days)
    log.info("training: reading the labelled window %s..%s (%d dates)", dates[0], dates[-1], len(dates))
    frame = labelled_frame(
        source,
        contract,
        dates,
        features=project.features,
        labels=project.labels,
        max_rows=max_rows,
        seed=seed,
        nulls=nulls,
    )
    train, holdout = split_holdout(frame, seed, HOLDOUT_SHARE)
    settings = recipe_settings(
        contract, train.columns, transformed=bool(project.features), seed=seed, params=project.params
    )
    progress.note(
        f"training: fitting {project.recipe} on {len(train)} rows of {len(settings.inputs)} inputs "
        f"({len(frame) - len(train)} held out)"
    )
    fitted = fit_model(project.recipe, train, settings)
    progress.note(f"training: fitted {type(fitted.estimator).__name__}; exporting to ONNX")
    _check_classes(fitted.classes, contract, project)
    metrics = {**holdout_metrics(fitted, holdout, contract), "train_rows": len(train)}
    onnx_bytes, export_note = to_onnx_bytes(fitted.estimator, train[fitted.inputs].head(2000), classes=fitted.named)
    progress.note(f"training: {export_note}; profiling {len(train)} training rows")
    profile = training_profile(fitted, train, contract.task, nulls)
    progress.note(f"training: registering {registry.name} with its evidence")
    run = TrainingRun(project.recipe, seed, (dates[0], dates[-1]), max_rows, reason, run_name)
    packaging = Packaging(
        contract,
        transform=project.features,
        example=_raw_rows(source, contract, dates),
        window=(dates[0].isoformat(), dates[-1].isoformat()),
    )
    primary = PRIMARY[contract.task]
    version = register_version(
        registry,
        fitted,
        train,
        run,
        onnx_bytes=onnx_bytes,
        export_note=export_note,
        profile=profile,
        metrics=metrics,
        primary=primary,
        packaging=packaging,
    )
    estimator = holdout_estimator(fitted, holdout, contract, f"the held-out tenth of {dates[0]}..{dates[-1]}")
    registry.log_version_files(version, registered_estimator_files(estimator))
    progress.note(
        f"training: registered version {version}, trained on {dates[0]}..{dates[-1]} ({len(train)} rows): holdout "
        f"{primary} {metrics[f'holdout_{primary}']:.4g}"
    )
    return version


def holdout_metrics(fitted: FittedModel, holdout: pd.DataFrame, contract: Contract) -> dict[str, float]:
    """The fitted estimator's metrics on the held-out rows, as `holdout_<metric>`."""
    outputs = _predict_estimator(fitted.estimator, holdout[fitted.inputs], fitted.named)
    return {
        f"holdout_{k}": v
        for k, v in model_metrics(
            contract.task, holdout[contract.require_label().column].to_numpy(), outputs, fitted.named
        ).items()
    }


def holdout_estimator(fitted: FittedModel, holdout: pd.DataFrame, contract: Contract, fitted_on: str) -> Estimator:
    """The version's performance estimator, fitted on the held-out rows it did not train on (batchml.monitor.estimated):
    a calibrator of its probabilities, or a model of its loss from its inputs and prediction."""
    outputs = _predict_estimator(fitted.estimator, holdout[fitted.inputs], fitted.named)
    truth = holdout[contract.require_label().column].to_numpy()
    return fit_estimator(contract.task, holdout[fitted.inputs], outputs, truth, fitted.named, fitted_on=fitted_on)


def training_profile(fitted: FittedModel, train: pd.DataFrame, task: str, nulls: NullCounts) -> dict:
    """The version's reference profile: its training inputs and outputs, per training date too, and the window's nulls.

    `validated` holds the window's nulls before the features hook (the daily null check's
    reference); `dates` profiles each training date on the same bins, so that drift compares
    a date with the reference's same weekdays.
    """
    inputs, named = fitted.inputs, fitted.named
    profile = reference_profile(train[inputs], categorical=categorical_inputs(train, inputs))
    train_outputs = _predict_estimator(fitted.estimator, train[inputs], named)
    watched = _profiled_outputs(named)
    scored = pd.DataFrame({c: train_outputs[c] for c in watched})
    profile["prediction"] = reference_profile(scored[[watched[0]]])["columns"][watched[0]]
    profile["outputs"] = reference_profile(scored)["columns"]
    profile["task"] = task
    profile["validated"] = nulls.as_json()
    specs = {**profile["columns"], **profile["outputs"]}
    profile["dates"] = date_profiles(
        pd.concat([train[inputs].reset_index(drop=True), scored], axis=1), train["date"].reset_index(drop=True), specs
    )
    return profile


def _raw_rows(source: Source, contract: Contract, dates: list[dt.date], n: int = 5) -> pd.DataFrame:
    """A few valid rows of the window's latest date, as a user sends them: the registered model's input example."""
    for date in reversed(dates):
        try:
            origin, batch = next(iter(source.batches(date)))
        except (MissingInput, StopIteration):
            continue
        rows = validate(batch, contract, date, origin=origin).valid
        if len(rows):
            return raw_example(rows.head(n), contract)
    raise MissingInput(f"no valid rows in {dates[0]}..{dates[-1]} for the registered model's input example")


def _check_classes(classes: Sequence | None, contract: Contract, project: Project) -> None:
    """The fitted classes must be the contract's: they name the proba_<class> columns everyone reads."""
    expected = contract.require_label().classes
    if classes is None or not expected or sorted(map(repr, classes)) == sorted(map(repr, expected)):
        return
    raise HookError(
        f"{RECIPE_HOOK} = {project.recipe} fitted classes {list(classes)}, but {contract.path or contract.dataset} "
        "lists "
        f"label classes {list(expected)}: check [labels] transform (an unquoted yes/no in YAML is a boolean)"
    )


def _profiled_outputs(classes: Sequence | None) -> list[str]:
    """The outputs whose distribution is watched: the prediction, or each class probability."""
    return proba_columns(classes) if classes else [PREDICTION]


def _predict_estimator(model: Any, frame: pd.DataFrame, classes: Sequence | None) -> dict[str, np.ndarray]:
    """The estimator's outputs as scoring gives them: proba_<class> matched to its classes_ by identity, in `classes`
    order."""
    return estimator_outputs(model, frame, classes, f"{type(model).__name__} (trained)")


@dataclass(frozen=True)
class GatePolicy:
    """The gate a challenger passes to be promoted; the home of [retrain] margin and guard_tolerance's defaults.

    [retrain] metric and guards default to the task's own (PRIMARY, rmse or roc_auc), so `primary` and `guards` are no
    settings' defaults.
    """

    primary: str = "mae"
    margin: float = number(
        0.02,
        "The challenger's primary metric must be this much better (relative) to be promoted (negative: may be that "
        "much worse).",
    )
    guards: tuple[str, ...] = ("rmse",)
    guard_tolerance: float = number(0.02, "How much worse (relative) a guard metric may be.", low=0)


def evaluate(pin: ModelPin, model_path: Path, frame: pd.DataFrame, contract: Contract) -> dict[str, float]:
    """Metrics of what is deployed (the pinned runtime, not the scikit-learn object) on labelled rows."""
    spec = ModelSpec(
        str(model_path),
        pin.sha256,
        pin.runtime,
        pin.inputs or tuple(contract.default_inputs),
        contract.key,
        pin.name,
        pin.version,
        pin.classes,
    )
    outputs = predict_partition(frame, spec)
    return model_metrics(contract.task, frame[contract.require_label().column].to_numpy(), outputs, pin.classes)


def _better(challenger: float, champion: float, metric: str, margin: float) -> bool:
    if lower_is_better(metric):
        return challenger <= champion - abs(champion) * margin
    return challenger >= champion + abs(champion) * margin


def _not_worse(challenger: float, champion: float, metric: str, tolerance: float) -> bool:
    if lower_is_better(metric):
        return challenger <= champion + abs(champion) * tolerance
    return challenger >= champion - abs(champion) * tolerance


def gate(challenger: dict[str, float], champion: dict[str, float], policy: GatePolicy) -> dict:
    """Promote only if the challenger wins the primary metric by the margin and loses no guard."""
    p = policy.primary
    wins = _better(challenger[p], champion[p], p, policy.margin)
    guards = {g: _not_worse(challenger[g], champion[g], g, policy.guard_tolerance) for g in policy.guards}
    promoted = wins and all(guards.values())
    change = f"({challenger[p] / champion[p] - 1:+.1%})" if champion[p] else ""
    if promoted:
        reason = f"{p} {challenger[p]:.4g} vs champion {champion[p]:.4g} {change}, guards held"
    elif not wins:
        reason = f"{p} {challenger[p]:.4g} vs champion {champion[p]:.4g}: not better by the {policy.margin:.0%} margin"
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
