"""`batchml init` on the real TLC samples, then the project run from its own folder as a user would.

The generated project validates the sample's dates as soon as a model is registered: the
test edits the labels stub (trip duration from the two timestamps), registers a model the
way a data scientist would (plain MLflow, not batchml), and scores a date with the `luigi`
command from the project folder. Outputs are asserted, not only exit codes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from batchml.dataset.contract import Contract

BIN = Path(sys.executable).parent
TLC = Path(__file__).resolve().parents[1] / "data" / "tlc"
SAMPLE = TLC / "yellow_tripdata_sample_2018-01.csv.gz"
DAY = dt.date(2018, 1, 15)


DURATION = '''

def labels(rows: pd.DataFrame) -> pd.Series:
    """Trip duration in seconds from the two timestamps; none (NaN) for zero, negative or over-six-hour trips."""
    seconds = (rows["dropoff_datetime"] - rows["pickup_datetime"]).dt.total_seconds()
    return seconds.where((seconds > 0) & (seconds <= 6 * 3600))
'''

# What a data scientist runs to put a first model in the project's registry: plain MLflow,
# trained on the project's own features transform and labels, registered and given the alias.
REGISTER = """
import configparser, datetime as dt, sys
import mlflow, pandas as pd, skops.io
from mlflow.models import infer_signature
from batchml.dataset.contract import Contract, validate
from batchml.dataset.sources import FileSource
from batchml.model.training import TrainingSettings
import {module} as hooks

cfg = configparser.ConfigParser()
cfg.read("luigi.cfg")
contract = Contract.load("contract.yaml")
source = FileSource(path=cfg["source"]["path"], contract=contract, fmt=cfg["source"]["format"])
days = [dt.date(2018, 1, i) for i in range(1, 11)]
rows = pd.concat([validate(b, contract, d, origin=o).valid for d in days for o, b in source.batches(d)])
rows = rows.reset_index(drop=True)
x, y = hooks.features(rows), hooks.labels(rows)
x, y = x[y.notna().to_numpy()], y[y.notna()].to_numpy()
settings = TrainingSettings(inputs=tuple(x.columns), label="y", task="regression", seed=0, params={{"max_iter": 30}})
model = hooks.recipe(x.assign(y=y), settings)
mlflow.set_tracking_uri("sqlite:///mlflow.db")
with mlflow.start_run():
    info = mlflow.sklearn.log_model(
        model, name="model", registered_model_name=cfg["mlflow"]["registered_model"],
        signature=infer_signature(x.head(50), model.predict(x.head(50))), input_example=x.head(5),
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
    )
version = info.registered_model_version
mlflow.MlflowClient().set_registered_model_alias(cfg["mlflow"]["registered_model"], "champion", version)
print("registered", version, len(x))
"""


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def manifest(project: Path, dataset: str, date: dt.date) -> dict | None:
    path = project / "data" / dataset / f"date={date.isoformat()}" / "_MANIFEST.json"
    return json.loads(path.read_text()) if path.exists() else None


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def test_init_then_register_then_score_a_date_from_the_project_folder(tmp_path):
    project = tmp_path / "proj"
    made = run(
        [
            str(BIN / "batchml"),
            "init",
            str(project),
            "--sample",
            str(SAMPLE),
            "--label",
            "trip_duration_s",
            "--task",
            "regression",
        ],
        cwd=tmp_path,
    )
    assert made.returncode == 0, explain(made)
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "contract.yaml", "luigi.cfg", "proj_hooks.py"]
    contract = Contract.load(project / "contract.yaml")
    assert (contract.label.column, contract.label.task, contract.timestamp) == (
        "trip_duration_s",
        "regression",
        "pickup_datetime",
    )
    assert "yellow_tripdata_sample_{year}-{month}.csv.gz" in (project / "luigi.cfg").read_text()

    again = run([str(BIN / "batchml"), "init", str(project), "--sample", str(SAMPLE)], cwd=tmp_path)
    assert again.returncode != 0 and str(project) in again.stderr and len(again.stderr.strip().splitlines()) == 1

    hooks = project / "proj_hooks.py"
    hooks.write_text(hooks.read_text() + DURATION)  # the user fills in the labels stub
    registered = run([str(BIN / "python"), "-c", textwrap.dedent(REGISTER.format(module="proj_hooks"))], cwd=project)
    assert registered.returncode == 0 and "registered 1" in registered.stdout, explain(registered)

    extract = run(
        [str(BIN / "luigi"), "--module", "pipelines", "ExtractFeatures", "--date", DAY.isoformat()], cwd=project
    )
    features = manifest(project, "features", DAY)
    assert features is not None, explain(extract)
    quarantine = manifest(project, "quarantine", DAY)
    assert quarantine is not None, explain(extract)
    raw = pd.read_csv(SAMPLE, usecols=["pickup_datetime"], parse_dates=["pickup_datetime"])
    on_day = int((raw["pickup_datetime"].dt.date == DAY).sum())
    assert features["rows"]["in"] == on_day > 0
    assert features["rows"]["quarantined"] == 0  # the contract was inferred from this very file
    assert extract.returncode == 0, explain(extract)

    score = run([str(BIN / "luigi"), "--module", "pipelines", "DailyScore", "--date", DAY.isoformat()], cwd=project)
    pin = project / "data" / "pins" / f"date={DAY.isoformat()}.json"
    assert pin.exists(), explain(score)
    assert json.loads(pin.read_text())["version"] == "1"
    predictions = manifest(project, "predictions", DAY)
    assert predictions is not None, explain(score)
    assert predictions["rows"]["written"] == on_day
    frame = pd.read_parquet(project / "data" / "predictions" / f"date={DAY.isoformat()}")
    assert len(frame) == on_day and frame["prediction"].notna().all()
    assert set(contract.key) <= set(frame.columns)
    assert frame["prediction"].between(0, 6 * 3600).mean() > 0.95  # seconds of a taxi trip
    assert predictions["model"]["version"] == "1"
    assert score.returncode == 0, explain(score)


CAMEL = {
    "vendor_id": "VendorID",
    "pickup_datetime": "tpep_pickup_datetime",
    "dropoff_datetime": "tpep_dropoff_datetime",
}
CAMEL |= {"pickup_location_id": "PULocationID", "dropoff_location_id": "DOLocationID", "rate_code_id": "RatecodeID"}


def test_a_camel_case_copy_extracts_another_month_through_the_path_template(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for month in ("01", "02"):
        frame = pd.read_csv(TLC / f"yellow_tripdata_sample_2018-{month}.csv.gz", dtype=str, keep_default_na=False)
        frame.rename(columns=CAMEL).to_csv(raw / f"yellow_tripdata_2018-{month}.csv.gz", index=False)
    project = tmp_path / "camel"
    made = run(
        [str(BIN / "batchml"), "init", str(project), "--sample", str(raw / "yellow_tripdata_2018-01.csv.gz")],
        cwd=tmp_path,
    )
    assert made.returncode == 0, explain(made)
    contract = Contract.load(project / "contract.yaml")
    assert (
        contract.column("pu_location_id").source == ("PULocationID",) and contract.timestamp == "tpep_pickup_datetime"
    )

    day = dt.date(2018, 2, 10)  # a month the sample did not show: the template finds its file
    extract = run(
        [str(BIN / "luigi"), "--module", "pipelines", "ExtractFeatures", "--date", day.isoformat()], cwd=project
    )
    features = manifest(project, "features", day)
    assert features is not None and manifest(project, "quarantine", day) is not None, explain(extract)
    february = pd.read_csv(
        raw / "yellow_tripdata_2018-02.csv.gz", usecols=["tpep_pickup_datetime"], parse_dates=["tpep_pickup_datetime"]
    )
    assert features["rows"]["in"] == int((february["tpep_pickup_datetime"].dt.date == day).sum()) > 0
    assert (
        features["rows"]["quarantined"] <= 0.05 * features["rows"]["in"]
    )  # only values outside January's observed ranges
    written = pd.read_parquet(project / "data" / "features" / f"date={day.isoformat()}")
    assert {"vendor_id", "pu_location_id", "tpep_pickup_datetime_hour"} <= set(written.columns)
    assert extract.returncode == 0, explain(extract)


def test_init_on_a_messy_export_then_extract_a_date_of_it(tmp_path):
    """The real sample as a messier export gives it: CamelCase times with New York offsets and a few unparsable
    pickups."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).head(3000)
    frame = frame.rename(columns={"pickup_datetime": "PickupTime", "dropoff_datetime": "DropoffTime"})
    for col in ("PickupTime", "DropoffTime"):
        frame[col] = frame[col] + "-05:00"
    frame.loc[[5, 50, 500], "PickupTime"] = ["N/A", "0000-00-00 00:00:00", "2018-01-32 08:00:00-05:00"]
    sample = tmp_path / "yellow_tripdata_messy_2018-01.csv.gz"
    frame.to_csv(sample, index=False)
    project = tmp_path / "messy"
    made = run(
        [str(BIN / "batchml"), "init", str(project), "--sample", str(sample), "--label", "TripDurationS"], cwd=tmp_path
    )
    assert made.returncode == 0, explain(made)
    contract = Contract.load(project / "contract.yaml")
    assert (contract.timestamp, contract.timezone, contract.label.column) == (
        "pickup_time",
        "Etc/GMT+5",
        "TripDurationS",
    )

    extract = run(
        [str(BIN / "luigi"), "--module", "pipelines", "ExtractFeatures", "--date", DAY.isoformat()], cwd=project
    )
    features = manifest(project, "features", DAY)
    assert features is not None and extract.returncode == 0, explain(extract)
    local = pd.to_datetime(
        frame["PickupTime"].str.removesuffix("-05:00"), errors="coerce"
    )  # wall-clock New York time, as written
    on_day = int((local.dt.date == DAY).sum())
    assert features["rows"]["in"] == on_day > 0 and features["rows"]["quarantined"] == 0
