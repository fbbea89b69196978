"""The registry against a real MLflow SQLite store and artifact folder."""

import datetime as dt

import pytest

from batchml.errors import IntegrityError
from batchml.lifecycle import train_and_register
from batchml.provenance import sha256_file
from batchml.registry import ONNX_ARTIFACT, Registry
from batchml.schema import Schema
from batchml.sources import SyntheticSource
from tests.conftest import SCHEMA


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    reg = Registry(f"sqlite:///{root / 'mlflow.db'}", "trips", str(root / "artifacts"))
    src = SyntheticSource(rows_per_day=2000, seed=4)
    version = train_and_register(
        src, Schema.load(SCHEMA), reg, window_end=dt.date(2026, 5, 1), window_days=3, max_rows=6000, max_iter=20, seed=1, reason="test"
    )
    reg.set_alias("champion", version)
    return reg


def test_missing_model_or_alias_resolves_to_none(registry, tmp_path):
    assert Registry(f"sqlite:///{tmp_path / 'empty.db'}", "nothing").pin("champion") is None
    assert registry.pin("no-such-alias") is None


def test_pin_carries_version_and_onnx_hash(registry, tmp_path):
    pin = registry.pin("champion")
    mv = registry.client.get_model_version("trips", pin.version)
    assert pin.version == "1" and pin.sha256 == mv.tags["onnx_sha256"] and pin.run_id == mv.run_id
    assert mv.tags["reason"] == "test" and mv.tags["window_end"] == "2026-05-01"
    run = registry.client.get_run(pin.run_id)
    assert {"holdout_mae", "holdout_rmse", "holdout_r2", "holdout_mape"} <= set(run.data.metrics)
    profile = registry.reference_profile(pin, tmp_path / "cache")
    assert set(profile["columns"]) >= {"trip_distance", "pickup_zone"} and "prediction" in profile


def test_fetch_caches_and_verifies(registry, tmp_path):
    pin = registry.pin("champion")
    path = registry.fetch_onnx(pin, tmp_path / "cache")
    assert sha256_file(path) == pin.sha256
    assert registry.fetch_onnx(pin, tmp_path / "cache") == path


def test_a_tampered_artifact_is_refused(registry, tmp_path):
    pin = registry.pin("champion")
    stored = registry.client.download_artifacts(pin.run_id, ONNX_ARTIFACT, str(tmp_path / "dl"))
    source_file = registry.client.get_run(pin.run_id).info.artifact_uri.replace("file://", "") + "/" + ONNX_ARTIFACT
    original = open(source_file, "rb").read()
    try:
        with open(source_file, "ab") as fh:
            fh.write(b"tampered")
        with pytest.raises(IntegrityError, match="refusing to score"):
            registry.fetch_onnx(pin, tmp_path / "cache2")
        assert not (tmp_path / "cache2" / "trips" / pin.version / "model.onnx").exists()
    finally:
        open(source_file, "wb").write(original)
    assert sha256_file(stored) == pin.sha256
