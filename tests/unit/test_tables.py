"""Committed dates as Iceberg snapshots (batchml.store.tables) on the embedded SQLite catalog, read back by pyiceberg
and by DuckDB's iceberg extension."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchml.store import layout
from batchml.store.storage import Storage
from batchml.store.tables import Tables, TableSettings
from tests.conftest import make_manifest

DAY = dt.date(2026, 3, 2)
OTHER = dt.date(2026, 3, 3)


def commit(
    storage: Storage, date: dt.date, frames: list[pa.Table], *, version: str = "1", dataset: str = "predictions"
):
    """Commit `frames` (one file each) as a date of `dataset` through the storage's writer, as scoring does."""
    with storage.writer(dataset, date, replace=storage.is_committed(dataset, date)) as w:
        for i, frame in enumerate(frames):
            with w.open(f"part-{i:05d}.parquet") as fh:
                pq.write_table(frame, fh)
        rows = sum(f.num_rows for f in frames)
        return w.commit(make_manifest(rows, dataset=dataset, date=date, model={"version": version}))


def frame(ids: list[int], prediction: float, **extra: list) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "prediction": [prediction] * len(ids), **extra})


@pytest.fixture
def store(tmp_path):
    return Storage(tmp_path / "data")


def committed(store: Storage, tables: Tables, date: dt.date, frames: list[pa.Table], version: str = "1") -> int:
    manifest = commit(store, date, frames, version=version)
    sums = {f["path"]: f["sha256"] for f in manifest.files}
    return tables.commit_date(
        "predictions", date, store.files("predictions", date), model_version=version, run=manifest.run_id, sha256=sums
    )


def rows(table: pa.Table) -> list[tuple]:
    """The (id, prediction) pairs of a table, sorted: the order of files is not the order of rows."""
    return sorted(zip(table.column("id").to_pylist(), table.column("prediction").to_pylist(), strict=True))


def test_a_rescored_date_is_a_second_snapshot_and_the_first_stays_readable(store):
    tables = Tables(store.root)
    first = committed(store, tables, DAY, [frame([1, 2], 10.0), frame([3], 11.0)], version="1")
    second = committed(store, tables, DAY, [frame([1, 2, 3, 4], 20.0)], version="2")

    assert first != second
    assert rows(tables.read_date("predictions", DAY)) == [(1, 20.0), (2, 20.0), (3, 20.0), (4, 20.0)]
    assert rows(tables.read_date("predictions", DAY, as_of=first)) == [(1, 10.0), (2, 10.0), (3, 11.0)]
    history = tables.history("predictions", DAY)
    assert [(h["snapshot"], h["model_version"], h["rows"], h["operation"]) for h in history] == [
        (first, "1", 3, "append"),
        (second, "2", 4, "overwrite"),
    ]
    as_of_time = history[0]["committed_at"] + dt.timedelta(milliseconds=0)
    assert rows(tables.read_date("predictions", DAY, as_of=as_of_time)) == [(1, 10.0), (2, 10.0), (3, 11.0)]
    # The date column comes from the partition: the files do not hold it.
    assert "date" not in pq.read_schema(store.files("predictions", DAY)[0]).names
    assert set(tables.read_date("predictions", DAY).column("date").to_pylist()) == {DAY}


def test_each_date_holds_only_its_own_rows_and_a_repeated_commit_is_no_new_snapshot(store):
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1, 2], 1.0)])
    snap = committed(store, tables, OTHER, [frame([7], 2.0)])

    again = tables.commit_date("predictions", OTHER, store.files("predictions", OTHER), model_version="1")

    assert again == snap
    assert rows(tables.read_date("predictions", DAY)) == [(1, 1.0), (2, 1.0)]
    assert rows(tables.read_date("predictions", OTHER)) == [(7, 2.0)]
    assert len(tables.table("predictions").metadata.snapshots) == 2
    assert tables.check("predictions", DAY, store.manifest("predictions", DAY).files) == []


def test_a_new_output_column_evolves_the_schema(store):
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1], 1.0, proba_a=[0.4])])
    committed(store, tables, OTHER, [frame([2], 2.0, proba_a=[0.3], proba_b=[0.7])])

    schema = tables.table("predictions").schema()
    assert {"proba_a", "proba_b", "date"} <= set(schema.column_names)
    assert tables.read_date("predictions", OTHER).column("proba_b").to_pylist() == [0.7]
    assert tables.read_date("predictions", DAY).column("proba_b").to_pylist() == [None]


def test_check_names_a_date_whose_table_commit_did_not_happen_and_sync_heals_it(store):
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1], 1.0)])
    commit(store, DAY, [frame([5, 6], 3.0)], version="2")  # a kill after the manifest commit: no table commit

    problems = tables.check("predictions", DAY, store.manifest("predictions", DAY).files)
    assert problems and all(p.startswith("predictions 2026-03-02: table batchml.predictions") for p in problems)

    tables.sync(store, "predictions", DAY)
    assert tables.check("predictions", DAY, store.manifest("predictions", DAY).files) == []
    assert rows(tables.read_date("predictions", DAY)) == [(5, 3.0), (6, 3.0)]
    assert tables.history("predictions", DAY)[-1]["model_version"] == "2"


def test_expire_drops_old_snapshots_and_only_their_files(store):
    tables = Tables(store.root, TableSettings(keep_snapshots_days=1))
    first = committed(store, tables, DAY, [frame([1], 1.0)])
    second = committed(store, tables, DAY, [frame([2], 2.0)])
    links = sorted((store.root / layout.table_data("predictions", DAY)).iterdir())
    assert len(links) == 2

    assert tables.expire(dt.datetime.now(dt.UTC)) == 0
    assert tables.expire(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)) == 1

    assert [(h["snapshot"], h["expired"]) for h in tables.history("predictions", DAY)] == [
        (first, True),
        (second, False),
    ]
    assert rows(tables.read_date("predictions", DAY)) == [(2, 2.0)]
    with pytest.raises(ValueError):
        tables.read_date("predictions", DAY, as_of=first)
    current = [f.file_path for f in tables.current_files("predictions", DAY)]
    assert [str(p) for p in (store.root / layout.table_data("predictions", DAY)).iterdir()] == current


def test_thirty_daily_commits_keep_only_the_last_metadata_files(store):
    """Each commit writes a new metadata.json; the table deletes those beyond the last 20 (write.metadata.*)."""
    tables = Tables(store.root)
    for i in range(30):
        committed(store, tables, DAY + dt.timedelta(days=i), [frame([i], float(i))])
    metadata = list((store.root / "_tables" / "predictions" / "metadata").glob("*.metadata.json"))
    assert 20 <= len(metadata) <= 21  # the current one and the 20 before it at most
    assert rows(tables.read_date("predictions", DAY)) == [(0, 0.0)]  # every date still reads


def test_the_embedded_catalog_lives_in_the_storage_root(store):
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1], 1.0)])
    with sqlite3.connect(store.root / layout.CATALOG) as db:
        names = [r[0] for r in db.execute("SELECT table_name FROM iceberg_tables")]
    assert names == ["predictions"]


def duckdb_connection():
    """DuckDB with its iceberg extension (and the avro one it needs) loaded by path from their PyPI packages: nothing
    is downloaded."""
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for module, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        path = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        con.execute(f"LOAD '{path}'")
    return con


def test_duckdb_and_pyiceberg_read_exactly_the_committed_rows_of_a_date(store):
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1, 2], 1.0)])
    first = committed(store, tables, OTHER, [frame([3, 4], 2.0), frame([5], 2.5)])
    committed(store, tables, OTHER, [frame([6, 7, 8], 3.0)], version="2")  # re-scored: the old rows are gone
    location = tables.table("predictions").metadata_location

    con = duckdb_connection()
    got = con.execute(
        f"SELECT id, prediction FROM iceberg_scan('{location}') WHERE date = DATE '{OTHER}' ORDER BY id"
    ).fetchall()
    by_date = con.execute(
        f"SELECT date, count(*) FROM iceberg_scan('{location}') GROUP BY date ORDER BY date"
    ).fetchall()

    expected = rows(pa.concat_tables([pq.read_table(f) for f in store.files("predictions", OTHER)]))
    assert got == expected == [(6, 3.0), (7, 3.0), (8, 3.0)]
    assert rows(tables.read_date("predictions", OTHER)) == expected
    assert by_date == [(DAY, 2), (OTHER, 3)]
    as_of = con.execute(
        f"SELECT id, prediction FROM iceberg_scan('{location}', snapshot_from_id => {first}) "
        f"WHERE date = DATE '{OTHER}' ORDER BY id"
    ).fetchall()
    assert as_of == [(3, 2.0), (4, 2.0), (5, 2.5)] == rows(tables.read_date("predictions", OTHER, as_of=first))


def _commit_in_a_process(root: str, date: str, barrier) -> int:
    """One process's table commit of a date already committed to the storage, started together with the others."""
    storage = Storage(root)
    day = dt.date.fromisoformat(date)
    barrier.wait()
    return Tables(root).sync(storage, "predictions", day)


def test_dates_committed_by_several_processes_at_once_all_land(store):
    import concurrent.futures
    import multiprocessing

    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    for i, day in enumerate(days):
        commit(store, day, [frame([i * 10, i * 10 + 1], float(i))])
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(len(days))
    with concurrent.futures.ProcessPoolExecutor(len(days), mp_context=ctx) as pool:
        snapshots = list(
            pool.map(_commit_in_a_process, [str(store.root)] * 4, [d.isoformat() for d in days], [barrier] * 4)
        )

    tables = Tables(store.root)
    assert len(set(snapshots)) == len(days)
    assert len(tables.table("predictions").metadata.snapshots) == len(days)
    for i, day in enumerate(days):
        assert rows(tables.read_date("predictions", day)) == [(i * 10, float(i)), (i * 10 + 1, float(i))]
        assert tables.check("predictions", day, store.manifest("predictions", day).files) == []


def test_batchml_history_lists_what_scored_a_date_when_run_in_a_project_folder(tmp_path):
    import subprocess
    import sys

    store = Storage(tmp_path / "project" / "store")
    tables = Tables(store.root)
    first = committed(store, tables, DAY, [frame([1, 2, 3], 1.0)], version="4")
    second = committed(store, tables, DAY, [frame([1, 2], 2.0)], version="5")
    committed(store, tables, OTHER, [frame([9], 3.0)], version="5")
    (tmp_path / "project" / "luigi.cfg").write_text("[storage]\nroot = store\n")

    proc = subprocess.run(
        [str(Path(sys.executable).parent / "batchml"), "history", "--date", DAY.isoformat()],
        cwd=tmp_path / "project",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == [
        *("snapshot", "committed", "at", "(UTC)", "model", "version", "rows", "operation", "readable", "as", "of")
    ]
    stamps = [h["committed_at"].strftime("%Y-%m-%d %H:%M:%S").split() for h in tables.history("predictions", DAY)]
    assert [line.split() for line in lines[1:]] == [
        [str(first), *stamps[0], "4", "3", "append", "yes"],
        [str(second), *stamps[1], "5", "2", "overwrite", "yes"],
    ]
    missing = subprocess.run(
        [str(Path(sys.executable).parent / "batchml"), "history", "--date", "2026-01-01"],
        cwd=tmp_path / "project",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "no snapshot of predictions 2026-01-01" in missing.stderr


def test_verify_names_a_date_whose_table_disagrees_and_repair_recommits_it(store, capsys):
    from batchml.cli import main

    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1], 1.0)])
    committed(store, tables, OTHER, [frame([2], 1.0)])
    commit(store, DAY, [frame([5, 6], 3.0)], version="2")  # killed before its table commit
    root = str(store.root)

    assert main(["verify", root, "--dataset", "predictions"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("predictions 2026-03-02: table batchml.predictions: part-00000.parquet")
    assert err[-1].startswith("2 bad files among 2 files of 2 committed dates of predictions")

    assert main(["verify", root, "--dataset", "predictions", "--repair"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "predictions 2026-03-02: re-committed to its table from _MANIFEST.json"
    assert out[-1].endswith("all match their manifests and their Iceberg tables")
    assert rows(tables.read_date("predictions", DAY)) == [(5, 3.0), (6, 3.0)]
    assert main(["verify", root]) == 0


SYNC = """
import datetime as dt, sys
from batchml.store.storage import Storage
from batchml.store.tables import Tables
Tables(sys.argv[1]).sync(Storage(sys.argv[1]), "predictions", dt.date.fromisoformat(sys.argv[2]))
"""


@contextlib.contextmanager
def sync_held_at_its_commit(store: Storage, tmp_path: Path, date: dt.date):
    """A process syncing `date`'s table, held at its failpoint just before the snapshot lands; released on leaving
    the block. Yields the process (its stderr still to read)."""
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    gate = os.open(fifo, os.O_RDWR)  # held open: the run waits at its failpoint until it is closed
    run = subprocess.Popen(
        [sys.executable, "-c", SYNC, str(store.root), date.isoformat()],
        env={**os.environ, "BATCHML_FAILPOINT": "tables.predictions.commit", "BATCHML_FAILPOINT_FIFO": str(fifo)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "batchml failpoint tables.predictions.commit reached" in run.stderr.readline()
        yield run
    finally:
        os.close(gate)


def test_a_table_commit_of_a_date_that_changed_under_it_fails_instead_of_overwriting_it(store, tmp_path):
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1], 1.0)])
    commit(store, DAY, [frame([2], 2.0)], version="2")  # the commit a repair will register
    with sync_held_at_its_commit(store, tmp_path, DAY) as run:
        third = committed(store, tables, DAY, [frame([3, 4], 3.0)], version="3")  # meanwhile, under the date's lock
    err = run.stderr.read()
    assert run.wait(timeout=120) != 0
    assert "IntegrityError: predictions 2026-03-02: table batchml.predictions: another commit of this date" in err

    assert tables.table("predictions").current_snapshot().snapshot_id == third
    assert rows(tables.read_date("predictions", DAY)) == [(3, 3.0), (4, 3.0)]
    assert tables.check("predictions", DAY, store.manifest("predictions", DAY).files) == []


def test_the_commit_that_creates_the_table_retries_over_another_dates_commit(store, tmp_path):
    """The first commit creates the table; another date committed before its snapshot lands makes it retry, and the
    retry refreshes the table (the created one, not pyiceberg's staged table, which cannot be refreshed)."""
    commit(store, DAY, [frame([1], 1.0)])  # committed to the folder; its table commit is the run's
    with sync_held_at_its_commit(store, tmp_path, DAY) as run:
        other = committed(store, Tables(store.root), OTHER, [frame([7], 2.0)])  # meanwhile, another date
    err = run.stderr.read()
    assert run.wait(timeout=120) == 0, err
    tables = Tables(store.root)
    assert rows(tables.read_date("predictions", DAY)) == [(1, 1.0)]
    assert rows(tables.read_date("predictions", OTHER)) == [(7, 2.0)]
    assert other in [h["snapshot"] for h in tables.history("predictions", OTHER)]


def test_batchml_expire_drops_every_old_snapshot_but_the_current_and_history_still_lists_them(store, capsys):
    from batchml.cli import main

    tables = Tables(store.root)
    first = committed(store, tables, DAY, [frame([1], 1.0)], version="1")
    second = committed(store, tables, DAY, [frame([2], 2.0)], version="2")
    other = committed(store, tables, OTHER, [frame([3], 3.0)], version="2")  # the table's current snapshot
    folder = store.root / layout.table_data("predictions", DAY)
    current = store.manifest("predictions", DAY).files[0]["sha256"][:24]
    (old_link,) = [p for p in folder.iterdir() if not p.name.startswith(current)]

    assert main(["expire", str(store.root)]) == 0  # 30 days kept: nothing is that old
    assert capsys.readouterr().out.startswith("expired 0 snapshots committed before ")
    assert main(["expire", str(store.root), "--keep-days", "0"]) == 0
    assert capsys.readouterr().out.startswith("expired 2 snapshots committed before ")

    assert {s.snapshot_id for s in tables.table("predictions").metadata.snapshots} == {other}
    assert [
        (h["snapshot"], h["model_version"], h["rows"], h["expired"]) for h in tables.history("predictions", DAY)
    ] == [
        (first, "1", 1, True),
        (second, "2", 1, True),
    ]
    assert [(h["snapshot"], h["expired"]) for h in tables.history("predictions", OTHER)] == [(other, False)]
    assert rows(tables.read_date("predictions", DAY)) == [(2, 2.0)]  # the current rows, from the current snapshot
    assert rows(tables.read_date("predictions", OTHER)) == [(3, 3.0)]
    with pytest.raises(ValueError):
        tables.read_date("predictions", DAY, as_of=second)
    assert not old_link.exists()
    assert [p.name for p in folder.iterdir()] == [
        Path(f.file_path).name for f in tables.current_files("predictions", DAY)
    ]
    assert store.verify("predictions", DAY, checksums=True)  # the date's own folder is untouched
    assert main(["expire", str(store.root), "--keep-days", "-1"]) == 1


def test_a_commit_expires_the_snapshots_past_retention_without_batchml_expire(store):
    tables = Tables(store.root, TableSettings(keep_snapshots_days=0))
    first = committed(store, tables, DAY, [frame([1], 1.0)], version="1")
    first_link = next((store.root / layout.table_data("predictions", DAY)).iterdir())
    second = committed(store, tables, DAY, [frame([2], 2.0)], version="2")

    assert [s.snapshot_id for s in tables.table("predictions").metadata.snapshots] == [second]
    assert [(h["snapshot"], h["expired"]) for h in tables.history("predictions", DAY)] == [
        (first, True),
        (second, False),
    ]
    assert not first_link.exists()
    assert rows(tables.read_date("predictions", DAY)) == [(2, 2.0)]
    table = tables.table("predictions")
    snapshot = table.current_snapshot()
    listed = {Path(snapshot.manifest_list).name, *(Path(m.manifest_path).name for m in snapshot.manifests(table.io))}
    assert {p.name for p in (store.root / "_tables" / "predictions" / "metadata").glob("*.avro")} == listed
    kept = Tables(store.root, TableSettings(keep_snapshots_days=30))
    third = committed(store, kept, OTHER, [frame([3], 3.0)])
    assert {s.snapshot_id for s in kept.table("predictions").metadata.snapshots} == {second, third}


def test_the_current_snapshot_lists_one_manifest_per_month_and_every_date_reads_its_own_rows(store):
    days = [dt.date(2026, 3, 29), dt.date(2026, 3, 30), dt.date(2026, 3, 31), dt.date(2026, 4, 1), dt.date(2026, 4, 2)]
    tables = Tables(store.root)
    for i, day in enumerate(days):
        committed(store, tables, day, [frame([i, 100 + i], float(i)), frame([200 + i], float(i))])
    committed(store, tables, days[2], [frame([7], 70.0)], version="2")  # a re-score in March

    table = tables.table("predictions")
    con = duckdb_connection()
    manifests = table.current_snapshot().manifests(table.io)
    assert sorted((m.added_files_count + m.existing_files_count) for m in manifests) == [4, 5]  # April's, March's
    assert len(manifests) == 2
    for i, day in enumerate(days):
        want = [(7, 70.0)] if day == days[2] else [(i, float(i)), (100 + i, float(i)), (200 + i, float(i))]
        assert rows(tables.read_date("predictions", day)) == want
        got = con.execute(
            f"SELECT id, prediction FROM iceberg_scan('{table.metadata_location}') "
            f"WHERE date = DATE '{day}' ORDER BY id"
        ).fetchall()
        assert got == want
    assert tables.dates(store, "predictions", lambda: set(days)) == set(days)
    assert rows(
        tables.read_date("predictions", days[2], as_of=tables.history("predictions", days[2])[0]["snapshot"])
    ) == [
        (2, 2.0),
        (102, 2.0),
        (202, 2.0),
    ]


def test_the_cli_reads_tables_settings_from_the_projects_luigi_cfg(tmp_path):
    from batchml.base.errors import ConfigError
    from batchml.store.verify import project_tables

    assert project_tables(tmp_path) == TableSettings()  # no luigi.cfg: the defaults
    cfg = tmp_path / "luigi.cfg"
    cfg.write_text(
        "[tables]\ncatalog = sqlite:///meta/catalog.db\nnamespace = ml\nenabled = false\n"
        "datasets = predictions, quarantine\nkeep_snapshots_days = 7\n"
    )
    assert project_tables(tmp_path) == TableSettings(
        catalog=f"sqlite:///{tmp_path}/meta/catalog.db",
        namespace="ml",
        enabled=False,
        datasets=("predictions", "quarantine"),
        keep_snapshots_days=7,
    )
    cfg.write_text('[tables]\ndatasets = ["labels"]\nkeep_snapshots_days = a week\n')
    with pytest.raises(ConfigError, match=r"luigi.cfg: \[tables\]: .*a week"):
        project_tables(tmp_path)


def reading_through(store: Storage) -> Tables:
    """The storage's reads of committed dates going through its tables, as the context sets them up."""
    tables = Tables(store.root)
    store.tables = tables
    return tables


def test_a_storage_reading_through_its_tables_heals_a_date_its_table_lacks_then_reads_the_tables_files(store, caplog):
    tables = Tables(store.root)
    store.after_commit = lambda dataset, date, manifest: tables.commit_manifest(store, dataset, date, manifest)
    committed_first = commit(store, DAY, [frame([1, 2], 10.0)], version="1")
    store.after_commit = None  # the re-score's process stopped between its manifest and table commits
    rescored = commit(store, DAY, [frame([1, 2, 3], 20.0)], version="2")
    assert tables.check("predictions", DAY, rescored.files)  # the table holds the first scoring, the folder the second
    assert rows(tables.read_date("predictions", DAY)) == [(1, 10.0), (2, 10.0)]

    store.tables = tables
    with caplog.at_level("WARNING", logger="batchml.store.tables"):
        files = store.files("predictions", DAY)
    assert [r.getMessage() for r in caplog.records if "re-committed" in r.getMessage()] == [
        f"predictions {DAY}: its Iceberg table was behind its manifest; re-committed the manifest's files to table "
        "batchml.predictions before reading it (a run stopped between the two commits, or the date was committed with "
        "[tables] disabled)"
    ]
    sha = rescored.files[0]["sha256"]
    assert files == [str(store.root / layout.table_data("predictions", DAY) / f"{sha[:24]}-part-00000.parquet")]
    assert rows(pa.concat_tables(pq.read_table(f) for f in files)) == [(1, 20.0), (2, 20.0), (3, 20.0)]
    assert rows(tables.read_date("predictions", DAY)) == [(1, 20.0), (2, 20.0), (3, 20.0)]
    assert [(h["model_version"], h["run"]) for h in tables.history("predictions", DAY)] == [
        ("1", committed_first.run_id),
        ("2", rescored.run_id),
    ]

    caplog.clear()
    with caplog.at_level("WARNING", logger="batchml.store.tables"):
        assert store.files("predictions", DAY) == files
    assert caplog.records == []
    assert len(tables.history("predictions", DAY)) == 2  # healed once; a healthy date commits nothing


def test_a_date_another_process_committed_since_the_table_was_loaded_is_read_whole_without_a_heal_warning(
    store, caplog
):
    reader = reading_through(store)
    writer = Tables(store.root)
    store.after_commit = lambda dataset, date, manifest: writer.commit_manifest(store, dataset, date, manifest)
    commit(store, DAY, [frame([1], 1.0)])
    assert rows(pa.concat_tables(pq.read_table(f) for f in store.files("predictions", DAY))) == [(1, 1.0)]
    commit(store, DAY, [frame([1, 2], 2.0)], version="2")  # committed through the other Tables: reader's is stale
    with caplog.at_level("WARNING", logger="batchml.store.tables"):
        assert rows(pa.concat_tables(pq.read_table(f) for f in store.files("predictions", DAY))) == [
            (1, 2.0),
            (2, 2.0),
        ]
    assert caplog.records == []
    assert len(reader.history("predictions", DAY)) == 2


def test_committed_dates_come_from_the_table_once_it_holds_every_date_of_the_folder(store, monkeypatch, caplog):
    third = OTHER + dt.timedelta(days=1)
    commit(store, DAY, [frame([1], 1.0)])  # a root that predates the tables: no table yet
    commit(store, OTHER, [frame([2], 2.0)])
    tables = reading_through(store)
    with caplog.at_level("WARNING", logger="batchml.store.tables"):
        assert store.committed_dates("predictions") == {DAY, OTHER}  # registered from one listing of the folder
    assert sum("before listing the dates" in r.getMessage() for r in caplog.records) == 2
    assert tables.table("predictions").properties["batchml.dates-complete"] == "true"
    assert len(tables.history("predictions", DAY)) == len(tables.history("predictions", OTHER)) == 1

    commit(store, third, [frame([3], 3.0)])  # committed to the folder, its table commit never made (tables not set)
    listings = []
    raw = store._raw_dates
    monkeypatch.setattr(store, "_raw_dates", lambda dataset: listings.append(dataset) or raw(dataset))
    assert store.committed_dates("predictions") == {DAY, OTHER}  # the table's dates, not the folder's
    assert listings == []
    store.files("predictions", third)  # a read of the date heals it
    assert store.committed_dates("predictions") == {DAY, OTHER, third}
    assert listings == []


def test_the_tables_dates_leave_out_a_date_whose_files_were_all_replaced_by_none(store):
    tables = reading_through(store)
    store.after_commit = lambda dataset, date, manifest: tables.commit_manifest(store, dataset, date, manifest)
    commit(store, DAY, [frame([1], 1.0)])
    commit(store, OTHER, [frame([2], 2.0)])
    commit(store, OTHER, [frame([2, 3], 4.0)], version="2")  # a re-score: its old files deleted, new ones added
    assert store.committed_dates("predictions") == {DAY, OTHER}
    tables.commit_date("predictions", OTHER, [])  # a date emptied in the table (no file left)
    assert store.tables.dates(store, "predictions", lambda: set()) == {DAY}


def test_a_date_committed_again_with_the_same_bytes_after_a_file_was_damaged_in_place_reads_whole(store):
    tables = reading_through(store)
    store.after_commit = lambda dataset, date, manifest: tables.commit_manifest(store, dataset, date, manifest)
    commit(store, DAY, [frame([1, 2], 10.0)])
    (path,) = store.files("predictions", DAY)
    folder_file = store.partition_path("predictions", DAY) / "part-00000.parquet"
    assert os.path.samefile(path, folder_file)  # the table's file is a link to the committed one
    with open(folder_file, "r+b") as fh:  # a byte flipped in place: the table's link sees it too
        fh.seek(4)
        byte = fh.read(1)
        fh.seek(4)
        fh.write(bytes([byte[0] ^ 0xFF]))
    commit(store, DAY, [frame([1, 2], 10.0)])  # the heal: the same rows again, the same bytes, the same table name
    assert store.files("predictions", DAY) == [path]
    assert rows(pa.concat_tables(pq.read_table(f) for f in store.files("predictions", DAY))) == [(1, 10.0), (2, 10.0)]
    assert len(tables.history("predictions", DAY)) == 1  # no new snapshot: the table's files already were the bytes


def test_an_object_store_root_keeps_tables_only_once_a_catalog_is_named():
    """The embedded catalog is a SQLite file: an s3:// root with it keeps no tables (dates committed as before)."""
    assert TableSettings().kept_for("data") and TableSettings().kept_for("/srv/p/data")
    assert not TableSettings().kept_for("s3://bucket/prefix")
    assert TableSettings(catalog="postgresql+psycopg://u@db/iceberg").kept_for("s3://bucket/prefix")
    assert not TableSettings(enabled=False, catalog="postgresql+psycopg://u@db/iceberg").kept_for("s3://b/p")


def test_batchml_expire_removes_the_table_files_a_stopped_commit_left_once_they_are_a_day_old(store, capsys):
    from batchml.cli import main

    tables = Tables(store.root)
    first = committed(store, tables, DAY, [frame([1], 1.0)], version="1")
    committed(store, tables, DAY, [frame([2], 2.0)], version="2")
    folder = store.root / "_tables" / "predictions"
    # What a commit killed after placing its link, and one killed after writing a manifest, leave behind.
    left = [folder / "data" / "date=2026-03-02" / "0123abcd-part-00000.parquet", folder / "metadata" / "dead-m0.avro"]
    for path in left:
        path.write_bytes(b"left by a stopped commit")
        os.utime(path, (0, dt.datetime.now().timestamp() - 2 * 86400))
    fresh = folder / "metadata" / "under-way-m0.avro"  # a commit under way: not referenced yet, not old
    fresh.write_bytes(b"being committed")
    referenced = {p for p in folder.rglob("*") if p.is_file()} - {*left, fresh}

    assert main(["expire", str(store.root)]) == 0

    assert capsys.readouterr().out.splitlines()[-1].startswith("removed 2 table files no snapshot references")
    assert not any(p.exists() for p in left) and fresh.exists()
    assert all(p.exists() for p in referenced)
    assert rows(tables.read_date("predictions", DAY)) == [(2, 2.0)]
    assert rows(tables.read_date("predictions", DAY, as_of=first)) == [(1, 1.0)]  # within retention: still readable


def test_a_date_of_an_empty_file_agrees_with_its_manifest_and_a_repeated_commit_is_no_new_snapshot(store):
    """A quarantine with no rows is one file of no rows: the table holds it, `check` finds nothing to heal, and
    committing the same manifest again makes no snapshot (it made one at every run's end)."""
    tables = Tables(store.root)
    committed(store, tables, DAY, [frame([1], 1.0)])
    empty = committed(store, tables, OTHER, [frame([], 0.0)])

    assert tables.check("predictions", OTHER, store.manifest("predictions", OTHER).files) == []
    assert [os.path.basename(f.file_path) for f in tables.current_files("predictions", OTHER)] == [
        os.path.basename(p) for p in tables.files_of(store, "predictions", OTHER, store.manifest("predictions", OTHER))
    ]
    assert tables.sync(store, "predictions", OTHER) == empty
    assert len(tables.table("predictions").metadata.snapshots) == 2
    assert tables.read_date("predictions", OTHER).num_rows == 0
    assert rows(tables.read_date("predictions", DAY)) == [(1, 1.0)]
