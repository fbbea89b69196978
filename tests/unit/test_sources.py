import datetime as dt

import pandas as pd
import pytest
import sqlalchemy

from batchml import synthetic
from batchml.errors import MissingInput, SchemaError
from batchml.sources import FileSource, SqlSource, SyntheticSource

DAY = dt.date(2026, 2, 3)


def trips(n=200, date=DAY) -> pd.DataFrame:
    return next(synthetic.trips(date, rows=n, seed=9))


def test_synthetic_labels_match_the_trips():
    src = SyntheticSource(rows_per_day=500, seed=1)
    ((_, batch),) = list(src.batches(DAY))
    assert "trip_duration_s" not in batch.columns
    assert list(src.labels(DAY)["trip_id"]) == list(batch["trip_id"])
    assert src.fingerprint(DAY) != src.fingerprint(DAY + dt.timedelta(days=1))


def test_parquet_folder_per_date(tmp_path):
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    frame = trips()
    frame.iloc[:120].drop(columns="trip_duration_s").to_parquet(folder / "a.parquet")
    frame.iloc[120:].drop(columns="trip_duration_s").to_parquet(folder / "b.parquet")
    (folder / "notes.txt").write_text("ignored")
    frame[["trip_id", "trip_duration_s"]].to_parquet(tmp_path / f"labels_{DAY}.parquet")
    src = FileSource(path=str(tmp_path / "date={date}"), labels_path=str(tmp_path / "labels_{date}.parquet"))
    assert src.exists(DAY) and not src.exists(DAY + dt.timedelta(days=1))
    batches = list(src.batches(DAY))
    assert [o.rsplit("/", 1)[-1] for o, _ in batches] == ["a.parquet", "b.parquet"]
    assert sum(len(b) for _, b in batches) == 200
    assert len(src.labels(DAY)) == 200
    assert src.has_labels(DAY) and not src.has_labels(DAY + dt.timedelta(days=1))


def test_csv_file_per_date_and_missing_date(tmp_path):
    trips().to_csv(tmp_path / f"trips_{DAY}.csv", index=False)
    src = FileSource(path=str(tmp_path / "trips_{date}.csv"), fmt="csv")
    ((_, batch),) = list(src.batches(DAY))
    assert len(batch) == 200
    with pytest.raises(MissingInput, match="no csv files for 2026-02-04"):
        list(src.batches(DAY + dt.timedelta(days=1)))


def test_unreadable_file_is_named(tmp_path):
    (tmp_path / f"trips_{DAY}.parquet").write_bytes(b"not parquet at all")
    src = FileSource(path=str(tmp_path / "trips_{date}.parquet"))
    with pytest.raises(SchemaError, match=rf"trips_{DAY}\.parquet: cannot be read as parquet"):
        list(src.batches(DAY))


def test_path_without_date_placeholder_is_refused():
    with pytest.raises(ValueError, match=r"\{date\}"):
        FileSource(path="/data/trips.parquet")


def test_sql_query_binds_the_date(tmp_path):
    url = f"sqlite:///{tmp_path / 'trips.db'}"
    engine = sqlalchemy.create_engine(url)
    both = pd.concat([trips(150), trips(80, DAY + dt.timedelta(days=1))])
    both.drop(columns="trip_duration_s").to_sql("trips", engine, index=False)
    both[["trip_id", "trip_duration_s"]].assign(day=both["pickup_datetime"].dt.date.astype(str)).to_sql("labels", engine, index=False)
    src = SqlSource(
        url=url,
        query="SELECT * FROM trips WHERE date(pickup_datetime) = :date",
        labels_query="SELECT trip_id, trip_duration_s FROM labels WHERE day = :date",
        chunk_rows=100,
    )
    assert src.exists(DAY) and not src.exists(DAY + dt.timedelta(days=5))
    batches = list(src.batches(DAY))
    assert [len(b) for _, b in batches] == [100, 50]
    assert len(src.labels(DAY + dt.timedelta(days=1))) == 80
    assert src.has_labels(DAY) and not src.has_labels(DAY + dt.timedelta(days=5))
