"""What MLflow shows agrees with the pipeline: runs that end, steps that read as dates, FAILED dates,
the daily report beside the numbers, and a description on every version batchml registers.

Checked through MlflowClient on the real SQLite store the pipeline writes to.
"""

from __future__ import annotations

import datetime as dt
import json

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode

from batchml.monitor.failures import read_failure
from pipelines import DailyScore
from tasks.config import make_registry, make_storage
from tests.conftest import trips


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def monitoring_runs(registry) -> dict[str, object]:
    experiment = registry.client.get_experiment_by_name(f"{registry.name}-monitoring")
    runs = registry.client.search_runs([experiment.experiment_id])
    return {run.data.tags.get("date") or run.data.tags["kind"]: run for run in runs}


def midnight_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def test_timeline_steps_are_days_since_the_first_date_and_every_run_ends(pipeline, day):
    second = day + dt.timedelta(days=1)
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    assert build(DailyScore(second)).status == LuigiStatusCode.SUCCESS
    registry = make_registry()
    runs = monitoring_runs(registry)
    timeline = runs["timeline"]
    assert timeline.info.status == "FINISHED"  # not RUNNING forever
    history = sorted(registry.client.get_metric_history(timeline.info.run_id, "rows_in"), key=lambda m: m.step)
    assert [(m.step, m.timestamp) for m in history] == [(0, midnight_ms(day)), (1, midnight_ms(second))]
    for date in (day, second):
        metrics = json.loads(make_storage().read_text(f"monitoring/date={date}/metrics.json"))
        run = runs[date.isoformat()]
        assert run.info.status == "FINISHED"
        (point,) = registry.client.get_metric_history(run.info.run_id, "rows_in")
        assert (point.step, point.value) == ((date - day).days, metrics["numbers"]["rows_in"])
        # the daily report is an artifact of the date's run, the very page written to storage
        logged = registry.client.download_artifacts(run.info.run_id, "report.html")
        with open(logged, encoding="utf-8") as fh:
            assert fh.read() == make_storage().read_text(f"monitoring/date={date}/report.html")
    experiment = registry.client.get_experiment_by_name(f"{registry.name}-monitoring")
    assert experiment.tags["batchml.step_origin"] == day.isoformat()


def test_a_date_that_failed_at_extraction_has_a_failed_run_with_its_cause(pipeline, day):
    pipeline({"source": trips(bad_row_share=0.2)})  # more rejected rows than [schema] max_reject_share
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED
    record = read_failure(make_storage(), day)
    run = monitoring_runs(make_registry())[day.isoformat()]
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_task"] == "ExtractFeatures" and run.data.tags["failure_cause"] == record.cause

    pipeline({"source": trips(bad_row_share=0.002)})
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    run = monitoring_runs(make_registry())[day.isoformat()]
    assert run.info.status == "FINISHED" and "failure_cause" not in run.data.tags


def test_a_date_whose_checks_failed_has_a_failed_run(pipeline, day):
    pipeline({"checks": {"max_quarantine_rate": "0.0001"}})
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED
    run = monitoring_runs(make_registry())[day.isoformat()]
    assert (
        run.info.status == "FAILED"
        and run.data.tags["status"] == "fail"
        and run.data.tags["failure_task"] == "CheckMetrics"
    )
    assert "quarantine_rate" in run.data.tags["failure_cause"]


def test_every_registered_version_says_what_it_was_trained_on_and_why_it_was_promoted_or_rejected(pipeline, day):
    from tests.tasks.test_retraining import DAY0, read, run_days

    run_days(0, 2)
    pipeline(
        {
            "retrain": {"error_increase": "-1", "gate_days": "1", "min_train_days": "1"},
            "training": {"params": json.dumps({"max_iter": 1})},
        }
    )
    run_days(3, 3)
    client = make_registry().client
    decision = read(3, "retrain.json")
    for version, verdict in (
        ("1", "promoted to @champion as the first model"),
        (decision["challenger_version"], "rejected against v1"),
    ):
        mv = client.get_model_version("trip_duration", version)
        run = client.get_run(mv.run_id)
        text = mv.description
        assert f"labelled dates {mv.tags['window_start']} to {mv.tags['window_end']}" in text, text
        assert f"{int(run.data.metrics['train_rows']):,} training rows" in text
        assert f"mae {run.data.metrics['holdout_mae']:.4g}" in text
        assert f"Decision: {verdict}" in text
    challenger = client.get_model_version("trip_duration", decision["challenger_version"]).description
    assert decision["reason"] in challenger and (DAY0 + dt.timedelta(days=3)).isoformat() in challenger


def test_a_date_looks_up_its_monitoring_run_once_per_process(pipeline, day, monitoring_searches):
    """Metrics, RetrainIfDrifted and DailyReport each log to the date's run: it was searched for each time
    (a query per log in every date of a backfill); now once, and every log still lands in that one run."""
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    assert monitoring_searches.count(f"tags.date = '{day.isoformat()}'") == 1
    run = monitoring_runs(make_registry())[day.isoformat()]
    assert {"metrics.json", "retrain.json", "report.html"} <= {
        a.path for a in make_registry().client.list_artifacts(run.info.run_id)
    }


@pytest.fixture
def monitoring_searches(monkeypatch):
    """The filter strings of every search_runs call on the real MLflow client."""
    from mlflow import MlflowClient

    seen, search = [], MlflowClient.search_runs
    monkeypatch.setattr(
        MlflowClient,
        "search_runs",
        lambda self, ids, filter_string="", *a, **k: (
            seen.append(filter_string) or search(self, ids, filter_string, *a, **k)
        ),
    )
    return seen
