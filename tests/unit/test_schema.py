import datetime as dt

import numpy as np
import pandas as pd
import pytest

from batchml import synthetic
from batchml.errors import SchemaError
from batchml.schema import Schema, top_reasons, validate
from tests.conftest import SCHEMA

DAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def schema():
    return Schema.load(SCHEMA)


def clean(n=50) -> pd.DataFrame:
    return next(synthetic.trips(DAY, rows=n, seed=1)).drop(columns="trip_duration_s")


def test_clean_rows_all_pass_with_contract_dtypes(schema):
    out = validate(clean(), schema, DAY, origin="t")
    assert len(out.valid) == 50 and len(out.rejected) == 0
    assert str(out.valid["pickup_zone"].dtype) == "int64"
    assert str(out.valid["pickup_datetime"].dtype) == "datetime64[us]"


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("passenger_count", 0, "passenger_count: below minimum 1"),
        ("pickup_zone", 300, "pickup_zone: above maximum 265"),
        ("vendor_id", 7, "vendor_id: not in [1, 2]"),
        ("dropoff_zone", None, "dropoff_zone: is null"),
        ("trip_distance", "abc", "trip_distance: 'abc' is not a valid float64"),
        ("passenger_count", 1.5, "passenger_count: '1.5' is not a valid int64"),
        ("pickup_datetime", pd.Timestamp("2026-03-03 00:00:01"), "pickup_datetime: not on 2026-03-02"),
    ],
)
def test_each_rule_rejects_the_row_with_its_reason(schema, column, value, reason):
    frame = clean()
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = value
    out = validate(frame, schema, DAY, origin="t")
    assert len(out.valid) == 49 and len(out.rejected) == 1
    assert out.rejected["reason"].iloc[0] == reason
    assert out.rejected["trip_id"].iloc[0] == frame["trip_id"].iloc[3]


def test_a_row_breaking_two_rules_lists_both(schema):
    frame = clean()
    frame.loc[0, "passenger_count"] = 9
    frame.loc[0, "vendor_id"] = 5
    out = validate(frame, schema, DAY, origin="t")
    assert out.rejected["reason"].iloc[0] == "passenger_count: above maximum 6; vendor_id: not in [1, 2]"


def test_duplicate_keys_keep_the_first_and_respect_earlier_batches(schema):
    frame = clean()
    frame.loc[5, "trip_id"] = frame.loc[4, "trip_id"]
    out = validate(frame, schema, DAY, origin="t", seen_keys=frame["trip_id"].to_numpy()[:1])
    assert sorted(out.rejected["reason"]) == ["trip_id: duplicate", "trip_id: duplicate"]
    assert set(out.rejected["trip_id"]) == {frame.loc[0, "trip_id"], frame.loc[4, "trip_id"]}
    assert out.rows_in == 50


def test_missing_column_names_the_origin_and_the_column(schema):
    with pytest.raises(SchemaError, match=r"trips_2026-03-02\.csv: missing required column\(s\) vendor_id"):
        validate(clean().drop(columns="vendor_id"), schema, DAY, origin="trips_2026-03-02.csv")


def test_top_reasons_count_each_rule():
    reasons = pd.Series(["a: x", "a: x; b: y", "b: y", "b: y"], dtype="string")
    assert top_reasons(reasons) == [("b: y", 3), ("a: x", 2)]


def test_unknown_dtype_in_contract_is_refused(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("dataset: t\nkey: id\ncolumns:\n  id: {dtype: int32}\n")
    with pytest.raises(SchemaError, match="int32"):
        Schema.load(bad)


def test_fingerprint_changes_with_a_rule(schema, tmp_path):
    text = SCHEMA.read_text().replace("max: 6", "max: 7")
    (tmp_path / "s.yaml").write_text(text)
    assert Schema.load(tmp_path / "s.yaml").fingerprint() != schema.fingerprint()


def test_validation_of_synthetic_bad_rows_matches_injected_share(schema):
    frame = next(synthetic.trips(DAY, rows=20000, seed=2, bad_row_share=0.01)).drop(columns="trip_duration_s")
    out = validate(frame, schema, DAY, origin="t")
    assert 120 < len(out.rejected) < 280
    assert np.isin(out.valid["trip_id"], out.rejected["trip_id"]).sum() == 0
