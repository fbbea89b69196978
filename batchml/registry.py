"""The MLflow model registry behind a small interface, and the local artifact cache.

A registered version carries, as version tags, the sha256 of its ONNX export; fetching a
version copies the ONNX file into a local cache and refuses it when the hash differs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from batchml.errors import IntegrityError
from batchml.provenance import code_version, sha256_bytes, sha256_file
from batchml.retry import RetryPolicy, Retrying

log = logging.getLogger(__name__)

ONNX_ARTIFACT = "onnx/model.onnx"
PROFILE_ARTIFACT = "profile/reference.json"
SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


@dataclass(frozen=True)
class ModelPin:
    """The model version a date is scored with, fixed the first time the date resolves it."""

    name: str
    version: str
    sha256: str
    alias: str
    run_id: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelPin:
        return cls(**json.loads(text))


def configure_http(max_retries: int, timeout: int) -> None:
    """Bound MLflow's HTTP retries (its defaults wait about four minutes on a dead server)."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


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


class Registry:
    """The registered model `model_name` at `tracking_uri`.

    Every client call is retried under `retry` when the server does not answer (a
    deterministic error, such as a missing version, is raised at once). Logging a new
    model goes through MLflow's fluent API and relies on MLflow's own HTTP retries.
    """

    def __init__(self, tracking_uri: str, model_name: str, artifact_location: str = "", retry: RetryPolicy | None = None):
        self.tracking_uri, self.name, self.artifact_location = tracking_uri, model_name, artifact_location
        client = _open_client(tracking_uri)
        self.client = Retrying(client, retry, f"MLflow registry at {tracking_uri}") if retry else client

    def version_by_alias(self, alias: str):
        """The ModelVersion behind `alias`, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def pin(self, alias: str):
        """Resolve `alias` once into a ModelPin; None when no version holds it."""
        mv = self.version_by_alias(alias)
        if mv is None:
            return None
        sha = mv.tags.get("onnx_sha256")
        if not sha:
            raise IntegrityError(f"models:/{self.name}/{mv.version} has no onnx_sha256 tag; it was not registered by batchml")
        return ModelPin(name=self.name, version=str(mv.version), sha256=sha, alias=alias, run_id=mv.run_id)

    def pin_version(self, version: str) -> ModelPin:
        """A ModelPin for an explicit version (a challenger, a rollback target)."""
        mv = self.client.get_model_version(self.name, str(version))
        return ModelPin(name=self.name, version=str(mv.version), sha256=mv.tags["onnx_sha256"], alias="", run_id=mv.run_id)

    def register(
        self,
        model,
        train_frame: pd.DataFrame,
        *,
        onnx_bytes: bytes,
        profile: dict,
        params: dict,
        metrics: dict,
        tags: dict,
        feature_names: list[str],
    ) -> str:
        """Log a trained model with its ONNX export and profile, register it, return the version."""
        import mlflow
        import sklearn
        from mlflow.models import infer_signature

        sha = sha256_bytes(onnx_bytes)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment_id = self._experiment_id()
        example = train_frame[feature_names].head(5)
        with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
            mlflow.log_params(params)
            mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
            mlflow.set_tags({**tags, "code_version": code_version(), "onnx_sha256": sha})
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")  # validated: no nulls
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(example, model.predict(example)),
                input_example=example,
                skops_trusted_types=SKOPS_TRUSTED,
                pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
            )
            onnx_path = Path(tmp, "model.onnx")
            onnx_path.write_bytes(onnx_bytes)
            mlflow.log_artifact(str(onnx_path), artifact_path="onnx")
            mlflow.log_dict(profile, PROFILE_ARTIFACT)
            mlflow.log_dict({"onnx/model.onnx": sha}, "sha256.json")
            run_id = run.info.run_id
        try:
            self.client.create_registered_model(self.name)
        except Exception as exc:  # already exists
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        mv = self.client.create_model_version(
            self.name, source=f"runs:/{run_id}/model", run_id=run_id, tags={**tags, "onnx_sha256": sha, "onnx_artifact": ONNX_ARTIFACT}
        )
        log.info("registered models:/%s/%s (run %s, onnx sha256 %s)", self.name, mv.version, run_id, sha[:12])
        return str(mv.version)

    def _experiment_id(self) -> str:
        """The experiment named after the model, created with the configured artifact location."""
        found = self.client.get_experiment_by_name(self.name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(self.name, artifact_location=self.artifact_location or None)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.name, alias, version)

    def fetch_onnx(self, pin: ModelPin, cache_dir: str | os.PathLike) -> Path:
        """The pinned ONNX file in the local cache, downloaded if needed, sha256 verified."""
        target = Path(cache_dir, self.name, pin.version, "model.onnx")
        if target.exists() and sha256_file(target) == pin.sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            downloaded = Path(self.client.download_artifacts(pin.run_id, ONNX_ARTIFACT, tmp))
            actual = sha256_file(downloaded)
            if actual != pin.sha256:
                raise IntegrityError(
                    f"models:/{self.name}/{pin.version}: {ONNX_ARTIFACT} has sha256 {actual}, "
                    f"but the version was registered with {pin.sha256}; refusing to score with it"
                )
            os.replace(downloaded, target)
        return target

    def reference_profile(self, pin: ModelPin, cache_dir: str | os.PathLike) -> dict:
        """The version's reference profile, cached next to its ONNX file."""
        target = Path(cache_dir, self.name, pin.version, "reference_profile.json")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                os.replace(self.client.download_artifacts(pin.run_id, PROFILE_ARTIFACT, tmp), target)
        return json.loads(target.read_text())

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(self.name, version).tags)

    def log_daily(self, date: str, metrics: dict[str, float], tags: dict[str, str], documents: dict[str, dict]) -> str:
        """Log a date's monitoring numbers to its own run in `<model>-monitoring`; re-runs reuse it."""
        experiment = f"{self.name}-monitoring"
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else self.client.create_experiment(experiment, artifact_location=f"{self.artifact_location}/monitoring" if self.artifact_location else None)
        )
        runs = self.client.search_runs([experiment_id], filter_string=f"tags.date = '{date}'", max_results=1)
        run_id = runs[0].info.run_id if runs else self.client.create_run(experiment_id, run_name=date, tags={"date": date}).info.run_id
        step = int(date.replace("-", ""))
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in sorted(metrics.items())],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        for name, body in documents.items():
            self.client.log_dict(run_id, body, name)
        self.client.set_terminated(run_id)
        return run_id
