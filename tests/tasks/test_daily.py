"""The daily tasks through luigi.build with a local scheduler, on tmp_path."""

import datetime as dt
import os
import shutil

import luigi
import pandas as pd
import pyarrow.dataset as ds
from luigi.execution_summary import LuigiStatusCode
from luigi.tools.range import RangeDaily

from pipelines import DailyScore
from tasks.config import cache_dir, make_registry, make_storage
from tasks.model import read_pin
from tests.conftest import trips

KEY = ["vendor_id", "pickup_datetime", "dropoff_datetime", "pickup_location_id", "dropoff_location_id"]


def pipeline_cache():
    return cache_dir()


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def snapshot(root):
    """Every file under the storage root with its modification time."""
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, fs in os.walk(root)
        for f in fs
        if "_locks" not in d
    }


def test_daily_score_commits_every_dataset_with_consistent_manifests(pipeline, day):
    result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    storage = make_storage()
    features, quarantine, predictions = (storage.verify(d, day) for d in ("features", "quarantine", "predictions"))
    assert features.rows["in"] == 3000 == predictions.rows["written"] + predictions.rows["quarantined"]
    assert predictions.rows["quarantined"] == quarantine.rows["quarantined"] > 0
    pin = read_pin(day)
    assert predictions.model == {
        "name": "trip_duration",
        "version": pin.version,
        "sha256": pin.sha256,
        "runtime": "onnx",
        "flavor": "batchml",
    }
    frame = pd.read_parquet(storage.partition_path("predictions", day))
    assert list(frame.columns) == [
        *KEY,
        "prediction",
        "model_name",
        "model_version",
    ]  # every key column, the composite key
    assert len(frame) == predictions.rows["written"] and not frame.duplicated(KEY).any()
    assert set(frame["model_version"].astype(str)) == {pin.version}
    features_keys = pd.read_parquet(storage.partition_path("features", day), columns=KEY)
    assert frame[KEY].merge(features_keys, on=KEY).shape[0] == len(frame) == len(features_keys)
    quarantine = pd.read_parquet(storage.partition_path("quarantine", day))
    assert quarantine["reason"].str.contains("passenger_count|trip_distance|dropoff_location_id|vendor_id").all()
    assert (quarantine["vendor_id"] == "9").any() or (quarantine["passenger_count"] == "0").any()  # raw values, as text


def test_rerunning_a_complete_date_runs_nothing_and_rewrites_nothing(pipeline, day):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    before = snapshot(make_storage().root)
    again = build(DailyScore(day))
    assert again.status == LuigiStatusCode.SUCCESS
    assert "Did not run any tasks" in again.summary_text
    assert snapshot(make_storage().root) == before


def test_a_past_date_keeps_its_pin_after_the_champion_moves(pipeline, day):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    registry = make_registry()
    first = read_pin(day)
    mv = registry.client.get_model_version("trip_duration", first.version)
    second = str(
        registry.client.create_model_version("trip_duration", source=mv.source, run_id=mv.run_id, tags=mv.tags).version
    )
    registry.set_alias("champion", second)

    storage = make_storage()
    os.remove(storage.manifest_path("predictions", day))  # force a re-score of the past date ...
    shutil.rmtree(storage.root / "monitoring" / f"date={day}")  # ... and of what was derived from it
    nxt = day + dt.timedelta(days=1)
    assert build(DailyScore(day), DailyScore(nxt)).status == LuigiStatusCode.SUCCESS
    assert storage.manifest("predictions", day).model["version"] == first.version
    assert storage.manifest("predictions", nxt).model["version"] == second


def test_range_daily_runs_only_the_missing_dates_from_manifests(pipeline, day):
    assert build(DailyScore(day + dt.timedelta(days=1))).status == LuigiStatusCode.SUCCESS
    missing = RangeDaily(
        of=DailyScore, start=day, stop=day + dt.timedelta(days=3), now=int(pd.Timestamp("2027-01-01").timestamp())
    ).requires()
    assert [t.date for t in missing] == [day, day + dt.timedelta(days=2)]
    assert DailyScore.bulk_complete([day, day + dt.timedelta(days=1)]) == [day + dt.timedelta(days=1)]


def test_a_date_missing_at_the_source_is_missing_data_not_a_failure(pipeline, day, tmp_path):
    pipeline({"source": {"kind": "files", "path": str(tmp_path / "raw" / "date={date}"), "format": "parquet"}})
    result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.MISSING_EXT
    assert not make_storage().dataset_path("features").exists()


def test_too_many_rejected_rows_fail_the_date_and_keep_them(pipeline, day):
    pipeline({"source": trips(bad_row_share=0.2)})
    result = build(DailyScore(day))
    assert result.status == LuigiStatusCode.FAILED
    storage = make_storage()
    assert storage.committed_dates("features") == set() and storage.committed_dates("quarantine") == set()
    kept = list((storage.dataset_path("quarantine") / "_rejected").glob(f"date={day}.*.parquet"))
    assert len(kept) == 1
    rejected = pd.read_parquet(kept[0])
    assert len(rejected) > 400 and rejected["reason"].notna().all()
    assert ds.dataset(storage.dataset_path("quarantine"), format="parquet", partitioning="hive").count_rows() == 0


def test_a_model_artifact_that_fails_its_hash_is_never_used(pipeline, day):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    pin = read_pin(day)
    registry = make_registry()
    artifact = registry.client.get_run(pin.run_id).info.artifact_uri.replace("file://", "") + "/onnx/model.onnx"
    cached = registry.fetch(pin, pipeline_cache())
    for path in (artifact, cached):  # the registry's copy and the verified local cache
        with open(path, "ab") as fh:
            fh.write(b"\0")
    nxt = day + dt.timedelta(days=1)
    assert build(DailyScore(nxt)).status == LuigiStatusCode.FAILED
    assert make_storage().read_text(f"pins/date={nxt}.json") is None
    assert not make_storage().is_committed("predictions", nxt)


def test_a_tampered_cache_is_fetched_again_from_the_registry(pipeline, day):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    cached = make_registry().fetch(read_pin(day), pipeline_cache())
    cached.write_bytes(b"garbage")
    assert build(DailyScore(day + dt.timedelta(days=1))).status == LuigiStatusCode.SUCCESS
    assert make_registry().fetch(read_pin(day), pipeline_cache()).read_bytes() != b"garbage"
