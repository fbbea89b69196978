"""kill -9 of a real run at several points leaves no visible partial date, and the next run heals.

Each run is held at a failpoint (batchml/base/faults.py) and killed there with SIGKILL, as the
OOM killer or a lost node would. Readers going through the manifests must see the state
from before the run; the next run must finish the date with the rows of an undisturbed run.
Every scenario runs on a local storage root and on S3 (a moto server), where the next run
first waits for the killed writer's lease to expire ([storage] lease_seconds, 3 s here).

On a local root a date is published by one rename, so a plain reader of the dataset folder
(pyarrow) sees nothing of it either. On S3 the manifest PUT is the commit: at
`commit.<dataset>.files` the data files are already in the date's folder, which a plain
prefix reader sees, and `commit.<dataset>.manifest` comes after the commit.

Quarantine and features are two commits of one run: at the `extract.*` failpoints
between them (batchml/store/visibility.py) batchml's readers must see neither, and the next
run must re-extract the date.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.dataset as ds
import pytest

from batchml.store.reader import committed_files
from batchml.store.storage import Storage, open_storage
from tests.conftest import KEY, prefix_dataset, storage_fs
from tests.e2e.conftest import last_lines, make_cli, registry_settings

DAY = dt.date(2026, 4, 20)
PIN = f"pins/date={DAY}.json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, str]:
    """One registry for the module: the first test cold-starts the model, the others reuse it."""
    home = tmp_path_factory.mktemp("registry")
    return registry_settings(home)


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, registry):
    """The date run once without interruption (cold-starting the model): what a healed run must equal."""
    cli = make_cli(tmp_path_factory.mktemp("undisturbed"), registry)
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    return cli.root


def visible(storage, dataset: str):
    """What a plain pyarrow reader of the dataset's prefix sees: its files, and the rows of DAY."""
    data = prefix_dataset(storage, dataset)
    if data is None or not data.files:
        return [], 0
    return data.files, data.count_rows(filter=ds.field("date") == DAY.isoformat())


def staged(storage, dataset: str) -> list[str]:
    """Files under the staging prefix of DAY of a dataset."""
    fs, base = storage_fs(storage)
    return fs.find(f"{base}/{dataset}/_staging/date={DAY}")


def table(storage, dataset: str) -> pd.DataFrame:
    """DAY of a dataset, read through its manifest, in trip order."""
    return storage.read_table(dataset, DAY).sort_values(KEY, ignore_index=True)


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize(
    "point",
    [
        "extract.staged",  # features half written
        "extract.pending",  # the date's _pending marker written, nothing committed
        "commit.quarantine.manifest",  # quarantine's manifest staged, not published
        "extract.quarantine.committed",  # quarantine committed, features not: the date must stay invisible
        "commit.features.files",  # every features file staged, no manifest yet
        "extract.features.committed",  # both committed, the marker not yet removed
        "score.partition",  # predictions half written, on a Dask worker thread
        "commit.predictions.files",  # every predictions file staged, no manifest yet
        "commit.predictions.manifest",  # manifest staged, date not yet published
    ],
)
def test_a_run_killed_mid_write_leaves_the_old_state_and_the_next_run_heals(
    tmp_path, registry, undisturbed, point, storage_root
):
    cli = make_cli(tmp_path, registry, storage_root)
    storage, reference = open_storage(storage_root), Storage(undisturbed)
    storage.write_once(PIN, reference.read_text(PIN))  # the same model version as the undisturbed run
    run = cli.start("DailyScore", "--date", DAY.isoformat(), env={"BATCHML_FAILPOINT": point})
    run.wait_for(f"batchml failpoint {point} reached")
    run.kill()

    on_s3 = storage_root.startswith("s3://")
    writing = "predictions" if "predictions" in point or "score" in point else "features"
    committed_by_the_kill = on_s3 and point == f"commit.{writing}.manifest"  # the manifest PUT was the commit
    # batchml's readers (manifests, committed_dates, batchml.store.reader) see the date's quarantine and
    # features together or not at all
    seen = {
        d: (DAY in storage.committed_dates(d), storage.manifest(d, DAY) is not None) for d in ("quarantine", "features")
    }
    assert seen["quarantine"] == seen["features"] and len(set(seen["features"])) == 1, (
        f"killed at {point}, readers see half a date: {seen}"
    )
    assert (
        bool(committed_files(storage_root, "quarantine"))
        == bool(committed_files(storage_root, "features"))
        == seen["features"][0]
    )
    if DAY in storage.committed_dates("predictions"):
        assert seen["features"][0], f"killed at {point}: predictions are shown without their features"
    for dataset in ("quarantine", "features", "predictions"):
        files, rows = visible(
            storage, dataset
        )  # a plain reader of one dataset's folder: each dataset's date whole or absent
        assert not [f for f in files if "/_" in f], f"a reader of {dataset} sees staging files: {files}"
        if DAY in storage.committed_dates(
            dataset
        ):  # committed before the kill: whole, and exactly what its manifest says
            assert dataset != writing or committed_by_the_kill, f"{dataset}: committed by a run killed at {point}"
            assert rows == storage.verify(dataset, DAY).rows["written"] == len(storage.read_table(dataset, DAY))
        elif storage._raw_committed(dataset, DAY):  # committed but not shown (its marker is there): whole on disk
            assert storage.pending_dates() == {DAY}, f"{dataset}: committed on disk and hidden, but no marker hides it"
            assert rows == storage._raw_manifest(dataset, DAY).rows["written"]
        elif not (on_s3 and point == f"commit.{dataset}.files"):  # there, a prefix reader sees the copied files
            assert rows == 0, f"{dataset}: a reader sees {rows} rows of a date that was never committed"
    if not committed_by_the_kill:
        assert DAY not in storage.committed_dates(writing) and storage.manifest(writing, DAY) is None
        if point == "extract.features.committed":  # published, hidden by the marker
            written = [f["path"] for f in storage._raw_manifest(writing, DAY).files]
        elif (
            on_s3 and point == f"commit.{writing}.files"
        ):  # staging is removed once copied: the copies are in the date's folder
            written = storage.fs.ls(storage._partition_key(writing, DAY), detail=False, refresh=True)
        else:
            written = staged(storage, writing)
        assert [f for f in written if f.endswith(".parquet")], (
            "nothing was written: the failpoint is in the wrong place"
        )

    healed = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert healed.returncode == 0, last_lines(healed, 40)
    if on_s3 and not committed_by_the_kill:
        assert "took over an expired lease" in healed.stderr, last_lines(healed, 40)
    assert not storage.pending_dates(), "the healed run left the date's marker"
    for dataset in ("features", "predictions"):
        storage.verify(dataset, DAY)  # the files agree with the manifest
        assert not staged(storage, dataset), f"leftovers of the killed run in {dataset} were not cleaned"

    for dataset in ("features", "predictions", "quarantine"):
        pd.testing.assert_frame_equal(
            table(storage, dataset), table(reference, dataset), obj=f"{dataset} against an undisturbed run"
        )
        assert storage.manifest(dataset, DAY).rows == reference.manifest(dataset, DAY).rows
        files, rows = visible(storage, dataset)
        assert rows == len(table(reference, dataset)), f"{dataset}: a plain reader sees {rows} rows after healing"
