"""kill -9 of a real run at several points leaves no visible partial date, and the next run heals.

Each run is held at a failpoint (batchml/faults.py) and killed there with SIGKILL, as the
OOM killer or a lost node would. Readers going through pyarrow must see the state from
before the run; the next run must finish the date with the rows of an undisturbed run.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pyarrow.dataset as ds
import pytest

from batchml.storage import Storage
from tests.conftest import pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, last_lines

DAY = dt.date(2026, 4, 20)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, str]:
    """One registry for the module: the first test cold-starts the model, the others reuse it."""
    home = tmp_path_factory.mktemp("registry")
    return {
        "tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
        "artifact_location": str(home / "mlartifacts"),
        "cache_dir": str(home / "cache"),
    }


def make_cli(tmp_path, registry) -> Cli:
    settings = pipeline_settings(tmp_path)
    settings["mlflow"].update(registry)
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, registry):
    """The date run once without interruption (cold-starting the model): what a healed run must equal."""
    cli = make_cli(tmp_path_factory.mktemp("undisturbed"), registry)
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    return cli.root


def visible(root, dataset: str):
    """What a plain pyarrow reader of the dataset root sees: its files, and the rows of DAY."""
    if not (root / dataset).exists():
        return [], 0
    data = ds.dataset(root / dataset, format="parquet", partitioning="hive")
    if not data.files:
        return [], 0
    return data.files, data.count_rows(filter=ds.field("date") == DAY.isoformat())


def table(root, dataset: str):
    return ds.dataset(root / dataset / f"date={DAY}", format="parquet").to_table().sort_by("trip_id")


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize(
    "point",
    [
        "extract.staged",  # features half written
        "commit.features.files",  # every features file staged, no manifest yet
        "score.partition",  # predictions half written, on a Dask worker thread
        "commit.predictions.files",  # every predictions file staged, no manifest yet
        "commit.predictions.manifest",  # manifest staged, date not yet published
    ],
)
def test_a_run_killed_mid_write_leaves_the_old_state_and_the_next_run_heals(tmp_path, registry, undisturbed, point):
    cli = make_cli(tmp_path, registry)
    shutil.copytree(undisturbed / "pins", cli.root / "pins")  # the same model version as the undisturbed run
    run = cli.start("DailyScore", "--date", DAY.isoformat(), env={"BATCHML_FAILPOINT": point})
    run.wait_for(f"batchml failpoint {point} reached")
    run.kill()

    storage = Storage(cli.root)
    writing = "predictions" if "predictions" in point or "score" in point else "features"
    for dataset in ("quarantine", "features", "predictions"):
        files, rows = visible(cli.root, dataset)
        assert not [f for f in files if "/_" in f], f"a reader of {dataset} sees staging files: {files}"
        if dataset == writing or DAY not in storage.committed_dates(dataset):
            assert rows == 0, f"{dataset}: a reader sees {rows} rows of a date that was never committed"
        else:  # committed before the kill: whole, and exactly what its manifest says
            assert rows == storage.verify(dataset, DAY).rows["written"]
    assert DAY not in storage.committed_dates(writing)
    assert list((cli.root / writing / "_staging").rglob("*.parquet")), "nothing was staged: the failpoint is in the wrong place"

    healed = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert healed.returncode == 0, last_lines(healed, 40)
    for dataset in ("features", "predictions"):
        storage.verify(dataset, DAY)  # files on disk agree with the manifest
        assert not (cli.root / dataset / "_staging" / f"date={DAY}").exists(), "leftovers of the killed run were not cleaned"

    for dataset in ("features", "predictions", "quarantine"):
        assert table(cli.root, dataset).equals(table(undisturbed, dataset)), f"{dataset} differs from an undisturbed run"
        assert storage.manifest(dataset, DAY).rows == Storage(undisturbed).manifest(dataset, DAY).rows
