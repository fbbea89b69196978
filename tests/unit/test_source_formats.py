"""A path's format follows its extension unless [source] format says otherwise; the labels path follows its own."""

import datetime as dt

import pandas as pd
import pytest

from batchml.base.errors import ConfigError
from batchml.dataset.contract import Contract
from batchml.dataset.sources import FileSource, format_of
from tests.conftest import CONTRACT

DAY = dt.date(2026, 2, 3)


@pytest.fixture(scope="module")
def taxi() -> Contract:
    return Contract.load(CONTRACT)


def trips(n=50) -> pd.DataFrame:
    from taxi_synthetic import trips as generate

    return next(generate(DAY, rows_per_day=n, seed=9))


def durations(frame: pd.DataFrame, taxi: Contract) -> pd.DataFrame:
    return frame[list(taxi.key)].assign(trip_duration_s=pd.Series(range(len(frame)), dtype="float64") * 10.0)


@pytest.mark.parametrize(
    "path, fmt",
    [
        ("/in/trips_{date}.csv", "csv"),
        ("/in/trips_{date}.CSV.gz", "csv"),
        ("s3://b/trips_{date:%Y-%m}.csv.bz2", "csv"),
        ("/in/labels_{date}.parquet", "parquet"),
        ("/in/labels_{date}.pq", "parquet"),
        ("/in/date={date}/", None),
        ("/in/date={date}/*", None),
        ("/in/date={date}/*.csv", "csv"),
        ("/in/trips_{date}.txt", None),
    ],
)
def test_the_format_a_path_names(path, fmt):
    assert format_of(path) == fmt


def test_a_csv_source_reads_parquet_labels_by_their_extension(tmp_path, taxi):
    frame = trips()
    frame.to_csv(tmp_path / f"trips_{DAY}.csv", index=False)
    durations(frame, taxi).to_parquet(tmp_path / f"labels_{DAY}.parquet")
    src = FileSource(
        path=str(tmp_path / "trips_{date}.csv"),
        labels_path=str(tmp_path / "labels_{date}.parquet"),
        fmt="csv",
        contract=taxi,
    )
    assert src.has_labels(DAY)
    labels = src.labels(DAY)
    assert len(labels) == len(frame) and labels["trip_duration_s"].tolist() == [10.0 * i for i in range(len(frame))]


def test_with_format_empty_csv_rows_and_labels_follow_their_extensions(tmp_path, taxi):
    frame = trips()
    frame.to_csv(tmp_path / f"trips_{DAY}.csv.gz", index=False)
    durations(frame, taxi).to_csv(tmp_path / f"labels_{DAY}.csv", index=False)
    src = FileSource(
        path=str(tmp_path / "trips_{date}.csv.gz"), labels_path=str(tmp_path / "labels_{date}.csv"), contract=taxi
    )
    ((_, batch),) = list(src.batches(DAY))
    assert len(batch) == len(frame)
    assert len(src.labels(DAY)) == len(frame)


def test_a_folder_of_files_takes_the_set_format_and_a_contradicting_extension_is_refused(tmp_path, taxi):
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    trips().to_csv(folder / "part-0.csv", index=False)
    assert len(next(FileSource(path=str(tmp_path / "date={date}"), fmt="csv", contract=taxi).batches(DAY))[1]) == 50
    with pytest.raises(
        ConfigError, match=r"\[source\] format = csv but \[source\] path .*trips_\{date\}\.parquet names a parquet file"
    ):
        FileSource(path=str(tmp_path / "trips_{date}.parquet"), fmt="csv", contract=taxi)
