"""A tracking server that stops answering: bounded retries, one-line causes, pins that hold.

A real `mlflow server` on 127.0.0.1 serves the registry and its artifacts; the tests stop
and start it. The retry budget is the test settings' [retry] section (3 attempts, waits of
0.2 s doubling to 1 s, deadline 10 s) unless a run overrides it on the command line.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time

import mlflow
import pytest

from batchml.store.storage import Storage
from tests.conftest import free_port, pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, last_lines
from tests.servers import mlflow_server

FIRST, DAY, LATER = dt.date(2026, 7, 1), dt.date(2026, 7, 2), dt.date(2026, 7, 3)
MODEL = "trip_duration"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An `mlflow server` holding a champion (version 1), trained by a cold start through it."""
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    server = mlflow_server(home, port).start()
    server.uri = f"http://127.0.0.1:{port}"
    try:
        cold = make_cli(tmp_path_factory.mktemp("cold"), server.uri)
        run = cold.luigi("ChampionModel", "--date", FIRST.isoformat())
        assert run.returncode == 0, last_lines(run, 40)
        yield server
    finally:
        server.stop()


def make_cli(tmp_path, uri: str) -> Cli:
    settings = pipeline_settings(tmp_path)
    # Artifacts go through the server (mlflow-artifacts:/): no shared folder with it.
    settings["mlflow"].update(
        tracking_uri=uri, artifact_location="", http_request_max_retries="0", http_request_timeout="5"
    )
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))


def client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def causes(output: str) -> list[str]:
    """The lines under 'the run failed because:' that pipelines prints last."""
    return (
        output.split("the run failed because:", 1)[1].strip().splitlines()
        if "the run failed because:" in output
        else []
    )


@pytest.mark.slow
@pytest.mark.faults
def test_an_outage_fails_in_bounded_time_and_never_changes_a_pinned_version(tmp_path, server):
    cli = make_cli(tmp_path, server.uri)
    pinned = cli.luigi("ResolveModel", "--date", DAY.isoformat())
    assert pinned.returncode == 0, last_lines(pinned, 40)
    # A new champion is promoted after DAY was pinned to version 1.
    registry = client(server.uri)
    v1 = registry.get_model_version(MODEL, "1")
    v2 = registry.create_model_version(
        MODEL, v1.source, run_id=v1.run_id, tags=v1.tags, model_id=v1.model_id or v1.source.removeprefix("models:/")
    )
    registry.set_registered_model_alias(MODEL, "champion", v2.version)
    shutil.rmtree(tmp_path / "cache")  # a fresh pod: the pinned model must come from the registry

    server.stop()
    try:
        started = time.monotonic()
        down = cli.luigi("DailyScore", "--date", DAY.isoformat())
        elapsed = time.monotonic() - started
        assert down.returncode == 30, last_lines(down, 40)
        # Every retried call gave up within its deadline; the run with them, well inside a minute.
        assert elapsed < 60, f"the run took {elapsed:.0f} s to give up"
        lines = causes(down.stderr)
        assert lines and all(
            f"MLflow registry at {server.uri}" in line and "gave up after" in line for line in lines
        ), last_lines(down, 40)
        assert any("(download_artifacts)" in line and "ScorePredictions" in line for line in lines), lines
        assert Storage(cli.root).manifest("predictions", DAY) is None

        # The server comes back while a run is waiting between retries: the run finishes.
        patient = cli.start(
            "DailyScore", "--date", DAY.isoformat(), "--retry-attempts", "100", "--retry-deadline", "120"
        )
        patient.wait_for("; retry 1 of")
    finally:
        server.start()
    assert patient.wait() == 0, patient.output[-4000:]

    scored = Storage(cli.root).verify("predictions", DAY)
    assert scored.model["version"] == "1", "scored with another version than the date's pin"
    later = cli.luigi("ResolveModel", "--date", LATER.isoformat())
    assert later.returncode == 0 and '"version": "2"' in (cli.root / "pins" / f"date={LATER}.json").read_text()


@pytest.mark.slow
@pytest.mark.faults
def test_a_sha256_mismatch_is_not_retried(tmp_path, server):
    cli = make_cli(tmp_path, server.uri)
    registry = client(server.uri)
    version = registry.get_model_version_by_alias(MODEL, "champion").version
    good = registry.get_model_version(MODEL, version).tags["onnx_sha256"]
    registry.set_model_version_tag(MODEL, version, "onnx_sha256", "0" * 64)
    try:
        run = cli.luigi("ResolveModel", "--date", DAY.isoformat())
    finally:
        registry.set_model_version_tag(MODEL, version, "onnx_sha256", good)
    assert run.returncode == 30, last_lines(run, 40)
    assert "refusing to score with it" in "\n".join(causes(run.stderr))
    assert "; retry " not in run.stderr, "a deterministic failure was retried"
    assert not (cli.root / "pins" / f"date={DAY}.json").exists()
