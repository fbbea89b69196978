"""`batchml init`: the contract inferred from small frames, and the project files it writes."""

from __future__ import annotations

import configparser
import datetime as dt
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchml.base.errors import ConfigError
from batchml.cli import main
from batchml.dataset.contract import Contract, validate
from batchml.project.infer import guess_key, infer_column, infer_contract, observed_range, read_sample, snake_case
from batchml.project.starter import init_project, path_template

TLC = Path(__file__).resolve().parents[1] / "data" / "tlc" / "yellow_tripdata_sample_2018-01.csv.gz"


def orders(n: int = 40) -> pd.DataFrame:
    """A small CSV-like table (values as text) with CamelCase names, a composite key and nulls."""
    rng = np.random.default_rng(0)
    created = pd.Timestamp("2026-06-01 00:30") + pd.to_timedelta(
        np.arange(n) // 4 * 1800, unit="s"
    )  # four orders at a time
    return pd.DataFrame(
        {
            "StoreID": [str(i % 4 + 1) for i in range(n)],
            "OrderNo": [str(i // 4) for i in range(n)],  # unique only with StoreID
            "CreatedAt": [t.strftime("%Y-%m-%d %H:%M:%S") for t in created],
            "ShippedAt": [
                None if i % 5 == 0 else (t + pd.Timedelta(hours=2)).isoformat() for i, t in enumerate(created)
            ],
            "Amount": [f"{v:.2f}" for v in rng.uniform(1.5, 480.25, n)],
            "Channel": [["web", "shop", "phone"][i % 3] for i in range(n)],
            "Gift": [["Y", "N"][i % 2] for i in range(n)],
            "Note": [f"note {i}" for i in range(n)],
            "Coupon": [None] * n,
        }
    )


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with gzip.open(path, "wt") if path.suffix == ".gz" else open(path, "w") as fh:
        frame.to_csv(fh, index=False)
    return path


def test_snake_case_of_camel_case_names():
    assert snake_case("VendorID") == "vendor_id"
    assert snake_case("PULocationID") == "pu_location_id"
    assert snake_case("tpep_pickup_datetime") == "tpep_pickup_datetime"
    assert snake_case("Trip Distance (mi)") == "trip_distance_mi"
    assert snake_case("Airport_fee") == "airport_fee"


def test_camel_case_names_become_snake_case_with_their_source_name():
    inf = infer_contract(orders(), "orders")
    assert [c.name for c in inf.columns][:3] == ["store_id", "order_no", "created_at"]
    assert {c.name: c.source for c in inf.columns}["store_id"] == "StoreID"


def test_dtypes_nulls_ranges_and_allowed_values_from_text():
    inf = infer_contract(orders(), "orders")
    col = {c.name: c for c in inf.columns}
    assert col["store_id"].dtype == "integer" and (col["store_id"].min, col["store_id"].max) == (1, 4)
    assert col["created_at"].dtype == "datetime" and not col["created_at"].nullable
    assert col["shipped_at"].dtype == "datetime" and col["shipped_at"].nullable
    amounts = orders()["Amount"].astype(float)
    assert col["amount"].dtype == "float" and col["amount"].min <= amounts.min() and col["amount"].max >= amounts.max()
    assert (col["amount"].min, col["amount"].max) == observed_range(amounts.min(), amounts.max(), "float")
    assert col["channel"].allowed == ("phone", "shop", "web")
    assert col["gift"].dtype == "boolean"
    assert col["note"].dtype == "string" and col["note"].allowed is None  # free text: 40 distinct of 40
    assert col["coupon"].empty and col["coupon"].nullable


def test_observed_ranges_round_outward():
    assert observed_range(0.3, 48.37, "float") == (0.0, 49.0)
    assert observed_range(-52.0, 400.1, "float") == (-60.0, 410.0)
    assert observed_range(1, 265, "integer") == (1, 265)  # small integers are often codes: exact
    assert observed_range(1234, 98_765, "integer") == (1000, 99_000)


def test_composite_key_prefers_ids_and_is_unique():
    frame = orders()
    inf = infer_contract(frame, "orders")
    assert inf.key == ("store_id", "order_no")
    assert "smallest combination" in inf.key_note


def test_a_unique_id_column_is_the_key():
    frame = pd.DataFrame({"amount": ["1.5", "2.5", "1.5"], "event_id": ["a7", "b3", "c9"], "kind": ["x", "y", "x"]})
    inf = infer_contract(frame, "events")
    assert inf.key == ("event_id",)


def test_duplicated_rows_give_a_key_marked_todo():
    frame = pd.DataFrame({"a": ["1", "1", "2"], "b": ["x", "x", "y"]})
    guesses = [infer_column(frame[c])[0] for c in frame.columns]
    typed = pd.DataFrame({c: infer_column(frame[c])[1] for c in frame.columns})
    key, note = guess_key(typed, guesses, None)
    assert key == ("a", "b") and "TODO" in note and "1 duplicated" in note


def test_timestamp_guess_prefers_start_words_over_end_words():
    frame = pd.DataFrame(
        {
            "updated": ["2026-06-02 10:00", "2026-06-02 11:00"],
            "closed_time": ["2026-06-01 10:30", "2026-06-01 11:30"],
            "created_time": ["2026-06-01 10:00", "2026-06-01 11:00"],
        }
    )
    assert infer_contract(frame, "t").timestamp == "created_time"
    assert (
        infer_contract(frame[["updated", "closed_time"]], "t").timestamp == "closed_time"
    )  # else the least 'end'-like
    assert (
        infer_contract(pd.DataFrame({"a": ["2026-06-01"], "b": ["2026-06-02"]}), "t").timestamp == "a"
    )  # else the first


def test_tz_aware_timestamps_set_the_contract_timezone():
    ts = pd.date_range("2026-06-01 08:00", periods=6, freq="3h", tz="Europe/Paris")
    inf = infer_contract(pd.DataFrame({"event_time": ts, "n": range(6)}), "t")
    assert (inf.timestamp, inf.timezone) == ("event_time", "Europe/Paris")
    text = pd.DataFrame({"event_time": [t.isoformat() for t in ts], "n": [str(i) for i in range(6)]})
    assert infer_contract(text, "t").timezone == "Etc/GMT-2"  # one offset, +02:00, no zone name
    utc = pd.DataFrame({"event_time": ["2026-06-01T10:00:00Z", "2026-06-01T11:00:00+00:00"]})
    assert infer_contract(utc, "t").timezone == "UTC"


def test_text_that_is_not_a_date_stays_text():
    frame = pd.DataFrame({"code": ["2026-06-01x", "2026-06-02"], "n": ["1", "2.5"]})
    col = {c.name: c for c in infer_contract(frame, "t").columns}
    assert col["code"].dtype == "string" and col["n"].dtype == "float"


def test_typed_frames_keep_their_dtypes():
    frame = pd.DataFrame(
        {
            "id": np.arange(5, dtype="int32"),
            "score": [0.5, np.nan, 1.5, 2.0, 3.0],
            "flag": [True, False, True, True, False],
            "when": pd.date_range("2026-06-01", periods=5, freq="h"),
        }
    )
    col = {c.name: c for c in infer_contract(frame, "t").columns}
    assert [col[n].dtype for n in ("id", "score", "flag", "when")] == ["integer", "float", "boolean", "datetime"]
    assert col["score"].nullable and not col["id"].nullable


def test_path_templates_from_the_file_name(tmp_path):
    assert path_template(tmp_path / "yellow_tripdata_sample_2018-01.csv.gz")[0] == str(
        tmp_path / "yellow_tripdata_sample_{year}-{month}.csv.gz"
    )
    assert path_template(tmp_path / "x_2026-06-01.parquet")[0] == str(tmp_path / "x_{date}.parquet")
    assert path_template(tmp_path / "x_20260601.csv")[0] == str(tmp_path / "x_{year}{month}{day}.csv")
    assert path_template(tmp_path / "date=2026-06-01" / "part-0.parquet")[0] == str(tmp_path / "date={date}") + "/"
    template, note = path_template(tmp_path / "export.csv")
    assert template == str(tmp_path / "export.csv") and "TODO" in note


def _sample_first_date_is_valid(project: Path, sample: Path):
    contract = Contract.load(project / "contract.yaml")
    frame = read_sample(sample)
    ts = validate(frame, contract, None, origin=str(sample)).valid[contract.timestamp]
    first = ts.min().date()
    on_first = frame.loc[(ts.dt.date == first).to_numpy()]
    result = validate(on_first, contract, first, origin=str(sample))
    assert result.rejected.empty, result.rejected["reason"].head().tolist()
    assert len(result.valid) == len(on_first) > 0
    return contract, result


def test_the_contract_written_loads_and_accepts_every_row_of_the_sample(tmp_path):
    sample = write_csv(orders(), tmp_path / "orders_2026-06-01.csv.gz")
    init_project(tmp_path / "shop", sample)
    contract, _ = _sample_first_date_is_valid(tmp_path / "shop", sample)
    assert contract.key == ("store_id", "order_no") and contract.timestamp == "created_at"
    assert contract.column("store_id").source == ("StoreID",)
    assert contract.label is None
    whole = validate(read_sample(sample), contract, None, origin=str(sample))
    assert whole.rejected.empty


def test_the_tlc_sample_and_a_camel_case_copy_of_it(tmp_path):
    init_project(tmp_path / "snake", TLC)
    contract, result = _sample_first_date_is_valid(tmp_path / "snake", TLC)
    assert contract.timestamp == "pickup_datetime" and contract.timezone == "UTC"
    assert all(c.source == () for c in contract.columns)
    assert contract.column("congestion_surcharge").nullable  # always empty in the 2018 files

    names = {
        "vendor_id": "VendorID",
        "pickup_datetime": "tpep_pickup_datetime",
        "dropoff_datetime": "tpep_dropoff_datetime",
    }
    names |= {"pickup_location_id": "PULocationID", "dropoff_location_id": "DOLocationID", "rate_code_id": "RatecodeID"}
    camel = read_sample(TLC).rename(columns=names)
    sample = write_csv(camel, tmp_path / "yellow_tripdata_2018-01.csv.gz")
    init_project(tmp_path / "camel", sample)
    contract, camel_result = _sample_first_date_is_valid(tmp_path / "camel", sample)
    assert contract.column("vendor_id").source == ("VendorID",)
    assert contract.column("pu_location_id").source == ("PULocationID",)
    assert contract.column("tpep_pickup_datetime").source == ()  # already snake_case
    assert contract.timestamp == "tpep_pickup_datetime"
    assert len(camel_result.valid) == len(result.valid)


def test_the_project_files(tmp_path):
    sample = write_csv(orders(), tmp_path / "orders_2026-06-01.csv")
    written = init_project(tmp_path / "My Shop", sample, label="Amount", task="regression")
    assert sorted(p.name for p in written) == ["README.md", "contract.yaml", "luigi.cfg", "my_shop_hooks.py"]
    contract = Contract.load(tmp_path / "My Shop" / "contract.yaml")
    assert (contract.label.column, contract.label.task) == ("amount", "regression")
    assert contract.column("amount").nullable  # rows not yet labelled are still scored

    cfg = configparser.ConfigParser()
    cfg.read(tmp_path / "My Shop" / "luigi.cfg")
    assert cfg["source"]["path"] == str(tmp_path / "orders_{date}.csv")
    assert cfg["source"]["format"] == "csv"
    assert cfg["features"]["transform"] == "my_shop_hooks:features"
    assert cfg["labels"]["transform"] == "my_shop_hooks:labels"
    assert cfg["mlflow"]["cold_start"] == "false" and cfg["mlflow"]["tracking_uri"] == "sqlite:///mlflow.db"
    assert "# TODO" in (tmp_path / "My Shop" / "luigi.cfg").read_text()

    spec = importlib.util.spec_from_file_location("my_shop_hooks", tmp_path / "My Shop" / "my_shop_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    rows = validate(read_sample(sample), contract, None, origin="sample").valid
    inputs = hooks.features(rows)
    assert len(inputs) == len(rows)
    assert "amount" not in inputs.columns and "note" not in inputs.columns  # the label, free text
    assert {"store_id", "channel", "gift", "created_at_hour"} <= set(inputs.columns)
    assert inputs["channel"].dtype == object and inputs["store_id"].dtype == "int64"
    assert hooks.labels(rows).equals(rows["amount"])

    from batchml.model.training import TrainingSettings

    frame = inputs.assign(amount=rows["amount"].to_numpy(dtype="float64"))
    settings = TrainingSettings(
        inputs=tuple(inputs.columns), label="amount", task="regression", seed=1, params={"max_iter": 5}
    )
    model = hooks.recipe(frame, settings)
    assert model.predict(inputs).shape == (len(rows),)


def test_labels_stub_raises_with_guidance_until_written(tmp_path):
    sample = write_csv(orders(), tmp_path / "orders_2026-06-01.csv")
    init_project(tmp_path / "p", sample, label="days_to_ship", task="classification")
    contract = Contract.load(tmp_path / "p" / "contract.yaml")
    assert (contract.label.column, contract.label.task) == ("days_to_ship", "classification")
    spec = importlib.util.spec_from_file_location("p_hooks", tmp_path / "p" / "p_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    with pytest.raises(NotImplementedError, match="days_to_ship"):
        hooks.labels(pd.DataFrame())


def test_refuses_a_non_empty_folder_without_force(tmp_path, capsys):
    sample = write_csv(orders(), tmp_path / "orders_2026-06-01.csv")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    assert main(["init", str(tmp_path / "p"), "--sample", str(sample)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "p") in err and "--force" in err
    assert main(["init", str(tmp_path / "p"), "--sample", str(sample), "--force"]) == 0
    assert (tmp_path / "p" / "keep.txt").read_text() == "mine" and (tmp_path / "p" / "contract.yaml").exists()


def test_errors_are_one_line_naming_the_file(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p"), "--sample", str(tmp_path / "missing.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.csv" in err
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    assert main(["init", str(tmp_path / "q"), "--sample", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.parquet" in err
    with pytest.raises(ConfigError, match="--task needs --label"):
        init_project(tmp_path / "r", bad, task="regression")


def test_parquet_sample_with_a_date_folder(tmp_path):
    folder = tmp_path / "raw" / "date=2026-06-01"
    folder.mkdir(parents=True)
    ts = pd.date_range("2026-06-01", periods=24, freq="h", tz="UTC")
    pd.DataFrame({"event_id": np.arange(24), "event_ts": ts, "value": np.linspace(0, 1, 24)}).to_parquet(
        folder / "part-0.parquet"
    )
    init_project(tmp_path / "p", folder / "part-0.parquet")
    cfg = configparser.ConfigParser()
    cfg.read(tmp_path / "p" / "luigi.cfg")
    assert cfg["source"]["path"] == str(tmp_path / "raw" / "date={date}") + "/" and cfg["source"]["format"] == "parquet"
    contract = Contract.load(tmp_path / "p" / "contract.yaml")
    assert (contract.key, contract.timestamp, contract.timezone) == (("event_id",), "event_ts", "UTC")
    frame = pd.read_parquet(folder / "part-0.parquet")
    assert validate(frame, contract, dt.date(2026, 6, 1), origin="x").rejected.empty


# -- messy real samples ------------------------------------------------------------------------


def messy_tlc(path: Path, rows: int = 1500) -> tuple[Path, pd.DataFrame]:
    """The real TLC sample as another export would give it: CamelCase names, New York offsets on every time, and a few
    unparsable pickups."""
    frame = (
        read_sample(TLC)
        .head(rows)
        .rename(columns={"vendor_id": "VendorID", "pickup_datetime": "PickupTime", "dropoff_datetime": "DropoffTime"})
    )
    for col in ("PickupTime", "DropoffTime"):
        frame[col] = frame[col] + "-05:00"  # January in New York
    bad = {3: "N/A", 400: "0000-00-00 00:00:00", 901: "2018-02-30 10:00:00-05:00"}
    for i, value in bad.items():
        frame.loc[i, "PickupTime"] = value
    return write_csv(frame, path), frame


def test_a_messy_sample_finds_the_timestamp_despite_a_few_unparsable_values_and_reads_the_offset_into_the_timezone(
    tmp_path,
):
    sample, frame = messy_tlc(tmp_path / "trips_2018-01.csv")
    init_project(tmp_path / "p", sample)
    contract = Contract.load(tmp_path / "p" / "contract.yaml")
    assert contract.timestamp == "pickup_time" and contract.column("pickup_time").source == ("PickupTime",)
    assert contract.timezone == "Etc/GMT+5"  # POSIX sign: five hours behind UTC, as -05:00
    assert not contract.column("pickup_time").nullable  # an unparsable value is not a null
    text = (tmp_path / "p" / "contract.yaml").read_text()
    assert "3 of 1500 values are not datetimes ('N/A', '0000-00-00 00:00:00', '2018-02-30 10:00:00-05:00')" in text
    checked = validate(read_sample(sample), contract, None, origin=str(sample))
    assert sorted(checked.rejected["pickup_time"]) == sorted(
        ["N/A", "0000-00-00 00:00:00", "2018-02-30 10:00:00-05:00"]
    )  # as the file gave them
    assert checked.rejected["reason"].str.contains("pickup_time").all() and len(checked.valid) == len(frame) - 3
    local = pd.Timestamp(frame.loc[0, "PickupTime"].removesuffix("-05:00"))
    assert checked.valid["pickup_time"].iloc[0] == local  # wall-clock time of the offset's zone


def test_a_column_with_more_than_a_few_unparsable_dates_stays_text():
    values = pd.Series(["2026-06-01 10:00"] * 90 + ["unknown"] * 10, name="seen_at")
    guess, _ = infer_column(values)
    assert guess.dtype == "string"
    few = pd.Series(["2026-06-01 10:00"] * 98 + ["unknown"] * 2, name="seen_at")
    assert infer_column(few)[0].dtype == "datetime"


def test_a_parquet_sample_with_a_fixed_offset_and_one_with_daylight_saving_offsets(tmp_path):
    ts = pd.to_datetime(["2026-06-01T10:00:00+02:00", "2026-06-02T11:00:00+02:00"])  # pyarrow writes the zone as +02:00
    pd.DataFrame({"event_time": ts, "n": [1, 2]}).to_parquet(tmp_path / "events.parquet")
    assert infer_contract(read_sample(tmp_path / "events.parquet"), "t").timezone == "Etc/GMT-2"
    shifting = pd.DataFrame({"event_time": ["2026-03-28T10:00:00+01:00", "2026-03-30T11:30:00+02:00"], "n": ["1", "2"]})
    inf = infer_contract(shifting, "t")
    assert inf.timezone == "UTC" and inf.timezone_note.startswith(
        "TODO: the sample's times carry several offsets (+01:00, +02:00"
    )


def test_a_classification_label_gets_its_classes_and_a_text_label_is_a_classification(tmp_path):
    sample, _ = messy_tlc(tmp_path / "trips_2018-01.csv", rows=400)
    init_project(tmp_path / "pay", sample, label="payment_type", task="classification")
    label = Contract.load(tmp_path / "pay" / "contract.yaml").label
    assert (label.column, label.task) == ("payment_type", "classification")
    assert list(label.classes) == sorted(int(v) for v in read_sample(sample)["payment_type"].dropna().unique())
    init_project(
        tmp_path / "flag", sample, label="store_and_fwd_flag"
    )  # Y/N text, read as a boolean: no regression on it
    label = Contract.load(tmp_path / "flag" / "contract.yaml").label
    assert set(read_sample(sample)["store_and_fwd_flag"].dropna()) == {"N"}  # the sample shows one of the two
    assert (label.task, label.classes) == ("classification", (False, True))
    frame = read_sample(sample).rename(columns={"store_and_fwd_flag": "Outcome"})
    frame["Outcome"] = [["stay", "upgrade", "churn"][i % 3] for i in range(len(frame))]
    init_project(tmp_path / "text", write_csv(frame, tmp_path / "text_2018-01.csv"), label="Outcome")
    label = Contract.load(tmp_path / "text" / "contract.yaml").label
    assert (label.column, label.task, label.classes) == ("outcome", "classification", ("churn", "stay", "upgrade"))


def test_a_label_the_sample_does_not_hold_keeps_its_name_as_given(tmp_path):
    sample, _ = messy_tlc(tmp_path / "trips_2018-01.csv", rows=200)
    init_project(tmp_path / "p", sample, label="TripDurationS")  # as the labels feed writes it
    contract = Contract.load(tmp_path / "p" / "contract.yaml")
    assert contract.label.column == "TripDurationS" and contract.label.task == "regression"
    assert (
        "raise NotImplementedError" in (tmp_path / "p" / "p_hooks.py").read_text()
        and "TripDurationS" in (tmp_path / "p" / "p_hooks.py").read_text()
    )
