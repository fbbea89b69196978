"""Sources as users point them at their data: per-date and monthly files, real TLC records, SQL, generators."""

import datetime as dt
import gzip
import shutil

import pandas as pd
import pytest
import sqlalchemy

from batchml.base.errors import ConfigError, HookError, IncompleteInput, MissingInput, SchemaError
from batchml.dataset.contract import Contract, validate
from batchml.dataset.sources import FileSource, GeneratorSource, SqlSource, expand
from tests.conftest import CONTRACT, REPO

DAY = dt.date(2026, 2, 3)
TLC = REPO / "tests" / "data" / "tlc"
CAMEL = {
    "vendor_id": "VendorID",
    "pickup_datetime": "tpep_pickup_datetime",
    "dropoff_datetime": "tpep_dropoff_datetime",
    "rate_code_id": "RatecodeID",
    "pickup_location_id": "PULocationID",
    "dropoff_location_id": "DOLocationID",
}


@pytest.fixture(scope="module")
def taxi() -> Contract:
    return Contract.load(CONTRACT)


def trips(n=200, date=DAY) -> pd.DataFrame:
    from taxi_synthetic import trips as generate

    return next(generate(date, rows_per_day=n, seed=9))


def test_path_templates_take_iso_dates_parts_and_strftime_fields():
    d = dt.date(2018, 1, 9)
    assert expand("/x/{date}/y", d) == "/x/2018-01-09/y"
    assert expand("tripdata_{year}-{month}.parquet", d) == "tripdata_2018-01.parquet"
    assert expand("tripdata_{date:%Y-%m}.csv.gz", d) == "tripdata_2018-01.csv.gz"
    assert expand("{year}/{month}/{day}", d) == "2018/01/09"


def test_parquet_folder_per_date_with_a_labels_feed(tmp_path, taxi):
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    frame = trips()
    frame.iloc[:120].to_parquet(folder / "a.parquet")
    frame.iloc[120:].to_parquet(folder / "b.parquet")
    (folder / "notes.txt").write_text("ignored")
    labels = frame[list(taxi.key)].assign(trip_duration_s=1.0)
    labels.to_parquet(tmp_path / f"labels_{DAY}.parquet")
    src = FileSource(
        path=str(tmp_path / "date={date}"), labels_path=str(tmp_path / "labels_{date}.parquet"), contract=taxi
    )
    assert src.exists(DAY) and not src.exists(DAY + dt.timedelta(days=1))
    batches = list(src.batches(DAY))
    assert [o.rsplit("/", 1)[-1] for o, _ in batches] == ["a.parquet", "b.parquet"]
    assert sum(len(b) for _, b in batches) == 200
    got = src.labels(DAY)
    assert list(got.columns) == [*taxi.key, "trip_duration_s"] and len(got) == 200
    assert src.has_labels(DAY) and not src.has_labels(DAY + dt.timedelta(days=1))


def test_a_real_monthly_tlc_file_gives_each_date_its_rows_and_no_other(tmp_path, taxi):
    shutil.copy(TLC / "yellow_tripdata_sample_2018-01.csv.gz", tmp_path)
    src = FileSource(path=str(tmp_path / "yellow_tripdata_sample_{year}-{month}.csv.gz"), fmt="csv", contract=taxi)
    month = pd.read_csv(TLC / "yellow_tripdata_sample_2018-01.csv.gz", dtype=str)
    local_day = pd.to_datetime(month["pickup_datetime"]).dt.date
    total = 0
    for day in (dt.date(2018, 1, 1), dt.date(2018, 1, 15), dt.date(2018, 1, 31)):
        assert src.holds_many_dates(day)
        ((origin, frame),) = list(src.batches(day))
        assert origin.endswith("yellow_tripdata_sample_2018-01.csv.gz")
        assert len(frame) == (local_day == day).sum() > 250  # a low-volume table: ~330 trips a day
        out = validate(frame, taxi, day, origin=origin)
        assert not out.rejected["reason"].str.contains("not on").any()  # other dates' rows are not quarantined
        assert (
            out.rejected["reason"].str.contains("passenger_count: below minimum 1|trip_distance: below minimum").any()
            or len(out.rejected) == 0
        )
        total += len(frame)
    assert set(frame.columns) <= set(taxi.names)  # unused columns (fares, surcharges) are not read
    assert src.fingerprint(dt.date(2018, 1, 2)) != src.fingerprint(dt.date(2018, 1, 3))


def test_camelcase_parquet_month_is_read_through_source_names_with_a_pushed_down_day_filter(tmp_path, taxi):
    month = pd.read_csv(TLC / "yellow_tripdata_sample_2018-02.csv.gz")
    for c in ("pickup_datetime", "dropoff_datetime"):
        month[c] = (
            pd.to_datetime(month[c])
            .dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT")
            .dt.tz_convert("UTC")
        )
    month = month.rename(columns=CAMEL).sort_values("tpep_pickup_datetime")
    month.loc[month.index[:3], "passenger_count"] = None  # recent years: nulls where the meter did not record
    month.to_parquet(tmp_path / "yellow_tripdata_2018-02.parquet", row_group_size=500)
    src = FileSource(path=str(tmp_path / "yellow_tripdata_{date:%Y-%m}.parquet"), contract=taxi)
    day = dt.date(2018, 2, 14)
    ((_, frame),) = list(src.batches(day))
    expected = month["tpep_pickup_datetime"].dt.tz_convert("America/New_York").dt.date == day
    assert len(frame) == expected.sum()
    assert "VendorID" in frame.columns and "fare_amount" not in frame.columns
    out = validate(frame, taxi, day, origin="f")
    assert out.rows_in == len(frame) and (out.valid["pickup_datetime"].dt.date == day).all()
    assert str(out.valid["pickup_datetime"].dtype) == "datetime64[us]"
    schema_filter = src._day_filter(
        __import__("pyarrow.parquet", fromlist=["x"]).read_schema(tmp_path / "yellow_tripdata_2018-02.parquet"), day
    )
    assert schema_filter and schema_filter[0][0] == "tpep_pickup_datetime"


def test_csv_file_per_date_and_missing_date(tmp_path, taxi):
    trips().to_csv(tmp_path / f"trips_{DAY}.csv", index=False)
    src = FileSource(path=str(tmp_path / "trips_{date}.csv"), fmt="csv", contract=taxi)
    assert not src.holds_many_dates(DAY)
    ((_, batch),) = list(src.batches(DAY))
    assert len(batch) == 200
    with pytest.raises(MissingInput, match="no csv files for 2026-02-04"):
        list(src.batches(DAY + dt.timedelta(days=1)))


def test_a_latin1_byte_in_an_unused_column_does_not_fail_the_file(tmp_path, taxi):
    text = trips(20).assign(note="ok").to_csv(index=False).replace(",ok\n", ",caf\xe9\n", 3)
    with gzip.open(tmp_path / f"trips_{DAY}.csv.gz", "wb") as fh:
        fh.write(text.encode("latin-1"))
    src = FileSource(path=str(tmp_path / "trips_{date}.csv.gz"), fmt="csv", contract=taxi)
    ((_, batch),) = list(src.batches(DAY))
    out = validate(batch, taxi, DAY, origin="f")
    assert len(batch) == 20 and len(out.rejected) == 0


def test_unreadable_file_is_named(tmp_path, taxi):
    (tmp_path / f"trips_{DAY}.parquet").write_bytes(b"not parquet at all")
    src = FileSource(path=str(tmp_path / "trips_{date}.parquet"), contract=taxi)
    with pytest.raises(SchemaError, match=rf"trips_{DAY}\.parquet: cannot be read as parquet"):
        list(src.batches(DAY))


def test_path_without_date_field_is_refused(taxi):
    with pytest.raises(ConfigError, match=r"\{date\}"):
        FileSource(path="/data/trips.parquet", contract=taxi)


def test_generator_source_names_its_hook_when_it_raises():
    src = GeneratorSource(generator="taxi_hooks:trips", options={"rows_per_day": 10, "seed": 1})
    ((origin, frame),) = list(src.batches(DAY))
    assert origin.startswith("taxi_hooks:trips") and len(frame) == 10
    broken = GeneratorSource(generator="taxi_hooks:trips", options={"rows": 10})
    with pytest.raises(HookError, match=r"\[source\] generator = taxi_hooks:trips raised TypeError"):
        list(broken.batches(DAY))
    with pytest.raises(HookError, match="cannot import 'no_such_module'"):
        list(GeneratorSource(generator="no_such_module:f", options={}).batches(DAY))


def test_sql_query_binds_the_date_and_labels_join_on_the_composite_key(tmp_path, taxi):
    url = f"sqlite:///{tmp_path / 'trips.db'}"
    engine = sqlalchemy.create_engine(url)
    both = pd.concat([trips(150), trips(80, DAY + dt.timedelta(days=1))])
    both.to_sql("trips", engine, index=False)
    both[list(taxi.key)].assign(trip_duration_s=7.0, day=both["pickup_datetime"].dt.date.astype(str)).to_sql(
        "labels", engine, index=False
    )
    src = SqlSource(
        url=url,
        query="SELECT * FROM trips WHERE date(pickup_datetime) = :date",
        labels_query="SELECT * FROM labels WHERE day = :date",
        contract=taxi,
        chunk_rows=100,
    )
    assert src.exists(DAY) and not src.exists(DAY + dt.timedelta(days=5))
    batches = list(src.batches(DAY))
    assert [len(b) for _, b in batches] == [100, 50]
    assert sum(len(validate(b, taxi, DAY, origin=o).valid) for o, b in batches) == 150
    labels = src.labels(DAY + dt.timedelta(days=1))
    assert len(labels) == 80 and str(labels["pickup_datetime"].dtype) == "datetime64[us]"
    assert src.has_labels(DAY) and not src.has_labels(DAY + dt.timedelta(days=5))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_without_a_row_of_the_date_is_missing_data_until_its_rows_arrive(tmp_path, taxi, fmt):
    path = tmp_path / f"trips_{DAY}.{fmt}"
    empty = trips().iloc[:0]
    empty.to_csv(path, index=False) if fmt == "csv" else empty.to_parquet(path)
    src = FileSource(path=str(tmp_path / f"trips_{{date}}.{fmt}"), fmt=fmt, contract=taxi)
    assert not src.exists(DAY)  # a header-only CSV, a Parquet schema with 0 rows
    trips().to_csv(path, index=False) if fmt == "csv" else trips().to_parquet(path)
    assert src.exists(DAY)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_0_byte_file_beside_good_files_is_read_as_no_rows_like_a_header_only_one(tmp_path, taxi, fmt):
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    (folder / f"a.{fmt}").write_bytes(b"")  # a writer that created its file and died
    src = FileSource(path=str(tmp_path / "date={date}/"), fmt=fmt, contract=taxi)
    assert not src.exists(DAY)  # alone, it is no data yet
    good = trips(120)
    good.to_csv(folder / f"b.{fmt}", index=False) if fmt == "csv" else good.to_parquet(folder / f"b.{fmt}")
    assert src.exists(DAY)
    batches = list(src.batches(DAY))
    assert [(o.rsplit("/", 1)[1], len(b)) for o, b in batches] == [(f"a.{fmt}", 0), (f"b.{fmt}", 120)]
    assert sum(len(validate(b, taxi, DAY, origin=o).valid) for o, b in batches) == 120


def test_a_monthly_parquet_file_exists_only_for_the_dates_it_holds_rows_of(tmp_path, taxi):
    frame = trips(50)
    frame.to_parquet(tmp_path / "trips_2026-02.parquet")
    src = FileSource(path=str(tmp_path / "trips_{date:%Y-%m}.parquet"), contract=taxi)
    assert src.exists(DAY) and not src.exists(DAY + dt.timedelta(days=5))


def cut_csv(path, rows=5000, keep=2500):
    """A CSV of `rows` trips cut in the middle of row `keep + 1`, as a copy interrupted mid-write leaves it."""
    text = trips(rows).to_csv(index=False)
    lines = text.splitlines(keepends=True)
    head = "".join(lines[: keep + 1])
    path.write_text(head + lines[keep + 1][: len(lines[keep + 1]) // 3])
    return len(lines[0].split(","))


def test_a_csv_cut_mid_row_fails_its_date_naming_the_file(tmp_path, taxi):
    fields = cut_csv(tmp_path / f"trips_{DAY}.csv")
    src = FileSource(path=str(tmp_path / "trips_{date}.csv"), fmt="csv", contract=taxi)
    with pytest.raises(
        IncompleteInput,
        match=rf"trips_{DAY}\.csv: the last line is cut \(\d of {fields} fields\); the file looks incomplete",
    ):
        list(src.batches(DAY))


def test_a_csv_without_a_final_line_break_but_whole_rows_is_read(tmp_path, taxi):
    (tmp_path / f"trips_{DAY}.csv").write_text(trips(20).to_csv(index=False).rstrip("\n"))
    ((_, batch),) = FileSource(path=str(tmp_path / "trips_{date}.csv"), fmt="csv", contract=taxi).batches(DAY)
    assert len(batch) == 20


def test_with_a_marker_a_date_exists_once_its_marker_does_and_holds_the_rows_it_states(tmp_path, taxi):
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    trips(300).to_parquet(folder / "part-0.parquet")
    src = FileSource(path=str(tmp_path / "date={date}"), contract=taxi, complete_marker="_SUCCESS")
    assert not src.exists(DAY)  # the files are there, the writer has not finished
    with pytest.raises(MissingInput, match="_SUCCESS: the completeness marker is not there yet"):
        list(src.batches(DAY))
    (folder / "_SUCCESS").write_text("")
    assert src.exists(DAY) and sum(len(b) for _, b in src.batches(DAY)) == 300
    (folder / "_SUCCESS").write_text("600\n")
    with pytest.raises(
        IncompleteInput, match=r"_SUCCESS: states 600 rows, but .*part-0\.parquet hold 300; the date looks incomplete"
    ):
        list(src.batches(DAY))


def test_a_marker_template_names_a_file_beside_per_date_files(tmp_path, taxi):
    trips(40).to_csv(tmp_path / f"trips_{DAY}.csv", index=False)
    src = FileSource(path=str(tmp_path / "trips_{date}.csv"), fmt="csv", contract=taxi, complete_marker="{date}.done")
    assert src.marker(DAY) == str(tmp_path / f"{DAY}.done") and not src.exists(DAY)
    (tmp_path / f"{DAY}.done").write_text("40")
    assert src.exists(DAY) and sum(len(b) for _, b in src.batches(DAY)) == 40


def test_a_large_parquet_file_of_one_date_comes_in_batches_with_every_row_and_type_of_a_whole_read(
    tmp_path, taxi, monkeypatch
):
    """A date's file is handed over in batches (the extraction validates one while it reads the next, and never holds
    the file whole), and the batches together are the file: same rows in order, same columns and types, a nullable
    integer column null in one batch only still Int64 in every batch."""
    import batchml.dataset.sources as sources

    frame = trips(1000)
    frame.loc[frame.index[700:705], "dropoff_location_id"] = pd.NA  # nulls in the third batch only
    frame.to_parquet(tmp_path / f"{DAY}.parquet", row_group_size=300)
    src = FileSource(path=str(tmp_path / "{date}.parquet"), contract=taxi)
    whole = pd.read_parquet(tmp_path / f"{DAY}.parquet", columns=taxi.read_columns(frame.columns))
    monkeypatch.setattr(sources, "FILE_BATCH_ROWS", 256)

    batches = list(src.batches(DAY))

    assert [len(b) for _, b in batches] == [256, 256, 256, 232]
    assert {o for o, _ in batches} == {f"file://{tmp_path}/{DAY}.parquet"}
    assert all(str(b["dropoff_location_id"].dtype) == "Int64" for _, b in batches)
    pd.testing.assert_frame_equal(pd.concat([b for _, b in batches], ignore_index=True), whole)


def test_a_parquet_file_of_no_rows_is_one_empty_batch_and_a_broken_one_is_named(tmp_path, taxi):
    trips(10).iloc[:0].to_parquet(tmp_path / f"{DAY}.parquet")
    src = FileSource(path=str(tmp_path / "{date}.parquet"), contract=taxi)
    ((_, empty),) = list(src.batches(DAY))
    assert len(empty) == 0 and set(empty.columns) <= set(taxi.names)

    (tmp_path / f"{DAY}.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    with pytest.raises(SchemaError, match=rf"{DAY}\.parquet: cannot be read as parquet"):
        list(src.batches(DAY))


def test_a_large_csv_file_of_one_date_comes_in_batches_of_its_text_and_a_cut_last_line_still_fails_it(
    tmp_path, taxi, monkeypatch
):
    import batchml.dataset.sources as sources

    path = tmp_path / f"trips_{DAY}.csv"
    trips(1000).to_csv(path, index=False)
    src = FileSource(path=str(tmp_path / "trips_{date}.csv"), contract=taxi)
    whole = src._read(str(path), None)
    monkeypatch.setattr(sources, "FILE_BATCH_ROWS", 256)

    batches = [b for _, b in src.batches(DAY)]

    assert [len(b) for b in batches] == [256, 256, 256, 232]
    assert all(str(t) == "object" for b in batches for t in b.dtypes)  # text, exactly as written
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), whole)
    with open(path, "rb+") as fh:  # the last line cut short, after three whole batches
        fh.truncate(path.stat().st_size - 40)
    with pytest.raises(IncompleteInput, match=rf"trips_{DAY}\.csv: the last line is cut"):
        list(src.batches(DAY))
