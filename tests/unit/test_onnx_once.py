"""A version skl2onnx cannot export is tried once (the outcome cached beside the converted models) and warned about
once, whole."""

import logging

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LinearRegression

import batchml.model.training
from batchml.base.provenance import sha256_tree
from batchml.model.pin import ModelPin
from batchml.model.runtimes import choose_runtime, converted_paths


def test_a_model_that_cannot_be_exported_is_tried_once_per_version_and_its_whole_warning_printed_once(
    tmp_path, monkeypatch, caplog
):
    from skl2onnx import to_onnx

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    model = TransformedTargetRegressor(LinearRegression()).fit(
        x, x["a"] * 2 + 1
    )  # no skl2onnx converter for the wrapper
    folder = tmp_path / "model"
    mlflow.sklearn.save_model(model, str(folder), serialization_format="cloudpickle")
    with pytest.raises(Exception) as raised:  # skl2onnx's own error: long, over several lines
        to_onnx(model, x.to_numpy(dtype=np.float32))
    whole = f"{raised.type.__name__}: {' '.join(str(raised.value).split())}"
    assert len(whole) > 300 and "\n" in str(raised.value)  # what a 300-character cut or a multi-line print would mangle

    tries = []
    real = batchml.model.training.to_onnx_bytes
    monkeypatch.setattr(batchml.model.training, "to_onnx_bytes", lambda *a, **k: tries.append(1) or real(*a, **k))
    pin = ModelPin("m", "4", sha256_tree(folder), "champion", "", runtime="pyfunc", flavor="sklearn", inputs=("a", "b"))
    caplog.set_level(logging.INFO, logger="batchml")
    for day in range(3):  # three dates, each with its own rows
        chosen = choose_runtime(pin, folder, x.iloc[day * 50 : day * 50 + 50], tmp_path / "cache", rtol=1e-3, atol=1e-3)
        assert chosen.runtime == "pyfunc" and chosen.note == f"pyfunc: ONNX export failed: {whole}"
    assert len(tries) == 1 and converted_paths(tmp_path / "cache", pin)[1].exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("batchml")]
    assert warnings == [f"models:/m/4 scored with pyfunc: ONNX export failed: {whole}"]
    assert sum("its ONNX export failed before" in r.getMessage() for r in caplog.records) == 2
