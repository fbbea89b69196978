"""Two runs of one date at the same instant: one committed partition per dataset, no duplicates.

The runs are two `luigi` processes with local schedulers, as two CronJob pods or cron plus
a backfill would be. A failpoint with a named pipe holds both at the same place until
both have arrived, then releases them together, so they race for the same date's commit:
on a local root for the date's file lock, on S3 (a moto server) for the date's lease.
"""

from __future__ import annotations

import datetime as dt
import os
import signal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from batchml.store.storage import open_storage
from tests.conftest import distinct_keys, prefix_dataset, storage_fs
from tests.e2e.conftest import last_lines, make_cli, registry_settings

DAY = dt.date(2026, 5, 12)
DATASETS = ("features", "quarantine", "predictions")


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, str]:
    """A registry with a champion already, as on any day after the first."""
    home = tmp_path_factory.mktemp("registry")
    settings = registry_settings(home)
    warm = make_cli(tmp_path_factory.mktemp("warm"), settings)
    run = warm.luigi("ChampionModel", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    return settings


class Barrier:
    """A named pipe whose write end the test holds; runs wait at a failpoint for its end of file."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "barrier"
        os.mkfifo(self.path)
        self._fd = os.open(self.path, os.O_RDWR)  # O_RDWR does not block without a reader (Linux)

    def env(self, failpoint: str) -> dict[str, str]:
        return {"BATCHML_FAILPOINT": failpoint, "BATCHML_FAILPOINT_FIFO": str(self.path)}

    def release(self) -> None:
        os.close(self._fd)  # every run waiting on the pipe sees its end of file at once


def assert_one_clean_commit(root: str) -> None:
    storage = open_storage(root)
    fs, base = storage_fs(storage)
    for dataset in DATASETS:  # the date, and (scored for its realized metrics) its labelled date at most
        assert {DAY} <= storage.committed_dates(dataset) <= {DAY, DAY - dt.timedelta(days=2)}, dataset
        manifest = storage.verify(dataset, DAY)  # the files are the ones the manifest lists
        table = prefix_dataset(storage, dataset).to_table()  # a plain reader of the prefix, the date's rows
        table = table.filter(pc.equal(pc.cast(table["date"], pa.string()), DAY.isoformat()))
        assert table.num_rows == manifest.rows["written"], (
            f"{dataset}: readers see {table.num_rows} rows, the manifest says {manifest.rows['written']}"
        )
        if dataset != "quarantine":
            assert distinct_keys(table) == table.num_rows, f"{dataset}: duplicate rows"
        assert not fs.find(f"{base}/{dataset}/_staging"), f"{dataset}: staging left behind"
    predictions, features = storage.manifest("predictions", DAY), storage.manifest("features", DAY)
    assert (
        predictions.rows["in"] == features.rows["in"] == predictions.rows["written"] + predictions.rows["quarantined"]
    )
    pin = storage.read_text(f"pins/date={DAY}.json")
    assert f'"version": "{predictions.model["version"]}"' in pin


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize("repeat", range(2))
@pytest.mark.parametrize("barrier", ["writer.features", "writer.predictions"])
def test_two_runs_released_at_the_same_instant_commit_the_date_once(tmp_path, registry, barrier, repeat, storage_root):
    cli = make_cli(tmp_path, registry, storage_root)
    gate = Barrier(tmp_path)
    runs = [
        # Separate lock folders: Luigi's pid lock is per host, so two pods never see each other's.
        cli.start(
            "DailyScore", "--date", DAY.isoformat(), "--lock-pid-dir", str(tmp_path / f"pod{i}"), env=gate.env(barrier)
        )
        for i in range(2)
    ]
    for run in runs:
        run.wait_for(f"batchml failpoint {barrier} reached")
    gate.release()
    for run in runs:
        assert run.wait() == 0, run.output[-4000:]
    assert_one_clean_commit(storage_root)
    commits = [line for run in runs for line in run.lines if f"committed predictions for {DAY}" in line]
    assert len(commits) == 1, commits


@pytest.mark.slow
@pytest.mark.faults
def test_a_second_run_of_the_same_command_on_one_host_exits_already_running(tmp_path, registry, storage_root):
    cli = make_cli(tmp_path, registry, storage_root)
    gate = Barrier(tmp_path)
    locks = str(tmp_path / "locks")
    first = cli.start(
        "DailyScore", "--date", DAY.isoformat(), "--lock-pid-dir", locks, env=gate.env("writer.predictions")
    )
    first.wait_for("batchml failpoint writer.predictions reached")
    second = cli.luigi("DailyScore", "--date", DAY.isoformat(), "--lock-pid-dir", locks)
    assert second.returncode == 10, last_lines(second)  # [retcode] already_running
    gate.release()
    assert first.wait() == 0, first.output[-4000:]
    assert_one_clean_commit(storage_root)


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize(
    "storage_root", ["s3"], indirect=True
)  # a local date lock never expires: a paused writer keeps it
def test_a_writer_paused_past_its_lease_never_commits_over_the_run_that_took_it_over(tmp_path, registry, storage_root):
    cli = make_cli(tmp_path, registry, storage_root)
    gate = Barrier(tmp_path)
    paused = cli.start(
        "DailyScore",
        "--date",
        DAY.isoformat(),
        "--lock-pid-dir",
        str(tmp_path / "pod0"),
        env=gate.env("commit.predictions.files"),
    )
    paused.wait_for(
        "batchml failpoint commit.predictions.files reached"
    )  # its files copied into the date, no manifest yet
    os.killpg(paused.proc.pid, signal.SIGSTOP)  # a frozen VM or a long pause: its lease is no longer renewed
    try:
        other = cli.luigi("DailyScore", "--date", DAY.isoformat(), "--lock-pid-dir", str(tmp_path / "pod1"))
    finally:
        os.killpg(paused.proc.pid, signal.SIGCONT)
    assert other.returncode == 0, last_lines(other, 40)
    assert "took over an expired lease" in other.stderr, last_lines(other, 40)
    committed = open_storage(storage_root).manifest("predictions", DAY)

    gate.release()  # the paused writer goes on to its manifest PUT
    assert paused.wait() == 30, paused.output[-4000:]
    assert "lost the lease" in paused.output.split("the run failed because:")[-1], paused.output[-4000:]
    assert open_storage(storage_root).manifest("predictions", DAY) == committed
    assert_one_clean_commit(storage_root)
