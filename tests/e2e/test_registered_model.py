"""The model batchml registers, used as MLflow users use it: raw rows in, the batch's predictions out.

One cold start of the taxi example (the real CLI, from a project folder on tmp), then the
version behind @champion is loaded by MLflow alone, in processes that cannot import the
project's modules or batchml's core, and asked about the date's raw rows: its answers are
the committed batch predictions of the same keys.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from batchml.dataset.contract import Contract, validate
from batchml.model.registry import _fluent_uris
from tests.conftest import CONTRACT, KEY, TRIPS, free_port, pipeline_settings, write_cfg
from tests.servers import http_ok, wait_until

BIN = Path(sys.executable).parent
DAY = dt.date(2026, 6, 10)
NAME = "trip_duration"
URI = f"models:/{NAME}@champion"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A project folder after `DailyScore --date DAY`; yields (folder, raw rows CSV, committed predictions of those
    rows).

    Beside the CSV, `rows.parquet` holds the same rows as a team's own Parquet has them: timestamps
    as datetime64, an integer as pandas' nullable Int64, another as float64, another as int32.
    """
    folder = tmp_path_factory.mktemp("project")
    write_cfg(folder / "luigi.cfg", pipeline_settings(folder))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_"))}
    run = subprocess.run(
        [str(BIN / "luigi"), "--module", "pipelines", "DailyScore", "--date", DAY.isoformat()],
        cwd=folder,
        env={**env, "LUIGI_CONFIG_PATH": str(folder / "luigi.cfg")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    from taxi_synthetic import trips

    contract = Contract.load(CONTRACT)
    rows = validate(pd.concat(trips(DAY, **TRIPS), ignore_index=True), contract, DAY, origin="generator").valid
    rows_csv = folder / "rows.csv"
    raw = rows[[c for c in contract.names if c != contract.label.column]]
    raw.to_csv(rows_csv, index=False)  # as a user has them: text
    typed = {"passenger_count": "Int64", "rate_code_id": "float64", "payment_type": "int32"}
    raw.astype(typed).to_parquet(folder / "rows.parquet", index=False)
    committed = pd.read_parquet(folder / "data" / "predictions" / f"date={DAY}")
    expected = rows[KEY].merge(committed, on=KEY, how="left", validate="one_to_one")
    assert expected["prediction"].notna().all() and len(expected) == len(committed)  # every valid row was scored
    yield folder, rows_csv, expected["prediction"].to_numpy(dtype="float64")


def clean_env(folder: Path) -> dict[str, str]:
    """A user's environment: MLflow pointed at the project's store, the venv's bin/ first, nothing of the project
    importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_")) and k != "PYTHONPATH"}
    return {
        **env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    }


def assert_batch_predictions(got, expected: np.ndarray) -> None:
    values = np.asarray(got, dtype="float64")
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=0)


LOAD_AND_PREDICT = """
import sys


class NoBatchml:  # the model must load where batchml is not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "batchml":
            raise ImportError(name + " is not installed here")


sys.meta_path.insert(0, NoBatchml())
import mlflow, pandas as pd

assert not any("taxi" in p for p in sys.path), sys.path
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.read_parquet(sys.argv[2]) if sys.argv[2].endswith(".parquet") else pd.read_csv(sys.argv[2])
print("dtypes", dict(rows.dtypes.astype(str)))
model.predict(rows).to_csv(sys.argv[3], index=False)
print("transform from", sys.modules["taxi_hooks"].__file__)
"""


@pytest.mark.parametrize("read", ["csv", "parquet"])
def test_pyfunc_load_model_by_alias_predicts_the_batch_predictions_on_raw_rows_in_a_fresh_process(
    scored, tmp_path, read
):
    """The frame pandas reads from the team's CSV (timestamps as text) or Parquet (datetime64, Int64, float, int32)."""
    folder, rows_csv, expected = scored
    out = tmp_path / "out.csv"
    rows = rows_csv if read == "csv" else folder / "rows.parquet"
    run = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, URI, str(rows), str(out)],
        cwd=tmp_path,
        env=clean_env(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{os.sep}code{os.sep}taxi_hooks.py" in run.stdout  # the transform came with the model
    if read == "parquet":
        assert "'pickup_datetime': 'datetime64[us]'" in run.stdout and "'passenger_count': 'Int64'" in run.stdout
    got = pd.read_csv(out)
    assert list(got.columns) == ["prediction"]
    assert_batch_predictions(got["prediction"], expected)


def test_the_registered_model_describes_itself(scored):
    folder, _, _ = scored
    contract = Contract.load(CONTRACT)
    with _fluent_uris(f"sqlite:///{folder / 'mlflow.db'}"):
        client = mlflow.MlflowClient()
        mv = client.get_model_version_by_alias(NAME, "champion")
        info = mlflow.models.get_model_info(URI)
        run = client.get_run(mv.run_id)
        experiment = client.get_experiment(run.info.experiment_id)
        onnx_file = mlflow.artifacts.download_artifacts(
            f"runs:/{mv.run_id}/onnx/model.onnx", dst_path=str(folder / "check")
        )
        model_dir = Path(
            mlflow.artifacts.download_artifacts(f"models:/{NAME}/{mv.version}", dst_path=str(folder / "model"))
        )
    raw = [c for c in contract.names if c != contract.label.column]
    # No input types for MLflow to enforce (none admits both a Parquet timestamp and a CSV's text):
    # the contract inside checks rows.
    assert info.signature.inputs is None and info.signature.outputs.input_names() == ["prediction"]
    example = json.loads((model_dir / "input_example.json").read_text())
    assert example["columns"] == raw  # the columns a caller sends, timestamps as ISO text
    assert run.info.run_name == f"cold start {DAY}"
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name.startswith(contract.dataset) and {t.key: t.value for t in dataset.tags}[
        "mlflow.data.context"
    ].startswith("training ")
    assert experiment.tags["mlflow.note.content"].startswith(f"Versions of the registered model {NAME}")
    assert {"onnx_sha256", "inputs", "onnx_artifact"} <= set(mv.tags) and mv.tags["model_input"] == "raw"
    from batchml.base.provenance import sha256_file

    assert sha256_file(onnx_file) == mv.tags["onnx_sha256"]  # the batch's pin still finds its ONNX file at the run path
    assert (
        sha256_file(model_dir / "artifacts" / "model.onnx") == mv.tags["onnx_sha256"]
    )  # ... and the model scores that file
    assert (model_dir / "code" / "taxi_hooks.py").exists() and (model_dir / "code" / "taxi_synthetic.py").exists()
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} >= {
        "scikit-learn",
        "onnxruntime",
        "pandas",
        "pyarrow",
        "mlflow",
        "pyyaml",
    }
    assert (model_dir / "input_example.json").exists()


def test_mlflow_models_serve_answers_raw_rows_with_the_batch_predictions(scored, tmp_path):
    folder, rows_csv, expected = scored
    port = free_port()
    log = tmp_path / "serve.log"
    argv = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        URI,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with open(log, "w") as fh:
        server = subprocess.Popen(
            argv, cwd=tmp_path, env=clean_env(folder), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/ping"), "mlflow models serve", timeout=120, proc=server, log=log
        )
        rows = pd.read_csv(rows_csv)  # numbers as JSON numbers, timestamps as the CSV's text
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        # The team's Parquet file as it is: datetime64 timestamps, Int64, float and int32 integers.
        parquet = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=(folder / "rows.parquet").read_bytes(),
            headers={"Content-Type": "application/vnd.apache.parquet"},
            method="POST",
        )
        with urllib.request.urlopen(parquet, timeout=120) as response:
            from_parquet = json.loads(response.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert_batch_predictions([p["prediction"] for p in answer["predictions"]], expected)
    assert_batch_predictions([p["prediction"] for p in from_parquet["predictions"]], expected)


@pytest.mark.slow
def test_mlflow_models_predict_on_a_csv_of_raw_rows_agrees_with_the_batch(scored, tmp_path):
    folder, rows_csv, expected = scored
    out = tmp_path / "out.json"
    argv = [
        str(BIN / "mlflow"),
        "models",
        "predict",
        "-m",
        URI,
        "-i",
        str(rows_csv),
        "-t",
        "csv",
        "-o",
        str(out),
        "--env-manager",
        "local",
    ]
    run = subprocess.run(argv, cwd=tmp_path, env=clean_env(folder), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(out.read_text())
    assert_batch_predictions([p["prediction"] for p in answer["predictions"]], expected)


@pytest.mark.slow
def test_spark_udf_on_raw_rows_agrees_with_the_batch(scored, monkeypatch):
    """Runs where pyspark (and Java) are installed; batchml does not depend on them."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import struct

    folder, rows_csv, expected = scored
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    rows = pd.read_csv(rows_csv)
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        with _fluent_uris(f"sqlite:///{folder / 'mlflow.db'}"):
            udf = mlflow.pyfunc.spark_udf(spark, URI, env_manager="local", result_type="double")
        # one struct: the model declares no input types, and its columns are known by name only this way
        got = (
            spark.createDataFrame(rows).select(udf(struct(*rows.columns)).alias("prediction")).toPandas()["prediction"]
        )
    finally:
        spark.stop()
    assert_batch_predictions(got, expected)
