"""Scoring through `[dask] scheduler_address` on a real scheduler with two worker processes."""

import datetime as dt
import json
import subprocess

import pytest
from distributed import Client

from tests.conftest import free_port
from tests.e2e.conftest import BIN, last_lines

DAY = dt.date(2026, 3, 1)


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = ["--no-dashboard"]
    procs = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), *common],
            cwd=tmp_path,
            stderr=subprocess.DEVNULL,
        )
    ]
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--name",
                    f"w{i}",
                    "--local-directory",
                    str(tmp_path / f"w{i}"),
                    *common,
                ],
                cwd=tmp_path,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in procs[::-1]:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_a_date_scores_on_an_existing_cluster_with_one_session_per_worker(cli, dask_cluster):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat(), "--dask-scheduler-address", dask_cluster)
    assert run.returncode == 0, last_lines(run, 40)
    manifest = json.loads((cli.root / "predictions" / f"date={DAY}" / "_MANIFEST.json").read_text())
    assert manifest["rows"]["written"] + manifest["rows"]["quarantined"] == 3000

    def loaded_sessions():  # defined here so cloudpickle ships it by value
        import batchml.scoring.scoring

        return sorted(batchml.scoring.scoring._models)

    with Client(dask_cluster) as client:
        sessions = client.run(loaded_sessions)
        handled = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
    # Both workers scored partitions, and each holds exactly one session: the pinned model.
    assert sorted(sessions.values()) == [[manifest["model"]["sha256"]]] * 2
    assert all(count > 0 for count in handled.values())
