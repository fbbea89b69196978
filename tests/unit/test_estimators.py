"""Estimated performance (batchml/stats/estimators.py) against hand-computed numbers, and a small run of its validation
(bench/estimators.py)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from batchml.stats import estimators as E

REPO = Path(__file__).resolve().parents[2]
IDENTITY = {"kind": "isotonic per class", "classes": [0, 1], "maps": [None, None], "status": E.FITTED_ON_REFERENCE}


# ---------------------------------------------------------------- classifier


def test_a_perfectly_calibrated_two_class_toy_gives_the_hand_computed_expected_metrics():
    # p(class 1) per row; rows 0 and 1 are predicted 1, rows 2 and 3 predicted 0
    p1 = np.array([0.9, 0.8, 0.3, 0.1])
    out = E.estimate_classification(np.c_[1 - p1, p1], [0, 1], IDENTITY)
    tp, fp, fn = 0.9 + 0.8, 0.1 + 0.2, 0.3 + 0.1
    assert out["accuracy"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.9) / 4)
    assert out["precision"] == pytest.approx(tp / (tp + fp))
    assert out["recall"] == pytest.approx(tp / (tp + fn))
    assert out["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # each row a positive with weight p and a negative with 1 - p; pairs of distinct rows, positive above negative:
    # 0.3 over 0.1: 0.3*0.9; 0.8 over 0.1 and 0.3: 0.8*(0.9+0.7); 0.9 over 0.1, 0.3, 0.8: 0.9*(0.9+0.7+0.2);
    # all pairs of distinct rows: sum(p) * sum(1 - p) less each row with itself
    pairs = 2.1 * 1.9 - (0.9 * 0.1 + 0.8 * 0.2 + 0.3 * 0.7 + 0.1 * 0.9)
    assert out["roc_auc"] == pytest.approx((0.3 * 0.9 + 0.8 * 1.6 + 0.9 * 1.8) / pairs)
    assert np.allclose(out["confusion_matrix"], [[0.7 + 0.9, 0.1 + 0.2], [0.3 + 0.1, 0.9 + 0.8]])
    assert out["n"] == 4 and out["status"] == E.FITTED_ON_REFERENCE


def test_binary_metrics_are_of_the_last_class_whatever_the_labels_and_the_models_own_labels_decide():
    p_yes = np.array([0.9, 0.8, 0.3, 0.1])
    calibrator = {**IDENTITY, "classes": ["yes", "no"]}
    out = E.estimate_classification(np.c_[p_yes, 1 - p_yes], ["yes", "no"], calibrator)
    tp, fp, fn = 0.7 + 0.9, 0.3 + 0.1, 0.2 + 0.1  # class "no": predicted on rows 2 and 3
    assert out["precision"] == pytest.approx(tp / (tp + fp)) and out["recall"] == pytest.approx(tp / (tp + fn))
    # the model's own label overrides argmax: row 0 labelled "no"
    moved = E.estimate_classification(
        np.c_[p_yes, 1 - p_yes], ["yes", "no"], calibrator, y_pred=np.array(["no", "yes", "no", "no"])
    )
    assert moved["accuracy"] == pytest.approx((0.1 + 0.8 + 0.7 + 0.9) / 4)


def test_three_classes_give_the_hand_computed_macro_means():
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    calibrator = {"kind": "isotonic per class", "classes": ["a", "b", "c"], "maps": [None] * 3}
    out = E.estimate_classification(proba, ["a", "b", "c"], calibrator)
    # predicted: a, b, c, a; confusion[truth][pred]
    cm = np.array([[0.6 + 0.5, 0.2, 0.1], [0.3 + 0.4, 0.5, 0.2], [0.1 + 0.1, 0.3, 0.7]])
    assert np.allclose(out["confusion_matrix"], cm)
    tp = np.diag(cm)
    f1 = [2 * tp[j] / (cm[:, j].sum() + cm[j, :].sum()) for j in range(3)]
    assert out["accuracy"] == pytest.approx(tp.sum() / 4)
    assert out["f1"] == pytest.approx(np.mean(f1))
    assert out["precision"] == pytest.approx(np.mean([tp[j] / cm[:, j].sum() for j in range(3)]))
    assert out["roc_auc"] == pytest.approx(np.mean([E.expected_auc(proba[:, j], proba[:, j]) for j in range(3)]))


def test_expected_auc_with_zero_one_weights_is_the_ordinary_auc_ties_counted_half():
    rng = np.random.default_rng(3)
    score = rng.integers(0, 5, 300).astype(float)  # many ties
    truth = rng.random(300) < 0.4
    assert E.expected_auc(score, truth) == pytest.approx(roc_auc_score(truth, score))
    assert math.isnan(E.expected_auc(score, np.zeros(300)))


def test_the_accuracy_band_is_the_bernoulli_standard_error_of_the_rows():
    rng = np.random.default_rng(1)
    p1 = rng.random(5000)
    out = E.estimate_classification(np.c_[1 - p1, p1], [0, 1], IDENTITY)
    q = np.maximum(p1, 1 - p1)  # chance of each row's predicted class being right
    assert out["sampling_error"]["accuracy"] == pytest.approx(math.sqrt((q * (1 - q)).sum()) / 5000, rel=0.2)
    assert 0 < out["sampling_error"]["roc_auc"] < 0.02


def test_an_isotonic_fit_of_a_tiny_example_is_the_hand_computed_pooling():
    # 0, 1, 0, 1 at rising scores: the middle two violate the order and pool to 0.5
    mapping = E.isotonic_map([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    assert mapping == {"x": [0.1, 0.2, 0.3, 0.4], "y": [0.0, 0.5, 0.5, 1.0]}
    assert E.apply_map(mapping, [0.0, 0.15, 0.25, 0.9]).tolist() == pytest.approx([0.0, 0.25, 0.5, 1.0])


def test_the_calibrator_is_identity_where_the_probabilities_are_already_calibrated():
    rng = np.random.default_rng(0)
    p1 = rng.random(20000)
    y = (rng.random(20000) < p1).astype(int)
    calibrator = E.fit_calibrator(np.c_[1 - p1, p1], y, [0, 1])
    assert calibrator["maps"] == [None, None] and calibrator["checks"][0]["kept"] is False
    assert np.array_equal(E.calibrate(np.c_[1 - p1, p1], calibrator)[:, 1], p1)


def test_the_calibrator_keeps_a_map_that_corrects_overconfident_probabilities():
    rng = np.random.default_rng(0)
    true = rng.random(20000)
    y = (rng.random(20000) < true).astype(int)
    shown = true**2  # the model says p^2 where the truth is p
    calibrator = E.fit_calibrator(np.c_[1 - shown, shown], y, [0, 1])
    check = calibrator["checks"][0]
    assert check["kept"] and check["held_out_ece_calibrated"] < check["held_out_ece_raw"]
    fixed = E.calibrate(np.c_[1 - shown, shown], calibrator)[:, 1]
    assert np.abs(fixed - true).mean() < 0.03 < np.abs(shown - true).mean()
    # the expected accuracy follows the calibrated, not the shown, probabilities
    out = E.estimate_classification(np.c_[1 - shown, shown], [0, 1], calibrator)
    predicted = shown > 0.5
    assert out["accuracy"] == pytest.approx(np.where(predicted, true, 1 - true).mean(), abs=0.01)


def test_a_multiclass_calibrator_leaves_out_unknown_labels_and_its_rows_sum_to_one():
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([1, 1, 1], 3000)
    truth = np.array([rng.choice(3, p=row) for row in proba**2 / (proba**2).sum(axis=1, keepdims=True)])
    labels = np.array(["c", "a", "b"], dtype=object)[truth]
    labels[:10] = "z"  # outside the classes: left out
    calibrator = E.fit_calibrator(proba, labels, ["c", "a", "b"])
    assert calibrator["rows"] == 2990 and any(m is not None for m in calibrator["maps"])
    assert np.allclose(E.calibrate(proba, calibrator).sum(axis=1), 1.0)


def test_the_calibrator_round_trips_through_json_and_refuses_other_documents():
    rng = np.random.default_rng(0)
    shown = rng.random(2000) ** 2
    y = (rng.random(2000) < np.sqrt(shown)).astype(int)
    calibrator = E.fit_calibrator(np.c_[1 - shown, shown], y, [0, 1])
    back = E.calibrator_from_json(E.calibrator_to_json(calibrator))
    assert back == calibrator
    assert np.array_equal(E.calibrate(np.c_[1 - shown, shown], back), E.calibrate(np.c_[1 - shown, shown], calibrator))
    with pytest.raises(ValueError, match="not an isotonic per-class calibrator"):
        E.calibrator_from_json('{"kind": "something else"}')


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="one column per class"):
        E.estimate_classification(np.ones((3, 3)) / 3, [0, 1], IDENTITY)
    with pytest.raises(ValueError, match=r"fitted for classes \[0, 1\]"):
        E.estimate_classification(np.ones((3, 2)) / 2, ["a", "b"], IDENTITY)
    with pytest.raises(ValueError, match="2 labels for 3 rows"):
        E.fit_calibrator(np.ones((3, 2)) / 2, [0, 1], [0, 1])
    with pytest.raises(ValueError, match="status"):
        E.fit_calibrator(np.ones((30, 2)) / 2, [0, 1] * 15, [0, 1], status=E.NOT_YET_AVAILABLE)


def test_without_an_estimator_the_status_says_not_yet_available_and_the_metrics_are_nan():
    out = E.estimate_classification(np.ones((3, 2)) / 2, [0, 1], None)
    assert out["status"] == E.NOT_YET_AVAILABLE and out["n"] == 3 and math.isnan(out["roc_auc"])
    out = E.estimate_regression(pd.DataFrame({"a": [1.0]}), [1.0], None)
    assert out["status"] == E.NOT_YET_AVAILABLE and math.isnan(out["mae"])


# ---------------------------------------------------------------- regressor


def _known_error_data(rows: int, rng, low=0.0, high=2.0):
    """The error of each row is N(0, a): E|e| = a sqrt(2/pi), E[e^2] = a^2; b and the category carry nothing."""
    frame = pd.DataFrame(
        {"a": rng.uniform(low, high, rows), "b": rng.normal(size=rows), "k": rng.choice(["x", "y"], rows)}
    )
    prediction = rng.normal(size=rows)
    return frame, prediction, prediction - rng.normal(size=rows) * frame["a"].to_numpy()


def test_the_loss_model_recovers_an_error_that_is_a_known_function_of_one_input():
    rng = np.random.default_rng(0)
    loss_model = E.fit_loss_model(*_known_error_data(20000, rng), seed=0)
    frame, prediction, _ = _known_error_data(20000, rng, 1.0, 2.0)  # the inputs moved: a in [1, 2]
    out = E.estimate_regression(frame, prediction, loss_model)
    assert out["mae"] == pytest.approx(1.5 * math.sqrt(2 / math.pi), rel=0.05)  # E[a] sqrt(2/pi)
    assert out["rmse"] == pytest.approx(math.sqrt(7 / 3), rel=0.05)  # sqrt(E[a^2]) on U(1, 2)
    a = frame["a"].to_numpy()
    assert out["sampling_error"]["mae"] == pytest.approx(math.sqrt((a**2 * (1 - 2 / math.pi)).sum()) / len(a), rel=0.15)
    assert out["status"] == E.FITTED_ON_REFERENCE


def test_the_loss_model_reads_categories_and_names_a_missing_column():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"k": rng.choice(["x", "y"], 5000), "b": rng.normal(size=5000)})
    error = np.where(frame["k"] == "y", 3.0, 1.0) * rng.choice([-1, 1], 5000)
    loss_model = E.fit_loss_model(frame, np.zeros(5000), error, status=E.FROM_FIRST_LABELLED_DATES)
    only_y = pd.DataFrame({"k": ["y"] * 100, "b": np.zeros(100)})
    out = E.estimate_regression(only_y, np.zeros(100), loss_model)
    assert out["mae"] == pytest.approx(3.0, rel=0.02) and out["status"] == E.FROM_FIRST_LABELLED_DATES
    unseen = E.estimate_regression(pd.DataFrame({"k": ["w"] * 10, "b": np.zeros(10)}), np.zeros(10), loss_model)
    assert 1.0 < unseen["mae"] < 3.0  # an unseen category reads as missing
    with pytest.raises(ValueError, match=r"column\(s\) \['k'\]"):
        E.estimate_regression(pd.DataFrame({"b": [0.0]}), [0.0], loss_model)


def test_the_loss_model_round_trips_through_skops_bytes_and_refuses_unexpected_types():
    import fractions

    import skops.io

    rng = np.random.default_rng(0)
    frame, prediction, truth = _known_error_data(3000, rng)
    loss_model = E.fit_loss_model(frame, prediction, truth, seed=1)
    back = E.loss_model_from_bytes(E.loss_model_to_bytes(loss_model))
    assert (back.columns, back.categories, back.kurtosis, back.rows) == (
        loss_model.columns,
        loss_model.categories,
        loss_model.kurtosis,
        3000,
    )
    assert E.estimate_regression(frame, prediction, back) == E.estimate_regression(frame, prediction, loss_model)
    with pytest.raises(ValueError, match="fractions.Fraction"):
        E.loss_model_from_bytes(skops.io.dumps({"absolute": fractions.Fraction(1, 3), "squared": None, "meta": "{}"}))


# ---------------------------------------------------------------- the estimator's own check


def test_estimate_error_pairs_the_metrics_both_sides_have():
    out = E.estimate_error(
        {"mae": 1.1, "rmse": 2.0, "sampling_error": {"mae": 0.01}}, {"mae": 1.0, "rmse": float("nan"), "r2": 0.5}
    )
    assert list(out) == ["mae"]
    assert (
        out["mae"]["error"] == pytest.approx(0.1)
        and out["mae"]["relative_error"] == pytest.approx(0.1)
        and out["mae"]["sampling_error"] == 0.01
    )


def _errors(*values, band=0.001):
    day = dt.date(2026, 3, 1)
    return [
        (
            day + dt.timedelta(days=i),
            E.estimate_error({"roc_auc": 0.8 + v, "sampling_error": {"roc_auc": band}}, {"roc_auc": 0.8}),
        )
        for i, v in enumerate(values)
    ]


def test_the_check_fires_at_k_wrong_dates_of_the_last_n():
    check = E.EstimatorCheck(metric="roc_auc", margin=0.03, k=2, n=3)
    errors = _errors(0.05, 0.0, 0.0, -0.04, 0.01, 0.06)
    verdicts = [E.estimator_check(d, errors, check)["verdict"] for d, _ in errors]
    assert verdicts == ["ok", "ok", "ok", "ok", "ok", "estimator wrong"]
    last = E.estimator_check(errors[-1][0], errors, check)
    assert last["wrong_dates"] == ["2026-03-04", "2026-03-06"] and last["dates_considered"] == [
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
    ]


def test_an_error_within_the_sampling_band_does_not_count_and_relative_margins_work():
    check = E.EstimatorCheck(metric="roc_auc", margin=0.03, k=1, n=1)
    assert E.estimator_check(dt.date(2026, 3, 1), _errors(0.05, band=0.03), check)["verdict"] == "ok"  # 0.05 < 2 x 0.03
    assert E.estimator_check(dt.date(2026, 3, 1), _errors(0.05, band=0.02), check)["verdict"] == "estimator wrong"
    relative = E.EstimatorCheck(metric="roc_auc", margin=0.05, relative=True, k=1, n=1)
    assert E.estimator_check(dt.date(2026, 3, 1), _errors(0.03), relative)["verdict"] == "ok"  # 0.03 / 0.8 < 5%
    assert E.estimator_check(dt.date(2026, 3, 1), _errors(0.05), relative)["verdict"] == "estimator wrong"
    with pytest.raises(ValueError, match="k"):
        E.EstimatorCheck(k=4, n=3)


# ---------------------------------------------------------------- validation, small


def _bench():
    spec = importlib.util.spec_from_file_location("bench_estimators", REPO / "bench" / "estimators.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_small_validation_run_tracks_realized_performance_where_the_reference_metric_would_not():
    from threadpoolctl import threadpool_limits

    bench = _bench()
    with threadpool_limits(1):  # OpenMP threads on a shared, loaded machine cost more than they give
        summary = bench.run(rows=5000, dates=8, concept_dates=2, seed=0, reference_rows=20000)["summary"]
    # the shift is large enough that the reference metric, unchanged, fails the same bounds
    assert summary["constant_auc_within_margin"] < 0.75 and summary["constant_mae_within_margin"] < 0.75
    assert summary["auc_error_max"] < 0.03 and summary["auc_error_mean"] < 0.015
    assert summary["mae_relative_error_max"] < 0.10 and summary["mae_relative_error_mean"] < 0.05
    assert summary["check_false_alarms"] == []
    assert summary["auc_check_fires"] and summary["mae_check_fires"]
