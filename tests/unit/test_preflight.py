"""Tracking URIs and SQLite stores checked before MLflow sees them."""

from __future__ import annotations

import importlib.util
import os

import pytest

from batchml.model.preflight import (
    TrackingStoreError,
    check_sqlite_store,
    check_tracking_uri,
    filesystem_problem,
    sql_url_problem,
    tracking_uri_problem,
    without_userinfo,
)


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///mlflow.db",
        "sqlite:////tmp/x/mlflow.db",
        "http://127.0.0.1:5000",
        "https://mlflow.example",
        "databricks",
        "databricks-uc",
    ],
)
def test_uris_mlflow_can_open_pass(uri):
    check_tracking_uri(uri)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("sqlite//x.db", "not a URI"),
        ("mlflow.db", "not a URI"),
        ("sqlite://x.db", "sqlite:/// followed by"),
        ("file:///tmp/mlruns", "file store"),
    ],
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


def test_a_scheme_no_installed_mlflow_store_handles_is_named_with_the_installed_ones():
    problem = tracking_uri_problem("foo://bar")
    assert (
        problem.startswith("no installed MLflow tracking store handles the scheme 'foo' (installed: ")
        and "http, https" in problem
    )
    with pytest.raises(TrackingStoreError, match="'foo'"):
        check_tracking_uri("foo://bar")


def test_a_plugin_store_registered_with_mlflow_is_accepted(monkeypatch):
    """What a plugin's entry point does (StoreRegistry.register_entrypoints): register its scheme in both registries."""
    from mlflow.tracking._model_registry.utils import _get_store_registry
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    assert "plugstore" in tracking_uri_problem("plugstore://host/x")
    monkeypatch.setitem(_tracking_store_registry._registry, "plugstore", lambda *a, **k: None)
    assert tracking_uri_problem("plugstore://host/x").startswith(
        "no installed MLflow model registry store handles the scheme 'plugstore'"
    )
    monkeypatch.setitem(_get_store_registry()._registry, "plugstore", lambda *a, **k: None)
    assert tracking_uri_problem("plugstore://host/x") == ""


def test_a_database_url_whose_driver_is_missing_is_named_without_its_password():
    # pymssql is in no extra of batchml (the tests install psycopg for their PostgreSQL catalog).
    assert importlib.util.find_spec("pymssql") is None
    problem = tracking_uri_problem("mssql+pymssql://bob:S3cretPW@db.example/mlflow")
    assert problem == "the driver of mssql+pymssql is not installed (No module named 'pymssql')"
    with pytest.raises(TrackingStoreError) as err:
        check_tracking_uri("mssql+pymssql://bob:S3cretPW@db.example/mlflow")
    assert (
        "S3cretPW" not in str(err.value)
        and "bob" not in str(err.value)
        and "'mssql+pymssql://db.example/mlflow'" in str(err.value)
    )


def test_sql_urls_are_checked_against_sqlalchemys_dialects():
    assert sql_url_problem("sqlite:///x.db") == ""
    assert sql_url_problem("foo://u:p@h/db") == "no installed SQLAlchemy dialect handles the scheme 'foo'"
    assert sql_url_problem("not a url").startswith("not a SQLAlchemy URL")


def test_storage_and_source_urls_are_checked_against_fsspecs_filesystems():
    assert (
        filesystem_problem("/tmp/data")
        == filesystem_problem("memory://x")
        == filesystem_problem("simplecache::memory://x")
        == ""
    )
    assert filesystem_problem("foo://bucket/x") == "no installed fsspec filesystem handles the protocol 'foo'"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:S3c/ret@db/x", "postgresql://db/x"),
        ("http://alice@host:5000", "http://host:5000"),
        ("s3://bucket/key@2026", "s3://bucket/key@2026"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_a_urls_userinfo_is_never_shown(url, shown):
    assert without_userinfo(url) == shown
