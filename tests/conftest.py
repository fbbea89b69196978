"""Shared fixtures: a small pipeline configuration on tmp_path, and Luigi state reset."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import sys
from pathlib import Path

import luigi
import pytest
from luigi.task_register import Register

REPO = Path(__file__).resolve().parents[1]
TAXI = REPO / "examples" / "taxi"
CONTRACT = TAXI / "contract.yaml"
PROJECT_FILES = ("contract.yaml", "taxi_hooks.py", "taxi_synthetic.py")
sys.path.insert(0, str(TAXI))  # the taxi example's modules (hooks, generator), as its project folder makes them

# Small enough for seconds per date, large enough to train a useful model.
TRIPS = {"rows_per_day": 3000, "seed": 11, "drift_start": "", "bad_row_share": 0.002}
SMALL = {
    "source": {"kind": "python", "generator": "taxi_hooks:trips", "options": json.dumps(TRIPS), "label_lag_days": "2"},
    "features": {"transform": "taxi_hooks:features"},
    "labels": {"transform": "taxi_hooks:duration"},
    "training": {
        "recipe": "taxi_hooks:recipe",
        "params": json.dumps({"max_iter": 40}),
        "window_days": "5",
        "max_rows": "20000",
        "seed": "3",
    },
    "storage": {"rows_per_file": "1000"},
    "schema": {"path": str(CONTRACT), "max_reject_share": "0.05"},
    "dask": {"scheduler_address": "", "n_workers": "2", "threads_per_worker": "1"},
    "drift": {"exclude": json.dumps(["pickup_weekday", "is_weekend"])},
    # Only drift triggers retraining in tests: at 3,000 rows a day, weekday effects alone move
    # absolute MAE by 30%. Tests of the error trigger set it themselves.
    "retrain": {"error_increase": "10"},
    # Transient failures are retried in tests too, with waits short enough for a test.
    "retry": {"attempts": "3", "initial_delay": "0.2", "max_delay": "1", "deadline": "10"},
}


# The taxi example's model inputs, as taxi_hooks.features returns them.
TAXI_INPUTS = (
    "pickup_zone",
    "dropoff_zone",
    "trip_distance",
    "passenger_count",
    "vendor",
    "payment_type",
    "rate_code",
    "pickup_hour",
    "pickup_weekday",
    "is_weekend",
)
KEY = [
    "vendor_id",
    "pickup_datetime",
    "dropoff_datetime",
    "pickup_location_id",
    "dropoff_location_id",
]  # the taxi contract's


@contextlib.contextmanager
def batchml_log(caplog):
    """What batchml logs during the block, whatever handlers the run's logging configuration set up before: the
    packaged configuration gives the `batchml` logger its own handler and `propagate = 0`, so pytest's handler on the
    root logger sees nothing of it once a run has configured logging."""
    logger = logging.getLogger("batchml")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def distinct_keys(table) -> int:
    """How many distinct taxi keys a pyarrow table or pandas frame holds."""
    frame = table if hasattr(table, "columns") and not hasattr(table, "schema") else table.to_pandas()
    return len(frame[KEY].drop_duplicates())


def options_arg(**changes) -> tuple[str, str]:
    """The command-line override of the taxi generator's options."""
    return ("--source-options", json.dumps({**TRIPS, **changes}))


def make_manifest(rows: int = 3, *, dataset: str = "d", date: dt.date = dt.date(2026, 1, 5), **fields):
    """A Manifest of `rows` rows for the storage tests (the commit fills in its files)."""
    from batchml.store.manifest import Manifest

    base = dict(schema_hash="s", input_fingerprint="f", code_version="c", run_id="r")
    return Manifest(
        dataset=dataset,
        date=date.isoformat(),
        rows={"in": rows, "written": rows, "quarantined": 0},
        **{**base, **fields},
    )


def trips(**changes) -> dict[str, str]:
    """[source] settings of the taxi generator with some options changed (rows_per_day=..., drift_start=...)."""
    return {"options": json.dumps({**TRIPS, **changes})}


SECTIONS = (
    "core",
    "source",
    "features",
    "labels",
    "training",
    "storage",
    "schema",
    "dask",
    "mlflow",
    "checks",
    "drift",
    "report",
    "retrain",
    "retry",
    "runtime",
    "RangeDaily",
    "tables",
    "alerts",
)


def pipeline_settings(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Every setting a test run needs, pointing only inside tmp_path."""
    settings = {section: dict(values) for section, values in SMALL.items()}
    settings["storage"]["root"] = str(tmp_path / "data")
    settings["core"] = {"local_scheduler": "true"}
    settings["mlflow"] = {
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "artifact_location": str(tmp_path / "mlartifacts"),
        "registered_model": "trip_duration",
        "alias": "champion",
        "cold_start": "true",
        "cache_dir": str(tmp_path / "cache"),
        "http_request_max_retries": "0",
        "http_request_timeout": "10",
    }
    return settings


def write_cfg(path: Path, settings: dict[str, dict[str, str]]) -> Path:
    """A project for subprocess runs: the taxi example's files and luigi.cfg beside `path`, overridden by `settings`."""
    import configparser
    import shutil

    for name in PROJECT_FILES:
        shutil.copy(TAXI / name, path.parent / name)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(TAXI / "luigi.cfg")
    for section, values in settings.items():
        if not cfg.has_section(section):
            cfg.add_section(section)
        for key, value in values.items():
            cfg[section][key] = value
    with open(path, "w") as fh:
        cfg.write(fh)
    return path


@pytest.fixture(autouse=True)
def fresh_context():
    """Each test builds its own storage, registry and contract (batchml/project/context.py), as a new process would."""
    from batchml.project.context import reset_context

    reset_context()
    yield
    reset_context()


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    """Point Luigi's in-process configuration at tmp_path; undo it afterwards."""
    monkeypatch.chdir(tmp_path)
    config = luigi.configuration.get_config()
    saved = {s: dict(config.items(s)) if config.has_section(s) else None for s in SECTIONS}
    settings = pipeline_settings(tmp_path)

    def apply(overrides: dict[str, dict[str, str]] | None = None):
        for section, values in {**settings, **(overrides or {})}.items():
            if not config.has_section(section):
                config.add_section(section)
            for key, value in values.items():
                config.set(section, key, value)
        Register.clear_instance_cache()

    apply()
    yield apply
    import pipelines

    pipelines._failures.clear()  # causes of this test's failed runs are not the process's
    for section, values in saved.items():
        config.remove_section(section)
        if values is not None:
            config.add_section(section)
            for key, value in values.items():
                config.set(section, key, value)
    Register.clear_instance_cache()


@pytest.fixture
def day() -> dt.date:
    return dt.date(2026, 6, 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 for the session; yields the environment that reaches it."""
    from tests.servers import moto_server, s3_env

    port = free_port()
    server = moto_server(tmp_path_factory.mktemp("moto"), port).start()
    try:
        yield s3_env(port)
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A fresh bucket, with this process's environment pointing at the S3 server; yields its s3:// URL."""
    import uuid

    import boto3

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    bucket = f"batchml-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
    yield f"s3://{bucket}"


# Storage kinds the end-to-end fault tests run against: a local folder, and a bucket on the
# session's moto S3 server (leases short enough that a killed writer's expires within a test).
S3_LEASE_SECONDS = "3"


@pytest.fixture(params=["local", "s3"])
def storage_root(request, tmp_path) -> str:
    """A storage root for one test: tmp_path/data, or a fresh bucket (this process's environment set to reach it)."""
    if request.param == "local":
        return str(tmp_path / "data")
    return f"{request.getfixturevalue('s3')}/data"


def storage_settings(root: str) -> dict[str, str]:
    """The [storage] overrides of a root from `storage_root`."""
    return {"root": root, "lease_seconds": S3_LEASE_SECONDS} if root.startswith("s3://") else {"root": root}


def storage_fs(storage):
    """An fsspec filesystem and the storage root's path on it: to look under the manifests, as a plain reader would."""
    import fsspec

    if hasattr(storage, "fs"):  # ObjectStorage
        storage.fs.invalidate_cache()
        return storage.fs, storage.base
    return fsspec.filesystem("file"), str(storage.root)


def prefix_dataset(storage, dataset: str):
    """A dataset as a reader of its prefix sees it (pyarrow, hive dates, `_` names skipped, no manifest); None if
    absent."""
    import pyarrow.dataset as ds

    fs, base = storage_fs(storage)
    if not fs.exists(f"{base}/{dataset}"):
        return None
    return ds.dataset(f"{base}/{dataset}", filesystem=fs, format="parquet", partitioning="hive")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a real full disk (needs the mount privilege CI's root has)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a 1 MiB tmpfs to fill (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A PostgreSQL server on 127.0.0.1 for the session (tests/servers.py: Postgres); the tests that need it skip,
    saying why, where PostgreSQL is not installed."""
    from tests.servers import Postgres, postgres_bin

    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it as root)")
    server = Postgres(tmp_path_factory.mktemp("postgres"), free_port(), bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres(postgres_server) -> str:
    """A fresh database on the session's PostgreSQL server; yields its SQLAlchemy URL (postgresql+psycopg://...)."""
    import uuid

    return postgres_server.create_database(f"batchml_{uuid.uuid4().hex[:12]}")
