"""Targets load the value they hold and dump it whole: a pin, a monitoring document, a committed date's manifest."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchml.base.errors import IntegrityError
from batchml.model.pin import ModelPin
from tasks.config import make_storage
from tasks.targets import DocumentTarget, PartitionTarget, PinTarget
from tests.conftest import make_manifest

PIN = ModelPin(
    name="m", version="3", sha256="ab" * 32, alias="champion", run_id="r1", inputs=("x", "y"), classes=(0, 1)
)


def test_a_pin_target_loads_the_pin_it_holds_and_a_date_is_pinned_once(pipeline, day):
    target = PinTarget(day)
    with pytest.raises(FileNotFoundError, match=rf"pins/date={day}\.json: {day} has no pinned model"):
        target.load()
    target.dump(PIN)
    target.dump(dataclasses.replace(PIN, version="4"))  # a concurrent run that pinned first keeps its pin
    assert target.exists() and target.load() == PIN
    target.replace(dataclasses.replace(PIN, version="4"))  # a re-score on request re-pins
    assert target.load().version == "4"


def test_a_document_target_loads_its_document_redacted_and_none_before_it_is_written(pipeline, day):
    target = DocumentTarget(day, "drift.json")
    assert target.load() is None and not target.exists()
    target.dump({"verdict": "stable", "source": "postgresql://bob:hunter2@db/x", "at": day})
    assert target.load() == {"verdict": "stable", "source": "postgresql://***@db/x", "at": day.isoformat()}
    assert target.relative == f"monitoring/date={day}/drift.json"


def test_a_partition_target_loads_the_verified_manifest_of_its_date(pipeline, day):
    target = PartitionTarget("features", day)
    assert not target.exists()
    storage = make_storage()
    with storage.writer("features", day) as writer:
        pq.write_table(pa.table({"id": [1, 2]}), writer.path / "part-0.parquet")  # a real file: tables read it
        writer.commit(make_manifest(2, dataset="features", date=day))
    assert target.exists()
    assert target.load().dataset == "features"
    (storage.partition_path("features", day) / "part-0.parquet").write_bytes(b"PAR1 longer")
    with pytest.raises(IntegrityError):
        target.load()  # verified: a file that differs from its manifest is refused
