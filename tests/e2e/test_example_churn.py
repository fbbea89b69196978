"""The churn example end to end, from a copy of its own folder, with the installed package and the real CLI.

A binary classifier over account snapshots (string categoricals, nullable numbers, a
composite key): one cold-start date, then a RangeDaily over the drift scenario. Checked:
score, quarantine, labels, drift, checks, a retrain fired by drift and gated, the report,
and that the ONNX scores are the registered scikit-learn model's own probabilities.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
BIN = Path(sys.executable).parent
D0 = dt.date(2026, 6, 1)
DRIFT = D0 + dt.timedelta(days=2)
LAST = D0 + dt.timedelta(days=8)  # DRIFT + 6: 3 labelled post-drift dates to train on, 2 to gate on
LAG = 2  # [source] label_lag_days of the example
KEY = ["region", "account_id"]
CLASSES = [0, 1]
OPTIONS = {"rows_per_day": 1500, "seed": 42, "drift_start": DRIFT.isoformat(), "bad_row_share": 0.004}


def dates(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def luigi(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`luigi --module pipelines ARGS` run from the project folder, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_"))}
    return subprocess.run(
        [str(BIN / "luigi"), "--module", "pipelines", *args, "--source-options", json.dumps(OPTIONS)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tail(run: subprocess.CompletedProcess, n: int = 40) -> str:
    return "\n".join((run.stdout + run.stderr).splitlines()[-n:])


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    """The example copied to a tmp folder and run: the first date (cold start), then the range up to LAST."""
    folder = tmp_path_factory.mktemp("example") / "churn"
    shutil.copytree(
        EXAMPLE, folder, ignore=shutil.ignore_patterns("data", "mlflow.db", "mlartifacts", ".cache", "__pycache__")
    )
    # The first date alone: the cold start trains on the labelled week before it. A RangeDaily
    # schedules its newest date first, whose window would hold the dates it then scores.
    first = luigi(folder, "DailyScore", "--date", D0.isoformat())
    assert first.returncode == 0, tail(first)
    rest = luigi(
        folder,
        "RangeDaily",
        "--of",
        "DailyScore",
        "--start",
        (D0 + dt.timedelta(days=1)).isoformat(),
        "--stop",
        (LAST + dt.timedelta(days=1)).isoformat(),
    )
    return folder, first, rest


def read_json(folder: Path, relative: str) -> dict:
    return json.loads((folder / "data" / relative).read_text())


def monitoring(folder: Path, date: dt.date, name: str) -> dict:
    return read_json(folder, f"monitoring/date={date}/{name}")


def test_the_runs_succeed_and_luigi_says_so(churn):
    _, first, rest = churn
    for run in (first, rest):
        assert run.returncode == 0, tail(run)
        output = run.stdout + run.stderr
        assert "This progress looks :) because there were no failed tasks or missing dependencies" in output, tail(run)
        summary = output.split("===== Luigi Execution Summary =====")[1]
        assert not re.search(r"\* \d+ failed|were left pending|scheduling_error", summary), summary
    assert f"DailyScore(date={LAST})" in rest.stdout + rest.stderr


def test_predictions_have_the_key_the_class_and_probabilities_summing_to_one_scored_with_onnx(churn):
    folder, _, _ = churn
    for date in dates(D0, LAST):
        manifest = read_json(folder, f"predictions/date={date}/_MANIFEST.json")
        assert manifest["model"]["runtime"] == "onnx", manifest["model"]
        assert (
            manifest["rows"]["in"]
            == manifest["rows"]["written"] + manifest["rows"]["quarantined"]
            == OPTIONS["rows_per_day"]
        )
        predictions = pd.read_parquet(folder / "data" / "predictions" / f"date={date}")
        assert {*KEY, "prediction", "proba_0", "proba_1", "model_name", "model_version"} <= set(predictions.columns)
        assert len(predictions) == manifest["rows"]["written"]
        assert predictions[KEY].notna().all().all() and not predictions.duplicated(KEY).any()
        assert set(predictions["prediction"].unique()) <= set(CLASSES)
        total = predictions["proba_0"].to_numpy(dtype="float64") + predictions["proba_1"].to_numpy(dtype="float64")
        np.testing.assert_allclose(total, 1.0, atol=1e-5)
        assert (
            predictions["prediction"] == (predictions["proba_1"] > predictions["proba_0"]).astype("int64")
        ).mean() > 0.999
    pin = read_json(folder, f"pins/date={LAST}.json")
    assert pin["runtime"] == "onnx" and pin["classes"] == CLASSES and pin["version"] == "1"


def test_quarantine_keeps_the_raw_values_and_the_reasons(churn):
    folder, _, _ = churn
    quarantined = pd.concat(
        [pd.read_parquet(folder / "data" / "quarantine" / f"date={d}") for d in dates(D0, LAST)], ignore_index=True
    )
    assert len(quarantined) > 0 and quarantined["reason"].str.len().gt(0).all()
    reasons = " | ".join(quarantined["reason"])
    assert "plan: not in" in reasons and "below minimum" in reasons
    bad_plan = quarantined[quarantined["reason"].str.contains("plan: not in")]
    assert set(bad_plan["plan"]) == {"gold"}  # the value the source gave, as text
    bad_tenure = quarantined[quarantined["reason"].str.contains("tenure_days: below minimum")]
    assert set(bad_tenure["tenure_days"]) == {"-3"}
    assert {*KEY, "snapshot_at", "churned"} <= set(quarantined.columns)


def test_labels_are_committed_once_due(churn):
    folder, _, _ = churn
    for date in dates(D0 - dt.timedelta(days=LAG), LAST - dt.timedelta(days=LAG)):
        labels = pd.read_parquet(folder / "data" / "labels" / f"date={date}")
        assert list(labels.columns) == [*KEY, "churned"]
        assert set(labels["churned"].unique()) == set(CLASSES)
        assert read_json(folder, f"labels/date={date}/_MANIFEST.json")["extra"]["label"] == "churned"
    for date in dates(LAST - dt.timedelta(days=LAG - 1), LAST):  # not due yet: nothing asked for them
        assert not (folder / "data" / "labels" / f"date={date}").exists()


def test_metrics_are_classification_metrics_of_the_labelled_date(churn):
    folder, _, _ = churn
    for date in dates(D0, LAST):
        metrics = monitoring(folder, date, "metrics.json")
        assert metrics["task"] == "classification" and metrics["primary_metric"] == "log_loss"
        assert metrics["labelled_date"] == (date - dt.timedelta(days=LAG)).isoformat()
        assert metrics["status"] in ("ok", "warn"), metrics["failed"]
        assert metrics["numbers"]["realized_status"] == "available"
        realized = metrics["numbers"]["realized"]
        for name in ("log_loss", "roc_auc", "accuracy", "f1", "brier"):
            assert np.isfinite(realized[name]), (date, name, realized)
        assert 0.5 < realized["roc_auc"] <= 1 and realized["coverage"] == 1.0
        assert set(metrics["numbers"]["class_shares"]) == {"0", "1"}
        checks = {c["name"] for c in metrics["checks"]}
        assert {
            "class_share_shift",
            "quarantine_rate",
            "null_rate.days_since_last_login",
            "null_rate.proba_1",
            "realized_error_ratio",
        } <= checks
    before = monitoring(folder, DRIFT - dt.timedelta(days=1), "metrics.json")["numbers"]["realized"]
    after = monitoring(folder, LAST, "metrics.json")["numbers"]["realized"]  # drifted rows, the old model
    assert after["log_loss"] > 1.3 * before["log_loss"], (before, after)


def test_drift_is_flagged_from_the_drift_start_on(churn):
    folder, _, _ = churn
    verdicts = {d: monitoring(folder, d, "drift.json")["verdict"] for d in dates(D0, LAST)}
    assert all(verdicts[d] == "no drift" for d in dates(D0, DRIFT - dt.timedelta(days=1))), verdicts
    assert all(verdicts[d] == "drift" for d in dates(DRIFT, LAST)), verdicts
    drifted = monitoring(folder, LAST, "drift.json")
    assert {"plan", "country", "monthly_spend"} <= set(drifted["drifted_features"])
    assert drifted["features"]["plan"]["kind"] == "categorical"


def test_drift_fires_a_retrain_that_the_gate_decides(churn):
    folder, _, _ = churn
    earlier = {d: monitoring(folder, d, "retrain.json")["decision"] for d in dates(D0, LAST - dt.timedelta(days=1))}
    assert set(earlier.values()) == {"not triggered"}, earlier  # backfilled dates never retrain
    decision = monitoring(folder, LAST, "retrain.json")
    assert decision["decision"] in ("promoted", "rejected") and decision["reason"], decision
    assert "drift on" in decision["trigger_reason"]
    assert decision["window"][0] >= DRIFT.isoformat()  # trained on post-drift dates only
    assert decision["evaluated_on"] == [(LAST - dt.timedelta(days=d)).isoformat() for d in (LAG + 1, LAG)]
    gate = decision["gate"]
    assert gate["gate"]["primary"] == "log_loss" and gate["gate"]["guards"] == ["roc_auc"]
    for side in ("challenger", "champion"):
        assert {"log_loss", "roc_auc", "accuracy", "f1", "brier"} <= set(gate[side])
    # The scenario moves the relation to churn: the challenger wins by far.
    assert decision["decision"] == "promoted", decision["reason"]
    assert gate["challenger"]["log_loss"] < 0.9 * gate["champion"]["log_loss"]
    assert decision["challenger_version"] == "2" and decision["champion_version"] == "1"


def test_the_report_pages_exist(churn):
    folder, _, _ = churn
    for date in dates(D0, LAST):
        page = (folder / "data" / "monitoring" / f"date={date}" / "report.html").read_text()
        assert "account_churn" in page and "class_share_shift" in page and "proba_1" in page
    page = (folder / "data" / "monitoring" / f"date={LAST}" / "report.html").read_text()
    assert "log_loss" in page  # the gate's reason
    for tile in (
        "Log loss",
        "ROC AUC",
        "Accuracy",
        "F1",
        "Brier score",
        "champion hold-out Log loss",
    ):  # realized, of the classifier
        assert f">{tile}" in page, tile
    assert ">MAE<" not in page
    assert (folder / "data" / "monitoring" / "index.html").exists()


def test_onnx_scores_are_the_registered_models_own_probabilities(churn):
    """The fast path scores what was registered: predict_proba of the estimator inside the registered model, within
    1e-4."""
    import mlflow.artifacts
    import mlflow.sklearn

    from batchml.model.registry import _fluent_uris

    folder, _, _ = churn
    date = LAST
    pin = read_json(folder, f"pins/date={date}.json")
    features = pd.read_parquet(folder / "data" / "features" / f"date={date}")
    predictions = pd.read_parquet(folder / "data" / "predictions" / f"date={date}")
    joined = features.merge(predictions, on=KEY, how="inner", validate="one_to_one")
    assert len(joined) == len(predictions)

    with _fluent_uris(
        f"sqlite:///{folder / 'mlflow.db'}"
    ):  # models:/ resolves against the process's registry URI; restored after
        registered = mlflow.artifacts.download_artifacts(
            f"models:/{pin['name']}/{pin['version']}", dst_path=str(folder / "registered")
        )
    model = mlflow.sklearn.load_model(str(Path(registered) / "artifacts" / "sklearn"))  # the raw-rows model's estimator
    assert list(model.classes_) == CLASSES
    expected = model.predict_proba(joined[pin["inputs"]])
    np.testing.assert_allclose(joined[["proba_0", "proba_1"]].to_numpy(dtype="float64"), expected, atol=1e-4, rtol=0)
    assert (
        joined["prediction"].to_numpy() == model.classes_[expected.argmax(axis=1)]
    ).mean() > 0.999  # ties at 0.5 aside
