"""Corruption after commit is noticed (issue 13 item 6): sha256 per file in the manifest, Parquet
page checksums, `batchml verify`, reader errors naming the file, and the backfill plan.

A committed predictions file gets a few bytes flipped inside its first data page, the size
unchanged, as a bad disk or a botched copy would: every check must name that file.
"""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchml.base.errors import IntegrityError
from batchml.cli import main
from batchml.monitor.backfill import damage, heal_command, plan
from batchml.store.layout import DATASETS
from batchml.store.storage import Storage, open_storage
from tests.conftest import make_manifest

DAY = dt.date(2026, 6, 10)
DATASET = "predictions"


def commit_predictions(storage, date=DAY, rows=2000, *, page_checksums=True) -> str:
    """Commit one Parquet file of `rows` predictions for `date`; its name in the date's folder."""
    values = pd.DataFrame({"id": np.arange(rows), "prediction": np.linspace(1.0, 900.0, rows, dtype="float32")})
    manifest = make_manifest(rows, dataset=DATASET, date=date, model={"name": "m", "version": "1"})
    with storage.writer(DATASET, date) as w:
        with w.open("part-00000.parquet") as fh:
            pq.write_table(pa.Table.from_pandas(values, preserve_index=False), fh, write_page_checksum=page_checksums)
        return w.commit(manifest, {"part-00000.parquet": rows}).files[0]["path"]


def flip_bytes(storage, date, name, dataset=DATASET) -> str:
    """Flip three bytes in the middle of the second column's pages (the prediction's values), size unchanged; the file's
    URL."""
    url = f"{storage.partition_url(dataset, date)}/{name}"
    with storage.open(f"{dataset}/date={date}/{name}") as fh:
        blob = bytearray(fh.read())
    column = pq.ParquetFile(pa.BufferReader(bytes(blob))).metadata.row_group(0).column(1)
    start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
    at = start + column.total_compressed_size // 2
    for i in range(at, at + 3):
        blob[i] ^= 0x5A
    if hasattr(storage, "fs"):
        storage.fs.pipe_file(f"{storage.base}/{dataset}/date={date}/{name}", bytes(blob))
    else:
        (storage.partition_path(dataset, date) / name).write_bytes(bytes(blob))
    return url


def verify(root, *args) -> int:
    return main(["verify", str(root), "--start", "2026-06-01", "--stop", "2026-07-01", *args])


def test_a_clean_root_verifies_with_exit_0_and_one_summary_line(tmp_path, capsys):
    storage = Storage(tmp_path)
    commit_predictions(storage)
    commit_predictions(storage, DAY + dt.timedelta(days=1))
    assert verify(tmp_path, "--dataset", "predictions") == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.splitlines() == [
        "verified 2 files of 2 committed dates of predictions in [2026-06-01, 2026-07-01): all match their manifests"
    ]


def test_manifest_records_each_files_sha256(tmp_path):
    storage = Storage(tmp_path)
    name = commit_predictions(storage)
    import hashlib

    entry = storage.manifest(DATASET, DAY).files[0]
    assert entry["sha256"] == hashlib.sha256((storage.partition_path(DATASET, DAY) / name).read_bytes()).hexdigest()


def test_flipped_bytes_make_verify_exit_non_zero_naming_the_file(tmp_path, capsys):
    storage = Storage(tmp_path)
    commit_predictions(storage, DAY - dt.timedelta(days=1))
    url = flip_bytes(storage, DAY, commit_predictions(storage))
    assert verify(tmp_path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"predictions {DAY}: {url}: sha256 differs from _MANIFEST.json"
    assert err[-1].startswith("1 bad files among 2 files of 2 committed dates") and len(err) == 2


def test_the_size_check_passes_and_the_checksum_check_names_the_file(tmp_path):
    storage = Storage(tmp_path)
    name = commit_predictions(storage)
    flip_bytes(storage, DAY, name)
    storage.verify(DATASET, DAY)  # sizes only: what every task's run can afford
    with pytest.raises(
        IntegrityError,
        match=rf"predictions/date={DAY}: files disagree with _MANIFEST.json \(checksum differs \['{name}'\]\)",
    ):
        storage.verify(DATASET, DAY, checksums=True)


@pytest.mark.parametrize("page_checksums", [True, False])
def test_read_table_raises_naming_the_corrupt_file(tmp_path, page_checksums):
    """With page checksums (what batchml writes) the read fails on the page; without them a
    flipped byte may read as a different value, which the manifest's sha256 still catches."""
    storage = Storage(tmp_path)
    url = flip_bytes(storage, DAY, commit_predictions(storage, page_checksums=page_checksums))
    if page_checksums:
        with pytest.raises(IntegrityError, match=rf"^predictions {DAY}: {url}: unreadable: .*(CRC|checksum|orrupt)"):
            storage.read_table(DATASET, DAY)
    else:  # the case: a prediction silently became another number
        changed = storage.read_table(DATASET, DAY)["prediction"].to_numpy() != np.linspace(
            1.0, 900.0, 2000, dtype="float32"
        )
        assert changed.sum() >= 1
    assert verify(tmp_path) == 1


def commit_scored(storage, date=DAY) -> str:
    """A whole date as a run leaves it: quarantine, features, then predictions; the predictions file's name."""
    for dataset in ("quarantine", "features"):
        with storage.writer(dataset, date) as w:
            with w.open("part-00000.parquet") as fh:
                pq.write_table(pa.table({"id": [1, 2]}), fh, write_page_checksum=True)
            w.commit(make_manifest(2, dataset=dataset, date=date), {"part-00000.parquet": 2})
    return commit_predictions(storage, date)


def test_a_dry_run_plan_lists_the_corrupt_date_with_its_file(tmp_path):
    storage = Storage(tmp_path)
    good, bad = DAY - dt.timedelta(days=1), DAY
    commit_scored(storage, good)
    name = commit_scored(storage, bad)
    flip_bytes(storage, bad, name)
    todo = plan(storage, [good, bad, DAY + dt.timedelta(days=1)], "1")
    assert todo.corrupt == {bad: [f"predictions/{name}: checksum"]}
    assert todo.missing == [DAY + dt.timedelta(days=1)]
    assert f"corrupt: damaged, missing or half-committed (1): {bad} (predictions/{name}: checksum)" in todo.lines("1")


def test_a_date_with_a_truncated_manifest_is_listed_naming_the_file_and_the_other_dates_still_are(tmp_path, capsys):
    storage = Storage(tmp_path)
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    for d in days[:2]:
        commit_scored(storage, d)
    manifest = storage.manifest_path("features", DAY)
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(IntegrityError, match=rf"^{manifest}: unreadable manifest: "):
        storage.manifest("features", DAY)
    todo = plan(storage, days, "2")
    assert list(todo.corrupt) == [DAY] and todo.corrupt[DAY][0].startswith(
        "features/_MANIFEST.json: unreadable manifest: "
    )
    assert todo.missing == [days[2]] and todo.stale == [DAY, days[1]]  # the others listed as before
    assert verify(tmp_path) == 1
    assert capsys.readouterr().err.startswith(f"features {DAY}: {manifest}: unreadable manifest: ")


def test_half_a_date_is_corrupt_and_deleted_predictions_are_only_when_results_were_derived_from_them(tmp_path):
    storage = Storage(tmp_path)
    scored, unscored, derived = DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    for d in (scored, unscored, derived):
        commit_scored(storage, d)
    shutil.rmtree(storage.partition_path("features", scored))  # predictions left without their features
    shutil.rmtree(storage.partition_path("predictions", unscored))  # extracted, not scored: a state of its own
    shutil.rmtree(storage.partition_path("predictions", derived))
    storage.write_text(f"monitoring/date={derived}/metrics.json", "{}")  # ... but its metrics were derived from them
    assert damage(storage, unscored, checksums=True) == []
    assert [d.short() for d in damage(storage, scored, checksums=False)] == [
        f"features/date={scored}: not committed, though predictions/date={scored} is"
    ]
    assert [d.short() for d in damage(storage, derived, checksums=False)] == [
        f"predictions/date={derived}: not committed, though monitoring/date={derived}/metrics.json was derived from it"
    ]
    shutil.rmtree(storage.partition_path("quarantine", unscored))
    assert [(d.dataset, d.path) for d in damage(storage, unscored, checksums=False)] == [
        ("quarantine", f"quarantine/date={unscored}")
    ]
    assert (
        heal_command(DAY)
        == "luigi --module pipelines Backfill --start 2026-06-10 --stop 2026-06-11 --reprocess corrupt"
    )


def test_an_s3_root_verifies_and_names_a_corrupt_file(s3, capsys):
    root = f"{s3}/data"
    storage = open_storage(root)
    commit_predictions(storage, DAY - dt.timedelta(days=1))
    name = commit_predictions(storage)
    assert storage.manifest(DATASET, DAY).files[0]["sha256"]
    assert verify(root) == 0
    capsys.readouterr()
    url = flip_bytes(storage, DAY, name)
    assert verify(root) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"predictions {DAY}: {url}: sha256 differs from _MANIFEST.json"
    storage.verify(DATASET, DAY)
    with pytest.raises(IntegrityError, match=name):
        storage.verify(DATASET, DAY, checksums=True)
    with pytest.raises(IntegrityError, match=rf"^predictions {DAY}: {url}: unreadable"):
        storage.read_table(DATASET, DAY)


def test_in_a_project_folder_verify_with_no_arguments_checks_its_root_and_every_committed_date(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "luigi.cfg").write_text("[storage]\nroot = store\n")
    storage = Storage(tmp_path / "store")
    commit_predictions(storage, dt.date(2020, 1, 1))
    url = flip_bytes(storage, dt.date(2030, 1, 1), commit_predictions(storage, dt.date(2030, 1, 1)))
    monkeypatch.chdir(tmp_path)
    assert main(["verify"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"predictions 2030-01-01: {url}: sha256 differs from _MANIFEST.json"
    assert (
        err[-1]
        == "1 bad files among 2 files of 2 committed dates of " + ", ".join(DATASETS) + " in [the first, the last]"
    )


def test_a_root_that_does_not_exist_and_a_reversed_range_are_errors(tmp_path, monkeypatch, capsys):
    assert main(["verify", str(tmp_path / "typo")]) == 1
    assert (
        capsys.readouterr().err == f"batchml verify: {tmp_path / 'typo'}: no such folder (the storage root to verify)\n"
    )
    commit_predictions(Storage(tmp_path))
    assert main(["verify", str(tmp_path), "--start", "2026-07-01", "--stop", "2026-06-01"]) == 1
    assert "--stop 2026-06-01 is not after --start 2026-07-01" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # no luigi.cfg here
    assert main(["verify"]) == 1
    assert f"no ROOT given and no luigi.cfg in {tmp_path}" in capsys.readouterr().err


def test_version(capsys):
    import batchml

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"batchml {batchml.__version__}\n"
