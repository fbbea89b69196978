"""Classifier paths of the core that the churn example found broken: metrics with integer
classes, the profile of a model scored with pyfunc, and classes that disagree with the contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from batchml.base.errors import HookError
from batchml.dataset.contract import Contract
from batchml.model.registry import Registry
from batchml.retrain.lifecycle import Project, _check_classes
from batchml.stats.metrics import classification_metrics
from batchml.stats.profile import reference_profile


@pytest.mark.parametrize(
    "truth",
    [np.array([0, 1, 1, 0, 1]), np.array([0, 1, 1, 0, 1], dtype=object), pd.array([0, 1, 1, 0, 1], dtype="Int64")],
)
def test_metrics_of_integer_classes_whatever_the_truth_dtype(truth):
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.7, 0.3]])
    got = classification_metrics(truth, proba, [0, 1])
    assert (
        got["accuracy"] == pytest.approx(0.8)
        and got["f1"] == pytest.approx(0.8)
        and got["roc_auc"] == pytest.approx(5 / 6)
    )
    assert got["n"] == 5 and np.isfinite(got["log_loss"]) and np.isfinite(got["brier"])


def test_text_classes_still_work():
    got = classification_metrics(
        np.array(["no", "yes", "yes"]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), ["no", "yes"]
    )
    assert got["accuracy"] == pytest.approx(2 / 3) and got["f1"] == pytest.approx(2 / 3)


def test_a_version_without_onnx_is_scored_with_pyfunc_and_keeps_its_reference_profile(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    y = (frame["x"] + rng.normal(scale=0.5, size=200) > 0).astype("int64")
    model = LogisticRegression().fit(frame, y)
    profile = reference_profile(frame)
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", "clf", str(tmp_path / "artifacts"))
    version = registry.register(
        model,
        frame,
        onnx_bytes=None,
        profile=profile,
        params={},
        metrics={},
        tags={},
        inputs=["x", "z"],
        classes=[0, 1],
        run_name="no onnx",
    )
    pin = registry.pin_version(version, tmp_path / "cache", (0, 1))
    assert pin.runtime == "pyfunc" and pin.flavor == "sklearn"
    assert registry.reference_profile(pin, tmp_path / "cache") == profile


def test_fitted_classes_must_be_the_contracts():
    def contract(classes):
        return Contract.from_dict(
            {
                "dataset": "d",
                "key": "k",
                "columns": {"k": {"dtype": "integer"}, "y": {"dtype": "string"}},
                "label": {"column": "y", "task": "classification", "classes": classes},
            }
        )

    project = Project(contract=contract([False, True]), recipe="hooks:recipe")
    _check_classes([0, 1], contract([0, 1]), project)  # same classes: nothing to say
    _check_classes(["yes", "no"], contract(["no", "yes"]), project)  # any order: the proba columns are named
    with pytest.raises(
        HookError, match=r"fitted classes \['no', 'yes'\].*lists label classes \[False, True\].*unquoted yes/no"
    ):
        _check_classes(["no", "yes"], contract([False, True]), project)


def test_labels_read_back_as_categories_and_old_0_1_predictions_of_boolean_classes():
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])  # columns: [True, False]
    truth = pd.Series([True, False, False, False], dtype="category")
    got = classification_metrics(truth, proba, [True, False], y_pred=np.array([1, 0, 0, 1]))  # 0/1: none of the classes
    assert got["accuracy"] == pytest.approx(3 / 4) and got["n"] == 4 and got["outside_classes"] == 0
    assert got["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.6, 0.4])))
    text = classification_metrics(
        pd.Series(["b", "a"], dtype="category"), np.array([[0.9, 0.1], [0.2, 0.8]]), ["b", "a"]
    )
    assert text["accuracy"] == 1.0 and text["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8])))
