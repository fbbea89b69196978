"""How a pinned version is scored: its input contract, and the one-time ONNX conversion of an sklearn model.

A version's runtime is decided once per date, where the date's features exist: the
`onnx` flavour runs on ONNX Runtime as it is; an `sklearn` model is converted to ONNX with
skl2onnx, checked against its own predictions on a sample of the date's rows, and scored
as `converted` when they agree (else `pyfunc`, the reason recorded); anything else that
MLflow loads as `python_function` runs as `pyfunc`.

The conversion is cached by the version's artifact digest:
`<cache_dir>/<name>/<version>/converted-<digest>.onnx` and `converted-<digest>.json` (the
outcome), so a version is converted once per host, and a failed conversion is not retried
on every date. Workers verify the converted file's own sha256, recorded in the pin.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from batchml.base.errors import IntegrityError, SchemaError
from batchml.base.provenance import sha256_bytes, sha256_file
from batchml.base.setting import count, number, setting
from batchml.model.onnx_io import graph_classes, session_classes
from batchml.model.pin import ModelPin
from batchml.store.manifest import Manifest

log = logging.getLogger(__name__)

STRING, NUMBER, INTEGER, BOOLEAN, DATETIME = "string", "number", "integer", "boolean", "datetime"
_SIGNATURE_KINDS = {
    "string": STRING,
    "double": NUMBER,
    "float": NUMBER,
    "long": INTEGER,
    "integer": INTEGER,
    "boolean": BOOLEAN,
    "datetime": DATETIME,
}
_ONNX_KINDS = {
    "tensor(string)": STRING,
    "tensor(float)": NUMBER,
    "tensor(double)": NUMBER,
    "tensor(int64)": INTEGER,
    "tensor(int32)": INTEGER,
}
_ONNX_KINDS["tensor(bool)"] = BOOLEAN


def column_kind(dtype: str) -> str:
    """What a feature column holds, from its pandas dtype name."""
    if dtype.startswith("datetime"):
        return DATETIME
    if dtype in ("bool", "boolean"):
        return BOOLEAN
    if dtype.lower().startswith(("int", "uint")):
        return INTEGER
    if dtype.lower().startswith("float"):
        return NUMBER
    return STRING  # object, str, string, category


def accepts(input_kind: str, column: str) -> bool:
    """Whether a model input of `input_kind` can take a column of kind `column` without losing meaning."""
    if input_kind == NUMBER:
        return column in (NUMBER, INTEGER, BOOLEAN)
    if input_kind == INTEGER:
        return column in (INTEGER, BOOLEAN)
    if input_kind == BOOLEAN:
        return column in (BOOLEAN, INTEGER)
    return column == input_kind


def signature_kinds(signature) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A column-based MLflow signature's input names and kinds (empty when there is none)."""
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return (), ()
    names, kinds = [], []
    for spec in signature.inputs.inputs:
        names.append(spec.name)
        kinds.append(_SIGNATURE_KINDS.get(getattr(spec.type, "name", str(spec.type)), NUMBER))
    return tuple(names), tuple(kinds)


def onnx_kinds(onnx_file: str | os.PathLike) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An ONNX model's named inputs and kinds; empty for one 2-D tensor (its columns are not named)."""
    import onnxruntime as ort

    declared = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).get_inputs()
    if len(declared) == 1 and len(declared[0].shape) == 2 and declared[0].shape[1] not in (1,):
        return (), ()
    return tuple(d.name for d in declared), tuple(_ONNX_KINDS.get(d.type, NUMBER) for d in declared)


def check_signature(pin: ModelPin, columns: dict[str, str], date: dt.date) -> None:
    """Fail before any scoring when the version takes a column the features lack or of a kind they cannot give."""
    uri = f"models:/{pin.name}/{pin.version}"
    missing = [c for c in pin.inputs if c not in columns]
    wrong = [
        f"{c} ({column_kind(columns[c])} column, model takes {kind})"
        for c, kind in zip(pin.inputs, pin.input_types, strict=False)  # no types without a signature
        if c in columns and not accepts(kind, column_kind(columns[c]))
    ]
    if missing or wrong:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"incompatible type(s): {'; '.join(wrong)}"] if wrong else []
        )
        raise SchemaError(
            f"{date}: the signature of {uri} does not fit the features of the date: {'; '.join(parts)} "
            f"(features have {', '.join(f'{c}: {t}' for c, t in columns.items())}); check the contract, [features] "
            "transform and the model's signature"
        )


def check_inputs(pin: ModelPin, features: Manifest, date: dt.date) -> tuple[str, ...]:
    """The model's inputs, checked (names and types) against the date's feature columns before any scoring."""
    columns = features.extra.get("columns") or {}
    key = set(features.extra.get("key") or ())
    if not pin.inputs:  # no signature: every feature column, by name
        log.warning("models:/%s/%s has no signature: scored with every feature column, by name", pin.name, pin.version)
        return tuple(c for c in columns if c not in key) or tuple(columns)
    check_signature(pin, columns, date)
    return pin.inputs


@dataclasses.dataclass(frozen=True)
class RuntimeChoice:
    """[runtime] settings: whether sklearn models are converted, and the parity check on the date's rows (the home of
    their defaults)."""

    convert_sklearn: bool = setting(
        True,
        "Score an sklearn-flavour version as ONNX converted with skl2onnx when it agrees with the model; off: pyfunc.",
    )
    parity_rows: int = count(
        2000, "Rows of the date's features the conversion is checked on (and the baseline bins made from)."
    )
    parity_rtol: float = number(
        1e-3, "Relative tolerance of the converted model's outputs against the sklearn model's own.", low=0
    )
    parity_atol: float = number(
        1e-3, "Absolute tolerance of that check (probabilities, or the regression's unit).", low=0
    )


def decide_runtime(
    registry, pin: ModelPin, features: Manifest, sample: Callable[[int], pd.DataFrame], cache_dir, choice: RuntimeChoice
) -> ModelPin:
    """The pin checked against the date's features, with its runtime chosen; its artifacts cached and verified.

    In order: the version's artifacts fetched (refused when their sha256 differs), its
    signature checked against the features' columns and types, and an sklearn model
    converted to ONNX when `choice` allows and it agrees with itself on `sample(rows)` of the
    date's rows (the converted file is then fetched into the cache and verified too).
    """
    date = dt.date.fromisoformat(features.date)
    model_dir = registry.fetch(pin, cache_dir)
    inputs = check_inputs(pin, features, date)  # names and types, before any scoring
    if pin.flavor != "sklearn" or not choice.convert_sklearn:
        return pin
    pin = choose_runtime(
        pin,
        model_dir,
        sample(choice.parity_rows)[list(inputs)],
        cache_dir,
        rtol=choice.parity_rtol,
        atol=choice.parity_atol,
    )
    registry.fetch(pin, cache_dir)
    return pin


def pinned_model(
    registry,
    pin: ModelPin,
    features: Callable[[], Manifest],
    sample: Callable[[int], pd.DataFrame],
    cache_dir,
    choice: RuntimeChoice,
) -> Path:
    """The pinned model in the local cache, verified; a converted file missing on this host is converted again.

    Only then are the date's features read (`features()`, its manifest) and sampled. Converting
    again must give the ONNX file the date was pinned to (same sha256), or the date is not
    scored with it: IntegrityError names both digests.
    """
    if pin.runtime == "converted" and not converted_paths(cache_dir, pin)[0].exists():
        manifest = features()
        again = decide_runtime(
            registry,
            dataclasses.replace(pin, runtime="pyfunc", converted_sha256=""),
            manifest,
            sample,
            cache_dir,
            choice,
        )
        if again.converted_sha256 != pin.converted_sha256:
            raise IntegrityError(
                f"models:/{pin.name}/{pin.version}: converting it again gave ONNX sha256 "
                f"{again.converted_sha256 or 'none'} "
                f"({again.note}), but {manifest.date} was pinned to {pin.converted_sha256}; refusing to score with it"
            )
    return registry.fetch(pin, cache_dir)


# -- sklearn -> ONNX, once per version ---------------------------------------------------------
def converted_paths(cache_dir: str | os.PathLike, pin: ModelPin) -> tuple[Path, Path]:
    """The converted ONNX file of a version and the JSON of its conversion's outcome, keyed by the artifacts' digest."""
    folder = Path(cache_dir, pin.name, pin.version)
    return folder / f"converted-{pin.sha256}.onnx", folder / f"converted-{pin.sha256}.json"


def choose_runtime(
    pin: ModelPin, model_dir: str | os.PathLike, sample: pd.DataFrame, cache_dir, *, rtol: float, atol: float
) -> ModelPin:
    """The pin with its runtime decided: an sklearn model converted to ONNX when it agrees on `sample`, else as it
    was."""
    if pin.flavor != "sklearn" or pin.runtime != "pyfunc":
        return pin
    onnx_file, outcome_file = converted_paths(cache_dir, pin)
    outcome = json.loads(outcome_file.read_text()) if outcome_file.exists() else None
    if outcome and not outcome.get("sha256"):  # this version does not convert: not tried, nor warned about, again
        log.info(
            "models:/%s/%s scored with pyfunc: its ONNX export failed before (%s)", pin.name, pin.version, outcome_file
        )
        return dataclasses.replace(pin, note=_join(pin.note, f"pyfunc: {outcome['note']}"))
    model = _sklearn_model(model_dir)
    inputs = list(pin.inputs) or list(sample.columns)
    sample = sample[inputs]
    if outcome and outcome.get("sha256") and onnx_file.exists() and sha256_file(onnx_file) == outcome["sha256"]:
        cached = onnx_file.read_bytes()  # converted before: only the parity on this date's rows is checked again
        blob: bytes | None = cached
        why = onnx_parity(cached, model, sample, pin.classes, rtol=rtol, atol=atol)
        ok, note = (
            not why,
            why
            or (
                f"converted to ONNX (cached), parity checked on {len(sample)} of the date's rows (rtol {rtol}, atol "
                f"{atol})"
            ),
        )
    else:
        from batchml.model.training import to_onnx_bytes

        blob, note = to_onnx_bytes(
            model, sample, classes=list(pin.classes) if pin.classes else None, rtol=rtol, atol=atol
        )
        ok = blob is not None
        if blob is not None:
            note = f"converted to ONNX, parity checked on {len(sample)} of the date's rows (rtol {rtol}, atol {atol})"
            _write_atomic(onnx_file, blob)
        if ok or note.startswith("ONNX export failed"):  # a disagreement is date-specific: only failures are cached
            _write_atomic(
                outcome_file,
                json.dumps({"sha256": sha256_bytes(blob) if blob is not None else "", "note": note}).encode(),
            )
    if not ok or blob is None:
        log.warning("models:/%s/%s scored with pyfunc: %s", pin.name, pin.version, note)
        return dataclasses.replace(pin, note=_join(pin.note, f"pyfunc: {note}"))
    log.info("models:/%s/%s: %s", pin.name, pin.version, note)
    return dataclasses.replace(
        pin, runtime="converted", converted_sha256=sha256_bytes(blob), inputs=tuple(inputs), note=_join(pin.note, note)
    )


def onnx_parity(blob: bytes, model, sample: pd.DataFrame, classes, *, rtol: float, atol: float) -> str:
    """Empty when the ONNX model gives the sklearn model's outputs on `sample` (class by class), else why not."""
    import onnxruntime as ort

    from batchml.model.onnx_io import onnx_feed, onnx_outputs
    from batchml.model.training import estimator_outputs, onnx_frame, outputs_disagree

    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    model_classes = (
        (session_classes(session) or graph_classes(blob, classes)) if classes else None
    )  # metadata first: no onnx import
    got = onnx_outputs(
        session, onnx_feed(session, onnx_frame(sample), tuple(sample.columns)), len(sample), classes, model_classes
    )
    worst = outputs_disagree(got, estimator_outputs(model, sample, classes), classes, rtol=rtol, atol=atol)
    return (
        f"ONNX conversion disagrees with the model by up to {worst} on {len(sample)} of the date's rows"
        if worst
        else ""
    )


def _sklearn_model(model_dir):
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(model_dir))


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as fh:
        fh.write(data)
    os.replace(fh.name, path)
