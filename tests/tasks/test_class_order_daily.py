"""A data scientist's classifier on a contract whose classes are not in scikit-learn's order, through DailyScore.

The homes project of tests/e2e/test_any_model.py with `classes: [mid, low, high]` and an
mlflow.sklearn pipeline whose `classes_` are [high, low, mid]: the committed proba_<class>
columns are the model's own probabilities of those classes, and the realized metrics of the
labelled date are the hand-computed ones.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from luigi.execution_summary import LuigiStatusCode

import pipelines
import tests.e2e.test_any_model as homes
from tasks.config import make_storage
from tasks.daily import DailyScore
from tasks.model import read_pin
from tests.e2e.test_any_model import DAY, INPUTS, build, log_sklearn, project, scored  # noqa: F401 (project is a fixture)

UNSORTED = ["mid", "low", "high"]


def test_an_unsorted_contract_gets_each_class_its_own_probability_and_the_right_metrics(project, monkeypatch):
    monkeypatch.setattr(homes, "CLASSIFIER_LABEL", ("segment", "classification\n  classes: [mid, low, high]"))
    hooks, apply = project
    apply(
        "homes_unsorted", "classification", labels={"transform": "homes_hooks:segment"}, source={"label_lag_days": "1"}
    )
    model = log_sklearn(hooks, "classification", "homes_unsorted")
    assert list(model.classes_) == ["high", "low", "mid"]
    labelled = DAY + dt.timedelta(days=1)
    assert build(DailyScore(DAY), DailyScore(labelled)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    assert read_pin(DAY).runtime == "converted"
    frame = scored(DAY)
    want = model.predict_proba(frame[INPUTS])
    for c in UNSORTED:
        np.testing.assert_allclose(
            frame[f"proba_{c}"].to_numpy(dtype="float64"), want[:, list(model.classes_).index(c)], atol=2e-4, err_msg=c
        )
    assert list(frame.columns[frame.columns.str.startswith("proba_")]) == [f"proba_{c}" for c in UNSORTED]

    truth = hooks.segment(frame[INPUTS])
    p_true = want[np.arange(len(frame)), [list(model.classes_).index(t) for t in truth]]
    metrics = json.loads(make_storage().read_text(f"monitoring/date={labelled}/metrics.json"))
    realized = metrics["numbers"]["realized"]
    assert realized["labelled"] == len(frame) and realized["outside_classes"] == 0
    assert realized["log_loss"] == pytest.approx(-np.mean(np.log(p_true)), rel=1e-3)
    assert realized["accuracy"] == pytest.approx(np.mean(model.predict(frame[INPUTS]) == truth), abs=2 / len(frame))
