import numpy as np
import pandas as pd
import pytest

from batchml.checks import CheckThresholds, flat_metrics, realized_performance, run_checks


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
    pred = pd.DataFrame({"shop": ["a", "a", "b", "b", "b"], "n": [1, 2, 1, 3, 4], "prediction": [100.0, 200.0, 300.0, 400.0, 50.0]})
    labels = pd.DataFrame({"shop": ["a", "a", "b", "b", "b"], "n": [1, 2, 1, 9, 4], "price": [110.0, 190.0, 330.0, 5.0, np.nan]})
    out = realized_performance(pred, labels, key=["shop", "n"], label="price", task="regression")
    assert out["mae"] == pytest.approx(np.mean([10, 10, 30]))
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean([100, 100, 900])))
    assert out["coverage"] == 0.6 and out["labelled"] == 3


def test_realized_performance_of_a_classifier():
    pred = pd.DataFrame({"id": [1, 2, 3, 4], "prediction": ["yes", "no", "no", "yes"], "proba_no": [0.2, 0.9, 0.6, 0.3], "proba_yes": [0.8, 0.1, 0.4, 0.7]})
    labels = pd.DataFrame({"id": [1, 2, 3, 4], "churned": ["yes", "no", "yes", "yes"]})
    out = realized_performance(pred, labels, key=["id"], label="churned", task="classification", classes=["no", "yes"])
    assert out["accuracy"] == 0.75 and out["roc_auc"] == pytest.approx(1.0) and out["log_loss"] > 0


def test_the_error_ratio_is_larger_when_worse_whatever_the_metric_direction():
    from batchml.checks import error_ratio

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
