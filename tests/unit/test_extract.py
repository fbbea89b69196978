"""Extraction writes features files on a thread of its own: a failed write still fails the date whole."""

import datetime as dt
import errno

import pyarrow.parquet as pq
import pytest

from batchml.contract import Contract
from batchml.extract import extract_date
from batchml.sources import GeneratorSource
from batchml.storage import open_storage
from tests.conftest import CONTRACT, TRIPS

DAY = dt.date(2026, 6, 10)


def extract(storage, rows_per_file=500):
    source = GeneratorSource(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 3000})
    return extract_date(
        source, Contract.load(CONTRACT), storage, DAY, transform="taxi_hooks:features", run_id="r", max_reject_share=0.05, rows_per_file=rows_per_file
    )


def test_every_file_written_in_the_background_is_in_the_manifest(tmp_path):
    storage = open_storage(tmp_path / "data")
    result = extract(storage)
    manifest = storage.verify("features", DAY, checksums=True)
    assert len(manifest.files) == 6 and manifest.rows["written"] == result.rows_valid == len(storage.read_table("features", DAY))


def test_a_features_file_that_fails_to_write_fails_the_date_and_commits_nothing(tmp_path, monkeypatch):
    storage = open_storage(tmp_path / "data")
    real, calls = pq.write_table, []

    def disk_full_on_the_third(table, where, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", disk_full_on_the_third)
    with pytest.raises(OSError, match="No space left"):
        extract(storage)
    assert DAY not in storage.committed_dates("features") and DAY not in storage.committed_dates("quarantine")
    monkeypatch.setattr(pq, "write_table", real)
    assert extract(storage).rows_valid > 0  # the next run extracts the date
