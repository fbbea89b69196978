"""The last line of a failed run is its cause: scheduling errors, a broken tracking store, luigid down.

Each run is the real `luigi --module pipelines ...` from a project folder (not the repository)
whose luigi.cfg is its own; the cause must be the run's last line, naming the file, setting
or store.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from tests.conftest import free_port
from tests.e2e.test_startup import last_line, minimal_cfg, run_project

DAY = dt.date(2026, 6, 1)


def synthetic_cfg(tmp_path, extra: str = "") -> str:
    """A project scoring the taxi example's generator, small, everything inside tmp_path (its modules copied beside
    it)."""
    import shutil

    from tests.conftest import PROJECT_FILES, TAXI

    for name in PROJECT_FILES:
        shutil.copy(TAXI / name, tmp_path / "project" / name) if (tmp_path / "project").is_dir() else None
    hooks = (
        'kind = python\ngenerator = taxi_hooks:trips\noptions = {"rows_per_day": 500, "seed": 1}\n'
        "[features]\ntransform = taxi_hooks:features\n[labels]\ntransform = taxi_hooks:duration\n"
        '[training]\nrecipe = taxi_hooks:recipe\nparams = {"max_iter": 10}\nwindow_days = 3'
    )
    cfg = (
        minimal_cfg(tmp_path, extra)
        .replace("kind = files", hooks)
        .replace("[mlflow]\n", "[mlflow]\ncold_start = true\n")
    )
    return "\n".join(
        line
        for line in cfg.splitlines()
        if not line.startswith(("path = {", f"path = {tmp_path}/incoming", "labels_path ="))
    )


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_a_storage_root_that_is_a_regular_file_is_named(project, tmp_path):
    (tmp_path / "data").write_text("not a folder")
    run = run_project(project, minimal_cfg(tmp_path), "DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 35, run.stderr[-3000:]  # an exception in complete(): a scheduling error
    last = last_line(run)
    assert (
        "could not be scheduled: ConfigError: [storage] root" in last
        and f"{tmp_path}/data is a file, not a folder" in last
    ), run.stderr[-3000:]


def empty(path):
    path.write_bytes(b"")


def garbage(path):
    path.write_bytes(b"this is not a database, " * 200)


def malformed(path):
    """A real SQLite file with pages overwritten, as a disk or a copy mid-write leaves one."""
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (a text)")
        conn.executemany("insert into t values (?)", [("x" * 100,)] * 2000)
        conn.execute("create index i on t (a)")
    conn.close()
    with open(path, "r+b") as fh:
        fh.seek(4096 * 2)
        fh.write(b"\xff" * 4096 * 3)


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (empty, "empty file (0 bytes)"),
        (garbage, "file is not a database"),
        (malformed, "database disk image is malformed"),
    ],
)
def test_a_damaged_sqlite_tracking_store_is_named(project, tmp_path, damage, cause):
    damage(tmp_path / "mlflow.db")
    run = run_project(project, synthetic_cfg(tmp_path), "DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 30, run.stderr[-3000:]
    assert f"tracking store {tmp_path / 'mlflow.db'}: {cause}" in last_line(run), run.stderr[-3000:]


def test_a_damaged_store_read_while_scheduling_is_a_named_scheduling_error(project, tmp_path):
    empty(tmp_path / "mlflow.db")
    run = run_project(
        project,
        synthetic_cfg(tmp_path),
        "Backfill",
        "--start",
        DAY.isoformat(),
        "--stop",
        (DAY + dt.timedelta(days=2)).isoformat(),
    )
    assert run.returncode == 35, run.stderr[-3000:]  # requires() of a wrapper runs inside its complete()
    assert "could not be scheduled: TrackingStoreError" in last_line(run) and "empty file" in last_line(run), (
        run.stderr[-3000:]
    )


def test_a_malformed_tracking_uri_is_named_not_mlflows_file_store(project, tmp_path):
    cfg = synthetic_cfg(tmp_path).replace(
        f"tracking_uri = sqlite:///{tmp_path}/mlflow.db", "tracking_uri = sqlite//x.db"
    )
    run = run_project(project, cfg, "DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 35, run.stderr[-3000:]  # refused by the start-up check, before anything is written
    assert "luigi.cfg: [mlflow] tracking_uri = 'sqlite//x.db': not a URI" in last_line(run), run.stderr[-3000:]
    assert "maintenance mode" not in run.stderr + run.stdout


def test_luigid_not_running_is_one_line_naming_the_address_and_its_file(project, tmp_path):
    port = free_port()  # nothing listens there
    cfg = minimal_cfg(tmp_path).replace(
        "local_scheduler = true", f"default_scheduler_host = 127.0.0.1\ndefault_scheduler_port = {port}"
    )
    run = run_project(project, cfg, "DailyScore", "--date", DAY.isoformat(), timeout=60)
    assert run.returncode == 40, run.stderr[-3000:]
    line = last_line(run)
    assert f"central scheduler at 127.0.0.1:{port}" in line and "[core] default_scheduler_host in luigi.cfg" in line, (
        run.stderr[-3000:]
    )
    assert len((run.stdout + run.stderr).strip().splitlines()) < 10, run.stderr[-3000:]
    assert not (tmp_path / "data").exists()
