"""A version batchml trained but could not export to ONNX: still scored by DailyScore, with its estimator."""

import luigi
from luigi.execution_summary import LuigiStatusCode

import batchml.lifecycle
from pipelines import DailyScore
from tasks.config import make_storage


def test_a_version_without_onnx_scores_the_estimator_inside_the_registered_model(pipeline, day, monkeypatch):
    monkeypatch.setattr(batchml.lifecycle, "to_onnx_bytes", lambda *a, **k: (None, "ONNX export failed: forced by the test"))
    result = luigi.build([DailyScore(day)], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    model = make_storage().verify("predictions", day).model
    assert (model["runtime"], model["flavor"]) == ("pyfunc", "batchml")
