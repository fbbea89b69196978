"""Scale out: storage on S3, a remote MLflow server, an existing Dask cluster, all real.

A moto S3 server, an `mlflow server` whose artifacts live on that S3 (`--artifacts-destination`)
and a `dask scheduler` with two `dask worker` processes run on 127.0.0.1. The pipeline, the
servers and the workers each get their own folder and share nothing on disk: data and the
model go through S3, the registry through the server's HTTP API.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from types import SimpleNamespace

import boto3
import pytest
import s3fs
from distributed import Client

from batchml.store.layout import MANIFEST
from batchml.store.storage import open_storage
from tests.conftest import KEY, distinct_keys, free_port, pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, last_lines
from tests.servers import DaskCluster, mlflow_server, wait_until

pytestmark = pytest.mark.slow

DAYS = [dt.date(2026, 8, 3) + dt.timedelta(days=i) for i in range(3)]
LOST = DAYS[-1] + dt.timedelta(days=1)  # the date scored while a worker dies
ROWS_PER_DAY = 3000
BUCKET = "batchml-scale-out"


@pytest.fixture(scope="module")
def stack(s3_server, tmp_path_factory):
    """A bucket, an MLflow server with its artifacts in it, and a Dask cluster, all given the S3 environment."""
    boto3.client(
        "s3",
        endpoint_url=s3_server["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3_server["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_server["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=BUCKET)
    env = {**os.environ, **s3_server}
    port = free_port()
    mlflow = mlflow_server(
        tmp_path_factory.mktemp("mlflow"), port, artifacts_destination=f"s3://{BUCKET}/mlartifacts", env=env
    ).start()
    dask = DaskCluster(tmp_path_factory.mktemp("dask"), free_port(), env=env)
    try:
        dask.start(workers=2)
        yield SimpleNamespace(
            s3_env=s3_server,
            tracking_uri=f"http://127.0.0.1:{port}",
            mlflow=mlflow,
            dask=dask,
            root=f"s3://{BUCKET}/data",
        )
    finally:
        dask.stop()
        mlflow.stop()


def make_cli(tmp_path, stack) -> Cli:
    settings = pipeline_settings(tmp_path)
    settings["storage"]["root"] = stack.root
    settings["mlflow"].update(tracking_uri=stack.tracking_uri, artifact_location="", cache_dir=str(tmp_path / "cache"))
    settings["dask"]["scheduler_address"] = stack.dask.address
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))


@pytest.fixture
def store(stack, monkeypatch):
    """The pipeline's storage, opened in the test process as any other reader would."""
    for key, value in stack.s3_env.items():  # s3fs reads the endpoint and credentials from the environment
        monkeypatch.setenv(key, value)
    return open_storage(stack.root)


def assert_committed_whole(store, day: dt.date) -> None:
    """A date committed once: manifests agree with their files, rows add up, one prediction per trip."""
    features, predictions = store.verify("features", day), store.verify("predictions", day)
    rows = predictions.rows
    assert rows["in"] == features.rows["in"] == ROWS_PER_DAY, rows
    assert rows["in"] == rows["written"] + rows["quarantined"], rows
    scored = store.read_table("predictions", day, columns=KEY)
    assert len(scored) == rows["written"] and distinct_keys(scored) == len(scored), (
        f"{day}: {len(scored)} rows read, {distinct_keys(scored)} trips"
    )
    assert len(scored.merge(store.read_table("features", day, columns=KEY), on=KEY)) == len(scored)
    # Nothing in the date's folder but what its manifest lists: no file of a lost worker or an earlier try.
    names = {
        key.rsplit("/", 1)[1]
        for key in store.fs.ls(store._partition_key("predictions", day), detail=False, refresh=True)
    }
    assert names == {f["path"] for f in predictions.files} | {MANIFEST, "_profile.json"}, sorted(names)


def test_dates_score_on_s3_through_a_remote_registry_and_an_existing_cluster(tmp_path, stack, store):
    cli = make_cli(tmp_path, stack)
    run = cli.luigi(
        "RangeDaily",
        "--of",
        "DailyScore",
        "--start",
        DAYS[0].isoformat(),
        "--stop",
        LOST.isoformat(),
        env=stack.s3_env,
        timeout=600,
    )
    assert run.returncode == 0, last_lines(run, 40)

    assert store.committed_dates("predictions") >= set(DAYS)
    for day in DAYS:
        assert_committed_whole(store, day)
    sha = store.manifest("predictions", DAYS[0]).model["sha256"]
    assert {store.manifest("predictions", day).model["sha256"] for day in DAYS} == {sha}

    # The registry's artifacts are on S3, and neither the server nor the pipeline has them on disk.
    fs = s3fs.S3FileSystem()
    artifacts = fs.find(f"{BUCKET}/mlartifacts")
    assert any(key.endswith("onnx/model.onnx") for key in artifacts), artifacts[:20]
    on_disk = [
        p
        for home in (tmp_path, stack.mlflow.cwd)
        for p in home.rglob("*")
        if p.name in ("mlartifacts", "mlruns", "artifacts")
    ]
    assert on_disk == [], on_disk

    # Workers read the model from the store, once each: one session per worker, the pinned model.
    assert fs.exists(f"{BUCKET}/data/_models/{sha}.onnx")

    def loaded_sessions():  # defined here so cloudpickle ships it by value
        import batchml.scoring.scoring

        return sorted(batchml.scoring.scoring._models)

    with Client(stack.dask.address) as client:
        sessions = client.run(loaded_sessions)
    assert sorted(sessions.values()) == [[sha]] * 2, sessions


@pytest.mark.faults
def test_a_worker_lost_mid_date_is_rescheduled_and_the_date_committed_once(tmp_path, stack, store):
    cluster = stack.dask
    doomed = "w1"
    cluster.kill(doomed, signal.SIGTERM)  # replaced by a worker that will stop inside scoring
    log = cluster.add_worker(f"{doomed}-doomed", env={"BATCHML_FAILPOINT": "score.partition"})
    doomed = f"{doomed}-doomed"

    cli = make_cli(tmp_path, stack)
    run = cli.start("DailyScore", "--date", LOST.isoformat(), env=stack.s3_env)
    try:
        # The worker has written one predictions file to staging and stops there.
        wait_until(
            lambda: "batchml failpoint score.partition reached" in log.read_text(),
            f"{doomed} at score.partition",
            300,
            run.proc,
            log,
        )
        cluster.kill(doomed)  # SIGKILL to the nanny and its worker: the host is gone
        code = run.wait(timeout=300)
    finally:
        if run.proc.poll() is None:
            run.kill()
    assert code == 0, run.output[-4000:]

    assert_committed_whole(store, LOST)
    # Distributed reschedules the lost worker's task on the other worker (measured here: the
    # run's own [retry] layer did not have to re-score the date); either way, one commit.
    commits = [line for line in run.lines if f"committed predictions for {LOST}" in line]
    assert len(commits) == 1, commits
