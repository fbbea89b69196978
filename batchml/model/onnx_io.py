"""Feeding a frame to an ONNX Runtime session and reading its outputs back as named columns.

One definition for the batch scorer (batchml.scoring.scoring) and for the model batchml registers
(batchml.model.raw_model, which ships this module inside the model): they cannot disagree.
Needs numpy and pandas only (reading class labels from an ONNX graph imports `onnx`).

A classifier's probability columns are matched to classes by identity, never by position:
`proba_<class>` holds the model's probability of that class whatever order the model and
the contract list the classes in. A class is the same class when it has the same kind and
value (`True` is not `1`, `"1"` is not `1`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from batchml.base.errors import IntegrityError

PREDICTION = "prediction"
PROBA = "proba_"
ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}
CLASSES_METADATA = (
    "batchml_classes"  # ONNX model metadata written by batchml: the classes of the probability columns, in order (JSON)
)
_LABEL_ATTRIBUTES = (
    "classlabels_strings",
    "classlabels_int64s",
    "classlabels_ints",
)  # ai.onnx.ml classifier and ZipMap nodes


def proba_columns(classes) -> list[str]:
    return [f"{PROBA}{c}" for c in classes] if classes else []


# -- classes by identity -----------------------------------------------------------------------
def _kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def plain(value):
    """A class as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def class_codes(values, classes) -> np.ndarray:
    """Each value's position in `classes`, -1 for a value outside them (or missing).

    Vectorised by the values' dtype; a value matches a class of the same kind and value only.
    """
    classes = [plain(c) for c in classes]
    series = (
        values.reset_index(drop=True)
        if isinstance(values, pd.Series)
        else pd.Series(values if np.ndim(values) else [values], dtype=_series_dtype(values))
    )
    out = np.full(len(series), -1, dtype=np.int64)
    if not len(series):
        return out
    if isinstance(series.dtype, pd.CategoricalDtype):  # e.g. a label read back from a partitioned dataset
        series = series.astype(series.dtype.categories.dtype)
    dtype = series.dtype
    kind: str | None
    if pd.api.types.is_bool_dtype(dtype):
        kind = "bool"
    elif pd.api.types.is_numeric_dtype(dtype):
        kind = "number"
    elif pd.api.types.is_string_dtype(dtype) and dtype.kind != "O":
        kind = "text"
    else:
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        kind = {
            "boolean": "bool",
            "integer": "number",
            "floating": "number",
            "mixed-integer-float": "number",
            "string": "text",
        }.get(inferred)
        if inferred == "empty":
            return out
        if kind is None:  # values of several kinds: one by one
            keys = {(_kind(c), c): j for j, c in enumerate(classes)}
            return np.fromiter(
                (-1 if _missing(v) else keys.get((_kind(plain(v)), plain(v)), -1) for v in series),
                dtype=np.int64,
                count=len(series),
            )
    same = [(j, c) for j, c in enumerate(classes) if _kind(c) == kind]
    if not same:
        return out
    positions = np.array([j for j, _ in same], dtype=np.int64)
    if kind == "bool":
        flags = series.astype("boolean")
        known = flags.notna().to_numpy()
        truth = flags.to_numpy(dtype=bool, na_value=False)
        lookup = np.full(2, -1, dtype=np.int64)
        for j, c in same:
            lookup[int(c)] = j
        return np.where(known, lookup[truth.astype(np.int64)], -1)
    if kind == "number":
        found = pd.Index(np.array([c for _, c in same], dtype="float64")).get_indexer(
            series.to_numpy(dtype="float64", na_value=np.nan)
        )
    else:
        found = pd.Index([c for _, c in same], dtype=object).get_indexer(series.astype(object))
    return np.where(found >= 0, positions[found], -1)


def _series_dtype(values):
    return object if isinstance(values, (list, tuple)) else None


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def class_values(classes) -> np.ndarray:
    """The classes as an array of the contract's label dtype: bool, int64, or object (text)."""
    classes = [plain(c) for c in classes]
    kinds = {_kind(c) for c in classes}
    if kinds == {"bool"}:
        return np.array(classes, dtype=bool)
    if kinds == {"number"} and all(isinstance(c, int) for c in classes):
        return np.array(classes, dtype=np.int64)
    return np.array(classes, dtype=object)


def class_order(model_classes, classes, who: str) -> np.ndarray:
    """For each class of `classes`, the model's probability column that holds it.

    The model must give exactly the contract's classes (any order): a class missing from
    the model, or one the contract does not list, fails naming both lists.
    """
    model_classes = [plain(c) for c in model_classes]
    codes = class_codes(np.array(model_classes + [None], dtype=object)[:-1], classes)
    if len(model_classes) != len(classes) or (codes < 0).any() or len(set(codes.tolist())) != len(codes):
        raise IntegrityError(
            f"{who} gives probabilities for the classes {model_classes}, but the contract's label classes are "
            f"{list(classes)}: "
            "the model must have exactly the contract's classes (same values and types, any order)"
        )
    columns = np.empty(len(classes), dtype=np.int64)
    columns[codes] = np.arange(len(codes))
    return columns


def class_outputs(proba, model_classes, classes, who: str) -> dict[str, np.ndarray]:
    """`prediction` and `proba_<class>` (in `classes` order) from probabilities in the model's column order.

    The prediction is the most probable class (a tie goes to the model's first, as its own
    `predict` does), as a value of the contract's label dtype.
    """
    proba = np.asarray(proba, dtype=np.float32)
    columns = class_order(model_classes, classes, who)
    if proba.ndim != 2 or proba.shape[1] != len(columns):
        raise IntegrityError(
            f"{who} returned probabilities of shape {proba.shape} for its {len(columns)} classes {list(model_classes)}"
        )
    position = np.empty(len(columns), dtype=np.int64)
    position[columns] = np.arange(len(columns))  # model column -> place in `classes`
    prediction = class_values(classes)[position[proba.argmax(axis=1)]] if len(proba) else class_values(classes)[:0]
    return {PREDICTION: prediction, **{name: proba[:, columns[j]] for j, name in enumerate(proba_columns(classes))}}


def named_classes(names, classes) -> list | None:
    """The class each name stands for (the class itself, its text, or `proba_<class>`), None unless every name is
    one."""
    found = []
    for name in names:
        code = class_codes(np.array([name, None], dtype=object)[:1], classes)[0]
        if code < 0:
            text = str(name)
            code = next((j for j, c in enumerate(classes) if text in (str(plain(c)), f"{PROBA}{plain(c)}")), -1)
        if code < 0:
            return None
        found.append(plain(classes[code]))
    return found


def _as_contract_kind(labels: list, classes) -> list:
    """ONNX has no boolean class labels (skl2onnx writes False/True as 0/1): read them back as the contract's
    booleans."""
    if (
        classes
        and all(_kind(plain(c)) == "bool" for c in classes)
        and labels
        and all(_kind(v) == "number" and v in (0, 1) for v in labels)
    ):
        return [bool(v) for v in labels]
    return labels


# -- ONNX ---------------------------------------------------------------------------------------
def session_classes(session) -> list | None:
    """The classes of the probability columns as batchml wrote them into the ONNX model's metadata (None if not)."""
    text = session.get_modelmeta().custom_metadata_map.get(CLASSES_METADATA)
    return json.loads(text) if text else None


def graph_classes(blob: bytes, classes=None) -> list | None:
    """The classes an ONNX model's graph says its probability columns are: batchml's metadata, else the
    labels of the classifier (or ZipMap) node its outputs come from; None when the graph does not say."""
    import onnx

    model = onnx.load_model_from_string(blob)
    meta = {p.key: p.value for p in model.metadata_props}
    if CLASSES_METADATA in meta:
        return json.loads(meta[CLASSES_METADATA])
    producers = {name: node for node in model.graph.node for name in node.output}
    todo, seen = [o.name for o in model.graph.output], set()
    while todo:  # breadth first, from the outputs back: the nearest node that names its classes
        name = todo.pop(0)
        node = producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for attr in node.attribute:
            if attr.name in _LABEL_ATTRIBUTES and (attr.strings or attr.ints):
                labels = [s.decode() for s in attr.strings] if attr.strings else [int(i) for i in attr.ints]
                return _as_contract_kind(labels, classes)
        todo.extend(node.input)
    return None


def onnx_feed(session, part: pd.DataFrame, inputs: tuple[str, ...]) -> dict:
    """ONNX inputs from a frame: one input per column by name, or one 2-D tensor in `inputs` order."""
    declared = session.get_inputs()
    n = len(part)
    if len(declared) == 1 and declared[0].name not in part.columns:
        dtype = ORT_TYPES.get(declared[0].type, np.float32)
        matrix: np.ndarray = np.empty((n, len(inputs)), dtype=dtype)
        for j, name in enumerate(inputs):
            column = part[name]
            values = column.to_numpy()  # numpy-backed numbers: the column itself, cast as it is copied in
            if values.dtype.kind not in "iufb":  # nullable (masked) or other: its nulls as NaN
                values = column.to_numpy(dtype=dtype, na_value=np.nan)
            matrix[:, j] = values
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


def onnx_outputs(
    session, feed: dict, n: int, classes, model_classes=None, who: str = "the ONNX model"
) -> dict[str, np.ndarray]:
    """`prediction` (and `proba_<class>` for a classifier) from an ONNX model's outputs.

    A classifier's probabilities are a ZipMap (one dict per row, keyed by class) or a 2-D
    tensor whose columns are `model_classes` (default: the classes batchml wrote into the
    model's metadata); a tensor whose classes nobody says fails rather than being guessed.
    """
    outputs = session.run(None, feed)
    if not classes:
        return {PREDICTION: np.asarray(outputs[0]).reshape(n).astype(np.float32, copy=False)}
    order = list(model_classes) if model_classes is not None else session_classes(session)
    for out in outputs:
        if isinstance(out, list):  # ZipMap: one dict per row, keyed by class
            frame = pd.DataFrame(out)
            return class_outputs(
                frame.to_numpy(dtype=np.float32),
                _as_contract_kind([plain(c) for c in frame.columns], classes),
                classes,
                who,
            )
    tensors = [out for out in outputs[1:] or outputs if getattr(out, "ndim", 0) == 2 and out.dtype.kind == "f"]
    if not tensors:
        raise IntegrityError(
            f"{who} has no probability output for its {len(classes)} classes (outputs: "
            f"{[o.name for o in session.get_outputs()]})"
        )
    if order is None:
        raise IntegrityError(
            f"{who} returns class probabilities as a bare tensor that does not say which column is which class "
            f"(no class labels in its graph or metadata); cannot name proba_<class> for {list(classes)} without "
            "guessing"
        )
    return class_outputs(tensors[0], order, classes, who)
