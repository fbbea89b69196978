import numpy as np
import pandas as pd
import pytest

from batchml.monitor.checks import CheckThresholds, flat_metrics, realized_performance, run_checks


def base(**overrides):
    args = dict(
        rows_in=1000,
        trailing_rows=[1000, 1100, 900],
        quarantined=3,
        null_rates={"trip_distance": 0.0},
        prediction={"mean": 600.0, "std": 100.0, "null_rate": 0.0, "count": 997},
        reference_prediction={"mean": 620.0},
        realized=None,
        holdout=100.0,
        thresholds=CheckThresholds(),
    )
    return run_checks(**{**args, **overrides})


def test_realized_performance_joins_on_a_composite_key_and_skips_rows_without_a_label():
    pred = pd.DataFrame(
        {"shop": ["a", "a", "b", "b", "b"], "n": [1, 2, 1, 3, 4], "prediction": [100.0, 200.0, 300.0, 400.0, 50.0]}
    )
    labels = pd.DataFrame(
        {"shop": ["a", "a", "b", "b", "b"], "n": [1, 2, 1, 9, 4], "price": [110.0, 190.0, 330.0, 5.0, np.nan]}
    )
    out = realized_performance(pred, labels, key=["shop", "n"], label="price", task="regression")
    assert out["mae"] == pytest.approx(np.mean([10, 10, 30]))
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean([100, 100, 900])))
    assert out["coverage"] == 0.6 and out["labelled"] == 3


def test_realized_performance_of_a_classifier():
    pred = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "prediction": ["yes", "no", "no", "yes"],
            "proba_no": [0.2, 0.9, 0.6, 0.3],
            "proba_yes": [0.8, 0.1, 0.4, 0.7],
        }
    )
    labels = pd.DataFrame({"id": [1, 2, 3, 4], "churned": ["yes", "no", "yes", "yes"]})
    out = realized_performance(pred, labels, key=["id"], label="churned", task="classification", classes=["no", "yes"])
    assert out["accuracy"] == 0.75 and out["roc_auc"] == pytest.approx(1.0) and out["log_loss"] > 0


def test_the_error_ratio_is_larger_when_worse_whatever_the_metric_direction():
    from batchml.monitor.checks import error_ratio

    assert error_ratio({"mae": 150.0}, 100.0, "mae") == pytest.approx(1.5)
    assert error_ratio({"roc_auc": 0.6}, 0.9, "roc_auc") == pytest.approx(1.5)
    assert error_ratio({}, 100.0, "mae") is None


def test_a_healthy_date_is_ok():
    report = base()
    assert report["status"] == "ok" and report["failed"] == [] and report["numbers"]["rows_trailing_median"] == 1000


def test_a_row_count_collapse_fails_with_the_check_named():
    report = base(rows_in=300)
    assert report["status"] == "fail" and report["failed"] == ["row_count_ratio"]


def test_warn_only_checks_warn_and_do_not_fail():
    realized = {"mae": 400.0, "coverage": 1.0}
    report = base(realized=realized)
    assert report["status"] == "warn" and report["warned"] == ["realized_error_ratio"]
    strict = base(realized=realized, thresholds=CheckThresholds(warn_only=()))
    assert strict["status"] == "fail" and strict["failed"] == ["realized_error_ratio"]


def test_first_date_without_history_is_not_judged_on_row_count():
    report = base(trailing_rows=[])
    assert report["status"] == "ok" and report["checks"][0]["value"] is None


def test_flat_metrics_are_finite_floats():
    flat = flat_metrics(base(realized={"mae": 90.0, "rmse": 120.0, "r2": 0.8, "mape": 0.2, "coverage": 0.95}))
    assert flat["realized_mae"] == 90.0 and flat["rows_in"] == 1000.0
    assert all(isinstance(v, float) for v in flat.values())


# Null rates: a nullable column against its reference, with a floor for the row counts.
from batchml.dataset.contract import Contract  # noqa: E402
from batchml.dataset.nulls import NullCounts  # noqa: E402
from batchml.monitor.checks import NullRate, null_limit, null_rates_of  # noqa: E402

FEES = Contract.from_dict(
    {
        "dataset": "rides",
        "key": "id",
        "columns": {
            "id": {"dtype": "integer", "nullable": False},
            "fare": {"dtype": "float", "nullable": False},
            "fee": {"dtype": "float", "nullable": True},  # optional: about 5% of rides have none
            "tip": {"dtype": "float", "nullable": True, "max_null_rate": 0.3},
            "paid": {"dtype": "float", "nullable": True},  # the label
        },
        "label": "paid",
    },
    path="rides.yaml",
)
TRAINED = {"validated": {"rows": 20_000, "nulls": {"fee": 1000, "tip": 4000, "paid": 0}}}  # fee 5%, tip 20%


def null_report(date_nulls: dict, rows: int = 10_000, *, reference=TRAINED, scored=None, trailing=None, **thresholds):
    validated = NullCounts(rows, date_nulls)
    nulls = null_rates_of(
        FEES, {"columns": scored or {}}, reference, validated, trailing, ["2026-06-09"] if trailing else []
    )
    return base(nulls=nulls, null_rates=None, thresholds=CheckThresholds(**thresholds))


def null_checks(report) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"] if c["name"].startswith("null_rate.")}


def test_a_nullable_column_at_its_usual_null_rate_passes_with_the_defaults():
    report = null_report({"fee": 520, "tip": 1950, "paid": 9000})
    checks = null_checks(report)
    assert report["failed"] == [] and set(checks) == {
        "null_rate.fee",
        "null_rate.tip",
    }  # the label's nulls are label coverage's
    assert (
        checks["null_rate.fee"]["value"] == 0.052
        and checks["null_rate.fee"]["detail"]["measured_on"] == "validated rows"
    )


def test_a_jump_from_5_to_40_percent_fails_naming_the_column_its_rate_reference_and_limit():
    report = null_report({"fee": 4000, "tip": 2000})
    assert report["status"] == "fail" and report["failed"] == ["null_rate.fee"]
    check = null_checks(report)["null_rate.fee"]
    # by hand: 0.05 + max(0.01, (2 - 1) * 0.05, 3 * sqrt(0.05 * 0.95 * (1/10000 + 1/20000))) = 0.05 + 0.05
    assert (
        check["detail"]["limit"] == pytest.approx(0.10)
        and check["detail"]["reference"] == 0.05
        and check["value"] == 0.4
    )
    assert (
        check["detail"]["column"] == "fee"
        and "reference 0.05 from the training window (20000 valid rows)" in check["bound"]
    )
    assert check["bound"].startswith("<= 0.1 ")


def test_the_limit_has_a_noise_floor_for_a_small_date():
    # by hand: 50 rows, reference 5% of 20,000: 3 * sqrt(0.05 * 0.95 * (1/50 + 1/20000)) = 0.0927..., above 0.05
    floor = 3 * np.sqrt(0.05 * 0.95 * (1 / 50 + 1 / 20000))
    assert null_limit(NullRate("fee", 0.0, 50, "validated rows", 0.05, 20_000), CheckThresholds()) == pytest.approx(
        0.05 + floor
    )
    assert null_report({"fee": 7}, rows=50)["failed"] == []  # 14% of 50 rows: noise, not news
    assert null_report({"fee": 1400}, rows=10_000)["failed"] == ["null_rate.fee"]  # 14% of 10,000 rows is news
    assert null_report({"fee": 9}, rows=50)["failed"] == ["null_rate.fee"]  # 18% of 50 rows is above the floor too


def test_healthy_dates_drawn_at_the_reference_rate_almost_never_fail():
    rng = np.random.default_rng(7)
    for rows in (40, 300, 5_000, 200_000):
        fails = sum(bool(null_report({"fee": int(rng.binomial(rows, 0.05))}, rows=rows)["failed"]) for _ in range(400))
        assert fails <= 2, (rows, fails)  # the floor is 3 sigmas of the binomial, the factor 2 above it


def test_the_contract_cap_is_a_limit_on_top_of_the_reference():
    report = null_report({"fee": 500, "tip": 3300})  # tip: 33% against 20% (limit 40%), above its cap of 30%
    check = null_checks(report)["null_rate.tip"]
    assert (
        report["failed"] == ["null_rate.tip"]
        and check["detail"]["limit"] == 0.3
        and "capped by the contract's max_null_rate" in check["bound"]
    )


def test_without_a_reference_the_trailing_dates_are_the_reference_and_without_them_only_the_cap():
    trailing = NullCounts(9_000, {"fee": 450, "tip": 1800})
    assert null_report({"fee": 500, "tip": 1900}, reference=None, trailing=trailing)["failed"] == []
    report = null_report({"fee": 4000, "tip": 1900}, reference=None, trailing=trailing)
    assert (
        report["failed"] == ["null_rate.fee"]
        and "from the dates 2026-06-09 (9000 valid rows)" in null_checks(report)["null_rate.fee"]["bound"]
    )
    first = null_report(
        {"fee": 800, "tip": 3500}, reference=None
    )  # nothing known yet: a null-by-nature column is not failed
    assert (
        first["failed"] == ["null_rate.tip"] and null_checks(first)["null_rate.fee"]["ok"]
    )  # 35% is above tip's cap of 30%
    assert null_checks(first)["null_rate.fee"]["detail"]["reference"] is None


def test_a_features_hook_that_fills_nulls_does_not_hide_them():
    scored = {"fee": {"null_rate": 0.0, "count": 10_000}, "fare": {"null_rate": 0.0, "count": 10_000}}
    reference = {
        **TRAINED,
        "columns": {"fee": {"null_rate": 0.0, "count": 20_000}, "fare": {"null_rate": 0.0, "count": 20_000}},
    }
    report = null_report({"fee": 4000}, reference=reference, scored=scored)
    assert (
        report["failed"] == ["null_rate.fee"]
        and null_checks(report)["null_rate.fee"]["detail"]["measured_on"] == "validated rows"
    )


def test_nulls_a_features_hook_adds_are_checked_on_what_was_scored():
    reference = {
        **TRAINED,
        "columns": {"fee_share": {"null_rate": 0.0, "count": 20_000}},
        "outputs": {"prediction": {"null_rate": 0.0, "count": 20_000}},
    }
    scored = {"fee_share": {"null_rate": 0.2, "count": 10_000}, "prediction": {"null_rate": 0.0, "count": 10_000}}
    report = null_report({"fee": 500}, reference=reference, scored=scored)
    assert (
        report["failed"] == ["null_rate.fee_share"]
        and null_checks(report)["null_rate.fee_share"]["detail"]["measured_on"] == "scored rows"
    )
    assert null_checks(report)["null_rate.prediction"]["ok"]


def test_a_foreign_model_passing_a_nullable_columns_nulls_through_is_not_failed():
    scored = {"fee": {"null_rate": 0.06, "count": 10_000}, "fare": {"null_rate": 0.03, "count": 10_000}}
    report = null_report({"fee": 600}, reference=None, scored=scored)
    checks = null_checks(report)
    assert report["failed"] == [
        "null_rate.fare"
    ]  # fare is not nullable: nulls the model's inputs gained still fail at max_null_rate
    assert checks["null_rate.fee"]["ok"] and checks["null_rate.fare"]["detail"]["limit"] == 0.01
