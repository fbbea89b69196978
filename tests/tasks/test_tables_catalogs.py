"""The Iceberg tables (batchml.store.tables) on the catalogs and storage of production: a SQL catalog on a real
PostgreSQL server (started by the tests, tests/servers.py) with its warehouse on S3 (the session's moto server), and
commits raced from separate processes.

A date is committed the way a run commits it: its files through the storage's writer and manifest, then, under the
date's lock, the table transaction (`Tables.commit_manifest` as the storage's `after_commit`). Processes are started
with `spawn`: each is a fresh interpreter with its own catalog connection, as separate runs on separate hosts are.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from batchml.store.storage import open_storage
from batchml.store.tables import Tables, TableSettings
from tests.conftest import make_manifest

DATASET = "predictions"
DAY = dt.date(2026, 3, 2)


def frame(ids: range | list[int], prediction: float) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64()), "prediction": [float(prediction)] * len(ids)})


def rows(table: pa.Table) -> list[tuple]:
    """The (id, prediction) pairs of a table, sorted: the order of files is not the order of rows."""
    return sorted(zip(table.column("id").to_pylist(), table.column("prediction").to_pylist(), strict=True))


def commit(root: str, catalog: str, date: dt.date, frames: list[pa.Table], version: str, barrier=None) -> int:
    """Commit `frames` (one file each) as `date` as a run does: its files and manifest through the storage's writer,
    then, under the date's lock, its table transaction (the storage's `after_commit`, as the project context sets it);
    the snapshot id. With a `barrier`, the processes wait there with the catalog connected and start together."""
    storage = open_storage(root, lease_seconds=3)
    tables = Tables(root, TableSettings(catalog=catalog))
    snapshots: list[int] = []
    storage.after_commit = lambda dataset, day, manifest: snapshots.append(
        tables.commit_manifest(storage, dataset, day, manifest)
    )
    if barrier is not None:
        tables.table(DATASET)
        barrier.wait(timeout=120)
    with storage.writer(DATASET, date, replace=storage.is_committed(DATASET, date)) as w:
        for i, part in enumerate(frames):
            with w.open(f"part-{i:05d}.parquet") as fh:
                pq.write_table(part, fh)
        w.commit(make_manifest(sum(f.num_rows for f in frames), dataset=DATASET, date=date, model={"version": version}))
    (snapshot,) = snapshots
    return snapshot


def _child(index: int, job: tuple, barrier, results) -> None:
    try:
        results.put((index, commit(*job, barrier=barrier)))
    except BaseException as exc:  # the test shows it
        barrier.abort()  # the others do not wait for a process that will never arrive
        results.put((index, f"{type(exc).__name__}: {exc}"))


def in_processes(jobs: list[tuple]) -> list[int]:
    """Run `commit(*job)` for every job in its own spawned process, all released together before their writes;
    their snapshot ids, in order. A process that fails fails the test with its error."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(i, job, barrier, results)) for i, job in enumerate(jobs)]
    for proc in procs:
        proc.start()
    try:
        out = dict(results.get(timeout=300) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=60)
    errors = {i: v for i, v in out.items() if isinstance(v, str)}
    assert not errors, errors
    return [out[i] for i in range(len(jobs))]


@pytest.fixture
def production(postgres, s3) -> tuple[str, str]:
    """A storage root on S3 and a PostgreSQL SQL catalog: (root, catalog URL)."""
    return f"{s3}/data", postgres


def test_a_postgresql_catalog_with_an_s3_warehouse_keeps_each_date_and_its_history(production):
    root, catalog = production
    first = commit(root, catalog, DAY, [frame([1, 2], 10.0), frame([3], 11.0)], "1")
    second = commit(root, catalog, DAY, [frame(range(1, 5), 20.0)], "2")
    other = commit(root, catalog, DAY + dt.timedelta(days=1), [frame([9], 30.0)], "2")

    tables = Tables(root, TableSettings(catalog=catalog))
    assert rows(tables.read_date(DATASET, DAY)) == [(1, 20.0), (2, 20.0), (3, 20.0), (4, 20.0)]
    # A file a stopped commit left on S3 goes once it is older than a day (here: two days from now); the rest stays.
    import fsspec

    fs = fsspec.core.url_to_fs(root)[0]
    stray = f"{root}/_tables/{DATASET}/data/date={DAY}/0123abcd-part-00000.parquet"
    fs.pipe(stray, b"left by a stopped commit")
    assert tables.remove_orphans(dt.datetime.now(dt.UTC)) == []
    assert tables.remove_orphans(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)) == [stray]
    assert not fs.exists(stray)
    assert rows(tables.read_date(DATASET, DAY)) == [(1, 20.0), (2, 20.0), (3, 20.0), (4, 20.0)]
    assert rows(tables.read_date(DATASET, DAY, as_of=first)) == [(1, 10.0), (2, 10.0), (3, 11.0)]
    assert rows(tables.read_date(DATASET, DAY + dt.timedelta(days=1))) == [(9, 30.0)]
    assert [(h["snapshot"], h["model_version"], h["rows"]) for h in tables.history(DATASET, DAY)] == [
        (first, "1", 3),
        (second, "2", 4),
    ]
    assert other not in (first, second)
    # The catalog is PostgreSQL's (the JDBC catalog's table), the table's metadata and data files are on S3.
    with sa.create_engine(catalog).connect() as db:
        found = db.execute(sa.text("select table_namespace, table_name, metadata_location from iceberg_tables")).all()
    table = tables.table(DATASET)
    assert table is not None
    assert found == [("batchml", DATASET, table.metadata_location)]
    assert table.metadata_location.startswith(f"{root}/")
    assert all(task.file.file_path.startswith(f"{root}/") for task in table.scan().plan_files())

    # Retention on S3: the replaced snapshots go, their commits stay listed from the records written beside the table.
    assert Tables(root, TableSettings(catalog=catalog, keep_snapshots_days=0)).expire(dt.datetime.now(dt.UTC)) == 2
    assert [(h["snapshot"], h["rows"], h["expired"]) for h in tables.history(DATASET, DAY)] == [
        (first, 3, True),
        (second, 4, True),
    ]
    assert rows(tables.read_date(DATASET, DAY)) == [(1, 20.0), (2, 20.0), (3, 20.0), (4, 20.0)]


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize("kind", ["embedded", "postgresql"])
def test_eight_dates_committed_at_once_from_eight_processes_all_land(kind, tmp_path, request):
    """Eight runs of eight dates reach their table commits at the same instant: each date lands once, in its own
    snapshot, with its own rows; the table is created once."""
    if kind == "embedded":
        root, catalog = str(tmp_path / "data"), ""
    else:
        root, catalog = request.getfixturevalue("production")
    dates = [DAY + dt.timedelta(days=i) for i in range(8)]
    snapshots = in_processes(
        [(root, catalog, d, [frame(range(i * 10, i * 10 + 3 + i), i)], str(i)) for i, d in enumerate(dates)]
    )

    tables = Tables(root, TableSettings(catalog=catalog))
    table = tables.table(DATASET)
    assert table is not None
    assert len(set(snapshots)) == 8 and len(table.metadata.snapshots) == 8
    for i, date in enumerate(dates):
        assert rows(tables.read_date(DATASET, date)) == [(n, float(i)) for n in range(i * 10, i * 10 + 3 + i)]
        assert [(h["snapshot"], h["model_version"]) for h in tables.history(DATASET, date)] == [(snapshots[i], str(i))]
    assert table.scan().to_arrow().num_rows == sum(3 + i for i in range(8))


@pytest.mark.slow
@pytest.mark.faults
def test_two_runs_of_one_date_at_once_leave_one_current_result(production):
    """Two runs re-score one date at the same moment: the table holds one run's rows, not both, and they are the rows
    of the date's manifest."""
    root, catalog = production
    commit(root, catalog, DAY, [frame([1], 0.0)], "0")  # the date exists: both runs replace it
    runs = {"1": frame(range(1, 4), 1.0), "2": frame(range(1, 6), 2.0)}
    in_processes([(root, catalog, DAY, [part], version) for version, part in runs.items()])

    tables = Tables(root, TableSettings(catalog=catalog))
    current = rows(tables.read_date(DATASET, DAY))
    assert current in (rows(runs["1"]), rows(runs["2"])), current
    storage = open_storage(root)
    assert rows(pa.concat_tables(pq.read_table(f, filesystem=storage.fs) for f in storage.files(DATASET, DAY))) == (
        current
    )
    manifest = storage.manifest(DATASET, DAY)
    assert manifest is not None and tables.check(DATASET, DAY, manifest.files) == []
