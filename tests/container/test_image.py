"""The image, built from this tree and run in a real Docker engine (marker `container`).

The CronJob's exact command and arguments, read from docker/k8s/cronjob.yaml, run in the
container as Kubernetes would run them: the image's non-root user, a read-only root
filesystem with a tmpfs /tmp, no capabilities, no network, and the config file where the
ConfigMap would be. The storage root and the tracking store are host folders mounted in,
so the host checks what the run committed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import batchml
from batchml.store.storage import Storage
from tests.conftest import SMALL, TRIPS
from tests.container.conftest import (
    cfg_text,
    configmap_text,
    cronjob_container,
    image_config,
    image_uid,
    pod_spec,
    range_window,
    read_cfg,
    resource,
    run,
    writable_by,
)

pytestmark = [pytest.mark.container, pytest.mark.timeout(2400)]

TRACKING = "/mlflow"  # where the test mounts the tracking store (the CronJob uses the MLflow server)


def cronjob_config() -> str:
    """The ConfigMap's luigi.cfg, with the servers swapped for their embedded counterparts
    (local scheduler, SQLite tracking store on the mount, a LocalCluster) and a small day."""
    cfg = read_cfg(configmap_text("luigi.cfg"))
    cfg["core"] = {"local_scheduler": "true"}
    cfg["mlflow"].update(
        tracking_uri=f"sqlite:///{TRACKING}/mlflow.db",
        artifact_location=f"{TRACKING}/artifacts",
        cache_dir="/tmp/batchml/models",
        http_request_max_retries="0",
        cold_start="true",  # an empty registry: the example trains its first model
    )
    cfg["dask"] = {"scheduler_address": ""}
    for section in ("source", "training", "retrain"):
        cfg[section] = dict(SMALL[section])
    return cfg_text(cfg)


class CronJobRun:
    """The CronJob's container, run with `docker run` the way the kubelet would run it."""

    def __init__(self, image: str, workdir: Path):
        self.image = image
        self.uid = image_uid(image)
        self.container = cronjob_container()
        env = {e["name"]: e["value"] for e in self.container["env"] if "value" in e}
        config_path = Path(env["LUIGI_CONFIG_PATH"])
        data_mount = next(m["mountPath"] for m in self.container["volumeMounts"] if m["name"] == "data")
        self.data = writable_by(workdir / "data", self.uid)
        self.tracking = writable_by(workdir / "mlflow", self.uid)
        config_dir = workdir / "config"
        config_dir.mkdir()
        (config_dir / config_path.name).write_text(cronjob_config())
        self.store = self.data / Path(read_cfg(configmap_text("luigi.cfg"))["storage"]["root"]).relative_to(data_mount)
        self.options = [
            "--read-only",
            "--tmpfs", "/tmp:rw,size=2g",
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--network", "none",
            "--volume", f"{config_dir}:{config_path.parent}:ro",
            "--volume", f"{self.data}:{data_mount}",
            "--volume", f"{self.tracking}:{TRACKING}",
        ]  # fmt: skip
        for name, value in env.items():
            self.options += ["--env", f"{name}={value}"]

    def __call__(self) -> tuple[subprocess.CompletedProcess, dict]:
        """Run the CronJob's command once; the process and `docker inspect` of its container."""
        name = f"batchml-cronjob-{uuid.uuid4().hex[:8]}"
        command, args = self.container["command"], self.container["args"]
        cmd = [
            "docker",
            "run",
            "--name",
            name,
            *self.options,
            "--entrypoint",
            command[0],
            self.image,
            *command[1:],
            *args,
        ]
        try:
            proc = run(cmd, check=False, timeout=1200)
            inspect = json.loads(run(["docker", "inspect", name]).stdout)[0]
        finally:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True)
        return proc, inspect


@pytest.fixture(scope="module")
def cronjob(image, tmp_path_factory) -> CronJobRun:
    return CronJobRun(image, tmp_path_factory.mktemp("cronjob"))


def _tail(proc: subprocess.CompletedProcess, n: int = 40) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-n:])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_cronjob_command_commits_the_last_days_as_non_root_on_a_read_only_root(cronjob):
    args = cronjob.container["args"]
    before = range_window(args, _now())
    started = time.monotonic()
    proc, inspect = cronjob()
    print(f"\nCronJob command in the container: {time.monotonic() - started:.0f} s")
    after = range_window(args, _now())
    assert proc.returncode == 0, _tail(proc)

    # what Kubernetes' securityContext asks for is what ran
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert cronjob.uid != 0 and inspect["Config"]["User"] == image_config(cronjob.image)["User"]
    run_as = pod_spec(resource("CronJob", "batchml-daily"))["securityContext"]["runAsUser"]
    assert cronjob.uid == run_as, f"the image's user is {cronjob.uid}, the CronJob's runAsUser {run_as}"

    # every date of the window is committed, with a manifest that agrees with its files
    dates = sorted(set(before) & set(after))
    assert len(dates) >= 2, (before, after)
    storage = Storage(cronjob.store)
    env = dict(e.split("=", 1) for e in image_config(cronjob.image)["Env"])
    sha = env["BATCHML_GIT_SHA"]  # the commit build-image.sh baked in
    assert sha
    for day in dates:
        features = storage.verify("features", day)
        predictions = storage.verify("predictions", day)
        assert (
            predictions.rows["in"]
            == predictions.rows["written"] + predictions.rows["quarantined"]
            == TRIPS["rows_per_day"]
        )
        assert features.rows["written"] == predictions.rows["written"]
        assert predictions.model["name"] == "trip_duration" and predictions.model["version"] == "1"
        assert predictions.code_version == f"{batchml.__version__}+{sha}"  # GIT_SHA baked into the image
    labelled = {d - dt.timedelta(days=2) for d in dates}  # each date's realized metrics score D - label_lag_days too
    assert set(dates) <= storage.committed_dates("predictions") <= set(dates) | labelled

    # everything written on the mounts belongs to the image's non-root user
    written = [p for folder in (cronjob.data, cronjob.tracking) for p in folder.rglob("*")]
    assert written and {p.stat().st_uid for p in written} == {cronjob.uid}
    assert (cronjob.tracking / "mlflow.db").exists()


def test_a_missed_date_is_healed_by_the_next_run_and_nothing_else_is_rewritten(cronjob):
    storage = Storage(cronjob.store)
    dates = sorted(storage.committed_dates("predictions"))
    if not dates:
        pytest.skip("the first run committed nothing (see the test before)")
    missed = dates[len(dates) // 2]
    kept = {d: storage.manifest("predictions", d).run_id for d in dates if d != missed}
    for partition in cronjob.store.glob(f"*/date={missed.isoformat()}*"):  # as if its night never ran
        shutil.rmtree(partition) if partition.is_dir() else partition.unlink()
    assert not storage.is_committed("predictions", missed)

    proc, _ = cronjob()
    assert proc.returncode == 0, _tail(proc)
    assert storage.verify("predictions", missed).rows["written"] > 0
    assert storage.verify("features", missed).rows["written"] > 0
    assert {d: storage.manifest("predictions", d).run_id for d in kept} == kept


def test_root_filesystem_is_read_only_and_the_user_is_not_root(image):
    """From inside: writes anywhere but /tmp fail with EROFS, even where the user may write."""
    probe = (
        "import errno, json, os\n"
        "out = {'uid': os.getuid(), 'gid': os.getgid(), 'writes': {}}\n"
        "for path in ('/tmp/probe', '/data/probe', '/app/probe', '/opt/batchml/probe', '/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close(); out['writes'][path] = 'ok'\n"
        "    except OSError as exc:\n"
        "        out['writes'][path] = errno.errorcode[exc.errno]\n"
        "print(json.dumps(out))\n"
    )
    proc = run(
        [
            "docker",
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--network",
            "none",
            "--entrypoint",
            "python3",
            image,
            "-c",
            probe,
        ]
    )
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["uid"] == image_uid(image) != 0 and seen["gid"] != 0
    assert seen["writes"]["/tmp/probe"] == "ok"
    assert seen["writes"]["/data/probe"] == "EROFS"  # the user owns /data: only the read-only root stops it
    assert all(seen["writes"][p] in ("EROFS", "EACCES") for p in ("/app/probe", "/opt/batchml/probe", "/probe"))


def test_the_image_runs_each_server_of_the_stack(image):
    """One image: luigid, the MLflow server, Dask's scheduler and worker, and object storage."""
    for command in (
        ["luigid", "--help"],
        ["mlflow", "server", "--help"],
        ["dask", "scheduler", "--help"],
        ["dask", "worker", "--help"],
        ["python3", "-c", "import s3fs, boto3"],  # the s3 extra: storage roots on object stores
    ):
        run(
            [
                "docker",
                "run",
                "--rm",
                "--read-only",
                "--tmpfs",
                "/tmp",
                "--network",
                "none",
                "--entrypoint",
                command[0],
                image,
                *command[1:],
            ]
        )
