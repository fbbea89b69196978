"""ChampionModel (cold start) and ResolveModel: the model version pinned for a date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
from pathlib import Path

import luigi

from batchml.store import layout
from batchml.retrain.lifecycle import train_and_register
from batchml.model.pin import ModelPin
from batchml.base.errors import ConfigError, IntegrityError
from tasks.config import cache_dir, load_contract, make_registry, make_source, make_storage, mlflow, project, runtime, source, training
from tasks.targets import StorageFileTarget
from tasks.identity import InProject


def pin_path(date: dt.date) -> str:
    return layout.pin(date)


class ChampionModel(InProject, luigi.Task):
    """A registered model holding the alias; trains the first one when the registry has none."""

    date = luigi.DateParameter(description="The date that needs a model; the training window ends label_lag_days before it.")

    def complete(self) -> bool:
        return make_registry().version_by_alias(mlflow().alias) is not None

    def run(self):
        lock = Path(mlflow().cache_dir, ".cold-start.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # one cold start per host, even with --workers N
            registry = make_registry()
            if registry.version_by_alias(mlflow().alias) is not None:
                return
            if not mlflow().cold_start:
                raise ConfigError(
                    f"no version of {registry.name!r} holds @{mlflow().alias} at {registry.tracking_uri}; register one and set the alias, "
                    "or set [mlflow] cold_start = true to train a first one with [training] recipe"
                )
            if not training().recipe:
                raise ConfigError(f"no version of {registry.name!r} holds @{mlflow().alias} and [training] recipe is not set: nothing can train a first model")
            self.set_status_message("cold start: training the first model")
            cfg = training()
            version = train_and_register(
                make_source(),
                project(),
                registry,
                window_end=self.date - dt.timedelta(days=source().label_lag_days),
                window_days=cfg.window_days,
                max_rows=cfg.max_rows,
                seed=cfg.seed,
                reason="cold start: no version held the alias",
                run_name=f"cold start {self.date}",
            )
            registry.set_alias(mlflow().alias, version)
            registry.describe_version(version, f"promoted to @{mlflow().alias} as the first model (cold start: no version held the alias).")


class ResolveModel(InProject, luigi.Task):
    """pins/date=D.json: the alias resolved once for the date, its runtime chosen on the date's features.

    The version's signature is checked against the date's feature columns and types, and an
    sklearn model converted to ONNX and checked on a sample of the date's rows, before the
    pin is written: a version that cannot score the date fails here, naming the columns.
    """

    date = luigi.DateParameter()

    def requires(self):
        from tasks.extract import ExtractFeatures

        return ExtractFeatures(self.date)  # no pin for a date without features: they decide the runtime

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(pin_path(self.date))

    def run(self):
        registry = make_registry()
        pin = registry.pin(mlflow().alias, cache_dir(), _contract_classes())
        if pin is None:
            yield ChampionModel(self.date)
            pin = registry.pin(mlflow().alias, cache_dir(), _contract_classes())
        pin = decide_runtime(registry, pin, self.date)
        self.set_status_message(f"models:/{pin.name}/{pin.version}: runtime {pin.runtime}")
        make_storage().write_once(pin_path(self.date), pin.to_json())  # a concurrent run may have pinned first


def decide_runtime(registry, pin: ModelPin, date: dt.date) -> ModelPin:
    """The pin checked against the date's features, with its runtime chosen; its artifacts cached and verified."""
    from batchml.store.layout import FEATURES
    from batchml.scoring.predictions import check_inputs, features_sample
    from batchml.model.runtimes import choose_runtime

    model_path = registry.fetch(pin, cache_dir())  # refuses artifacts whose sha256 differs
    storage = make_storage()
    inputs = check_inputs(pin, storage.verify(FEATURES, date), date)  # names and types, before any scoring
    if pin.flavor != "sklearn" or not runtime().convert_sklearn:
        return pin
    cfg = runtime()
    sample = features_sample(storage, date, cfg.parity_rows)
    pin = choose_runtime(pin, model_path, sample[list(inputs)], cache_dir(), rtol=cfg.parity_rtol, atol=cfg.parity_atol)
    registry.fetch(pin, cache_dir())
    return pin


def model_path(registry, pin: ModelPin, date: dt.date):
    """The pinned model in the local cache, verified; a converted file missing on this host is converted again."""
    from batchml.model.runtimes import converted_paths

    if pin.runtime == "converted" and not converted_paths(cache_dir(), pin)[0].exists():
        again = decide_runtime(registry, dataclasses.replace(pin, runtime="pyfunc", converted_sha256=""), date)
        if again.converted_sha256 != pin.converted_sha256:
            raise IntegrityError(
                f"models:/{pin.name}/{pin.version}: converting it again gave ONNX sha256 {again.converted_sha256 or 'none'} "
                f"({again.note}), but {date} was pinned to {pin.converted_sha256}; refusing to score with it"
            )
    return registry.fetch(pin, cache_dir())


def _contract_classes():
    label = load_contract().label
    return label.classes if label and label.is_classification else None


def read_pin(date: dt.date) -> ModelPin:
    text = make_storage().read_text(pin_path(date))
    if text is None:
        raise FileNotFoundError(f"{make_storage().url(pin_path(date))}: {date} has no pinned model; run ResolveModel first")
    return ModelPin.from_json(text)
