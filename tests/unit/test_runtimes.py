"""Runtime choice pieces with no registry: the signature check, pyfunc frame outputs, small dates in row ranges."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from batchml.base.errors import SchemaError
from batchml.model.pin import ModelPin
from batchml.model.runtimes import check_signature
from batchml.scoring.scoring import _frame_outputs, read_rows, row_ranges, signature_frame

COLUMNS = {"id": "int64", "area": "float64", "rooms": "int64", "city": "str", "seen": "datetime64[us]"}


def pin(inputs, types):
    return ModelPin(
        "m",
        "3",
        "0" * 64,
        "champion",
        "",
        "pyfunc",
        "python_function",
        tuple(inputs),
        None,
        "models:/m/3",
        "",
        tuple(types),
    )


def test_a_fitting_signature_passes_and_integers_may_feed_doubles():
    check_signature(pin(["area", "rooms", "city"], ["number", "number", "string"]), COLUMNS, dt.date(2026, 1, 1))


def test_missing_and_incompatible_columns_are_all_named():
    with pytest.raises(SchemaError) as err:
        check_signature(
            pin(["area", "floor", "city", "rooms"], ["number", "integer", "number", "string"]),
            COLUMNS,
            dt.date(2026, 1, 1),
        )
    text = str(err.value)
    assert (
        "missing column(s) floor" in text
        and "city (string column, model takes number)" in text
        and "rooms (integer column, model takes string)" in text
    )


def test_a_float_column_does_not_feed_an_integer_input():
    with pytest.raises(SchemaError, match="area \\(number column, model takes integer\\)"):
        check_signature(pin(["area"], ["integer"]), COLUMNS, dt.date(2026, 1, 1))


def test_pyfunc_frame_outputs_by_class_give_probabilities_and_the_label():
    out = _frame_outputs(pd.DataFrame({"a": [0.2, 0.7], "b": [0.8, 0.3], "extra": [1, 2]}), ("a", "b"))
    assert (
        list(out["prediction"]) == ["b", "a"]
        and np.allclose(out["proba_a"], [0.2, 0.7])
        and list(out["extra"]) == [1, 2]
    )
    assert list(_frame_outputs(pd.DataFrame({"y": [1.5]}), None)["prediction"]) == [1.5]


def test_signature_frame_widens_integers_for_double_inputs():
    frame = signature_frame(
        pd.DataFrame({"rooms": np.array([1, 2], dtype="int32"), "city": ["x", "y"]}),
        ("rooms", "city"),
        ("number", "string"),
    )
    assert str(frame["rooms"].dtype) == "float64" and list(frame.columns) == ["rooms", "city"]


def test_a_small_date_is_cut_into_row_ranges_that_cover_it_once(tmp_path):
    paths = []
    for i, n in enumerate((10, 7)):
        path = tmp_path / f"part-{i}.parquet"
        pd.DataFrame({"k": np.arange(n) + 100 * i, "x": np.arange(n) * 0.5}).to_parquet(path, row_group_size=3)
        paths.append(str(path))
    pieces = row_ranges(paths, 6)
    assert len(pieces) == 6
    got = pd.concat([read_rows(p, ["k"]) for p in pieces], ignore_index=True)
    assert got["k"].tolist() == list(range(10)) + list(range(100, 107))


def test_an_onnx_matrix_input_holds_every_column_as_float_with_its_nulls_as_nan():
    """One 2-D float input built from numpy ints, floats, bools, float32 and nullable Int64 (with a null), against a
    column-by-column conversion written here."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from batchml.model.onnx_io import onnx_feed

    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])],
        "identity",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 5])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)  # the test's own model is valid ONNX (raises otherwise)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "count": rng.integers(-5, 100, 50),
            "share": rng.random(50),
            "flag": rng.random(50) > 0.5,
            "small": rng.random(50).astype("float32"),
            "maybe": pd.array(rng.integers(0, 5, 50), dtype="Int64"),
        }
    )
    frame.loc[3, "maybe"] = pd.NA
    frame.loc[4, "share"] = np.nan
    names = ("maybe", "count", "share", "flag", "small")  # the model's order, not the frame's

    fed = onnx_feed(session, frame, names)["X"]

    expected = np.array(
        [[np.nan if pd.isna(frame.at[i, c]) else float(frame.at[i, c]) for c in names] for i in range(50)],
        dtype=np.float32,
    )
    assert fed.dtype == np.float32 and fed.shape == (50, 5)
    np.testing.assert_array_equal(fed, expected)
    np.testing.assert_array_equal(session.run(None, {"X": fed})[0], expected)
