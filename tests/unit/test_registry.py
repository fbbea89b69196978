"""The registry against a real MLflow SQLite store: what batchml registers, and what others register."""

import datetime as dt
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from batchml.base.errors import IntegrityError
from batchml.base.provenance import sha256_file
from batchml.dataset.contract import Contract
from batchml.dataset.sources import GeneratorSource
from batchml.model.pin import ONNX_ARTIFACT
from batchml.model.registry import Registry, _fluent_uris
from batchml.retrain.lifecycle import Project, train_and_register
from tests.conftest import CONTRACT


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    reg = Registry(f"sqlite:///{root / 'mlflow.db'}", "trips", str(root / "artifacts"))
    src = GeneratorSource(generator="taxi_hooks:trips", options={"rows_per_day": 2000, "seed": 4})
    project = Project(
        Contract.load(CONTRACT),
        recipe="taxi_hooks:recipe",
        features="taxi_hooks:features",
        labels="taxi_hooks:duration",
        params={"max_iter": 20},
    )
    version = train_and_register(
        src,
        project,
        reg,
        window_end=dt.date(2026, 5, 1),
        window_days=3,
        max_rows=6000,
        seed=1,
        reason="test",
        run_name="cold start 2026-05-03",
    )
    reg.set_alias("champion", version)
    return reg


def test_missing_model_or_alias_resolves_to_none(registry, tmp_path):
    assert Registry(f"sqlite:///{tmp_path / 'empty.db'}", "nothing").pin("champion") is None
    assert registry.pin("no-such-alias") is None


def test_pin_carries_version_runtime_inputs_and_onnx_hash(registry, tmp_path):
    pin = registry.pin("champion", tmp_path / "cache")
    mv = registry.client.get_model_version("trips", pin.version)
    assert pin.version == "1" and pin.sha256 == mv.tags["onnx_sha256"] and pin.run_id == mv.run_id
    assert (
        pin.runtime == "onnx"
        and pin.flavor == "batchml"
        and pin.inputs[:2] == ("pickup_zone", "dropoff_zone")
        and pin.classes is None
    )
    assert mv.tags["reason"] == "test" and mv.tags["window_end"] == "2026-05-01"
    run = registry.client.get_run(pin.run_id)
    assert run.info.run_name == "cold start 2026-05-03"
    assert {"holdout_mae", "holdout_rmse", "holdout_r2", "holdout_mape"} <= set(run.data.metrics)
    profile = registry.reference_profile(pin, tmp_path / "cache")
    assert (
        set(profile["columns"]) >= {"trip_distance", "pickup_zone"}
        and "prediction" in profile
        and len(profile["dates"]) == 3
    )


def test_the_registered_version_loads_by_alias_with_mlflow_itself(registry):
    with _fluent_uris(registry.tracking_uri):  # a global set_tracking_uri would leak into later tests
        model = mlflow.pyfunc.load_model("models:/trips@champion")
    # Raw rows: the transform is inside. The contract packed with the model checks the inputs (MLflow's
    # schema would refuse a Parquet timestamp or a nullable integer), so the signature declares outputs only
    # and the input example lists the contract's columns.
    assert model.metadata.signature.inputs is None and model.metadata.signature.outputs is not None
    with _fluent_uris(registry.tracking_uri):
        local = mlflow.artifacts.download_artifacts("models:/trips@champion")
    contract = Contract.load(CONTRACT)
    assert list(mlflow.models.Model.load(local).load_input_example(local).columns) == [
        c for c in contract.names if c != contract.label.column
    ]


def test_fetch_caches_and_verifies(registry, tmp_path):
    pin = registry.pin("champion")
    path = registry.fetch(pin, tmp_path / "cache")
    assert sha256_file(path) == pin.sha256
    assert registry.fetch(pin, tmp_path / "cache") == path


def test_a_tampered_artifact_is_refused(registry, tmp_path):
    pin = registry.pin("champion")
    stored = registry.client.download_artifacts(pin.run_id, ONNX_ARTIFACT, str(tmp_path / "dl"))
    source_file = registry.client.get_run(pin.run_id).info.artifact_uri.replace("file://", "") + "/" + ONNX_ARTIFACT
    original = Path(source_file).read_bytes()
    try:
        with open(source_file, "ab") as fh:
            fh.write(b"tampered")
        with pytest.raises(IntegrityError, match="refusing to score"):
            registry.fetch(pin, tmp_path / "cache2")
        assert not (tmp_path / "cache2" / "trips" / pin.version / "model.onnx").exists()
    finally:
        Path(source_file).write_bytes(original)
    assert sha256_file(stored) == pin.sha256


def test_a_data_scientists_sklearn_model_is_pinned_for_the_pyfunc_runtime_with_its_digest(tmp_path):
    from sklearn.linear_model import LinearRegression

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    x = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) % 7})
    with _fluent_uris(uri), mlflow.start_run():  # not set_tracking_uri: it would leak into later tests
        mlflow.sklearn.log_model(
            LinearRegression().fit(x, 2 * x["a"] + 1),
            name="model",
            input_example=x.head(3),
            registered_model_name="prices",
        )
    reg = Registry(uri, "prices")
    reg.set_alias("champion", "1")
    pin = reg.pin("champion", tmp_path / "cache")
    assert (pin.runtime, pin.flavor, pin.inputs, pin.artifact) == ("pyfunc", "sklearn", ("a", "b"), "models:/prices/1")
    folder = reg.fetch(pin, tmp_path / "cache")
    assert (folder / "MLmodel").exists() and reg.reference_profile(pin, tmp_path / "cache") is None
    (folder / "MLmodel").write_text((folder / "MLmodel").read_text() + "\n# changed\n")
    with pytest.raises(IntegrityError, match="refusing to score"):
        reg.fetch(pin, tmp_path / "cache")
