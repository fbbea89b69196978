"""Backfill: lists what a range needs, re-scores stale dates only when asked."""

import datetime as dt
import json

import luigi
from luigi.execution_summary import LuigiStatusCode

from pipelines import Backfill, DailyScore
from tasks.config import make_registry, make_storage


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_stale_dates_are_listed_and_rescored_only_on_request(pipeline, day, capsys):
    first, second, third = day, day + dt.timedelta(days=1), day + dt.timedelta(days=2)
    assert build(DailyScore(first), DailyScore(second)).status == LuigiStatusCode.SUCCESS
    registry = make_registry()
    mv = registry.client.get_model_version("trip_duration", "1")
    v2 = str(registry.client.create_model_version("trip_duration", source=mv.source, run_id=mv.run_id, tags=mv.tags).version)
    registry.set_alias("champion", v2)  # as a promotion would

    assert build(Backfill(start=first, stop=third + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
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
        assert storage.verify("predictions", d).rows["written"] + storage.manifest("predictions", d).rows["quarantined"] == 3000
        assert storage.read_text(f"monitoring/date={d}/report.html") is not None
        assert json.loads(storage.read_text(f"pins/date={d}.json"))["version"] == v2
