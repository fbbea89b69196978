"""What makes a version batchml registers a first-class MLflow model.

The logged model is `batchml.model.raw_model.RawRowsModel` as MLflow "model from code": it takes
raw contract rows, so `mlflow.pyfunc.load_model`, `mlflow models predict/serve` and
`spark_udf` work on the rows a user has and agree with the batch. Its code travels in the
model (`code/`): a package `batchml_model` holding `raw_model.py`, `onnx_io.py`, `contract.py` and
`errors.py` (copied, their batchml imports made relative: a model must load where batchml
is not installed, and a different package name cannot shadow an installed batchml), and
the project's hooks module with the project modules it imports. Its artifacts are the
contract YAML, the ONNX file the batch scores (when the export worked) and the fitted
estimator as an MLflow sklearn model on the model inputs (ESTIMATOR_PATH; the pyfunc scores it
only without ONNX).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from batchml.dataset.contract import Contract

PACKAGE = "batchml_model"
SHIPPED = {
    "raw_model": "model",
    "onnx_io": "model",
    "contract": "dataset",
    "errors": "base",
}  # batchml modules copied flat into the model, by sub-package
MODEL_CODE = f'''"""A batchml-registered model: raw contract rows in, predictions out ({PACKAGE}/raw_model.py)."""

from mlflow.models import set_model

from {PACKAGE}.raw_model import RawRowsModel

set_model(RawRowsModel())
'''
ESTIMATOR_PATH = (
    "artifacts/sklearn"  # in the registered model: the fitted estimator, an MLflow sklearn model on the model inputs
)
REQUIREMENTS = ("scikit-learn", "onnxruntime", "pandas", "numpy", "pyarrow", "mlflow", "pyyaml", "skops")


@dataclass(frozen=True)
class Packaging:
    """What the registered model needs beyond the estimator: the raw rows it takes and how they become inputs."""

    contract: Contract
    example: pd.DataFrame  # a few valid rows as a user sends them (raw_example): the input example
    transform: str = ""  # the project's [features] transform, 'module:function'
    window: tuple[str, str] = ("", "")  # the training window (first, last date), for the logged dataset


def raw_example_schema(contract: Contract):
    """The columns of the input example, one per raw contract column, in the kinds JSON and CSV give.

    Timestamps are ISO 8601 text (JSON has no datetime; the contract parses text in its own
    timezone as the batch does), nullable integers doubles (NaN where missing). This describes
    the example only: the model's signature declares no input types (see `log_model`).
    """
    from mlflow.types.schema import ColSpec, Schema

    kinds = {"float": "double", "boolean": "boolean", "string": "string", "datetime": "string"}
    label = contract.label.column if contract.label else None
    return Schema(
        [
            ColSpec(("double" if c.nullable else "long") if c.dtype == "integer" else kinds[c.dtype], c.name)
            for c in contract.columns
            if c.name != label
        ]
    )


def raw_example(rows: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Validated rows as a user sends them: the signature's columns, timestamps as ISO text."""
    out = {}
    for spec in raw_example_schema(contract).inputs:
        col, values = contract.column(spec.name), rows[spec.name]
        if col.dtype == "datetime":
            out[spec.name] = values.map(lambda v: v.isoformat() if pd.notna(v) else None).astype(object)
        elif spec.type.name == "double":
            out[spec.name] = values.to_numpy(dtype="float64", na_value=np.nan)
        elif spec.type.name == "long":
            out[spec.name] = values.to_numpy(dtype="int64")
        elif spec.type.name == "boolean":
            out[spec.name] = values.to_numpy(dtype=bool)
        else:
            out[spec.name] = values.astype(object).where(values.notna(), None)
    return pd.DataFrame(out).reset_index(drop=True)


def contract_yaml(contract: Contract) -> str:
    """The contract as YAML that Contract.from_dict reads back to the same rules."""
    columns = {}
    for c in contract.columns:
        spec = {"dtype": c.dtype, "nullable": c.nullable}
        spec.update({k: v for k, v in (("min", c.min), ("max", c.max)) if v is not None})
        if c.allowed is not None:
            spec["allowed"] = list(c.allowed)
        if c.source:
            spec["source"] = list(c.source)
        columns[c.name] = spec
    body: dict[str, Any] = {
        "dataset": contract.dataset,
        "key": list(contract.key),
        "timezone": contract.timezone,
        "columns": columns,
    }
    if contract.timestamp:
        body["timestamp"] = contract.timestamp
    if contract.label:
        body["label"] = {"column": contract.label.column, "task": contract.label.task}
        if contract.label.classes:
            body["label"]["classes"] = list(contract.label.classes)
    return yaml.safe_dump(json.loads(json.dumps(body, default=_plain)), sort_keys=False)


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def requirements() -> list[str]:
    """pip requirements of the packaged code, pinned to the versions that trained and checked it (skops reads the
    estimator)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


def build_code(folder: Path, transform: str) -> list[str]:
    """Write the model's code into `folder`: the shipped package, the model-from-code file and the project's modules.

    Returns the code paths to log (everything but the model-from-code file, `folder/model.py`).
    """
    package = folder / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        '"""batchml code shipped inside a registered model; see batchml/model/packaged.py."""\n'
    )
    here = Path(__file__).parents[1]
    for name, stage in SHIPPED.items():
        (package / f"{name}.py").write_text(_relative_imports((here / stage / f"{name}.py").read_text(), name))
    (folder / "model.py").write_text(MODEL_CODE)
    return [str(package), *(str(p) for p in project_modules(transform))]


def _relative_imports(source: str, name: str) -> str:
    """`from batchml.pkg.x import` -> `from .x import`; any other batchml import fails packaging, naming it."""
    out = re.sub(r"\bfrom batchml\.(?:\w+\.)?(\w+) import", r"from .\1 import", source)
    for node in ast.walk(ast.parse(out)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        level = getattr(node, "level", 0)
        for imported in names:
            top = imported.split(".")[0]
            if (level == 0 and top == "batchml") or (level == 1 and top not in SHIPPED):
                raise ImportError(
                    f"batchml/{name}.py imports {imported!r}, which is not shipped in the model ({', '.join(SHIPPED)})"
                )
    return out


def project_modules(transform: str) -> list[Path]:
    """The transform's module (a file, or its top package) and the project modules beside it that it imports."""
    if not transform:
        return []
    top = transform.partition(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.origin:
        raise ImportError(f"[features] transform = {transform}: cannot find module {top!r} to package with the model")
    first = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
    folder, found, todo = first.parent, [], [first]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.append(path)
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for imported in _top_imports(source):
                for candidate in (folder / f"{imported}.py", folder / imported):
                    if (candidate.is_file() or (candidate / "__init__.py").is_file()) and candidate not in found:
                        todo.append(candidate)
    return found


def _top_imports(source: Path) -> set[str]:
    tree = ast.parse(source.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@contextlib.contextmanager
def importable(folder: Path):
    """`folder` first on sys.path while MLflow runs the model code at logging; then the process is as before.

    Modules imported from `folder` (or from MLflow's temporary copy of the model) are
    forgotten, so the process keeps importing the project's and batchml's own.
    """
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        added = tuple(
            p.rstrip(os.sep) + os.sep for p in sys.path if p not in saved_path
        )  # this folder, and the code/ of each model MLflow loaded
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            where = getattr(sys.modules[name], "__file__", None) or ""
            if name.startswith("code_model_") or (added and where.startswith(added)):
                del sys.modules[name]


def log_model(
    model,
    onnx_path: Path | None,
    packaging: Packaging,
    *,
    inputs: list[str],
    classes,
    work: Path,
    estimator_signature,
    trusted_types: list[str],
):
    """Log the raw-rows model in the active run; returns MLflow's ModelInfo.

    The estimator inside it is saved with `estimator_signature` (on the model inputs) and
    the types skops must trust to read it back.

    The raw-rows model's signature has outputs and no inputs, on purpose: MLflow enforces an
    input schema before the model sees a row, and no column type of its admits every form the
    team's own files give the same column (a timestamp as datetime64 from Parquet and as text
    from CSV or JSON; a nullable integer as Int64, int64 or float64), so any declared type
    refuses some of them ("Can not safely convert datetime64[us] to <U0"). The contract inside
    the model is the input schema: it coerces each form as the batch does and refuses a row
    naming the row, column and rule. The input example (`raw_example`) lists the columns.
    `spark_udf` takes them as one struct: `udf(struct(*columns))`.
    """
    import mlflow
    from mlflow.models import ModelSignature, infer_signature

    contract_file = work / "contract.yaml"
    contract_file.write_text(contract_yaml(packaging.contract))
    # Requirements given, not inferred: inferring runs the model in a subprocess (about 6 s).
    estimator = work / Path(ESTIMATOR_PATH).name
    mlflow.sklearn.save_model(
        model,
        str(estimator),
        signature=estimator_signature,
        skops_trusted_types=trusted_types,
        pip_requirements=requirements(),
    )
    artifacts = {"contract": str(contract_file), "sklearn": str(estimator)}
    if onnx_path is not None:
        artifacts["onnx"] = str(onnx_path)
    config = {
        "transform": packaging.transform,
        "inputs": list(inputs),
        "classes": [c.item() if hasattr(c, "item") else c for c in classes] if classes else None,
    }
    code_paths = build_code(work / "code", packaging.transform)
    example = packaging.example
    with importable(work / "code"):
        output = _example_output(artifacts, config, example)
        signature = ModelSignature(inputs=None, outputs=infer_signature(example, output).outputs)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(work / "code" / "model.py"),
            artifacts=artifacts,
            model_config=config,
            code_paths=code_paths,
            signature=signature,
            input_example=example,
            pip_requirements=requirements(),
        )


def _example_output(artifacts: dict, config: dict, example: pd.DataFrame) -> pd.DataFrame:
    """The packaged model's own output on the example rows (names the output signature)."""
    from mlflow.pyfunc import PythonModelContext

    raw_model = importlib.import_module(f"{PACKAGE}.raw_model")
    instance = raw_model.RawRowsModel()
    instance.load_context(PythonModelContext(artifacts=artifacts, model_config=config))
    return instance.predict(None, example)
