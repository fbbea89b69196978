"""The dataset contract: loading, and validation of rows as real files give them."""

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from batchml.base.errors import SchemaError
from batchml.dataset.contract import Contract, _already_seen, add_keys, top_reasons, validate

DAY = dt.date(2026, 6, 10)
ORDERS = {
    "dataset": "orders",
    "key": ["store", "order_no"],
    "timestamp": "ordered_at",
    "columns": {
        "store": {"dtype": "string", "nullable": False, "allowed": ["north", "south"], "source": "StoreCode"},
        "order_no": {"dtype": "integer", "nullable": False, "source": ["OrderNo", "order_number"]},
        "ordered_at": {"dtype": "datetime", "nullable": False},
        "amount": {"dtype": "float", "min": 0},
        "items": {"dtype": "integer", "min": 1, "max": 50},
        "express": {"dtype": "boolean"},
    },
    "label": {"column": "returned", "task": "classification", "classes": [0, 1]},
}


@pytest.fixture
def contract() -> Contract:
    return Contract.from_dict(ORDERS, path="orders.yaml")


def csv(text: str) -> pd.DataFrame:
    """A CSV as batchml's file source reads it: text exactly as written, bad bytes marked."""
    return pd.read_csv(
        io.BytesIO(text.encode("latin-1")),
        dtype=object,
        encoding_errors="surrogateescape",
        keep_default_na=False,
        na_values=[""],
    )


GOOD = "StoreCode,OrderNo,ordered_at,amount,items,express,unused\n" + "\n".join(
    f"{'north' if i % 2 else 'south'},{i},2026-06-10 "
    f"{i % 24:02d}:15:00,{i * 1.5},{i % 9 + 1},{'true' if i % 3 else 'false'},x"
    for i in range(1, 41)
)


def test_clean_rows_pass_with_source_names_mapped_and_contract_dtypes(contract):
    out = validate(csv(GOOD), contract, DAY, origin="orders.csv")
    assert len(out.valid) == 40 and len(out.rejected) == 0
    assert list(out.valid.columns) == ["store", "order_no", "ordered_at", "amount", "items", "express"]
    assert {c: str(t) for c, t in out.valid.dtypes.items()} == {
        "store": "string",
        "order_no": "int64",
        "ordered_at": "datetime64[us]",
        "amount": "float64",
        "items": "Int64",
        "express": "boolean",
    }


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("store", "east", "store: not in ['north', 'south']"),
        ("items", "0", "items: below minimum 1"),
        ("items", "51", "items: above maximum 50"),
        ("amount", "abc", "amount: 'abc' is not a valid float"),
        ("items", "1.5", "items: '1.5' is not a valid integer (or outside the 64-bit signed range)"),
        ("express", "maybe", "express: 'maybe' is not a valid boolean"),
        ("order_no", "", "order_no: is null"),
        ("ordered_at", "2026-06-11 00:00:01", "ordered_at: not on 2026-06-10 (UTC)"),
    ],
)
def test_each_rule_rejects_the_row_keeping_its_raw_values(contract, column, value, reason):
    frame = csv(GOOD).rename(columns={"StoreCode": "store", "OrderNo": "order_no"})
    frame.loc[3, column] = value if value != "" else None
    out = validate(frame, contract, DAY, origin="t")
    assert len(out.valid) == 39 and len(out.rejected) == 1
    assert out.rejected["reason"].iloc[0] == reason
    raw = out.rejected.iloc[0]
    for name in ("store", "order_no", "amount", "items"):
        assert (pd.isna(raw[name]) and pd.isna(frame.loc[3, name])) or raw[name] == frame.loc[3, name]


def test_quarantined_text_is_the_source_text_not_a_coerced_null(contract):
    frame = csv(GOOD)
    frame.loc[0, "items"] = "a very long value that is certainly not a number of items at all"
    out = validate(frame, contract, DAY, origin="t")
    assert out.rejected["items"].iloc[0] == frame.loc[0, "items"]
    assert frame.loc[0, "items"] in out.rejected["reason"].iloc[0]  # the reason is not cut short


def test_composite_key_duplicates_across_batches_and_within(contract):
    frame = csv(GOOD)
    first = validate(frame.iloc[:10], contract, DAY, origin="a")
    seen = add_keys(np.empty(0, dtype="uint64"), first.key_hashes)  # the date so far, as extraction keeps it
    again = frame.iloc[5:15].copy()
    again.loc[again.index[-1], "OrderNo"] = again.iloc[-2]["OrderNo"]  # same store? differs: rows alternate stores
    again.loc[again.index[-1], "StoreCode"] = again.iloc[-2]["StoreCode"]
    out = validate(again, contract, DAY, origin="b", seen_keys=seen)
    assert out.rejected["reason"].str.startswith("key (store, order_no): duplicate").sum() == 6
    # the same order number in the other store is another key
    other = frame.iloc[:1].copy()
    other["StoreCode"] = "south" if other["StoreCode"].iloc[0] == "north" else "north"
    assert len(validate(other, contract, DAY, origin="c", seen_keys=seen).valid) == 1


def test_a_batch_is_checked_against_every_key_the_date_has_so_far():
    rng = np.random.default_rng(3)
    seen = np.empty(0, dtype="uint64")
    batches = [rng.integers(0, 2**63, 1000, dtype=np.int64).astype("uint64") for _ in range(4)]
    for batch in batches:
        seen = add_keys(seen, batch)
    probe = np.concatenate(
        [batches[0][:5], batches[3][-5:], rng.integers(0, 2**63, 5, dtype=np.int64).astype("uint64"), [0, 2**64 - 1]]
    ).astype("uint64")
    order = np.argsort(probe, kind="stable")
    found = _already_seen(probe[order], order, seen)
    np.testing.assert_array_equal(found, np.isin(probe, np.concatenate(batches)))


def test_a_batchs_valid_key_hashes_come_sorted_so_that_adding_them_to_the_date_is_a_merge(contract):
    frame = csv(GOOD)
    frame.loc[3, "amount"] = "not a number"  # one rejected row: its hash is not among the valid rows'
    out = validate(frame, contract, DAY, origin="t")

    assert len(out.key_hashes) == len(out.valid) == len(frame) - 1
    assert (out.key_hashes[1:] >= out.key_hashes[:-1]).all()
    np.testing.assert_array_equal(
        out.key_hashes, np.sort(validate(frame.drop(index=3), contract, DAY, origin="t").key_hashes)
    )


def test_integers_beyond_int64_are_quarantined_and_never_changed(contract):
    frame = csv(GOOD)
    frame.loc[0:9, "OrderNo"] = "99999999999999999999"
    frame.loc[10, "OrderNo"] = "9223372036854775808"
    frame.loc[11, "OrderNo"] = "9007199254740993"  # above 2**53: exact as text
    out = validate(frame, contract, DAY, origin="orders.csv")
    assert len(out.rejected) == 11
    assert set(out.rejected["order_no"]) == {"99999999999999999999", "9223372036854775808"}
    assert out.rejected["reason"].str.contains("order_no: .* outside the 64-bit signed range").all()
    assert 9007199254740993 in set(out.valid["order_no"])
    assert -9223372036854775808 not in set(out.valid["order_no"])


def test_integer_keys_read_as_float_beyond_2_53_are_refused_not_rounded(contract):
    frame = csv(GOOD).rename(columns={"StoreCode": "store", "OrderNo": "order_no"})
    frame["order_no"] = frame["order_no"].astype("float64")
    frame.loc[0, "order_no"] = 2.0**60
    frame.loc[1, "order_no"] = 1e20
    out = validate(frame, contract, DAY, origin="t")
    assert len(out.rejected) == 2 and out.rejected["reason"].str.startswith("order_no:").all()


def test_timezone_aware_and_mixed_iso_timestamps_are_normalised(contract):
    frame = csv(GOOD)
    frame.loc[0, "ordered_at"] = "2026-06-10T11:00:00"
    frame.loc[1, "ordered_at"] = "2026-06-10T11:00:00+02:00"
    frame.loc[2, "ordered_at"] = "2026-06-10 23:30:00Z"
    frame.loc[3, "ordered_at"] = "2026-06-10T23:30:00-04:00"  # 03:30 UTC on the next day
    out = validate(frame, contract, DAY, origin="t")
    by_no = out.valid.set_index("order_no")["ordered_at"]
    assert by_no[1] == pd.Timestamp("2026-06-10 11:00") and by_no[2] == pd.Timestamp("2026-06-10 09:00")
    assert by_no[3] == pd.Timestamp("2026-06-10 23:30")
    assert list(out.rejected["reason"]) == ["ordered_at: not on 2026-06-10 (UTC)"]


def test_parquet_timestamps_with_a_timezone_and_a_contract_timezone():
    local = Contract.from_dict({**ORDERS, "timezone": "America/New_York"})
    frame = csv(GOOD).rename(columns={"StoreCode": "store", "OrderNo": "order_no"})
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"]).dt.tz_localize("UTC")  # 01:15 .. 23:15 UTC
    out = validate(frame, local, DAY, origin="t")
    assert (out.valid["ordered_at"].dt.date == DAY).all()
    assert (
        out.rejected["reason"].str.contains(r"not on 2026-06-10 \(America/New_York\)").all() and len(out.rejected) > 0
    )
    assert out.rows_in == 40


def test_a_bad_byte_quarantines_its_row_naming_the_column_and_unused_columns_are_not_decoded(contract):
    text = GOOD.replace("north,3,", "nor\xe9h,3,").replace(",x\n", ",caf\xe9\n", 5)
    out = validate(csv(text), contract, DAY, origin="orders.csv")
    assert len(out.rejected) == 1
    assert out.rejected["reason"].iloc[0] == "store: 'nor\\\\xe9h' is not valid text in the source's encoding"
    assert out.rejected["store"].iloc[0] == "nor\\xe9h"


def test_missing_column_names_the_origin_the_column_and_its_source_names(contract):
    with pytest.raises(
        SchemaError,
        match=r"orders_2026-06-10\.csv: missing required column\(s\) order_no \(source name OrderNo or order_number\)",
    ):
        validate(csv(GOOD).drop(columns="OrderNo"), contract, DAY, origin="orders_2026-06-10.csv")


def test_a_row_breaking_two_rules_lists_both(contract):
    frame = csv(GOOD)
    frame.loc[0, "items"] = "99"
    frame.loc[0, "StoreCode"] = "west"
    out = validate(frame, contract, DAY, origin="t")
    assert out.rejected["reason"].iloc[0] == "store: not in ['north', 'south']; items: above maximum 50"


def test_top_reasons_count_each_rule():
    reasons = pd.Series(["a: x", "a: x; b: y", "b: y", "b: y"], dtype="string")
    assert top_reasons(reasons) == [("b: y", 3), ("a: x", 2)]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"columns": {"id": {"dtype": "int32"}}, "key": "id"}, "dtype 'int32'"),
        ({"key": "order_id"}, "key column 'order_id' is not among the columns; did you mean 'order_no'"),
        ({"timestamp": "amount"}, "timestamp 'amount' must name a datetime column"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus'"),
        ({"label": {"column": "y", "task": "ranking"}}, "label task 'ranking'"),
        (
            {"columns": {**ORDERS["columns"], "items": {"dtype": "integer", "maximum": 5}}},
            "column 'items' has an unknown field 'maximum'; did you mean 'max'",
        ),
        ({"lable": {"column": "y"}}, "unknown field 'lable'; did you mean 'label'"),
    ],
)
def test_a_wrong_contract_is_refused_naming_file_and_field(change, message):
    with pytest.raises(SchemaError, match="orders.yaml: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        Contract.from_dict({**ORDERS, **change}, path="orders.yaml")


def test_fingerprint_changes_with_a_rule(contract):
    changed = {**ORDERS, "columns": {**ORDERS["columns"], "items": {"dtype": "integer", "min": 1, "max": 51}}}
    assert Contract.from_dict(changed).fingerprint() != contract.fingerprint()


def test_the_taxi_example_contract_validates_its_generator(tmp_path):
    from taxi_synthetic import trips

    from tests.conftest import CONTRACT

    taxi = Contract.load(CONTRACT)
    frame = next(trips(DAY, rows_per_day=20000, seed=2, bad_row_share=0.01))
    out = validate(frame, taxi, DAY, origin="t")
    assert 120 < len(out.rejected) < 280
    assert taxi.key == ("vendor_id", "pickup_datetime", "dropoff_datetime", "pickup_location_id", "dropoff_location_id")
    assert not np.isin(out.key_hashes, validate(frame.iloc[:0], taxi, DAY, origin="t").key_hashes).any()


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"dtype": "float", "max_null_rate": 1.5},
            "column 'amount' has max_null_rate 1.5, expected a share between 0 and 1",
        ),
        (
            {"dtype": "float", "max_null_rate": "10%"},
            "column 'amount' has max_null_rate '10%', expected a share between 0 and 1",
        ),
        (
            {"dtype": "float", "nullable": False, "max_null_rate": 0.1},
            "column 'amount' has max_null_rate but nullable: false",
        ),
    ],
)
def test_a_wrong_null_cap_is_refused_naming_file_column_and_rule(spec, message):
    with pytest.raises(SchemaError, match="orders.yaml: " + message):
        Contract.from_dict({**ORDERS, "columns": {**ORDERS["columns"], "amount": spec}}, path="orders.yaml")


def test_a_null_cap_is_a_rule_of_its_column_and_leaves_the_fingerprint_alone(contract):
    capped = Contract.from_dict(
        {**ORDERS, "columns": {**ORDERS["columns"], "amount": {"dtype": "float", "min": 0, "max_null_rate": 0.1}}}
    )
    assert capped.column("amount").max_null_rate == 0.1 and contract.column("amount").max_null_rate is None
    assert (
        capped.fingerprint() == contract.fingerprint()
    )  # which rows are valid did not change: committed dates stay current


def test_validation_counts_the_nulls_of_each_nullable_column_among_the_valid_rows_only(contract):
    rows = csv(
        "StoreCode,OrderNo,ordered_at,amount,items,express\n"
        "north,1,2026-06-10 01:00:00,,,true\n"  # valid: amount and items null
        "north,2,2026-06-10 02:00:00,3.5,,\n"  # valid: items and express null
        "south,3,2026-06-10 03:00:00,,0,\n"  # rejected (items below 1): its nulls are not counted
        ",4,2026-06-10 04:00:00,,2,false\n"  # rejected (store null)
        "south,5,2026-06-10 05:00:00,1.0,3,false\n"
    )
    checked = validate(rows, contract, DAY, origin="orders.csv")
    assert len(checked.valid) == 3
    want = {
        n: int(checked.valid[n].isna().sum()) for n in ("amount", "items", "express", "returned") if n in checked.valid
    }
    assert (
        checked.null_counts == want == {"amount": 1, "items": 2, "express": 1}
    )  # non-nullable columns are not counted


def test_what_needs_a_label_refuses_a_contract_without_one_naming_its_file(contract):
    from batchml.dataset.features import labels_of

    assert contract.require_label().column == "returned"
    unlabelled = Contract.from_dict({k: v for k, v in ORDERS.items() if k != "label"}, path="orders.yaml")
    with pytest.raises(SchemaError, match=r"orders.yaml: no 'label' in the contract"):
        labels_of(pd.DataFrame({"store": ["north"], "order_no": [1]}), unlabelled, "json:dumps")


def scrambling_hook(rows: pd.DataFrame) -> pd.DataFrame:
    """A hook that changes the rows it is given, in place and by assignment, before it returns its output."""
    rows.loc[:, "order_no"] = -1
    rows.iloc[0, rows.columns.get_loc("amount")] = 1e9
    rows["store"] = "nowhere"
    del rows["ordered_at"]
    return pd.DataFrame({"amount": rows["amount"] * 2, "returned": rows["order_no"] > 0})


def test_a_hook_that_changes_its_rows_changes_neither_the_callers_rows_nor_the_key_it_gets_back(contract):
    from batchml.dataset.features import labels_of, model_inputs

    rows = validate(csv(GOOD), contract, DAY, origin="t").valid
    before = rows.copy()
    hook = "tests.unit.test_contract:scrambling_hook"

    inputs = model_inputs(rows, contract, hook)
    labels = labels_of(rows, contract, hook)

    pd.testing.assert_frame_equal(rows, before)
    for out in (inputs, labels):
        assert out[["store", "order_no"]].values.tolist() == before[["store", "order_no"]].values.tolist()
    assert inputs["amount"].iloc[0] == 2e9 and inputs["amount"].iloc[1] == 2 * before["amount"].iloc[1]


def doubling_hook(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([rows[["amount"]], rows[["amount"]]], axis=1)


def test_a_hook_returning_two_columns_of_one_name_is_refused_naming_the_hook_and_the_column(contract):
    from batchml.base.errors import HookError
    from batchml.dataset.features import model_inputs

    rows = validate(csv(GOOD), contract, DAY, origin="t").valid
    with pytest.raises(
        HookError, match=r"tests.unit.test_contract:doubling_hook returned more than one column named amount"
    ):
        model_inputs(rows, contract, "tests.unit.test_contract:doubling_hook")
