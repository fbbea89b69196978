"""batchml reads what it writes through its Iceberg tables (batchml.store.tables): a date's files and a dataset's
committed dates come from the table, healed from the manifest first where the two disagree; with [tables] disabled,
from the folders as before.

A date committed while [tables] is disabled is in its folder and not in its table: the state a run killed between a
date's manifest commit and its table commit leaves (tests/e2e/test_tables_faults.py kills real runs there)."""

from __future__ import annotations

import datetime as dt

import luigi
import pyarrow as pa
import pyarrow.parquet as pq
from luigi.execution_summary import LuigiStatusCode

from batchml.store import layout
from batchml.store.storage import open_storage
from batchml.store.tables import P_COMPLETE, Tables, TableSettings
from pipelines import Backfill, DailyScore
from tasks.config import context, make_storage
from tasks.extract import ExtractFeatures
from tests.conftest import KEY, batchml_log, make_manifest
from tests.tasks.test_tables_catalogs import commit, frame, rows

OFF = {"tables": {"enabled": "false"}}
ON = {"tables": {"enabled": "true"}}


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def healed(caplog, dataset: str, date: dt.date) -> list[str]:
    """The warnings of a heal of the date's table by a read of it."""
    heal = f"{dataset} {date}: its Iceberg table was behind its manifest; re-committed the manifest's files"
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(heal)]


def test_a_daily_run_scores_the_features_its_table_holds_healing_a_date_the_table_lacks_first(pipeline, day, caplog):
    pipeline(OFF)
    assert build(ExtractFeatures(day)).status == LuigiStatusCode.SUCCESS
    assert make_storage().tables is None
    features = make_storage().manifest("features", day)
    assert not (make_storage().root / layout.TABLES / "features").exists()  # the folder has the date, no table

    pipeline(ON)
    with batchml_log(caplog):
        result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    assert len(healed(caplog, "features", day)) == 1, caplog.text

    storage, tables = make_storage(), context().tables
    # Healed before scoring read it, from the manifest the extraction committed (not extracted again).
    (features_commit,) = tables.history("features", day)
    (predictions_commit,) = tables.history("predictions", day)
    assert features_commit["run"] == features.run_id == storage.manifest("features", day).run_id
    assert features_commit["committed_at"] <= predictions_commit["committed_at"]
    files = storage.files("features", day)
    assert files and all(f.startswith(str(storage.root / layout.TABLES / "features" / "data")) for f in files)
    # What was scored is the table's rows of the date, key for key.
    in_table = tables.read_date("features", day)
    scored = pa.concat_tables(pq.read_table(f) for f in storage.files("predictions", day))
    keys = lambda t: sorted(zip(*(t.column(c).to_pylist() for c in KEY), strict=True))  # noqa: E731
    assert scored.num_rows == in_table.num_rows == features.rows["in"] - features.rows["quarantined"]
    assert keys(scored) == keys(in_table)


def test_backfill_plans_from_the_tables_dates_and_heals_a_date_only_the_folder_has(pipeline, day, capsys, caplog):
    later = day + dt.timedelta(days=1)
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    scored = make_storage().committed_dates("predictions")  # the day and the dates its first run scored for reference
    assert day in scored and later not in scored
    assert context().tables.table("predictions").properties[P_COMPLETE] == "true"

    pipeline(OFF)  # as before the tables: the folders alone
    assert build(DailyScore(later)).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    assert storage.tables is None
    folder = storage.committed_dates("predictions")  # `later` and the dates its run scored for reference
    assert folder >= scored | {later}
    assert storage.files("predictions", later) == [
        f"{storage.partition_url('predictions', later)}/{f['path']}"
        for f in storage.manifest("predictions", later).files
    ]
    scored_later = storage.manifest("predictions", later).run_id

    pipeline(ON)
    storage = make_storage()
    listings = []
    raw = storage._raw_dates
    storage._raw_dates = lambda dataset: listings.append(dataset) or raw(dataset)
    assert storage.committed_dates("predictions") == scored  # the table's dates: `later` is only in the folder
    assert listings == []
    capsys.readouterr()
    assert build(Backfill(start=day, stop=later + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert f"missing (1): {later}" in capsys.readouterr().out

    with batchml_log(caplog):
        assert build(Backfill(start=day, stop=later + dt.timedelta(days=1))).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    assert scored | {later} <= storage.committed_dates("predictions") <= folder
    assert storage.manifest("predictions", later).run_id == scored_later  # healed, not scored again
    assert [h["run"] for h in context().tables.history("predictions", later)] == [scored_later]
    assert f"predictions {later}: its Iceberg table was behind its manifest; re-committed" in caplog.text


def test_on_s3_with_a_postgresql_catalog_a_read_heals_a_rescore_the_table_missed_under_the_dates_lease(postgres, s3):
    """The object-store side: the heal takes the date's lease, and the files read are the table's copies."""
    root = f"{s3}/data"
    commit(root, postgres, day := dt.date(2026, 3, 2), [frame(range(3), 1.0)], "1")
    storage = open_storage(root, lease_seconds=3)
    with storage.writer("predictions", day, replace=True) as w:  # a re-score whose process never made its table commit
        with w.open("part-00000.parquet") as fh:
            pq.write_table(frame(range(5), 2.0), fh)
        w.commit(make_manifest(5, dataset="predictions", date=day, model={"version": "2"}))
    tables = Tables(root, TableSettings(catalog=postgres))
    assert rows(tables.read_date("predictions", day)) == [(i, 1.0) for i in range(3)]

    storage.tables = tables
    files = storage.files("predictions", day)
    assert files and all(f.startswith(f"{root}/_tables/predictions/data/date={day}/") for f in files)
    read = pa.concat_tables(pq.read_table(f, filesystem=storage.fs) for f in files)
    assert rows(read) == [(i, 2.0) for i in range(5)]
    assert [h["model_version"] for h in tables.history("predictions", day)] == ["1", "2"]
    assert storage.fs.glob(f"{storage.base}/predictions/_locks/*") == []  # the lease was released
