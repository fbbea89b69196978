"""Tracking URIs and SQLite stores checked before MLflow sees them."""

from __future__ import annotations

import os

import pytest

from batchml.preflight import TrackingStoreError, check_sqlite_store, check_tracking_uri


@pytest.mark.parametrize(
    "uri", ["sqlite:///mlflow.db", "sqlite:////tmp/x/mlflow.db", "http://127.0.0.1:5000", "https://mlflow.example", "postgresql+psycopg://u@h/db", "databricks"]
)
def test_uris_mlflow_can_open_pass(uri):
    check_tracking_uri(uri)


@pytest.mark.parametrize(
    ("uri", "says"),
    [("sqlite//x.db", "is not a URI"), ("mlflow.db", "is not a URI"), ("sqlite://x.db", "sqlite:/// followed by"), ("file:///tmp/mlruns", "file store")],
)
def test_malformed_uris_are_named(uri, says):
    with pytest.raises(TrackingStoreError, match=says) as err:
        check_tracking_uri(uri)
    assert f"[mlflow] tracking_uri {uri!r}" in str(err.value)


def test_a_missing_sqlite_file_is_a_new_store_and_a_folder_is_not_a_store(tmp_path):
    check_sqlite_store(f"sqlite:///{tmp_path / 'new.db'}")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(TrackingStoreError, match="not a file"):
        check_sqlite_store(f"sqlite:///{tmp_path / 'dir.db'}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_an_unreadable_sqlite_file_is_named(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"x")
    db.chmod(0)
    with pytest.raises(TrackingStoreError, match="not readable and writable"):
        check_sqlite_store(f"sqlite:///{db}")
