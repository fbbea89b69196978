"""Feeding a frame to an ONNX Runtime session and reading its outputs back as named columns.

One definition for the batch scorer (batchml.scoring) and for the model batchml registers
(batchml.raw_model, which ships this module inside the model): they cannot disagree.
Needs numpy and pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from batchml.errors import IntegrityError

PREDICTION = "prediction"
PROBA = "proba_"
ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def proba_columns(classes) -> list[str]:
    return [f"{PROBA}{c}" for c in classes] if classes else []


def onnx_feed(session, part: pd.DataFrame, inputs: tuple[str, ...]) -> dict:
    """ONNX inputs from a frame: one input per column by name, or one 2-D tensor in `inputs` order."""
    declared = session.get_inputs()
    n = len(part)
    if len(declared) == 1 and declared[0].name not in part.columns:
        dtype = ORT_TYPES.get(declared[0].type, np.float32)
        matrix = np.empty((n, len(inputs)), dtype=dtype)
        for j, name in enumerate(inputs):
            matrix[:, j] = part[name].to_numpy(dtype=dtype, na_value=np.nan)
        return {declared[0].name: matrix}
    feed = {}
    for item in declared:
        column = part[item.name]
        if item.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "").to_numpy(dtype=object)
        else:
            values = column.to_numpy(dtype=ORT_TYPES.get(item.type, np.float32), na_value=np.nan)
        feed[item.name] = values.reshape(n, 1)
    return feed


def onnx_outputs(session, feed: dict, n: int, classes) -> dict[str, np.ndarray]:
    """`prediction` (and `proba_<class>` for a classifier) from an ONNX model's outputs."""
    outputs = session.run(None, feed)
    if not classes:
        return {PREDICTION: np.asarray(outputs[0]).reshape(n).astype(np.float32, copy=False)}
    label, proba = np.asarray(outputs[0]).reshape(n), None
    for out in outputs[1:]:
        if isinstance(out, list):  # ZipMap: one dict per row
            proba = pd.DataFrame(out).reindex(columns=list(classes)).to_numpy(dtype=np.float32)
        elif getattr(out, "ndim", 0) == 2 and out.shape[1] == len(classes):
            proba = out.astype(np.float32, copy=False)
    if proba is None:
        raise IntegrityError(f"the ONNX model has no probability output for its {len(classes)} classes")
    return {PREDICTION: label, **{c: proba[:, j] for j, c in enumerate(proba_columns(classes))}}
