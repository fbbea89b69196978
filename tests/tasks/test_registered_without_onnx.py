"""A version batchml trained but could not export to ONNX: still scored by DailyScore, with its estimator."""

import luigi
from luigi.execution_summary import LuigiStatusCode

import batchml.retrain.lifecycle
from pipelines import DailyScore
from tasks.config import make_storage


def test_a_version_without_onnx_scores_the_estimator_inside_the_registered_model(pipeline, day, monkeypatch):
    monkeypatch.setattr(
        batchml.retrain.lifecycle, "to_onnx_bytes", lambda *a, **k: (None, "ONNX export failed: forced by the test")
    )
    result = luigi.build([DailyScore(day)], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    model = make_storage().verify("predictions", day).model
    assert (model["runtime"], model["flavor"]) == ("pyfunc", "batchml")


def test_a_pinned_date_is_scored_with_its_own_model_after_registered_model_changes(
    pipeline, day, monkeypatch, tmp_path
):
    """The pin names its model: re-scoring a date after `[mlflow] registered_model` moved to another name
    fetches what the date was pinned to (a models:/ artifact of the old name), not the new name's version."""
    import os
    import shutil

    from tasks.model import read_pin
    from tasks.score import ScorePredictions
    from tests.conftest import pipeline_settings

    monkeypatch.setattr(
        batchml.retrain.lifecycle, "to_onnx_bytes", lambda *a, **k: (None, "ONNX export failed: forced by the test")
    )
    assert luigi.build([DailyScore(day)], local_scheduler=True, log_level="WARNING")
    pinned = read_pin(day)
    assert pinned.artifact.startswith("models:/trip_duration/")
    storage = make_storage()
    os.remove(storage.manifest_path("predictions", day))
    shutil.rmtree(tmp_path / "cache")  # fetched again from the registry
    mlflow = {**pipeline_settings(tmp_path)["mlflow"], "registered_model": "another_team_model", "cold_start": "false"}
    pipeline({"mlflow": mlflow})
    result = luigi.build([ScorePredictions(day)], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    model = storage.verify("predictions", day).model
    assert (model["name"], model["version"], model["sha256"]) == ("trip_duration", pinned.version, pinned.sha256)
