"""The MLflow model registry behind a small interface, and the local artifact cache.

A registered version carries, as version tags, the sha256 of its ONNX export; fetching a
version copies the ONNX file into a local cache and refuses it when the hash differs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from batchml.base.errors import IntegrityError
from batchml.base.provenance import code_version, sha256_bytes, sha256_file, sha256_tree
from batchml.base.redact import redact, redacted
from batchml.base.retry import Retrying, RetryPolicy
from batchml.base.setting import count, setting
from batchml.model.packaged import ESTIMATOR_PATH, Packaging
from batchml.model.packaged import log_model as log_packaged_model
from batchml.model.pin import ONNX_ARTIFACT, ModelPin
from batchml.model.training import FittedModel

log = logging.getLogger(__name__)

PROFILE_ARTIFACT = "profile/reference.json"
SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def configure_http(max_retries: int, timeout: int) -> None:
    """Bound MLflow's HTTP retries (its defaults wait about four minutes on a dead server)."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


@contextlib.contextmanager
def _fluent_uris(uri: str):
    """Point MLflow's fluent API (start_run, log_model) at `uri`, then put back what was there.

    set_tracking_uri/set_registry_uri also export MLFLOW_*_URI for subprocesses: those are
    restored too, so a user's own MLflow calls in the same process are not redirected.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri, {n: os.environ.get(n) for n in names}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved[0], saved[1]
        for name, value in saved[2].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _widen_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Integers as int64 before a signature is inferred: int8/int32 columns would reject a CSV's int64."""
    return frame.astype(
        {c: "int64" for c in frame.columns if pd.api.types.is_integer_dtype(frame[c].dtype) and frame[c].notna().all()}
    )


def _trusted_types(model) -> list[str]:
    """The types skops must be told to trust to save `model` (batchml trained it itself)."""
    try:
        import skops.io

        return sorted(set(SKOPS_TRUSTED) | set(skops.io.get_untrusted_types(data=skops.io.dumps(model))))
    except Exception:  # skops missing or unable to serialise: MLflow reports the real problem
        return SKOPS_TRUSTED


def _log_training_data(train_frame: pd.DataFrame, packaging: Packaging) -> None:
    """The training frame as the run's dataset input, named after the contract's dataset, its window as context."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas  # what mlflow.data.from_pandas is, where a type checker finds it

    first, last = packaging.window
    label = packaging.contract.label.column if packaging.contract.label else None
    dataset = from_pandas(
        train_frame,
        name=f"{packaging.contract.dataset} {first}..{last}",
        targets=label if label in train_frame else None,
    )
    mlflow.log_input(dataset, context=f"training {first}..{last}")


_created_stores: set[str] = set()


def _open_client(tracking_uri: str):
    """An MlflowClient; a SQLite store is opened under a file lock, because opening one
    creates and migrates its schema, and processes of a `--workers N` run that do it at
    once race in the migration and fail."""
    import mlflow

    if not tracking_uri.startswith("sqlite:///") or tracking_uri in _created_stores:
        return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(f".{db.name}.lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)  # the tracking tables
        client.search_registered_models(max_results=1)  # and the registry's
    _created_stores.add(tracking_uri)  # once per process: every task makes a Registry
    return client


@dataclass
class _Monitoring:
    """What a process knows of a model's monitoring experiment, found or created once and then reused: a date logs
    three times, and a backfill logs every date to the same experiment and timeline."""

    experiment_id: str
    origin: dt.date  # the date of step 0
    timeline: str = ""  # the "monitor timeline" run, once a date has logged numbers
    dates: dict[str, str] = field(default_factory=dict)  # date -> its "monitor D" run


_monitoring: dict[tuple[str, str], _Monitoring] = {}  # (tracking URI, model) -> its monitoring experiment
MONITORING_LOCK = "mlflow-monitoring"  # the project's lock (Storage.locked) under which they are found or created
STEP_ORIGIN_TAG = "batchml.step_origin"
FAILURE_TAGS = ("failure_task", "failure_cause")


def version_description(tags: dict[str, str], metrics: dict[str, float], decision: str) -> str:
    """A registered version's description: the data it was trained on, its holdout metrics, and why it was promoted or
    rejected."""
    window = f"{tags.get('window_start', '?')} to {tags.get('window_end', '?')}"
    rows = f", {int(metrics['train_rows']):,} training rows" if "train_rows" in metrics else ""
    holdout = ", ".join(
        f"{k.removeprefix('holdout_')} {v:.4g}" for k, v in sorted(metrics.items()) if k.startswith("holdout_")
    )
    lines = [
        f"Trained by batchml on the labelled dates {window}{rows}; a tenth of each date's rows held out.",
        f"Holdout metrics: {holdout or 'none recorded'}.",
        f"Why trained: {tags['reason']}." if tags.get("reason") else "",
        f"Decision: {decision}",
    ]
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class TrainingRun:
    """Where a trained version comes from: its recipe, seed and labelled window, and why it was trained."""

    recipe: str
    seed: int
    window: tuple[dt.date, dt.date]  # the first and the last labelled date
    max_rows: int
    reason: str
    run_name: str


def register_version(
    registry: Registry,
    fitted: FittedModel,
    train: pd.DataFrame,
    run: TrainingRun,
    *,
    onnx_bytes: bytes | None,
    export_note: str,
    profile: dict,
    metrics: dict,
    primary: str,
    packaging: Packaging,
) -> str:
    """Register a fitted model with its evidence, return its version.

    The run's parameters say how it was trained; its tags say why, on which window, its holdout
    value of the `primary` metric and how its ONNX export went.
    """
    start, end = (d.isoformat() for d in run.window)
    return registry.register(
        fitted.estimator,
        train,
        onnx_bytes=onnx_bytes,
        profile=profile,
        params={
            "estimator": type(fitted.estimator).__name__,
            "recipe": run.recipe,
            "seed": run.seed,
            "window_start": start,
            "window_end": end,
            "max_rows": run.max_rows,
        },
        metrics=metrics,
        tags={
            "reason": run.reason,
            "window_start": start,
            "window_end": end,
            f"holdout_{primary}": f"{metrics[f'holdout_{primary}']:.6g}",
            "export": export_note,
        },
        inputs=fitted.inputs,
        classes=fitted.classes,
        run_name=run.run_name,
        packaging=packaging,
    )


@contextlib.contextmanager
def _unless_it_exists():
    """Create something in MLflow unless it exists: another process may have created it first."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise


def _named_classes(tags: dict, classes) -> tuple | None:
    """The classes a batchml version's proba_<class> columns are named after: the contract's, in its order,
    when given (scoring matches them to the model's own by identity); else the fitted classes of its tags."""
    if not tags.get("classes"):
        return None
    return tuple(classes) if classes else tuple(json.loads(tags["classes"]))


def _flavors(folder: Path) -> dict:
    """The flavours an MLmodel file declares, read as YAML: a cached model is scored without importing MLflow."""
    import yaml

    return yaml.safe_load((folder / "MLmodel").read_text()).get("flavors") or {}


@dataclass(frozen=True)
class RegistrySettings:
    """[mlflow] settings: the registry's tracking URI, the registered model, the alias a date pins and the local
    artifact cache (the home of their defaults)."""

    tracking_uri: str = setting(
        "sqlite:///mlflow.db", "MLflow tracking and registry URI (a relative SQLite path is in the project folder)."
    )
    registered_model: str = setting("", "Registered model name (empty: the contract's dataset name).")
    alias: str = setting("champion", "The alias a date resolves and pins.")
    cold_start: bool = setting(
        False,
        "Train and register a first model with the project's recipe when no version holds the alias. Off: such a "
        "run fails naming the alias and registry.",
    )
    artifact_location: str = setting(
        "", "Artifact root of the experiment when batchml creates it (empty: MLflow's default)."
    )
    cache_dir: str = setting(".cache/batchml/models", "Local cache of model artifacts, sha256 verified.")
    http_request_max_retries: int = count(2, "MLflow's own quick HTTP retries inside one attempt of [retry].", least=0)
    http_request_timeout: int = count(10, "Seconds per MLflow HTTP request.")


class Registry:
    """The registered model `model_name` at `tracking_uri`.

    Every client call is retried under `retry` when the server does not answer (a
    deterministic error, such as a missing version, is raised at once). Logging a new
    model goes through MLflow's fluent API and relies on MLflow's own HTTP retries.
    """

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        artifact_location: str = "",
        retry: RetryPolicy | None = None,
        lock: Callable[[str], contextlib.AbstractContextManager[None]] | None = None,
    ):
        """`lock(name)` holds a lock shared by every process of the project (Storage.locked): the monitoring
        experiment and its runs are found or created under it. Without one (a registry outside a project), two
        processes logging a new date at once can each create a run of it."""
        self.tracking_uri, self.name, self.artifact_location = tracking_uri, model_name, artifact_location
        self._retry = retry
        self._lock = lock or (lambda name: contextlib.nullcontext())

    @functools.cached_property
    def client(self):
        """The MLflow client, opened on first use: scoring a pinned date whose model is cached never opens it."""
        client = _open_client(self.tracking_uri)
        return Retrying(client, self._retry, f"MLflow registry at {self.tracking_uri}") if self._retry else client

    def version_by_alias(self, alias: str):
        """The ModelVersion behind `alias`, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def pin(self, alias: str, cache_dir: str | os.PathLike = RegistrySettings.cache_dir, classes=None):
        """Resolve `alias` once into a ModelPin; None when no version holds it."""
        mv = self.version_by_alias(alias)
        return None if mv is None else self._pin(mv, alias, cache_dir, classes)

    def pin_version(
        self, version: str, cache_dir: str | os.PathLike = RegistrySettings.cache_dir, classes=None
    ) -> ModelPin:
        """A ModelPin for an explicit version (a challenger, a rollback target)."""
        return self._pin(self.client.get_model_version(self.name, str(version)), "", cache_dir, classes)

    def _pin(self, mv, alias: str, cache_dir, classes) -> ModelPin:
        """How a version is scored: batchml's own carry their ONNX digest, inputs and classes as tags;
        any other version is read from its MLmodel (onnx flavour: ONNX Runtime; otherwise pyfunc)."""
        tags = mv.tags
        if tags.get("onnx_sha256"):
            return ModelPin(
                name=self.name,
                version=str(mv.version),
                sha256=tags["onnx_sha256"],
                alias=alias,
                run_id=mv.run_id,
                inputs=tuple(json.loads(tags.get("inputs", "[]"))),
                classes=_named_classes(tags, classes),
                reference=tags.get("reference_profile", PROFILE_ARTIFACT),
            )
        if (
            tags.get("model_input") == "raw"
        ):  # batchml's raw-rows model without an ONNX export: its estimator, on the features
            estimator = self._download_model(str(mv.version), cache_dir) / ESTIMATOR_PATH
            return ModelPin(
                name=self.name,
                version=str(mv.version),
                sha256=sha256_tree(estimator),
                alias=alias,
                run_id=mv.run_id or "",
                runtime="pyfunc",
                flavor="batchml",
                inputs=tuple(json.loads(tags.get("inputs", "[]"))),
                classes=_named_classes(tags, classes),
                artifact=f"models:/{self.name}/{mv.version}/{ESTIMATOR_PATH}",
                note="no ONNX export: the estimator inside the registered model scores it",
                reference=tags.get("reference_profile", ""),
            )
        from mlflow.models import Model

        from batchml.model.runtimes import onnx_kinds, signature_kinds

        folder = self._download_model(str(mv.version), cache_dir)
        meta = Model.load(str(folder))
        inputs, kinds = signature_kinds(meta.signature)
        uri = f"models:/{self.name}/{mv.version}"
        note = "" if inputs else f"{uri} has no column signature: inputs are taken by name from the features"
        reference = tags.get("reference_profile", "")
        described = dict(
            name=self.name,
            version=str(mv.version),
            alias=alias,
            run_id=mv.run_id or "",
            artifact=uri,
            note=note,
            reference=reference,
        )
        if "onnx" in meta.flavors:
            onnx_file = folder / meta.flavors["onnx"]["data"]
            if not inputs:
                inputs, kinds = onnx_kinds(onnx_file)
            return ModelPin(
                **described,
                sha256=sha256_file(onnx_file),
                runtime="onnx",
                flavor="onnx",
                inputs=inputs,
                classes=classes,
                input_types=kinds,
            )
        flavor = "sklearn" if "sklearn" in meta.flavors else "python_function"
        if "python_function" not in meta.flavors:
            raise IntegrityError(
                f"{uri} has flavours {sorted(meta.flavors)}: batchml scores onnx, sklearn or python_function models"
            )
        if flavor == "sklearn" and (not inputs or classes is None):
            import mlflow.pyfunc

            raw = mlflow.pyfunc.load_model(str(folder)).get_raw_model()
            if not inputs:
                inputs = tuple(str(c) for c in getattr(raw, "feature_names_in_", ()))
            if classes is None and hasattr(raw, "predict_proba") and hasattr(raw, "classes_"):
                classes = tuple(c.item() if hasattr(c, "item") else c for c in raw.classes_)
        return ModelPin(
            **described,
            sha256=sha256_tree(folder),
            runtime="pyfunc",
            flavor=flavor,
            inputs=tuple(inputs),
            classes=classes,
            input_types=kinds,
        )

    def _download_model(self, version: str, cache_dir, name: str = "") -> Path:
        """The whole MLflow model of a version (of `name`, default this registry's model) in the local cache (replaced
        atomically)."""
        name = name or self.name
        target = Path(cache_dir, name, version, "model")
        if (target / "MLmodel").exists():
            return target
        import mlflow.artifacts

        target.parent.mkdir(parents=True, exist_ok=True)
        # A models:/ URI is resolved against the process's registry URI, not `tracking_uri`: point it here.
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp, _fluent_uris(self.tracking_uri):
            got = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp, tracking_uri=self.tracking_uri
            )
            shutil.rmtree(target, ignore_errors=True)
            os.replace(got, target)
        return target

    def register(
        self,
        model,
        train_frame: pd.DataFrame,
        *,
        onnx_bytes: bytes | None,
        profile: dict,
        params: dict,
        metrics: dict,
        tags: dict,
        inputs: list[str],
        classes: list | None,
        run_name: str,
        packaging: Packaging | None = None,
    ) -> str:
        """Log a trained model with its ONNX export and profile, register it, return the version.

        The version is registered from the logged model itself, so `models:/<name>@<alias>`
        loads with `mlflow.pyfunc.load_model`. With `packaging` (what training passes) that
        model takes raw contract rows, its features transform and ONNX file inside
        (batchml.model.packaged); without it, it is the estimator on its inputs (sklearn flavour).
        Either way the ONNX file is also logged at the run's `onnx/model.onnx`, and the
        version's tags say how batchml scores it: the ONNX file's sha256 (absent when the
        export failed: then the pyfunc runtime scores it), its inputs in order and its classes.
        """
        with _fluent_uris(self.tracking_uri):  # the process's MLflow settings stay the caller's
            return self._register(
                model,
                train_frame,
                onnx_bytes=onnx_bytes,
                profile=profile,
                params=params,
                metrics=metrics,
                tags=tags,
                inputs=inputs,
                classes=classes,
                run_name=run_name,
                packaging=packaging,
            )

    def _register(
        self, model, train_frame, *, onnx_bytes, profile, params, metrics, tags, inputs, classes, run_name, packaging
    ) -> str:
        import mlflow
        import sklearn
        from mlflow.models import infer_signature

        experiment_id = self._experiment_id()
        example = _widen_integers(train_frame[inputs].head(5))
        output = model.predict_proba(example) if classes else model.predict(example)
        version_tags = {
            **redacted(tags),
            "inputs": json.dumps(inputs),
            "task": "classification" if classes else "regression",
            "reference_profile": PROFILE_ARTIFACT,
        }
        if classes:
            version_tags["classes"] = json.dumps([c.item() if hasattr(c, "item") else c for c in classes])
        with (
            mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run,
            tempfile.TemporaryDirectory() as tmp,
        ):
            mlflow.log_params(redacted(params))
            mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and np.isfinite(v)})
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")  # validated: no nulls
            onnx_path = None
            if onnx_bytes is not None:  # at the run's onnx/model.onnx: what a batchml pin fetches
                version_tags["onnx_sha256"] = sha256_bytes(onnx_bytes)
                version_tags["onnx_artifact"] = ONNX_ARTIFACT
                onnx_path = Path(tmp, "model.onnx")
                onnx_path.write_bytes(onnx_bytes)
                mlflow.log_artifact(str(onnx_path), artifact_path="onnx")
                mlflow.log_dict({ONNX_ARTIFACT: version_tags["onnx_sha256"]}, "sha256.json")
            if packaging is None:
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(example, output),
                    input_example=example,
                    skops_trusted_types=_trusted_types(model),
                    pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
                )
            else:
                version_tags["model_input"] = "raw"  # the registered model takes raw contract rows
                _log_training_data(train_frame, packaging)
                info = log_packaged_model(
                    model,
                    onnx_path,
                    packaging,
                    inputs=inputs,
                    classes=classes,
                    work=Path(tmp),
                    estimator_signature=infer_signature(example, output),
                    trusted_types=_trusted_types(model),
                )
            mlflow.log_dict(profile, PROFILE_ARTIFACT)
            mlflow.set_tags({**version_tags, "code_version": code_version()})
            run_id = run.info.run_id
        with _unless_it_exists():
            self.client.create_registered_model(self.name)
        mv = self.client.create_model_version(
            self.name, source=info.model_uri, run_id=run_id, tags=version_tags, model_id=info.model_id
        )
        self.describe_version(str(mv.version), "not yet compared with the champion.")
        runtime = "onnx" if onnx_bytes is not None else "pyfunc"
        log.info("registered models:/%s/%s (run %s, scored with %s)", self.name, mv.version, run_id, runtime)
        return str(mv.version)

    def _experiment_id(self) -> str:
        """The experiment named after the model, created with the configured artifact location."""
        note = (
            f"Versions of the registered model {self.name}, trained and registered by batchml: one run per training "
            "(cold start or challenger), with its parameters, holdout metrics, reference profile, training data and "
            "model."
        )
        return self._experiment(self.name, self.artifact_location, {"mlflow.note.content": note}).experiment_id

    def _experiment(self, name: str, location: str, tags: dict[str, str]):
        """The experiment `name`, created with `tags` when it does not exist yet.

        Another process may create it between the lookup and the creation (two pods retraining at once); its
        name is unique in the store, so the creation that loses finds the one that won.
        """
        found = self.client.get_experiment_by_name(name)
        if found is None:
            with _unless_it_exists():
                self.client.create_experiment(name, artifact_location=location or None, tags=tags)
            found = self.client.get_experiment_by_name(name)
        return found

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.name, alias, version)

    def fetch(self, pin: ModelPin, cache_dir: str | os.PathLike) -> Path:
        """The pinned model in the local cache (an ONNX file or a model folder), sha256 verified.

        The pin names its model: a date pinned before `registered_model` changed is still
        scored with what it was pinned to.
        """
        if pin.artifact.startswith("models:/"):
            folder = self._download_model(pin.version, cache_dir, pin.name)
            inside = pin.artifact.removeprefix(f"models:/{pin.name}/{pin.version}").strip(
                "/"
            )  # a model inside the model
            folder = folder / inside if inside else folder
            if pin.runtime == "onnx":
                path = folder / _flavors(folder)["onnx"]["data"]
                actual = sha256_file(path)
            else:
                path, actual = folder, sha256_tree(folder)
            if actual != pin.sha256:
                raise IntegrityError(
                    f"models:/{pin.name}/{pin.version}: artifacts have sha256 {actual}, but the date was pinned to "
                    f"{pin.sha256}; refusing to score with them"
                )
            if pin.runtime == "converted":
                from batchml.model.runtimes import converted_paths

                path = converted_paths(cache_dir, pin)[0]
                actual = sha256_file(path) if path.exists() else "missing"
                if actual != pin.converted_sha256:
                    raise IntegrityError(
                        f"models:/{pin.name}/{pin.version}: the ONNX conversion {path} has sha256 {actual}, "
                        f"but the date was pinned to {pin.converted_sha256}; refusing to score with it"
                    )
            return path
        return self.fetch_onnx(pin, cache_dir)

    def fetch_onnx(self, pin: ModelPin, cache_dir: str | os.PathLike) -> Path:
        """The pinned ONNX file of a batchml-registered version in the local cache, sha256 verified."""
        target = Path(cache_dir, pin.name, pin.version, "model.onnx")
        if target.exists() and sha256_file(target) == pin.sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            downloaded = Path(self.client.download_artifacts(pin.run_id, pin.artifact, tmp))
            actual = sha256_file(downloaded)
            if actual != pin.sha256:
                raise IntegrityError(
                    f"models:/{pin.name}/{pin.version}: {pin.artifact} has sha256 {actual}, "
                    f"but the version was registered with {pin.sha256}; refusing to score with it"
                )
            os.replace(downloaded, target)
        return target

    def reference_profile(self, pin: ModelPin, cache_dir: str | os.PathLike) -> dict | None:
        """The version's reference profile, cached next to its ONNX file; None for a version batchml did not train.

        The pin says whether the version has one (pins written before it said: its tags do,
        and a version batchml trained always has one).
        """
        target = Path(cache_dir, pin.name, pin.version, "reference_profile.json")
        if not target.exists():
            artifact = pin.reference
            if artifact is None:
                artifact = (
                    PROFILE_ARTIFACT
                    if pin.flavor == "batchml"
                    else self.version_tags(pin.version, pin.name).get("reference_profile", "")
                )
            if not artifact:
                return None  # not trained by batchml: drift waits for a baseline of scored dates
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                os.replace(self.client.download_artifacts(pin.run_id, artifact, tmp), target)
        return json.loads(target.read_text())

    def log_version_files(self, version: str, files: dict[str, bytes]) -> None:
        """Add files to a registered version's run as artifacts at their relative paths (evidence made after it was
        registered, such as its performance estimator)."""
        run_id = self.client.get_model_version(self.name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            for relative, data in files.items():
                path = Path(tmp, relative)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            self.client.log_artifacts(run_id, tmp)

    def version_file(self, pin: ModelPin, artifact: str, cache_dir: str | os.PathLike) -> bytes | None:
        """An artifact of the pinned version's run, cached beside its model; None when the run has no such file."""
        # Under "run-files", not "artifacts": the cache is a copy, not an artifact store (tests/e2e/test_scale_out.py).
        target = Path(cache_dir, pin.name, pin.version, "run-files", artifact)
        if not target.exists():
            if not pin.run_id:
                return None
            listed = {f.path for f in self.client.list_artifacts(pin.run_id, str(Path(artifact).parent))}
            if artifact not in listed:
                return None
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                os.replace(self.client.download_artifacts(pin.run_id, artifact, tmp), target)
        return target.read_bytes()

    def version_tags(self, version: str, name: str = "") -> dict[str, str]:
        return dict(self.client.get_model_version(name or self.name, version).tags)

    def describe_version(self, version: str, decision: str) -> None:
        """Set a version's description from its tags and its run's metrics (see version_description)."""
        mv = self.client.get_model_version(self.name, version)
        metrics = self.client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        self.client.update_model_version(
            self.name, version, description=redact(version_description(dict(mv.tags), dict(metrics), decision))
        )

    def log_daily(
        self, date: str, metrics: dict[str, float], tags: dict[str, str], documents: dict[str, dict | str]
    ) -> str:
        """Log a date's monitoring numbers to `<model>-monitoring`; re-runs reuse the runs.

        Two places: the date's own run ("monitor D": its numbers, tags and documents, a str
        body logged as text, e.g. report.html), and one "monitor timeline" run where every
        date is a step, so MLflow's charts of that run are timelines ordered by date. A step
        is the number of days since the first date logged to the experiment (its tag
        batchml.step_origin; an earlier date logged later has a negative step), and every
        metric is timestamped at its date, so the "Time (wall)" x axis reads as dates. Both
        runs are ended after each call: the date's run FAILED when its checks failed or a
        task of it failed (log_failure), FINISHED otherwise.
        """
        from mlflow.entities import Metric, RunTag

        monitoring = self._monitoring(date, timeline=bool(metrics))
        run_id, day = monitoring.dates[date], dt.date.fromisoformat(date)
        step = (day - monitoring.origin).days
        at = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
        batch = [Metric(k, float(v), at, step) for k, v in sorted(metrics.items())]
        self.client.log_batch(run_id, metrics=batch, tags=[RunTag(k, redact(str(v))) for k, v in tags.items()])
        for name, body in documents.items():
            if isinstance(body, str):
                self.client.log_text(run_id, redact(body), name)
            else:
                self.client.log_dict(run_id, redacted(body), name)
        self._end_date_run(run_id)
        if batch:
            self.client.log_batch(monitoring.timeline, metrics=batch)
            self.client.set_terminated(monitoring.timeline)  # a run nothing writes to between dates is not RUNNING
        return run_id

    def log_failure(self, date: str, task: str, cause: str) -> str:
        """The date's monitoring run, FAILED with the failed task and its cause (already free of credentials) as tags.

        A date that failed before its checks (at extraction, say) gets its run here.
        """
        from mlflow.entities import RunTag

        run_id = self._monitoring(date).dates[date]
        self.client.log_batch(
            run_id, tags=[RunTag("failure_task", task), RunTag("failure_cause", redact(cause)[:4000])]
        )
        self._end_date_run(run_id)
        return run_id

    def clear_failure(self, date: str) -> None:
        """The date's run no longer carries a failure (its daily job succeeded): re-ended on its checks' status."""
        experiment = self.client.get_experiment_by_name(f"{self.name}-monitoring")
        if experiment is None:
            return
        runs = self.client.search_runs([experiment.experiment_id], filter_string=f"tags.date = '{date}'", max_results=1)
        if not runs:
            return
        run = runs[0]
        for key in FAILURE_TAGS:
            if key in run.data.tags:
                self.client.delete_tag(run.info.run_id, key)
        self._end_date_run(run.info.run_id)

    def _end_date_run(self, run_id: str) -> None:
        tags = self.client.get_run(run_id).data.tags
        failed = tags.get("status") == "fail" or any(key in tags for key in FAILURE_TAGS)
        self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    def _monitoring(self, date: str, *, timeline: bool = False) -> _Monitoring:
        """The monitoring experiment with the date's run (and the timeline run): known, found, or created.

        Finding, then creating, is not atomic: two processes logging at once (two pods running
        one date, the first dates of a `--workers N` backfill) would each create their own, the
        experiment's second creation would fail, and the runs and the step origin would split
        in two. So it is done under the project's lock, once per process.
        """
        key = (self.tracking_uri, self.name)
        known = _monitoring.get(key)
        if known is None or date not in known.dates or (timeline and not known.timeline):
            with self._lock(MONITORING_LOCK):
                known = _monitoring[key] = self._find_or_create(known, date, timeline)
        return known

    def _find_or_create(self, known: _Monitoring | None, date: str, timeline: bool) -> _Monitoring:
        """Under the monitoring lock: what `_monitoring` does not know yet."""
        if known is None:
            note = (
                f"Daily monitoring of models:/{self.name}, written by batchml. One run per date (monitor YYYY-MM-DD) "
                "with its checks, drift and retraining decision as metrics, tags and JSON documents, and its "
                "report.html; FAILED when the date failed (tags failure_task, failure_cause). The run 'monitor "
                "timeline' holds every date as a step (days since the tag batchml.step_origin), so its charts are "
                "timelines. The dashboard is monitoring/index.html under the storage root."
            )
            location = f"{self.artifact_location}/monitoring" if self.artifact_location else ""
            experiment = self._experiment(
                f"{self.name}-monitoring", location, {"mlflow.note.content": note, STEP_ORIGIN_TAG: date}
            )
            origin = experiment.tags.get(STEP_ORIGIN_TAG)
            if origin is None:  # an experiment from before the tag: its first date logged from now on
                self.client.set_experiment_tag(experiment.experiment_id, STEP_ORIGIN_TAG, origin := date)
            known = _Monitoring(experiment.experiment_id, dt.date.fromisoformat(origin))
        if date not in known.dates:
            known.dates[date] = self._run(known.experiment_id, f"monitor {date}", {"date": date})
        if timeline and not known.timeline:
            note = (
                "Every monitored date as a step: step = days since the experiment's batchml.step_origin tag (the "
                "first date logged), each value timestamped at its date (choose x axis: Time (wall) to read dates)."
            )
            known.timeline = self._run(known.experiment_id, "monitor timeline", {"kind": "timeline"}, note)
        return known

    def _run(self, experiment_id: str, name: str, tags: dict[str, str], note: str = "") -> str:
        """The id of the experiment's run with `tags`, created (named `name`, with its `note`) when there is none."""
        found = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([experiment_id], filter_string=found, max_results=1)
        if runs:
            return runs[0].info.run_id
        tags = {**tags, "mlflow.note.content": note} if note else tags
        return self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
