"""A byte flipped in a committed predictions file after the date finished (issue 13 item 6):
a rerun of the date and `Backfill --dry-run` name the file instead of reporting the date as fine."""

import datetime as dt

import luigi
from luigi.execution_summary import LuigiStatusCode

import pipelines
from pipelines import Backfill, DailyScore
from tasks.config import make_storage
from tests.unit.test_verify import flip_bytes


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_a_rerun_and_a_dry_run_name_a_corrupt_predictions_file(pipeline, day, capsys):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS  # a clean finished date: nothing to do
    storage = make_storage()
    name = storage.manifest("predictions", day).files[0]["path"]
    flip_bytes(storage, day, name)

    rerun = build(DailyScore(day))
    assert rerun.status != LuigiStatusCode.SUCCESS, rerun.summary_text
    causes = " ".join(str(c) for c in pipelines._failures)
    assert f"predictions/date={day}" in causes and name in causes and "checksum differs" in causes, causes

    capsys.readouterr()
    assert build(Backfill(start=day, stop=day + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert f"corrupt, files disagree with their manifests (1): {day} (predictions/{name}: checksum)" in capsys.readouterr().out
