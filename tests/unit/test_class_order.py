"""Classifier outputs and metrics are right for any classes: a differential test matrix.

Every runtime's `proba_<class>` is checked against the model's own `predict_proba` (its
column found by class identity, here by `repr`), and every metric against a hand-written
computation on the model's own probabilities: classes sorted and unsorted in the contract
and in the model; text, integer and boolean labels; 2, 3 and 5 classes; a class absent
from a date; labels outside the contract's classes. One model per class configuration.
"""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from batchml.base.errors import IntegrityError
from batchml.base.provenance import sha256_file, sha256_tree
from batchml.dataset.contract import Contract
from batchml.model.onnx_io import CLASSES_METADATA
from batchml.model.pin import ModelPin
from batchml.model.registry import Registry, _fluent_uris
from batchml.model.runtimes import choose_runtime, converted_paths
from batchml.model.training import model_classes, to_onnx_bytes
from batchml.retrain.lifecycle import GatePolicy, _predict_estimator
from batchml.retrain.retraining import gate_challenger
from batchml.scoring.scoring import ModelSpec, predict_partition
from batchml.stats.metrics import model_metrics

INPUTS = ("a", "b", "c")
# Listed unsorted on purpose: "unsorted" contracts use this order, "sorted" ones sorted().
LABELS = {"text": ["stay", "upgrade", "downgrade", "churn", "pause"], "int": [30, 2, 17, 5, 11], "bool": [True, False]}
CONFIGS = [("text", 2), ("text", 3), ("text", 5), ("int", 2), ("int", 3), ("int", 5), ("bool", 2)]
ORDERS = ["sorted", "unsorted"]
REQUIREMENTS = ["mlflow", "scikit-learn"]  # given: inferring them runs each model in a subprocess (seconds each)
RUNTIMES = [
    "onnx-labels",
    "onnx-zipmap",
    "onnx-batchml",
    "onnx-unsorted",
    "converted",
    "pyfunc-sklearn",
    "pyfunc-frame",
    "pyfunc-array",
    "raw-onnx",
    "raw-sklearn",
]


def key(value) -> str:
    """A class's identity, independent of batchml: its type and value (True is not 1, '1' is not 1)."""
    return repr(value.item() if hasattr(value, "item") else value)


def labelled(kind: str, k: int, n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed + k)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=list(INPUTS))
    logits = x.to_numpy() @ (rng.normal(size=(3, k)) * 1.5)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    codes = np.array([rng.choice(k, p=row) for row in p])
    values = LABELS[kind][:k]
    y = np.array(values, dtype=bool if kind == "bool" else np.int64 if kind == "int" else object)[codes]
    return x, y


def contract_classes(kind: str, k: int, order: str) -> list:
    values = list(LABELS[kind][:k])
    return sorted(values) if order == "sorted" else values


class FrameModel(mlflow.pyfunc.PythonModel):
    """A data scientist's pyfunc: a DataFrame of probabilities, columns named by class, in an order of its own."""

    def __init__(self, estimator, order):
        self.estimator, self.order = estimator, order

    def predict(self, context, model_input, params=None):
        proba = self.estimator.predict_proba(model_input[list(INPUTS)])
        columns = [list(map(key, self.estimator.classes_)).index(key(c)) for c in self.order]
        return pd.DataFrame(proba[:, columns], columns=[str(c) for c in self.order])


class ArrayModel(FrameModel):
    """A pyfunc returning a bare array, its columns named only by the output signature."""

    def predict(self, context, model_input, params=None):
        return super().predict(context, model_input, params).to_numpy()


def _onnx(model, x, zipmap: bool) -> bytes:
    from skl2onnx import to_onnx

    onx = to_onnx(
        model, x.to_numpy(np.float32), target_opset={"": 17, "ai.onnx.ml": 3}, options={id(model): {"zipmap": zipmap}}
    )
    return onx.SerializeToString()


def _permuted_onnx(model, x, order) -> bytes:
    """The model's ONNX graph with its probability columns reordered to `order`, which its metadata records."""
    import json

    import onnx
    from onnx import TensorProto, helper

    onx = onnx.load_model_from_string(_onnx(model, x, zipmap=False))
    columns = [list(map(key, model.classes_)).index(key(c)) for c in order]
    graph = onx.graph
    graph.initializer.append(helper.make_tensor("perm", TensorProto.INT64, [len(columns)], columns))
    graph.node.append(helper.make_node("Gather", ["probabilities", "perm"], ["probabilities_in_order"], axis=1))
    old = next(o for o in graph.output if o.name == "probabilities")
    graph.output.remove(old)
    graph.output.append(
        helper.make_tensor_value_info("probabilities_in_order", TensorProto.FLOAT, [None, len(columns)])
    )
    onx.metadata_props.add(
        key=CLASSES_METADATA, value=json.dumps([c.item() if hasattr(c, "item") else c for c in order])
    )
    return onx.SerializeToString()


def _contract_file(path, classes, kind):
    dtype = {"text": "string", "int": "integer", "bool": "boolean"}[kind]
    columns = {"k": {"dtype": "integer"}, **{c: {"dtype": "float"} for c in INPUTS}, "y": {"dtype": dtype}}
    body = {
        "dataset": "d",
        "key": ["k"],
        "columns": columns,
        "label": {"column": "y", "task": "classification", "classes": list(classes)},
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


class Scored:
    """One fitted model of a class configuration and every runtime's outputs for any contract order."""

    def __init__(self, root, kind, k):
        self.root, self.kind, self.k = root, kind, k
        self.x, self.y = labelled(kind, k)
        self.model = LogisticRegression(max_iter=500).fit(self.x, self.y)
        self.want = self.model.predict_proba(self.x)
        self.model_keys = [key(c) for c in self.model.classes_]
        self.unsorted_model = list(reversed(LABELS[kind][:k]))  # the model-side order of the unsorted runtimes
        self.sklearn_dir = root / "sklearn"
        mlflow.sklearn.save_model(
            self.model, str(self.sklearn_dir), skops_trusted_types=[], pip_requirements=REQUIREMENTS
        )
        for name, blob in {
            "labels": _onnx(self.model, self.x, False),
            "zipmap": _onnx(self.model, self.x, True),
        }.items():
            (root / f"{name}.onnx").write_bytes(blob)
        (root / "unsorted.onnx").write_bytes(_permuted_onnx(self.model, self.x, self.unsorted_model))
        for name, cls in {"frame": FrameModel, "array": ArrayModel}.items():
            outputs = mlflow.models.infer_signature(
                self.x, pd.DataFrame({f"proba_{c}": [0.5] for c in self.unsorted_model})
            )
            mlflow.pyfunc.save_model(
                str(root / name),
                python_model=cls(self.model, self.unsorted_model),
                signature=outputs,
                pip_requirements=REQUIREMENTS,
            )

    def proba(self, c) -> np.ndarray:
        """The model's own probability of class `c`, found by identity."""
        return self.want[:, self.model_keys.index(key(c))]

    def spec(self, runtime: str, classes: list) -> ModelSpec:
        root = self.root
        if runtime.startswith("onnx"):
            name = {"onnx-labels": "labels", "onnx-zipmap": "zipmap", "onnx-unsorted": "unsorted"}.get(runtime)
            if name is None:  # batchml's own export, its classes in its metadata
                blob, note = to_onnx_bytes(self.model, self.x, classes=classes)
                assert blob is not None, note
                path = root / f"batchml-{'-'.join(map(str, classes))}.onnx"
                path.write_bytes(blob)
            else:
                path = root / f"{name}.onnx"
            return ModelSpec(str(path), sha256_file(path), "onnx", INPUTS, ("k",), "m", runtime, tuple(classes))
        if runtime == "converted":
            pin = ModelPin(
                "m",
                "conv",
                sha256_tree(self.sklearn_dir),
                "",
                "",
                runtime="pyfunc",
                flavor="sklearn",
                inputs=INPUTS,
                classes=tuple(classes),
            )
            pin = choose_runtime(pin, self.sklearn_dir, self.x.head(100), root / "cache", rtol=1e-4, atol=1e-5)
            assert pin.runtime == "converted", pin.note
            return ModelSpec(
                str(converted_paths(root / "cache", pin)[0]),
                pin.converted_sha256,
                "converted",
                INPUTS,
                ("k",),
                "m",
                "conv",
                tuple(classes),
            )
        folder = {"pyfunc-sklearn": self.sklearn_dir, "pyfunc-frame": root / "frame", "pyfunc-array": root / "array"}[
            runtime
        ]
        return ModelSpec(
            str(folder), sha256_tree(folder), "pyfunc", INPUTS, ("k",), "m", runtime, tuple(classes), ("number",) * 3
        )

    def outputs(self, runtime: str, classes: list) -> pd.DataFrame:
        part = self.x.assign(k=np.arange(len(self.x)))
        if runtime.startswith("raw"):
            return self.raw_model(runtime, classes).predict_features(self.x)
        return predict_partition(part, self.spec(runtime, classes))

    def raw_model(self, runtime: str, classes: list):
        """batchml's registered model (RawRowsModel) as MLflow loads it: contract, estimator and maybe ONNX
        artifacts."""
        from mlflow.pyfunc import PythonModelContext

        from batchml.model.raw_model import RawRowsModel

        folder = self.root / f"raw-{'-'.join(map(str, classes))}"
        folder.mkdir(exist_ok=True)
        artifacts = {
            "contract": str(_contract_file(folder / "contract.yaml", classes, self.kind)),
            "sklearn": str(self.sklearn_dir),
        }
        if runtime == "raw-onnx":
            artifacts["onnx"] = str(
                self.root / "labels.onnx"
            )  # no metadata: the fitted classes of its config say the order
        model = RawRowsModel()
        model.load_context(
            PythonModelContext(
                artifacts=artifacts, model_config={"inputs": list(INPUTS), "classes": model_classes(self.model)}
            )
        )
        return model


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    made: dict = {}

    def get(kind: str, k: int) -> Scored:
        if (kind, k) not in made:
            made[kind, k] = Scored(tmp_path_factory.mktemp(f"{kind}{k}"), kind, k)
        return made[kind, k]

    return get


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind,k", CONFIGS)
def test_each_proba_column_holds_the_models_probability_of_its_class(scored, kind, k, order, runtime):
    s = scored(kind, k)
    classes = contract_classes(kind, k, order)
    out = s.outputs(runtime, classes)
    assert [c for c in out.columns if c.startswith("proba_")] == [
        f"proba_{c}" for c in classes
    ]  # in the contract's order
    for c in classes:
        np.testing.assert_allclose(
            out[f"proba_{c}"].to_numpy(dtype="float64"), s.proba(c), atol=2e-6, err_msg=f"{runtime}: proba_{c}"
        )
    prediction = out["prediction"].to_numpy()
    assert [key(v) for v in prediction] == [key(v) for v in s.model.predict(s.x)]  # the model's own label ...
    assert {type(v.item() if hasattr(v, "item") else v) for v in prediction} == {
        type(classes[0])
    }  # ... in the contract's label type


def hand_metrics(y, proba_of, classes, pred) -> dict:
    """Independent metrics: rows with a label outside `classes` dropped; AUC by counting pairs; F1 by counting."""
    keys = [key(c) for c in classes]
    rows = [i for i, v in enumerate(y) if key(v) in keys]
    truth = [keys.index(key(y[i])) for i in rows]
    p = np.column_stack([proba_of(c)[rows] for c in classes])
    p = np.clip(p, 1e-15, 1) / np.clip(p, 1e-15, 1).sum(axis=1, keepdims=True)
    guess = [keys.index(key(pred[i])) for i in rows]
    n, k = len(rows), len(classes)
    out = {
        "log_loss": -sum(np.log(p[i, t]) for i, t in enumerate(truth)) / n,
        "brier": sum(sum((p[i, j] - (j == t)) ** 2 for j in range(k)) for i, t in enumerate(truth)) / n,
        "accuracy": sum(g == t for g, t in zip(guess, truth, strict=True)) / n,
    }

    def auc(j):
        pos = [p[i, j] for i, t in enumerate(truth) if t == j]
        neg = [p[i, j] for i, t in enumerate(truth) if t != j]
        if not pos or not neg:
            return None
        return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))

    def f1(j):
        tp = sum(g == j and t == j for g, t in zip(guess, truth, strict=True))
        fp = sum(g == j and t != j for g, t in zip(guess, truth, strict=True))
        fn = sum(g != j and t == j for g, t in zip(guess, truth, strict=True))
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0

    if k == 2:
        out["roc_auc"], out["f1"] = auc(1), f1(1)  # the contract's last class is the positive one
    else:
        aucs = [a for a in map(auc, range(k)) if a is not None]
        out["roc_auc"] = sum(aucs) / len(aucs)
        present = sorted(set(truth) | set(guess))
        out["f1"] = sum(map(f1, present)) / len(present)
    return out


def _check(got: dict, want: dict):
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind,k", CONFIGS)
def test_metrics_match_a_hand_computation_whatever_the_order_and_label_type(scored, kind, k, order):
    s = scored(kind, k)
    classes = contract_classes(kind, k, order)
    out = s.outputs("onnx-batchml", classes)
    got = model_metrics("classification", s.y, {c: out[c].to_numpy() for c in out.columns}, classes)
    _check(got, hand_metrics(s.y, s.proba, classes, s.model.predict(s.x)))
    assert got["n"] == len(s.y) and got["outside_classes"] == 0
    # The same numbers from the model's own outputs, whatever order the contract lists the classes in.
    other = contract_classes(kind, k, "sorted" if order == "unsorted" else "unsorted")
    again = model_metrics("classification", s.y, {c: out[c].to_numpy() for c in out.columns}, other)
    _check(again, {m: got[m] for m in ("log_loss", "brier", "accuracy", "roc_auc")})


@pytest.mark.parametrize("kind,k", [("text", 3), ("int", 5), ("bool", 2)])
def test_a_class_absent_from_a_date_and_labels_outside_the_classes(scored, kind, k):
    s = scored(kind, k)
    classes = contract_classes(kind, k, "unsorted")
    out = s.outputs("pyfunc-sklearn", classes)
    absent = classes[0]
    keep = np.array([key(v) != key(absent) for v in s.y])
    stranger = {"text": "unknown", "int": 99, "bool": 1}[kind]  # 1 is not True
    y = np.concatenate([s.y[keep].astype(object), np.array([stranger, stranger, None], dtype=object)])
    outputs = {c: np.concatenate([out[c].to_numpy()[keep], out[c].to_numpy()[:3]]) for c in out.columns}
    got = model_metrics("classification", y, outputs, classes)
    proba_of = {c: np.concatenate([s.proba(c)[keep], s.proba(c)[:3]]) for c in classes}
    want = hand_metrics(list(y), proba_of.__getitem__, classes, outputs["prediction"])
    if k == 2:  # one class left: AUC is undefined, not an error
        assert np.isnan(got["roc_auc"])
        want.pop("roc_auc")
    _check(got, want)
    assert got["n"] == int(keep.sum()) and got["outside_classes"] == 2  # None is a missing label, not a class


def test_a_probability_tensor_that_does_not_say_its_classes_fails_naming_the_model(tmp_path):
    """A bare ONNX graph (MatMul, Softmax) registered by someone else: no class labels anywhere, so no guess."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], np.eye(3, dtype=np.float32).ravel().tolist())
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "bare",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with _fluent_uris(uri), mlflow.start_run():
        mlflow.onnx.log_model(
            onnx.load_model_from_string(model.SerializeToString()),
            name="model",
            registered_model_name="tiers",
            pip_requirements=REQUIREMENTS,
        )
    reg = Registry(uri, "tiers")
    pin = reg.pin_version("1", tmp_path / "cache", ("stay", "upgrade", "downgrade"))
    path = reg.fetch(pin, tmp_path / "cache")
    spec = ModelSpec(str(path), pin.sha256, pin.runtime, INPUTS, ("k",), pin.name, pin.version, pin.classes)
    part = pd.DataFrame({"k": [1, 2], "a": [0.1, 0.2], "b": [0.3, 0.1], "c": [0.0, 1.0]})
    with pytest.raises(
        IntegrityError, match=r"models:/tiers/1 returns class probabilities as a bare tensor.*without guessing"
    ):
        predict_partition(part, spec)


def test_a_model_whose_classes_are_not_the_contracts_fails_naming_both(scored):
    s = scored("text", 3)
    with pytest.raises(
        IntegrityError,
        match=(
            r"models:/m/pyfunc-sklearn gives probabilities for the classes \['downgrade', 'stay', "
            r"'upgrade'\].*\['stay', 'upgrade', 'churn'\]"
        ),
    ):
        s.outputs("pyfunc-sklearn", ["stay", "upgrade", "churn"])


def test_the_issues_random_forest_registered_by_a_data_scientist(tmp_path):
    """Contract [stay, upgrade, downgrade], an mlflow.sklearn RandomForest with classes_ [downgrade, stay, upgrade]:
    converted to ONNX or scored with pyfunc, proba_stay is its probability of stay."""
    x, y = labelled("text", 3, seed=7)
    model = RandomForestClassifier(n_estimators=12, max_depth=4, random_state=0).fit(x, y)
    assert list(model.classes_) == ["downgrade", "stay", "upgrade"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with _fluent_uris(uri), mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x.head(3),
            registered_model_name="tiers",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            pip_requirements=REQUIREMENTS,
        )
    reg = Registry(uri, "tiers")
    classes = ("stay", "upgrade", "downgrade")
    pin = reg.pin_version("1", tmp_path / "cache", classes)
    folder = reg.fetch(pin, tmp_path / "cache")
    converted = choose_runtime(pin, folder, x.head(100), tmp_path / "cache", rtol=1e-4, atol=1e-5)
    assert converted.runtime == "converted", converted.note
    want = model.predict_proba(x)
    specs = [
        ModelSpec(str(folder), pin.sha256, "pyfunc", INPUTS, ("k",), "tiers", "1", classes, ("number",) * 3),
        ModelSpec(
            str(converted_paths(tmp_path / "cache", converted)[0]),
            converted.converted_sha256,
            "converted",
            INPUTS,
            ("k",),
            "tiers",
            "1",
            classes,
        ),
    ]
    for spec in specs:
        out = predict_partition(x.assign(k=np.arange(len(x))), spec)
        for c in classes:
            np.testing.assert_allclose(
                out[f"proba_{c}"],
                want[:, list(model.classes_).index(c)],
                atol=1e-5,
                err_msg=f"{spec.runtime} proba_{c}",
            )
        assert list(out["prediction"]) == list(model.predict(x))


def test_holdout_metrics_of_a_trained_model_follow_the_contracts_classes():
    x, y = labelled("int", 3, seed=3)
    model = LogisticRegression(max_iter=500).fit(x, y)
    classes = [30, 2, 17]  # unsorted; the model's classes_ are [2, 17, 30]
    outputs = _predict_estimator(model, x, classes)
    want = model.predict_proba(x)
    got = model_metrics("classification", y, outputs, classes)
    _check(got, hand_metrics(y, lambda c: want[:, list(model.classes_).index(c)], classes, model.predict(x)))


def test_a_3_class_challenger_with_unsorted_contract_classes_is_gated_on_the_right_numbers(tmp_path):
    """Champion: a data scientist's mlflow.sklearn model (the real one); challenger: batchml-registered, almost no
    signal (strong regularisation). Both are evaluated as deployed on the same rows; the gate's numbers are the
    hand-computed ones, so the weaker challenger is rejected (log loss in contract order made the champion look
    worse)."""
    x, y = labelled("text", 3, n=600, seed=11)
    contract = Contract.from_dict(
        {
            "dataset": "d",
            "key": "k",
            "columns": {"k": {"dtype": "integer"}, **{c: {"dtype": "float"} for c in INPUTS}, "y": {"dtype": "string"}},
            "label": {"column": "y", "task": "classification", "classes": ["stay", "upgrade", "downgrade"]},
        }
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    champion = LogisticRegression(max_iter=500).fit(x.head(400), y[:400])
    with _fluent_uris(uri), mlflow.start_run():
        mlflow.sklearn.log_model(
            champion,
            name="model",
            input_example=x.head(3),
            registered_model_name="tiers",
            pip_requirements=REQUIREMENTS,
        )
    reg = Registry(uri, "tiers", str(tmp_path / "artifacts"))
    reg.set_alias("champion", "1")
    challenger = LogisticRegression(max_iter=500, C=1e-4).fit(x.head(400), y[:400])
    blob, note = to_onnx_bytes(challenger, x.head(200), classes=model_classes(challenger))
    assert blob is not None, note
    v2 = reg.register(
        challenger,
        x,
        onnx_bytes=blob,
        profile={},
        params={},
        metrics={},
        tags={},
        inputs=list(INPUTS),
        classes=model_classes(challenger),
        run_name="c",
    )
    frame = x.iloc[400:].assign(k=np.arange(200), y=y[400:]).reset_index(drop=True)
    policy = GatePolicy(primary="log_loss", margin=0.02, guards=("roc_auc",), guard_tolerance=0.02)
    result = gate_challenger(
        reg,
        contract,
        frame,
        alias="champion",
        challenger_version=v2,
        cache_dir=tmp_path / "cache",
        policy=policy,
        dates=[dt.date(2026, 6, 1)],
    )
    classes = list(contract.label.classes)
    for model, side in ((challenger, "challenger"), (champion, "champion")):
        want = model.predict_proba(frame[list(INPUTS)])
        hand = hand_metrics(
            frame["y"].to_numpy(),
            lambda c, w=want, m=model: w[:, list(m.classes_).index(c)],
            classes,
            model.predict(frame[list(INPUTS)]),
        )
        for name in ("log_loss", "roc_auc", "accuracy", "brier", "f1"):
            assert result["gate"][side][name] == pytest.approx(hand[name], rel=1e-4), f"{side} {name}"
    assert result["decision"] == "rejected" and str(reg.version_by_alias("champion").version) == "1"


def test_the_retrain_trigger_reads_the_right_realized_log_loss(scored):
    """Realized metrics of committed predictions (contract order [stay, upgrade, downgrade]) against the holdout
    value: the same model on the same kind of rows is no worse, so nothing triggers; a model twice as bad does."""
    from batchml.monitor.checks import error_ratio, realized_performance
    from batchml.retrain.policy import DayResult, RetrainPolicy, retrain_decision

    s = scored("text", 3)
    classes = contract_classes("text", 3, "unsorted")
    predictions = s.outputs("pyfunc-sklearn", classes).assign(
        k=np.arange(len(s.y))
    )  # columns named right before the fix too
    labels = pd.DataFrame({"k": np.arange(len(s.y)), "y": s.y})
    realized = realized_performance(predictions, labels, key=["k"], label="y", task="classification", classes=classes)
    holdout = hand_metrics(s.y, s.proba, classes, s.model.predict(s.x))["log_loss"]
    day = dt.date(2026, 6, 10)
    policy = RetrainPolicy(error_increase=0.3)
    for model_holdout, decision in ((holdout, "not triggered"), (holdout / 2, "triggered")):
        ratio = error_ratio(realized, model_holdout, "log_loss")
        assert ratio == pytest.approx(holdout / model_holdout, rel=1e-5)
        got = retrain_decision(
            day, [DayResult(day, "no drift", ratio, 1.0)], last_retrain=None, latest_scored=day, policy=policy
        )
        assert got["decision"] == decision, got["reason"]


def test_a_pyfunc_returning_an_unnamed_probability_array_fails_naming_the_model(scored, tmp_path):
    s = scored("int", 3)
    folder = tmp_path / "unnamed"
    mlflow.pyfunc.save_model(
        str(folder), python_model=ArrayModel(s.model, s.unsorted_model), pip_requirements=REQUIREMENTS
    )  # no output signature
    spec = ModelSpec(
        str(folder), sha256_tree(folder), "pyfunc", INPUTS, ("k",), "scores", "7", (30, 2, 17), ("number",) * 3
    )
    with pytest.raises(
        IntegrityError, match=r"models:/scores/7 returned an array of shape \(300, 3\) with no class names"
    ):
        predict_partition(s.x.assign(k=np.arange(len(s.x))), spec)


class DefaultColumnsModel(FrameModel):
    """A pyfunc returning pd.DataFrame(predict_proba): columns 0, 1, 2 are positions, not the classes 0, 1, 2."""

    def predict(self, context, model_input, params=None):
        return pd.DataFrame(self.estimator.predict_proba(model_input[list(INPUTS)]))


def test_default_column_numbers_are_not_taken_for_integer_classes(tmp_path):
    x, y = labelled("int", 3)
    y = np.array([{30: 2, 2: 0, 17: 1}[v] for v in y])  # classes 0, 1, 2 ...
    model = LogisticRegression(max_iter=500).fit(x, y + 1)  # ... but the model's are 1, 2, 3: column 0 is class 1
    folder = tmp_path / "default"
    mlflow.pyfunc.save_model(str(folder), python_model=DefaultColumnsModel(model, None), pip_requirements=REQUIREMENTS)
    spec = ModelSpec(
        str(folder), sha256_tree(folder), "pyfunc", INPUTS, ("k",), "scores", "3", (0, 1, 2), ("number",) * 3
    )
    with pytest.raises(
        IntegrityError, match=r"models:/scores/3 returned an array of shape \(300, 3\) with no class names"
    ):
        predict_partition(x.assign(k=np.arange(len(x))), spec)
