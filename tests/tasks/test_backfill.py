"""Backfill: lists what a range needs, re-scores stale dates only when asked."""

import contextlib
import datetime as dt
import json
import logging
import re
import time

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipelines import Backfill, DailyScore, DetectDrift, RangeDaily
from tasks.config import make_registry, make_storage
from tests.conftest import batchml_log, distinct_keys


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_stale_dates_are_listed_and_rescored_only_on_request(pipeline, day, capsys):
    first, second, third = day, day + dt.timedelta(days=1), day + dt.timedelta(days=2)
    assert build(DailyScore(first), DailyScore(second)).status == LuigiStatusCode.SUCCESS
    registry = make_registry()
    mv = registry.client.get_model_version("trip_duration", "1")
    v2 = str(
        registry.client.create_model_version("trip_duration", source=mv.source, run_id=mv.run_id, tags=mv.tags).version
    )
    registry.set_alias("champion", v2)  # as a promotion would

    assert (
        build(Backfill(start=first, stop=third + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
    )
    listed = capsys.readouterr().out
    assert f"missing (1): {third}" in listed and f"({2}): {first}, {second}" in listed
    assert not make_storage().is_committed("predictions", third)  # a dry run runs nothing

    version = lambda d: make_storage().manifest("predictions", d).model["version"]  # noqa: E731
    assert build(Backfill(start=first, stop=third + dt.timedelta(days=1))).status == LuigiStatusCode.SUCCESS
    assert (version(first), version(second), version(third)) == ("1", "1", v2)  # never silently re-scored

    assert build(Backfill(start=first, stop=third, reprocess="stale")).status == LuigiStatusCode.SUCCESS
    assert (version(first), version(second)) == (v2, v2)
    storage = make_storage()
    for d in (first, second):
        assert (
            storage.verify("predictions", d).rows["written"] + storage.manifest("predictions", d).rows["quarantined"]
            == 3000
        )
        assert storage.read_text(f"monitoring/date={d}/report.html") is not None
        assert json.loads(storage.read_text(f"pins/date={d}.json"))["version"] == v2


@contextlib.contextmanager
def start_order(task_class):
    """The dates of `task_class` tasks in the order the run starts them."""
    order = []

    def record(task):
        order.append(task.date)

    task_class.event_handler(luigi.Event.START)(record)
    try:
        yield order
    finally:
        task_class.remove_event_handler(luigi.Event.START, record)


@pytest.mark.parametrize("newest_first", [True, False])
def test_backfill_runs_dates_newest_first_on_request_and_oldest_first_otherwise(pipeline, day, newest_first):
    dates = [day + dt.timedelta(days=i) for i in range(3)]
    with start_order(
        DetectDrift
    ) as order:  # a date's own stage (Metrics may also score D - lag for its realized error)
        assert (
            build(Backfill(start=dates[0], stop=dates[-1] + dt.timedelta(days=1), newest_first=newest_first)).status
            == LuigiStatusCode.SUCCESS
        )
    if newest_first:  # the newest date starts first (each date may pull in the scoring of its labelled date)
        assert order[0] == dates[-1] and sorted(order) == dates
    else:
        assert order == dates


def test_range_daily_with_batchml_defaults_requires_every_missing_date_however_many_or_old(pipeline, day):
    from pipelines.defaults import SAFETY_DEFAULTS

    pipeline({"RangeDaily": dict(SAFETY_DEFAULTS["RangeDaily"])})
    build(DailyScore(day))
    start = day - dt.timedelta(days=400)  # older than Luigi's default days_back=100
    stop = day + dt.timedelta(days=30)
    wanted = [start + dt.timedelta(days=i) for i in range((stop - start).days) if start + dt.timedelta(days=i) != day]
    range_task = RangeDaily(
        of=DailyScore, start=start, stop=stop, now=int(time.mktime((stop + dt.timedelta(days=1)).timetuple()))
    )
    # Listed newest first: Luigi runs the last-listed first. 429 dates, above the default task_limit=50;
    # the committed one left out.
    assert [t.date for t in range_task.requires()] == wanted[::-1]


def test_range_daily_runs_the_oldest_missing_date_first_so_a_cold_start_never_trains_on_the_range(pipeline, day):
    dates = [day + dt.timedelta(days=i) for i in range(3)]
    now = int(time.mktime((dates[-1] + dt.timedelta(days=2)).timetuple()))
    with start_order(DetectDrift) as order:
        assert (
            build(RangeDaily(of=DailyScore, start=dates[0], stop=dates[-1] + dt.timedelta(days=1), now=now)).status
            == LuigiStatusCode.SUCCESS
        )
    assert order == dates
    tags = make_registry().version_tags("1")  # the first model's window ends label_lag_days before the range
    assert tags["window_end"] == (dates[0] - dt.timedelta(days=2)).isoformat()


def test_a_date_whose_source_changed_is_listed_kept_on_a_plain_run_and_re_extracted_on_request(
    pipeline, day, tmp_path, capsys, caplog
):
    import pandas as pd
    from taxi_synthetic import trips as generate

    raw = tmp_path / "raw"
    raw.mkdir()

    def write(date, rows, seed):
        frame = pd.concat(generate(date, rows_per_day=rows, seed=seed), ignore_index=True)
        frame.to_csv(raw / f"trips_{date}.csv", index=False)
        return frame

    for i in range(6, -1, -1):
        write(day - dt.timedelta(days=i), 3000, 5)
    pipeline({"source": {"kind": "files", "path": str(raw / "trips_{date}.csv"), "format": "csv"}})
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    before = storage.manifest("features", day)
    new = write(day, 2000, 77)  # the provider re-delivered the date

    assert build(Backfill(start=day, stop=day + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert f"changed at the source since extraction (1): {day}" in capsys.readouterr().out
    assert (
        build(DailyScore(day), Backfill(start=day, stop=day + dt.timedelta(days=1))).status == LuigiStatusCode.SUCCESS
    )
    assert storage.manifest("features", day).run_id == before.run_id  # never re-extracted silently

    caplog.set_level(logging.INFO, logger="batchml")
    with batchml_log(caplog):
        assert (
            build(Backfill(start=day, stop=day + dt.timedelta(days=1), reprocess="changed")).status
            == LuigiStatusCode.SUCCESS
        )
    assert re.search(rf"backfill: date 1 of 1: {day} done \(\d+\.\d s\)", caplog.text)
    assert re.search(rf"re-scored \d of \d partitions of {day} with models:/trip_duration/1", caplog.text)
    features, predictions = storage.verify("features", day), storage.verify("predictions", day)
    assert features.rows["in"] == predictions.rows["in"] == len(new)
    assert predictions.rows["written"] + predictions.rows["quarantined"] == len(new)
    scored = storage.read_table("predictions", day)
    assert distinct_keys(scored) == len(scored) == predictions.rows["written"]
    assert predictions.model["version"] == "1"  # re-scored with the date's pin
    assert json.loads(storage.read_text(f"monitoring/date={day}/metrics.json"))["numbers"]["rows_in"] == len(
        new
    )  # derived again
    assert storage.read_text(f"monitoring/date={day}/report.html") is not None
    assert build(Backfill(start=day, stop=day + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert "changed at the source since extraction (0): none" in capsys.readouterr().out


HOOK = """
from taxi_hooks import features as taxi_features


def features(rows):
    out = taxi_features(rows)
    out["trip_distance"] = out["trip_distance"] * {factor}
    return out
"""


def _reload_project(module: str) -> None:
    """What a new process would see: the hook module and the contract read again (a run reads them once)."""
    import sys

    from batchml.base.hooks import load_hook
    from batchml.project.context import reset_context

    load_hook.cache_clear()
    reset_context()
    sys.modules.pop(module, None)


def test_a_date_whose_features_hook_code_or_contract_changed_is_listed_and_re_processed_on_request(
    pipeline, day, tmp_path, capsys, monkeypatch
):
    import shutil

    from tests.conftest import CONTRACT

    monkeypatch.syspath_prepend(str(tmp_path))
    hook, contract = tmp_path / "shaping_hooks.py", tmp_path / "contract.yaml"
    hook.write_text(HOOK.format(factor=1))
    shutil.copy(CONTRACT, contract)
    pipeline(
        {
            "features": {"transform": "shaping_hooks:features"},
            "schema": {"path": str(contract), "max_reject_share": "0.5"},
            "checks": {"max_quarantine_rate": "0.5"},
        }
    )
    _reload_project("shaping_hooks")
    one_day = dict(start=day, stop=day + dt.timedelta(days=1))
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    features_before, predictions_before = storage.read_table("features", day), storage.read_table("predictions", day)
    assert build(Backfill(**one_day, dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert "changed in what shapes outputs since extraction (0): none" in capsys.readouterr().out

    hook.write_text(
        HOOK.format(factor=2)
    )  # the data scientist edits the hook; the contract and settings are as they were
    _reload_project("shaping_hooks")
    assert build(Backfill(**one_day, dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert f"changed in what shapes outputs since extraction (1): {day} (features hook code)" in capsys.readouterr().out
    assert build(Backfill(**one_day)).status == LuigiStatusCode.SUCCESS
    assert storage.read_table("features", day).equals(features_before)  # a plain run never re-processes

    assert build(Backfill(**one_day, reprocess="changed")).status == LuigiStatusCode.SUCCESS
    key = list(storage.manifest("features", day).extra["key"])
    features_after = storage.read_table("features", day)
    both = features_before.merge(features_after, on=key, suffixes=("_before", "_after"))
    assert len(both) == len(features_before) == len(features_after)
    assert (both["trip_distance_after"] == 2 * both["trip_distance_before"]).all()  # the new code's features
    scored = predictions_before.merge(storage.read_table("predictions", day), on=key, suffixes=("_before", "_after"))
    assert (
        len(scored) == len(predictions_before) and (scored["prediction_before"] != scored["prediction_after"]).any()
    )  # scored again from them
    assert (
        storage.manifest("predictions", day).input_fingerprint != ""
        and storage.read_text(f"monitoring/date={day}/report.html") is not None
    )
    assert build(Backfill(**one_day, dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert "changed in what shapes outputs since extraction (0): none" in capsys.readouterr().out

    contract.write_text(contract.read_text().replace("min: 0.01, max: 200.0", "min: 0.01, max: 12.0"))  # a tighter rule
    _reload_project("shaping_hooks")
    assert build(Backfill(**one_day, dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert f"changed in what shapes outputs since extraction (1): {day} (contract)" in capsys.readouterr().out
    assert build(Backfill(**one_day, reprocess="changed")).status == LuigiStatusCode.SUCCESS
    features_now, quarantined = storage.read_table("features", day), storage.read_table("quarantine", day)
    far = (features_before["trip_distance"] > 12.0).sum()
    assert far > 0 and len(features_now) == len(features_before) - far  # trips over 12 miles now quarantined
    assert quarantined["reason"].str.contains("trip_distance").sum() >= far
    assert storage.manifest("predictions", day).rows["written"] == len(features_now)


def test_range_daily_of_a_date_task_without_bulk_complete_runs_its_missing_dates(pipeline, day):
    from pipelines import ExtractFeatures

    dates = [day + dt.timedelta(days=i) for i in range(3)]
    assert build(ExtractFeatures(dates[1])).status == LuigiStatusCode.SUCCESS
    now = int(time.mktime((dates[-1] + dt.timedelta(days=2)).timetuple()))
    range_task = RangeDaily(of=ExtractFeatures, start=dates[0], stop=dates[-1] + dt.timedelta(days=1), now=now)
    assert sorted(t.date for t in range_task.requires()) == [dates[0], dates[2]]  # the committed date left out
    assert build(range_task).status == LuigiStatusCode.SUCCESS
    assert make_storage().committed_dates("features") == set(dates)


def test_reprocess_corrupt_names_a_date_it_cannot_heal_and_why_and_heals_the_others(pipeline, day, tmp_path, capsys):
    """Features damaged and the source no longer holding the date: listed as not healable, the run fails on it naming
    why;
    the other damaged date of the range (predictions only, needing no source) is healed in the same run."""
    import pandas as pd
    from taxi_synthetic import trips as generate

    import pipelines
    from batchml.cli import main
    from tests.unit.test_verify import flip_bytes

    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(6, -2, -1):
        frame = pd.concat(generate(day - dt.timedelta(days=i), rows_per_day=3000, seed=5), ignore_index=True)
        frame.to_csv(raw / f"trips_{day - dt.timedelta(days=i)}.csv", index=False)
    pipeline({"source": {"kind": "files", "path": str(raw / "trips_{date}.csv"), "format": "csv"}})
    later = day + dt.timedelta(days=1)
    assert build(DailyScore(day), DailyScore(later)).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    scored = storage.read_table("predictions", later)
    features = storage.manifest("features", day).files[0]["path"]
    url = flip_bytes(storage, day, features, "features")
    flip_bytes(storage, later, storage.manifest("predictions", later).files[0]["path"])
    (raw / f"trips_{day}.csv").unlink()  # the provider keeps a week: the date is gone at the source
    two_days = dict(start=day, stop=later + dt.timedelta(days=1))

    assert build(Backfill(**two_days, dry_run=True)).status == LuigiStatusCode.SUCCESS
    out = capsys.readouterr().out
    assert (
        f"corrupt: damaged, missing or half-committed (2): {day} (features/{features}: checksum); {later} (predictions/"
        in out
    )
    assert f"corrupt and not healable (1): {day} (the source no longer has the date" in out

    result = build(Backfill(**two_days, reprocess="corrupt"))
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    causes = " ".join(str(c) for c in pipelines._failures)
    assert f"{day} cannot be healed: the source no longer has the date" in causes and url in causes, causes
    assert storage.read_table("predictions", later).equals(scored)  # healed in the same run
    capsys.readouterr()
    assert main(["verify", storage.url(), "--dataset", "predictions"]) == 0
    assert main(["verify", storage.url(), "--dataset", "features"]) == 1  # left as it was: nothing could replace it
