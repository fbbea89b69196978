"""A DailyScore run leaves each committed date as the current snapshot of its Iceberg table (batchml.store.tables)."""

from __future__ import annotations

import luigi
import pyarrow as pa
import pyarrow.parquet as pq
from luigi.execution_summary import LuigiStatusCode

from batchml.store import layout
from pipelines import DailyScore
from tasks.config import context, make_storage
from tests.conftest import KEY


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def sorted_rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True), key=repr)


def test_a_daily_run_leaves_tables_whose_date_rows_are_the_committed_parquet_rows(pipeline, day):
    result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    storage, tables = make_storage(), context().tables

    for dataset in ("features", "quarantine", "predictions"):
        manifest = storage.verify(dataset, day)
        committed = pa.concat_tables([pq.read_table(f) for f in storage.files(dataset, day)])
        in_table = tables.read_date(dataset, day)
        columns = [c for c in committed.column_names if c != "date"]
        assert in_table.num_rows == committed.num_rows
        assert sorted_rows(in_table, columns) == sorted_rows(committed, columns), dataset
        assert set(in_table.column("date").to_pylist()) == {day}
        assert tables.check(dataset, day, manifest.files) == []

    predictions = storage.manifest("predictions", day)
    (entry,) = tables.history("predictions", day)
    assert entry["model_version"] == str(predictions.model["version"])
    assert entry["rows"] == predictions.rows["written"] == len(storage.read_table("predictions", day))
    assert entry["run"] == predictions.run_id
    assert set(KEY) <= set(tables.table("predictions").schema().column_names)


def test_tables_disabled_make_no_catalog(pipeline, day, tmp_path):
    pipeline({"tables": {"enabled": "false"}})
    result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    assert make_storage().is_committed("predictions", day)
    assert not (tmp_path / "data" / layout.CATALOG).exists()
    assert not (tmp_path / "data" / layout.TABLES).exists()
