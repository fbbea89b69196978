"""The registered raw-rows model on small data: what it ships, and that it answers raw rows as the batch would."""

from __future__ import annotations

import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from batchml.base.hooks import add_project_path
from batchml.dataset.contract import Contract, validate
from batchml.dataset.features import model_inputs
from batchml.model.packaged import (
    ESTIMATOR_PATH,
    Packaging,
    _relative_imports,
    contract_yaml,
    importable,
    project_modules,
    raw_example,
)
from batchml.model.registry import Registry
from batchml.model.training import to_onnx_bytes
from tests.conftest import CONTRACT, REPO

CHURN = REPO / "examples" / "churn" / "contract.yaml"


@pytest.mark.parametrize("path", [CONTRACT, CHURN])
def test_the_shipped_contract_yaml_reads_back_to_the_same_rules(path):
    contract = Contract.load(path)
    again = Contract.from_dict(__import__("yaml").safe_load(contract_yaml(contract)))
    assert (
        again.fingerprint() == contract.fingerprint()
        and again.label == contract.label
        and again.names == contract.names
    )


def test_the_transform_module_ships_with_the_project_modules_it_imports():
    found = project_modules("taxi_hooks:features")
    assert [p.name for p in found] == ["taxi_hooks.py", "taxi_synthetic.py"]
    assert project_modules("") == []


def test_shipped_code_may_import_only_shipped_modules():
    assert (
        _relative_imports("from batchml.dataset.contract import validate\n", "raw_model")
        == "from .contract import validate\n"
    )
    with pytest.raises(ImportError, match="imports 'scoring'.*not shipped"):
        _relative_imports("from batchml.scoring.scoring import onnx_feed\n", "raw_model")
    with pytest.raises(ImportError, match="imports 'batchml'"):
        _relative_imports("import batchml\n", "raw_model")


RULES = {
    "dataset": "orders",
    "key": ["shop", "order_id"],
    "timestamp": "placed_at",
    "timezone": "Europe/Paris",
    "columns": {
        "shop": {"dtype": "string", "nullable": False, "allowed": ["north", "south"]},
        "order_id": {"dtype": "integer", "nullable": False, "min": 1},
        "placed_at": {"dtype": "datetime", "nullable": False},
        "items": {"dtype": "integer", "nullable": True, "min": 0},
        "amount": {"dtype": "float", "nullable": False, "min": 0},
        "returned": {"dtype": "boolean", "nullable": False},
    },
    "label": {"column": "returned", "task": "classification", "classes": [False, True]},
}
HOOKS = """
    import numpy as np
    import pandas as pd


    def features(rows):
        return pd.DataFrame({
            "shop": rows["shop"].astype(object).to_numpy(),
            "items": rows["items"].to_numpy(dtype="float64", na_value=np.nan),
            "amount": rows["amount"].to_numpy(dtype="float64"),
            "hour": rows["placed_at"].dt.hour.to_numpy(dtype="float64"),
        })
"""


def orders(n: int, seed: int) -> pd.DataFrame:
    """Raw rows as a source gives them: text timestamps, a nullable integer."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 24, n)
    return pd.DataFrame(
        {
            "shop": rng.choice(["north", "south"], n),
            "order_id": np.arange(1, n + 1) + seed * 10_000,
            "placed_at": [f"2026-03-0{1 + i % 5} {h:02d}:{i % 60:02d}:00" for i, h in enumerate(hours)],
            "items": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
            "amount": rng.gamma(2.0, 30.0, n).round(2),
            "returned": rng.random(n) < 0.3,
        }
    )


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A mixed-type classifier registered twice with its raw-rows packaging: with its ONNX export, and without."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    root = tmp_path_factory.mktemp("packaged")
    (root / "order_hooks.py").write_text(textwrap.dedent(HOOKS))
    add_project_path(root)
    contract = Contract.from_dict(RULES)
    rows = validate(orders(400, 1), contract, None, origin="train").valid
    frame = model_inputs(rows, contract, "order_hooks:features")
    inputs = ["shop", "items", "amount", "hour"]
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["shop"]),
                        ("num", SimpleImputer(), ["items", "amount", "hour"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame[inputs], rows["returned"].to_numpy())
    onnx_bytes, note = to_onnx_bytes(model, frame[inputs].head(200), classes=[False, True])
    assert onnx_bytes is not None, note
    registry = Registry(f"sqlite:///{root / 'mlflow.db'}", "returns", str(root / "artifacts"))
    packaging = Packaging(
        contract,
        transform="order_hooks:features",
        example=raw_example(rows.head(3), contract),
        window=("2026-03-01", "2026-03-05"),
    )
    common = dict(
        profile={},
        params={},
        metrics={},
        tags={},
        inputs=inputs,
        classes=[False, True],
        run_name="cold start",
        packaging=packaging,
    )
    versions = {
        "onnx": registry.register(model, frame.assign(returned=rows["returned"]), onnx_bytes=onnx_bytes, **common),
        "estimator": registry.register(model, frame.assign(returned=rows["returned"]), onnx_bytes=None, **common),
    }
    return registry, model, contract, versions


@pytest.mark.parametrize("kind", ["onnx", "estimator"])
def test_raw_rows_get_the_estimators_probabilities_under_the_batch_names(registered, kind, tmp_path):
    registry, model, contract, versions = registered
    raw = orders(60, 7).drop(columns=["returned"])
    raw["items"] = raw["items"].astype(
        "float64"
    )  # a nullable integer is a double in the signature: NaN where missing, as JSON and CSV give it
    raw = pd.concat([raw, raw.tail(2)], ignore_index=True)  # a key asked twice is answered twice
    with importable(tmp_path):
        pyfunc = mlflow.pyfunc.load_model(str(registry._download_model(versions[kind], tmp_path / "cache")))
        got = pyfunc.predict(raw)
    valid = validate(raw.head(60).assign(returned=False), contract, None, origin="check").valid
    want = model.predict_proba(
        model_inputs(valid, contract, "order_hooks:features")[["shop", "items", "amount", "hour"]]
    )
    want = np.vstack([want, want[-2:]])
    assert list(got.columns) == ["prediction", "proba_False", "proba_True"]
    np.testing.assert_allclose(got[["proba_False", "proba_True"]].to_numpy(dtype="float64"), want, atol=1e-4)
    assert (
        pyfunc.metadata.signature.inputs is None
    )  # no input types for MLflow to refuse: the contract inside checks the rows


def test_rows_that_break_the_contract_are_refused_with_the_rule(registered, tmp_path):
    registry, _, _, versions = registered
    raw = orders(5, 3).drop(columns=["returned"]).astype({"items": "float64"})
    raw.loc[2, "shop"] = "west"
    raw = pd.concat([raw, raw.head(1)], ignore_index=True)  # the same row asked twice is no error
    with importable(tmp_path):
        pyfunc = mlflow.pyfunc.load_model(str(registry._download_model(versions["onnx"], tmp_path / "cache")))
        with pytest.raises(
            Exception, match=r"1 of 6 rows break the dataset contract orders: row 2: shop: not in \['north', 'south'\]"
        ):
            pyfunc.predict(raw)


def test_a_version_without_onnx_is_still_a_batchml_version_with_its_estimator(registered, tmp_path):
    registry, model, contract, versions = registered
    tags = registry.version_tags(versions["estimator"])
    assert (
        "onnx_sha256" not in tags
        and tags["model_input"] == "raw"
        and tags["inputs"] == '["shop", "items", "amount", "hour"]'
    )
    inside = (
        registry._download_model(versions["estimator"], tmp_path / "cache") / ESTIMATOR_PATH
    )  # what the batch can score on its features
    estimator = mlflow.pyfunc.load_model(str(inside))
    assert estimator.metadata.signature.inputs.input_names() == ["shop", "items", "amount", "hour"]
    rows = validate(orders(20, 5), contract, None, origin="check").valid
    features = model_inputs(rows, contract, "order_hooks:features")[["shop", "items", "amount", "hour"]]
    np.testing.assert_allclose(estimator.get_raw_model().predict_proba(features), model.predict_proba(features))


def test_registering_leaves_this_process_importing_what_it_imported_before(registered):
    import sys

    assert "batchml_model" not in sys.modules and not [p for p in sys.path if p.endswith("code")]
    project = Path(registered[0].artifact_location).parent
    assert Path(sys.modules["order_hooks"].__file__).parent == project  # the project's module, not the model's copy
