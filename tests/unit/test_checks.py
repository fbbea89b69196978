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
        champion_mae=100.0,
        thresholds=CheckThresholds(),
    )
    return run_checks(**{**args, **overrides})


def test_realized_performance_against_pandas():
    pred = pd.DataFrame({"trip_id": [1, 2, 3, 4], "prediction": [100.0, 200.0, 300.0, 400.0]})
    labels = pd.DataFrame({"trip_id": [1, 2, 3, 9], "trip_duration_s": [110.0, 190.0, 330.0, 5.0]})
    out = realized_performance(pred, labels)
    assert out["mae"] == pytest.approx(np.mean([10, 10, 30]))
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean([100, 100, 900])))
    assert out["coverage"] == 0.75 and out["labelled"] == 3


def test_a_healthy_date_is_ok():
    report = base()
    assert report["status"] == "ok" and report["failed"] == [] and report["numbers"]["rows_trailing_median"] == 1000


def test_a_row_count_collapse_fails_with_the_check_named():
    report = base(rows_in=300)
    assert report["status"] == "fail" and report["failed"] == ["row_count_ratio"]


def test_warn_only_checks_warn_and_do_not_fail():
    realized = {"mae": 400.0, "coverage": 1.0}
    report = base(realized=realized)
    assert report["status"] == "warn" and report["warned"] == ["realized_mae_ratio"]
    strict = base(realized=realized, thresholds=CheckThresholds(warn_only=()))
    assert strict["status"] == "fail" and strict["failed"] == ["realized_mae_ratio"]


def test_first_date_without_history_is_not_judged_on_row_count():
    report = base(trailing_rows=[])
    assert report["status"] == "ok" and report["checks"][0]["value"] is None


def test_flat_metrics_are_finite_floats():
    flat = flat_metrics(base(realized={"mae": 90.0, "rmse": 120.0, "r2": 0.8, "mape": 0.2, "coverage": 0.95}))
    assert flat["realized_mae"] == 90.0 and flat["rows_in"] == 1000.0
    assert all(isinstance(v, float) for v in flat.values())
