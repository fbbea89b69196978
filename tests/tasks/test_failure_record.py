"""monitoring/date=D/failure.json: written when a task of D fails, removed when DailyScore(D) succeeds."""

from __future__ import annotations

import datetime as dt

import luigi
from luigi.execution_summary import LuigiStatusCode

from batchml.monitor.failures import read_failure
from pipelines import DailyScore
from tasks.config import make_storage
from tests.conftest import trips
from tests.unit.test_dashboard import Dom


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_a_failed_date_is_recorded_for_the_dashboard_then_cleared_by_a_good_run(pipeline, day):
    pipeline({"source": trips(bad_row_share=0.2)})  # more rejected rows than [schema] max_reject_share
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED

    record = read_failure(make_storage(), day)
    assert record is not None and record.task == "ExtractFeatures" and record.task_id.startswith("ExtractFeatures_")
    # the dashboard says so at once, though no report task ran: the failed date is the latest, with its cause
    dom = Dom(make_storage().read_text("monitoring/index.html"))
    (row,) = dom.find("tr", data_date=day.isoformat())
    assert row["data-status"] == "fail" and record.cause in row["title"]
    latest = next(tile for tile in dom.find("div", "value") if tile.get("title") == day.isoformat())
    assert latest
    assert "\n" not in record.cause and record.cause.split(":", 1)[0].isidentifier(), record.cause
    assert before <= dt.datetime.fromisoformat(record.at) <= dt.datetime.now(dt.UTC)
    assert (make_storage().root / f"monitoring/date={day}/failure.json").is_file()

    pipeline({"source": trips(bad_row_share=0.002)})
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    assert read_failure(make_storage(), day) is None
    (row,) = Dom(make_storage().read_text("monitoring/index.html")).find("tr", data_date=day.isoformat())
    assert row["data-status"] != "fail"  # re-rendered when the record was cleared, after the report had drawn it


def test_a_dashboard_that_cannot_be_rendered_never_masks_the_cause(pipeline, day, monkeypatch):
    import batchml.monitor.dashboard
    import batchml.monitor.failures

    warnings: list[str] = []
    monkeypatch.setattr(batchml.monitor.failures.log, "warning", lambda msg, *args: warnings.append(msg % args))

    def broken(storage):
        raise OSError("disk full")

    monkeypatch.setattr(batchml.monitor.dashboard, "write_index", broken)
    pipeline({"source": trips(bad_row_share=0.2)})
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED
    record = read_failure(make_storage(), day)
    assert record is not None and record.task == "ExtractFeatures" and "reject" in record.cause.lower(), record
    assert warnings == ["could not re-render the monitoring dashboard: OSError: disk full"]


def test_recording_never_fails_the_run_it_warns(pipeline, day, monkeypatch):
    import pipelines

    warnings: list[str] = []
    monkeypatch.setattr(
        pipelines.log, "warning", lambda msg, *args: warnings.append(msg % args)
    )  # Luigi's logging setup may replace handlers

    def broken(*args):
        raise PermissionError("monitoring is read-only")

    monkeypatch.setattr(pipelines, "record_failure", broken)
    pipeline({"source": trips(bad_row_share=0.2)})
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED  # the task's own failure, nothing else
    assert any(
        "could not record the failure of ExtractFeatures" in w and "PermissionError: monitoring is read-only" in w
        for w in warnings
    ), warnings
