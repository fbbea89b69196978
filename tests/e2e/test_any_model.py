"""Any model a registry holds, registered the way a data scientist would, scored by DailyScore.

A tiny project written into tmp_path (contract + hooks module: a table of homes with a
numeric column with gaps, an integer and two text columns); models logged with MLflow's own
APIs (`mlflow.sklearn`, `mlflow.onnx`, a `PythonModel`), as regressor and classifier; the
batch output compared with the model's own `predict` / `predict_proba` on the same rows.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import shutil
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from luigi import build as luigi_build
from luigi.execution_summary import LuigiStatusCode

import pipelines
from batchml.model.registry import _fluent_uris
from batchml.store.layout import FEATURES, PREDICTIONS
from tasks.config import make_storage
from tasks.daily import DailyScore
from tasks.model import read_pin
from tasks.monitor import DetectDrift

DAY = dt.date(2026, 3, 2)
CLASSES = ["high", "low", "mid"]  # sorted, as scikit-learn orders them

CONTRACT = """\
dataset: homes
key: [id]
timestamp: listed_at
columns:
  id:        {dtype: integer, nullable: false}
  listed_at: {dtype: datetime, nullable: false}
  area:      {dtype: float, nullable: true, min: 10, max: 500}
  rooms:     {dtype: integer, nullable: false, min: 1, max: 9}
  city:      {dtype: string, nullable: false}
  kind:      {dtype: string, nullable: false}
label:
  column: %s
  task: %s
"""
CLASSIFIER_LABEL = "segment", "classification\n  classes: [high, low, mid]"

HOOKS = '''\
"""A tiny project's hooks: a seeded table of homes and the features transform."""
import datetime as dt

import numpy as np
import pandas as pd

CITIES = ["north", "south", "east", "west"]
KINDS = ["flat", "house"]


def rows(date, *, n=1200, seed=0):
    """The homes listed on `date` (deterministic per date)."""
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    rng = np.random.default_rng(seed + date.toordinal())
    area = rng.uniform(20, 300, n).round(1)
    area[rng.random(n) < 0.05] = np.nan
    start = pd.Timestamp(date)
    return pd.DataFrame(
        {
            "id": date.toordinal() * 100_000 + np.arange(n),
            "listed_at": start + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "area": area,
            "rooms": rng.integers(1, 8, n),
            "city": rng.choice(CITIES, n),
            "kind": rng.choice(KINDS, n),
        }
    )


def features(rows):
    """The model inputs: everything but the timestamp."""
    return rows[["area", "rooms", "city", "kind"]].reset_index(drop=True)


def price(frame):
    """The regression target of the training rows."""
    by_city = frame["city"].map({"north": 50.0, "south": 0.0, "east": 20.0, "west": -10.0})
    bonus = by_city + np.where(frame["kind"] == "house", 40.0, 0.0)
    return 2.0 * frame["area"].fillna(120.0) + 15.0 * frame["rooms"] + bonus


def segment(frame):
    """The class of the training rows."""
    p = price(frame)
    return np.where(p < 250, "low", np.where(p < 450, "mid", "high"))
'''
INPUTS = ["area", "rooms", "city", "kind"]
TRUSTED = ["numpy.dtype"]  # what skops asks a data scientist to trust for these pipelines


@pytest.fixture
def project(pipeline, tmp_path):
    """Point the pipeline at the tiny project; returns (hooks module, apply(model name, task, **more settings))."""
    (tmp_path / "homes_hooks.py").write_text(HOOKS)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("homes_hooks", None)
    hooks = importlib.import_module("homes_hooks")
    fluent = _fluent_uris(
        f"sqlite:///{tmp_path / 'mlflow.db'}"
    )  # the data scientist's MLflow calls; put back afterwards
    fluent.__enter__()

    def apply(model: str, task: str = "regression", **more):
        label = CLASSIFIER_LABEL if task == "classification" else ("price", "regression")
        (tmp_path / "contract.yaml").write_text(CONTRACT % label)
        settings = {
            "source": {"kind": "python", "generator": "homes_hooks:rows", "options": json.dumps({"n": 1200})},
            "features": {"transform": "homes_hooks:features"},
            "labels": {"transform": ""},
            "training": {"recipe": ""},
            "schema": {"path": str(tmp_path / "contract.yaml")},
            "storage": {"rows_per_file": "400"},
            "drift": {"exclude": "[]", "baseline_days": "2"},
            "checks": {"max_null_rate": "0.2"},  # area has gaps on purpose
            "runtime": {"convert_sklearn": "true"},
            "mlflow": {"registered_model": model, "cold_start": "false"},
        }
        for section, values in more.items():
            settings.setdefault(section, {}).update(values)
        pipeline(settings)

    yield hooks, apply
    sys.path.remove(str(tmp_path))
    sys.modules.pop("homes_hooks", None)
    fluent.__exit__(None, None, None)


def training_frame(hooks, task: str) -> tuple[pd.DataFrame, np.ndarray]:
    frame = hooks.features(pd.concat([hooks.rows(DAY - dt.timedelta(days=d)) for d in (30, 31)], ignore_index=True))
    return frame, (hooks.segment(frame) if task == "classification" else hooks.price(frame).to_numpy())


def sklearn_pipeline(task: str):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), ["area", "rooms"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "kind"]),
        ]
    )
    return Pipeline(
        [
            ("prep", columns),
            ("model", LogisticRegression(max_iter=2000) if task == "classification" else LinearRegression()),
        ]
    )


def log_sklearn(hooks, task: str, name: str):
    """An sklearn Pipeline logged and registered with mlflow.sklearn, alias set; returns the fitted pipeline."""
    x, y = training_frame(hooks, task)
    model = sklearn_pipeline(task).fit(x, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", input_example=x.head(5), registered_model_name=name, skops_trusted_types=TRUSTED
        )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    return model


def onnx_of(model, x: pd.DataFrame, task: str):
    """skl2onnx's conversion of a fitted pipeline from a DataFrame: one input per column, text as string tensors."""
    from skl2onnx import to_onnx

    frame = pd.DataFrame(
        {
            c: x[c].astype(object) if c in ("city", "kind") else x[c].astype("float32" if c == "area" else "int64")
            for c in x
        }
    )
    options = {id(model.steps[-1][1]): {"zipmap": False}} if task == "classification" else None
    return to_onnx(model, frame, target_opset={"": 17, "ai.onnx.ml": 3}, options=options)


def log_onnx(hooks, task: str, name: str):
    """A pipeline converted with skl2onnx and logged with mlflow.onnx; regressors as one 2-D tensor of the numeric
    columns."""
    from mlflow.models import infer_signature

    x, y = training_frame(hooks, task)
    if task == "regression":  # the other shape: one float tensor, columns in the signature's order
        from skl2onnx import to_onnx
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LinearRegression
        from sklearn.pipeline import make_pipeline

        numeric = x[["area", "rooms"]].astype("float32")
        model = make_pipeline(SimpleImputer(strategy="median"), LinearRegression()).fit(numeric.to_numpy(), y)
        onx = to_onnx(model, numeric.to_numpy()[:5], target_opset={"": 17, "ai.onnx.ml": 3})
        signature = infer_signature(x[["area", "rooms"]], y[:5])
    else:
        model = sklearn_pipeline(task).fit(x, y)
        onx = onnx_of(model, x, task)
        signature = None  # inputs by name, from the ONNX graph
    with mlflow.start_run():
        mlflow.onnx.log_model(onx, name="model", signature=signature, registered_model_name=name)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    return model


class HomesModel(mlflow.pyfunc.PythonModel):
    """A data scientist's own model: preprocessing in predict, coefficients fitted with numpy."""

    def __init__(self, classes=None):
        self.classes = classes

    @staticmethod
    def design(frame: pd.DataFrame) -> np.ndarray:
        area = frame["area"].astype("float64").fillna(120.0).to_numpy()
        cols = [np.ones(len(frame)), area, frame["rooms"].to_numpy(dtype="float64")]
        cols += [(frame["city"] == c).to_numpy(dtype="float64") for c in ("north", "east", "west")]
        return np.column_stack([*cols, (frame["kind"] == "house").to_numpy(dtype="float64")])

    def fit(self, frame, y):
        x = self.design(frame)
        if self.classes:  # one least-squares scorer per class, softmax over them
            self.coef = np.column_stack(
                [np.linalg.lstsq(x, (y == c).astype(float), rcond=None)[0] for c in self.classes]
            )
        else:
            self.coef = np.linalg.lstsq(x, y, rcond=None)[0]
        return self

    def predict(self, context, model_input, params=None):
        scores = self.design(model_input) @ self.coef
        if not self.classes:
            return scores
        e = np.exp(4 * (scores - scores.max(axis=1, keepdims=True)))
        return pd.DataFrame(e / e.sum(axis=1, keepdims=True), columns=self.classes)


class BrokenDependency(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import batchml_no_such_package  # noqa: F401

    def predict(self, context, model_input, params=None):
        return np.zeros(len(model_input))


def log_pyfunc(hooks, task: str, name: str, model=None):
    from mlflow.models import infer_signature

    x, y = training_frame(hooks, task)
    model = model or HomesModel(CLASSES if task == "classification" else None).fit(x, y)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=infer_signature(x.head(5)), registered_model_name=name
        )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    return model


def build(*tasks):
    pipelines._failures.clear()
    return luigi_build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def scored(day=DAY) -> pd.DataFrame:
    """The committed predictions of `day` joined with the features they were made from, by key."""
    storage = make_storage()
    features, preds = storage.read_table(FEATURES, day), storage.read_table(PREDICTIONS, day)
    return features.merge(preds, on="id", validate="one_to_one")


def own_outputs(model, frame: pd.DataFrame, task: str, flavour: str) -> np.ndarray:
    """What the model itself says on the rows: predict, or predict_proba in CLASSES order."""
    x = frame[INPUTS]
    if flavour == "onnx" and task == "regression":
        return model.predict(x[["area", "rooms"]].to_numpy(dtype="float32"))
    if flavour == "pyfunc":
        out = model.predict(None, x)
        return out[CLASSES].to_numpy() if task == "classification" else out
    return model.predict_proba(x) if task == "classification" else model.predict(x)


LOGGERS = {"sklearn": log_sklearn, "onnx": log_onnx, "pyfunc": log_pyfunc}
RUNTIMES = {"sklearn": "converted", "onnx": "onnx", "pyfunc": "pyfunc"}


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("flavour", ["sklearn", "onnx", "pyfunc"])
def test_a_data_scientists_model_is_scored_like_its_own_predict(project, flavour, task):
    hooks, apply = project
    name = f"homes_{flavour}_{task[:5]}"
    apply(name, task)
    model = LOGGERS[flavour](hooks, task, name)
    assert build(DailyScore(DAY)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    pin = read_pin(DAY)
    manifest = make_storage().manifest(PREDICTIONS, DAY)
    assert pin.runtime == RUNTIMES[flavour] == manifest.model["runtime"] and len(pin.sha256) == 64
    frame = scored()
    assert len(frame) == 1200 and {"model_name", "model_version"} <= set(frame.columns)
    want = own_outputs(model, frame, task, flavour)
    if task == "classification":
        have = frame[[f"proba_{c}" for c in CLASSES]].to_numpy(dtype="float64")
        np.testing.assert_allclose(have, want, atol=2e-4)
        labels = np.asarray(CLASSES)[want.argmax(axis=1)]
        assert (frame["prediction"].astype(str).to_numpy() == labels).mean() > 0.995  # ties at float32 aside
    else:
        np.testing.assert_allclose(
            frame["prediction"].to_numpy(dtype="float64"), np.asarray(want, dtype="float64"), rtol=1e-4, atol=1e-2
        )
    drift = json.loads(make_storage().read_text(f"monitoring/date={DAY}/drift.json"))
    assert drift["verdict"] == "collecting baseline (1 of 2 dates)"


def test_a_pinned_date_of_a_foreign_version_is_scored_again_without_the_registry(project):
    """The pin says everything scoring needs (runtime, digests, whether a reference profile exists):
    with the model cached and the registry unreachable, the date is scored again with the same version."""
    import os

    from tasks.score import ScorePredictions
    from tests.conftest import free_port

    hooks, apply = project
    apply("homes_offline")
    log_sklearn(hooks, "regression", "homes_offline")
    assert build(DailyScore(DAY)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    storage = make_storage()
    pinned = storage.manifest(PREDICTIONS, DAY).model
    os.remove(storage.manifest_path(PREDICTIONS, DAY))
    apply("homes_offline", mlflow={"tracking_uri": f"http://127.0.0.1:{free_port()}"})  # nothing listens there
    assert build(ScorePredictions(DAY)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    assert storage.verify(PREDICTIONS, DAY).model == pinned


def test_a_signature_that_does_not_fit_the_contract_fails_before_scoring_naming_the_columns(project):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    hooks, apply = project
    apply("homes_misfit")
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "area"), ColSpec("double", "city"), ColSpec("long", "floor")])
    )
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model", python_model=HomesModel(), signature=signature, registered_model_name="homes_misfit"
        )
    mlflow.MlflowClient().set_registered_model_alias("homes_misfit", "champion", "1")
    assert build(DailyScore(DAY)).status == LuigiStatusCode.FAILED
    cause = "\n".join(pipelines._failures)
    assert (
        "SchemaError" in cause
        and "missing column(s) floor" in cause
        and "city (string column, model takes number)" in cause
    ), cause
    assert make_storage().read_text(f"pins/date={DAY}.json") is None and not make_storage().is_committed(
        PREDICTIONS, DAY
    )


def test_a_pyfunc_model_missing_a_dependency_fails_the_date_naming_the_package(project):
    hooks, apply = project
    apply("homes_broken")
    log_pyfunc(hooks, "regression", "homes_broken", model=BrokenDependency())
    assert build(DailyScore(DAY)).status == LuigiStatusCode.FAILED
    assert "batchml_no_such_package" in "\n".join(pipelines._failures), pipelines._failures
    assert not make_storage().is_committed(PREDICTIONS, DAY)


@pytest.mark.slow
def test_the_three_runtimes_give_the_same_probabilities_on_the_same_rows(project):
    """One classifier as ONNX (logged with mlflow.onnx), as sklearn converted once, and as sklearn through pyfunc."""
    hooks, apply = project
    x, y = training_frame(hooks, "classification")
    model = sklearn_pipeline("classification").fit(x, y)
    probabilities = {}
    for runtime, convert in (("onnx", "true"), ("converted", "true"), ("pyfunc", "false")):
        name = f"homes_same_{runtime}"
        apply(name, "classification", runtime={"convert_sklearn": convert})
        with mlflow.start_run():
            if runtime == "onnx":
                mlflow.onnx.log_model(onnx_of(model, x, "classification"), name="model", registered_model_name=name)
            else:
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    input_example=x.head(5),
                    registered_model_name=name,
                    skops_trusted_types=TRUSTED,
                )
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
        storage = make_storage()
        for dataset in (PREDICTIONS, "monitoring", "pins"):  # the same date, scored again by the next version
            shutil.rmtree(storage.root / dataset, ignore_errors=True)
        assert build(DailyScore(DAY)).status == LuigiStatusCode.SUCCESS, pipelines._failures
        assert read_pin(DAY).runtime == runtime
        probabilities[runtime] = scored().sort_values("id")[[f"proba_{c}" for c in CLASSES]].to_numpy(dtype="float64")
    np.testing.assert_allclose(probabilities["converted"], probabilities["pyfunc"], atol=1e-4)
    np.testing.assert_allclose(probabilities["onnx"], probabilities["pyfunc"], atol=1e-4)


@pytest.mark.slow
def test_drift_of_a_version_without_a_reference_is_judged_once_its_baseline_dates_are_in(project):
    hooks, apply = project
    apply("homes_baseline")
    log_sklearn(hooks, "regression", "homes_baseline")
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    assert build(*[DailyScore(d) for d in days]).status == LuigiStatusCode.SUCCESS, pipelines._failures
    storage = make_storage()
    verdicts = [json.loads(storage.read_text(f"monitoring/date={d}/drift.json"))["verdict"] for d in days]
    assert verdicts[:2] == ["collecting baseline (1 of 2 dates)", "collecting baseline (2 of 2 dates)"]
    assert verdicts[2] == "no drift"
    assert json.loads(storage.read_text("_baselines/homes_baseline/1/dates.json")) == [d.isoformat() for d in days[:2]]
    assert DetectDrift(days[2]).complete()


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["sklearn", "pyfunc"])
def test_a_tampered_model_is_refused_by_the_workers(project, flavour):
    """The converted ONNX file, or the pyfunc model's folder, changed after the date was pinned."""
    from tasks.config import cache_dir
    from tasks.model import ResolveModel

    hooks, apply = project
    apply(f"homes_tamper_{flavour}")
    LOGGERS[flavour](hooks, "regression", f"homes_tamper_{flavour}")
    assert build(ResolveModel(DAY)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    pin = read_pin(DAY)
    folder = Path(cache_dir(), pin.name, pin.version)
    target = folder / f"converted-{pin.sha256}.onnx" if flavour == "sklearn" else folder / "model" / "MLmodel"
    assert target.exists(), sorted(p.name for p in folder.iterdir())
    with open(target, "ab") as fh:
        fh.write(b"\n# tampered\n")
    assert build(DailyScore(DAY)).status == LuigiStatusCode.FAILED
    assert "IntegrityError" in "\n".join(pipelines._failures) and "refusing to score" in "\n".join(
        pipelines._failures
    ), pipelines._failures
    assert not make_storage().is_committed(PREDICTIONS, DAY)
