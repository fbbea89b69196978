"""ChampionModel (cold start) and ResolveModel: the model version pinned for a date."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from pathlib import Path

import luigi

from batchml.base.errors import ConfigError
from batchml.model.pin import ModelPin
from batchml.model.runtimes import RuntimeChoice, decide_runtime, pinned_model
from batchml.retrain.lifecycle import train_and_register
from batchml.scoring.predictions import features_sample
from batchml.store.layout import FEATURES
from batchml.store.manifest import Manifest
from tasks.config import (
    cache_dir,
    load_contract,
    make_registry,
    make_source,
    make_storage,
    mlflow,
    policy_from,
    project,
    runtime,
    source,
    training,
)
from tasks.identity import InProject
from tasks.targets import PinTarget


class ChampionModel(InProject, luigi.Task):
    """A registered model holding the alias; trains the first one when the registry has none."""

    date = luigi.DateParameter(
        description="The date that needs a model; the training window ends label_lag_days before it."
    )

    def complete(self) -> bool:
        """Whether a version holds the alias."""
        return make_registry().version_by_alias(mlflow().alias) is not None

    def run(self):
        """Train, register and promote a first model, once per host even with --workers N."""
        with host_lock(Path(mlflow().cache_dir, ".cold-start.lock")):
            if make_registry().version_by_alias(mlflow().alias) is None:
                refuse_cold_start_unless_configured()
                self.set_status_message("cold start: training the first model")
                cold_start(self.date)


@contextlib.contextmanager
def host_lock(path: Path):
    """Hold an exclusive lock on `path` (created as needed) for the block: one holder per host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def refuse_cold_start_unless_configured() -> None:
    """ConfigError naming what to set when no version holds the alias and the settings do not allow training a first
    one."""
    registry = make_registry()
    if not mlflow().cold_start:
        raise ConfigError(
            f"no version of {registry.name!r} holds @{mlflow().alias} at {registry.tracking_uri}; register one and set "
            "the alias, "
            "or set [mlflow] cold_start = true to train a first one with [training] recipe"
        )
    if not training().recipe:
        raise ConfigError(
            f"no version of {registry.name!r} holds @{mlflow().alias} and [training] recipe is not set: nothing can "
            "train a first model"
        )


def cold_start(date: dt.date) -> str:
    """Train a first model on the window ending label_lag_days before `date`, register it and give it the alias; its
    version."""
    registry, cfg = make_registry(), training()
    version = train_and_register(
        make_source(),
        project(),
        registry,
        window_end=date - dt.timedelta(days=source().label_lag_days),
        window_days=cfg.window_days,
        max_rows=cfg.max_rows,
        seed=cfg.seed,
        reason="cold start: no version held the alias",
        run_name=f"cold start {date}",
    )
    registry.set_alias(mlflow().alias, version)
    registry.describe_version(
        version, f"promoted to @{mlflow().alias} as the first model (cold start: no version held the alias)."
    )
    return version


class ResolveModel(InProject, luigi.Task):
    """pins/date=D.json: the alias resolved once for the date, its runtime chosen on the date's features.

    The version's signature is checked against the date's feature columns and types, and an
    sklearn model converted to ONNX and checked on a sample of the date's rows, before the
    pin is written: a version that cannot score the date fails here, naming the columns.
    """

    date = luigi.DateParameter()

    def requires(self):
        """The date's features: they decide the runtime (no pin for a date without them)."""
        from tasks.extract import ExtractFeatures

        return ExtractFeatures(self.date)

    def output(self) -> PinTarget:
        """The date's pin."""
        return PinTarget(self.date)

    def run(self):
        """Resolve the alias (training a first model on a cold start), decide the runtime on the date's features, pin
        it."""
        pin = champion_pin()
        if pin is None:
            yield ChampionModel(self.date)
            pin = champion_pin()
        pin = resolve_runtime(pin, self.input().load())
        self.set_status_message(f"models:/{pin.name}/{pin.version}: runtime {pin.runtime}")
        self.output().dump(pin)  # a concurrent run may have pinned first


def champion_pin() -> ModelPin | None:
    """The version holding the alias now, as a pin (its runtime not yet decided); None when no version holds it."""
    return make_registry().pin(mlflow().alias, cache_dir(), contract_classes())


def runtime_choice() -> RuntimeChoice:
    """[runtime] settings: whether sklearn models are converted, and the parity check on the date's rows."""
    return policy_from(RuntimeChoice, runtime())


def _sampler(date: dt.date):
    storage = make_storage()
    return lambda rows: features_sample(storage, date, rows)


def resolve_runtime(pin: ModelPin, features: Manifest) -> ModelPin:
    """The pin checked against the date's features, with its runtime chosen; its artifacts cached and verified."""
    date = dt.date.fromisoformat(features.date)
    return decide_runtime(make_registry(), pin, features, _sampler(date), cache_dir(), runtime_choice())


def model_path(registry, pin: ModelPin, date: dt.date) -> Path:
    """The pinned model in the local cache, verified; a converted file missing on this host is converted again."""
    return pinned_model(
        registry, pin, lambda: make_storage().verify(FEATURES, date), _sampler(date), cache_dir(), runtime_choice()
    )


def contract_classes():
    """The contract's classes for a classifier (in the contract's order), else None."""
    label = load_contract().label
    return label.classes if label and label.is_classification else None


def read_pin(date: dt.date) -> ModelPin:
    """A date's pin; FileNotFoundError when the date has none yet."""
    return PinTarget(date).load()
