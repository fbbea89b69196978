"""Faults around the Iceberg tables (batchml.store.tables) of a real run: a kill -9 between a date's manifest commit and
its table commit, and table metadata cut short.

The run is the `luigi` CLI (tests/e2e/conftest.py), held at the failpoint `tables.predictions.commit` (the manifest
committed, the table transaction built, not committed; batchml/base/faults.py) and killed there, as the OOM killer or a
lost node would. batchml's readers go through the manifest; other engines through the table: each must see a whole
date, the old or the new one, and the next run must make them agree. On a local root with the embedded catalog, and on
S3 (the session's moto server) with a PostgreSQL catalog (tests/servers.py).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pyarrow as pa
import pytest

from batchml.base.errors import IntegrityError
from batchml.store.storage import open_storage
from batchml.store.tables import Tables, TableSettings
from tests.conftest import REPO, pipeline_settings, storage_settings, write_cfg
from tests.e2e.conftest import BIN, Cli, Running, last_lines, make_cli, registry_settings
from tests.tasks.test_tables_catalogs import commit, frame, rows
from tests.unit.test_tables import duckdb_connection

DAY = dt.date(2026, 4, 20)
POINT = "tables.predictions.commit"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, str]:
    """One registry for the module: the first run cold-starts the model, the others reuse it."""
    return registry_settings(tmp_path_factory.mktemp("registry"))


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path) -> tuple[str, str]:
    """(storage root, [tables] catalog): a folder and the embedded catalog, or a bucket and a PostgreSQL catalog."""
    if request.param == "local":
        return str(tmp_path / "data"), ""
    return f"{request.getfixturevalue('s3')}/data", request.getfixturevalue("postgres")


def project(tmp_path, registry: dict[str, str], root: str, catalog: str) -> Cli:
    settings = pipeline_settings(tmp_path)
    settings["mlflow"].update(registry)
    settings["storage"].update(storage_settings(root))
    settings["tables"] = {"catalog": catalog}
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))


def committed_rows(storage, dataset: str, date: dt.date) -> pa.Table:
    """A date's rows as its manifest lists them (what batchml's readers read)."""
    return pa.Table.from_pandas(storage.read_table(dataset, date), preserve_index=False)


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """The same rows in any order, on the columns both hold (values compared, not types: a partition column read back
    as a dictionary is the same value)."""
    columns = sorted(set(a.column_names) & set(b.column_names) - {"date"})

    def rows(t: pa.Table) -> list[tuple]:
        return sorted(zip(*(t.column(c).to_pylist() for c in columns), strict=True), key=repr)

    return a.num_rows == b.num_rows and rows(a) == rows(b)


def batchml_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "batchml"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.faults
def test_a_run_killed_between_its_manifest_and_table_commits_shows_a_whole_date_and_the_next_run_heals(
    tmp_path, registry, place
):
    root, catalog = place
    cli = project(tmp_path, registry, root, catalog)
    run = cli.start("DailyScore", "--date", DAY.isoformat(), env={"BATCHML_FAILPOINT": POINT})
    run.wait_for(f"batchml failpoint {POINT} reached", timeout=300)
    run.kill()

    storage, tables = open_storage(root), Tables(root, TableSettings(catalog=catalog))
    new = committed_rows(storage, "predictions", DAY)  # the manifest commit was done: batchml's readers see the date
    assert new.num_rows > 0
    # the table's readers see the date as it was before the run: not there, not a part of it
    assert tables.read_date("predictions", DAY).num_rows == 0
    assert tables.history("predictions", DAY) == []
    # the datasets committed before the kill are in their tables whole
    assert same_rows(tables.read_date("features", DAY), committed_rows(storage, "features", DAY))

    verify_args = ["verify", root, *(["--catalog", catalog] if catalog else [])]
    verify = batchml_cli(*verify_args, cwd=tmp_path)
    assert verify.returncode == 1, last_lines(verify, 20)
    assert f"predictions {DAY}" in verify.stdout + verify.stderr, last_lines(verify, 20)

    rerun = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert rerun.returncode == 0, last_lines(rerun, 40)
    healed = f"predictions {DAY}: its Iceberg table was behind its manifest; re-committed"
    assert healed in rerun.stdout + rerun.stderr, last_lines(rerun, 40)
    tables = Tables(root, TableSettings(catalog=catalog))
    assert same_rows(tables.read_date("predictions", DAY), committed_rows(storage, "predictions", DAY))
    manifest = storage.manifest("predictions", DAY)
    assert manifest is not None and tables.check("predictions", DAY, manifest.files) == []
    assert [h["model_version"] for h in tables.history("predictions", DAY)] == [str(manifest.model["version"])]
    assert batchml_cli(*verify_args, cwd=tmp_path).returncode == 0


@pytest.mark.slow
@pytest.mark.faults
def test_a_rescore_killed_before_its_table_commit_leaves_the_tables_readers_on_the_old_rows(place):
    """A date scored, then re-scored by a process killed at its table commit: batchml's readers see the new rows, the
    table's readers the old ones, whole; committing the manifest to the table then makes them agree, with both
    commits in the date's history."""
    root, catalog = place
    old, new = frame(range(3), 1.0), frame(range(5), 2.0)
    commit(root, catalog, DAY, [old], "1")
    code = (
        "import datetime as dt; from tests.tasks.test_tables_catalogs import commit, frame; "
        f"commit({root!r}, {catalog!r}, dt.date({DAY.year}, {DAY.month}, {DAY.day}), [frame(range(5), 2.0)], '2')"
    )
    run = Running(
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "BATCHML_FAILPOINT": POINT},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    )
    run.wait_for(f"batchml failpoint {POINT} reached")
    run.kill()

    storage, tables = open_storage(root), Tables(root, TableSettings(catalog=catalog))
    assert rows(pa.Table.from_pandas(storage.read_table("predictions", DAY), preserve_index=False)) == rows(new)
    assert rows(tables.read_date("predictions", DAY)) == rows(old)
    if "://" not in root:  # DuckDB reads S3 through its httpfs extension, which is not installed here
        table = tables.table("predictions")
        assert table is not None
        query = f"SELECT id, prediction FROM iceberg_scan('{table.metadata_location}') WHERE date = DATE '{DAY}'"
        assert sorted(duckdb_connection().execute(query).fetchall()) == rows(old)
    manifest = storage.manifest("predictions", DAY)
    assert manifest is not None and tables.check("predictions", DAY, manifest.files) != []

    tables.sync(storage, "predictions", DAY)
    assert rows(tables.read_date("predictions", DAY)) == rows(new)
    assert tables.check("predictions", DAY, manifest.files) == []
    first, second = tables.history("predictions", DAY)
    assert (first["model_version"], second["model_version"]) == ("1", "2")
    assert rows(tables.read_date("predictions", DAY, as_of=first["snapshot"])) == rows(old)


@pytest.mark.slow
@pytest.mark.faults
def test_table_metadata_cut_short_is_named_by_readers_and_by_verify(tmp_path, registry):
    cli = make_cli(tmp_path, registry)
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    table = Tables(cli.root).table("predictions")
    assert table is not None
    metadata = table.metadata_location.removeprefix("file://")
    with open(metadata, "r+b") as fh:
        fh.truncate(len(fh.read()) // 2)

    with pytest.raises(IntegrityError) as raised:
        Tables(cli.root).read_date("predictions", DAY)
    assert metadata in str(raised.value), raised.value

    verify = batchml_cli("verify", str(cli.root), cwd=tmp_path)
    assert verify.returncode == 1, last_lines(verify, 20)
    lines = verify.stderr.splitlines()
    # one line names the file and what is wrong; the manifests are still checked, and the summary counts it
    (named,) = [line for line in lines if metadata in line]
    assert "unreadable metadata of table batchml.predictions: Invalid JSON" in named, named
    assert lines[-1].startswith("1 bad files among "), lines
    assert "Traceback" not in verify.stderr, verify.stderr[-3000:]
