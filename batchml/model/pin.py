"""ModelPin: the model version a date is scored with, as recorded under pins/date=D.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

ONNX_ARTIFACT = "onnx/model.onnx"  # where batchml logs a version's ONNX file in its run


@dataclass(frozen=True)
class ModelPin:
    """The model version a date is scored with, fixed the first time the date resolves it.

    `runtime` says how it is scored (onnx | converted | pyfunc), `sha256` what exactly: the
    ONNX file, or the digest of the MLflow model's folder (for `converted`, the sklearn model
    it was converted from; `converted_sha256` is the ONNX file). `inputs` are the columns it
    takes, in order, with their kinds in `input_types` when the signature gives them.
    `reference` says where the version's reference profile is, decided with the rest at pin
    time, so scoring a pinned date needs nothing from the registry once its model is cached.
    """

    name: str
    version: str
    sha256: str
    alias: str
    run_id: str
    runtime: str = "onnx"
    flavor: str = "batchml"
    inputs: tuple[str, ...] = ()
    classes: tuple | None = None
    artifact: str = ONNX_ARTIFACT  # run-relative ONNX file, or a models:/ URI for a whole model
    note: str = ""
    input_types: tuple[str, ...] = ()  # per input, from the signature: string | number | integer | boolean | datetime
    converted_sha256: str = ""  # runtime converted: the sha256 of the ONNX file made from the sklearn model
    reference: str | None = (
        None  # the run's reference profile artifact; "" when the version has none; None: pinned before pins said
    )

    @property
    def scored_sha256(self) -> str:
        """The sha256 of what workers load: the converted ONNX file, or the pinned artifact itself."""
        return self.converted_sha256 if self.runtime == "converted" else self.sha256

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelPin:
        body = json.loads(text)
        body["inputs"] = tuple(body.get("inputs") or ())
        body["input_types"] = tuple(body.get("input_types") or ())
        body["classes"] = tuple(body["classes"]) if body.get("classes") else None
        return cls(**body)
