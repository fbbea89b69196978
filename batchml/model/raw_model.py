"""The MLflow model batchml registers: raw contract rows in, the batch's outputs out.

This module travels inside every model batchml registers (as `batchml_model.raw_model`,
with `contract.py` and `errors.py` beside it), so it imports nothing else of batchml: a
model must load where batchml is not installed. Its predict is the batch path row for row:
the contract coerces and checks the raw values, the project's features transform makes
the model inputs, and ONNX Runtime (the same file the batch scores) or, when the model
could not be exported, the fitted estimator predicts.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from batchml.dataset.contract import REASON, Column, Contract, validate
from batchml.model.onnx_io import PREDICTION, class_outputs, onnx_feed, onnx_outputs, session_classes

ROW = "__row__"  # the request's row number, the key of a model's input


def raw_contract(contract: Contract) -> Contract:
    """The contract of the rows a model is asked about: every column but the label, keyed by row number.

    Each row is a question of its own: the same key asked twice is answered twice, not refused.
    """
    label = contract.label.column if contract.label else None
    columns = tuple(c for c in contract.columns if c.name != label)
    return replace(contract, columns=(*columns, Column(ROW, "integer", nullable=False)), key=(ROW,), label=None)


class RawRowsModel(PythonModel):
    """Predicts on raw rows of the dataset contract.

    Artifacts: `contract` (the YAML), `sklearn` (the estimator as an MLflow sklearn model)
    and `onnx` (its export, scored instead whenever present). Model config: `transform` ('module:function',
    empty for none), `inputs` (the model's inputs, in order), `classes` (classifiers: the fitted classes, in the
    order of the estimator's probability columns). A classifier's `proba_<class>` columns follow the contract's
    class order and each holds the probability of its class, matched by identity.
    """

    def load_context(self, context):
        config = dict(context.model_config or {})
        contract = Contract.load(context.artifacts["contract"])
        self.contract = raw_contract(contract)
        self.inputs = tuple(config["inputs"])
        self.model_classes: Sequence | None = tuple(config["classes"]) if config.get("classes") else None
        named = contract.label.classes if contract.label and contract.label.classes else None
        self.classes = tuple(named) if named and self.model_classes else self.model_classes
        transform = config.get("transform") or ""
        self.transform = _function(transform) if transform else None
        self.session = self.estimator = None
        if "onnx" in context.artifacts:
            import onnxruntime as ort

            self.session = ort.InferenceSession(context.artifacts["onnx"], providers=["CPUExecutionProvider"])
            self.model_classes = session_classes(self.session) or self.model_classes  # what the file itself says first
        else:
            import mlflow.sklearn

            self.estimator = mlflow.sklearn.load_model(context.artifacts["sklearn"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """`prediction` (and `proba_<class>` for a classifier) for each raw row; rows the contract refuses fail the
        call."""
        rows = pd.DataFrame(model_input).reset_index(drop=True)
        checked = validate(rows.assign(**{ROW: np.arange(len(rows))}), self.contract, None, origin="model input")
        if len(checked.rejected):
            reasons = " | ".join(f"row {r[ROW]}: {r[REASON]}" for _, r in checked.rejected.head(5).iterrows())
            raise ValueError(
                f"{len(checked.rejected)} of {len(rows)} rows break the dataset contract {self.contract.dataset}: "
                f"{reasons}"
            )
        return self.predict_features(self.features(checked.valid.drop(columns=[ROW])))

    def features(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Validated rows -> the model's inputs, through the project's transform (as at scoring)."""
        if self.transform is None:
            return rows
        out = self.transform(rows.copy())
        return out.reset_index(drop=True)

    def predict_features(self, features: pd.DataFrame) -> pd.DataFrame:
        """The outputs for model inputs already made by the features transform (what the batch holds)."""
        n = len(features)
        if self.session is not None:
            outputs = onnx_outputs(
                self.session, onnx_feed(self.session, features, self.inputs), n, self.classes, self.model_classes
            )
        else:
            outputs = _estimator_outputs(self.estimator, features[list(self.inputs)], self.classes)
        return pd.DataFrame(outputs)


def _function(spec: str):
    module, _, name = spec.partition(":")
    fn = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn


def _estimator_outputs(estimator, frame: pd.DataFrame, classes) -> dict[str, np.ndarray]:
    if not classes:
        return {PREDICTION: np.asarray(estimator.predict(frame)).astype(np.float32)}
    return class_outputs(estimator.predict_proba(frame), list(estimator.classes_), classes, "the estimator")
