"""The dashboard and the daily report on what a real DailyScore run wrote: each estimated point and the report's
estimates against the estimated.json of their date, the realized point and the estimate's error against metrics.json.
"""

from __future__ import annotations

import datetime as dt
import json

import luigi
from luigi.execution_summary import LuigiStatusCode

import pipelines
from tasks.config import make_storage
from tasks.daily import DailyScore
from tests.unit.test_dashboard import Dom
from tests.unit.test_report import Page


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_the_pages_draw_the_estimates_a_run_wrote_beside_the_realized(pipeline, day):
    labelled = day - dt.timedelta(days=2)  # [source] label_lag_days: day's run measures the labels of day - 2
    assert build(DailyScore(labelled), DailyScore(day)).status == LuigiStatusCode.SUCCESS, pipelines._failures
    storage = make_storage()

    def document(date: dt.date, name: str) -> dict | None:
        text = storage.read_text(f"monitoring/date={date}/{name}")
        return None if text is None else json.loads(text)

    dates = [day - dt.timedelta(days=i) for i in range(6, -1, -1)]
    estimates = {d: doc for d in dates if (doc := document(d, "estimated.json"))}
    assert {labelled, day} <= set(estimates)  # and the dates scored only for the realized metrics of the runs
    metrics = document(day, "metrics.json")
    realized = metrics["numbers"]["realized"]
    assert realized["date"] == labelled.isoformat()

    dom = Dom(storage.read_text("monitoring/index.html"))
    points = {p["data-date"]: p for p in dom.find("circle", "estimated-point")}
    assert set(points) == {d.isoformat() for d in estimates}
    for date, doc in estimates.items():
        point = points[date.isoformat()]
        assert doc["window"]["window_days"] == 1  # the tests' [drift] window: the date's own estimate is drawn
        assert (point["data-kind"], point["data-metric"]) == ("estimated", "mae")
        assert float(point["data-value"]) == doc["metrics"]["mae"]
        assert float(point["data-se"]) == doc["sampling_error"]["mae"]
        assert point["data-version"] == str(doc["version"]) and point["data-status"] == doc["status"]
    measured = {p["data-date"]: p for p in dom.find("circle", "realized-point")}
    assert labelled.isoformat() in measured
    for date, point in measured.items():  # each against the metrics.json of the run that measured it
        run = document(dt.date.fromisoformat(point["data-measured-on"]), "metrics.json")
        assert run["numbers"]["realized"]["date"] == date
        assert float(point["data-value"]) == run["numbers"]["realized"]["mae"]
        assert point["cx"] == points[date]["cx"]  # beside the estimate of the same date
    assert float(measured[labelled.isoformat()]["data-value"]) == realized["mae"]
    assert dom.find("div", "perf-legend")

    page = Page(storage.read_text(f"monitoring/date={day}/report.html"))
    shown = {a["data-metric"]: float(a["data-value"]) for a in page.find("tr") if "data-value" in a}
    assert shown == estimates[day]["metrics"]
    compared = {a["data-metric"]: a for a in page.find("tr") if "data-estimated" in a}
    assert float(compared["mae"]["data-estimated"]) == estimates[labelled]["metrics"]["mae"]
    assert float(compared["mae"]["data-realized"]) == realized["mae"]
    assert float(compared["mae"]["data-error"]) == estimates[labelled]["metrics"]["mae"] - realized["mae"]
    assert "estimator" in [a["data-check"] for a in page.find("tr") if "data-check" in a]
    assert page.find("div", "estimator-check")
