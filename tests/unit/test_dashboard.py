"""The dashboard (monitoring/index.html) on generated monitoring documents.

`drift_scenario` writes what 60 days of the pipeline would: healthy dates, then 3 of 9
features drifting from an onset date, a promotion to version 2 a few days later, a rejected
challenger, a rollback, two failed dates, dates that only carry labels, and realized
metrics still pending at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser

import pytest

from batchml.monitor.dashboard import _tiles, collect, render_dashboard, write_index
from batchml.monitor.summary import place_realized, status_of, summarize_date
from batchml.store.manifest import Manifest
from batchml.store.storage import Storage

START = dt.date(2026, 4, 1)
DAYS = 60
ONSET = START + dt.timedelta(days=20)
PROMOTED = ONSET + dt.timedelta(days=4)  # decided on this date; v2 scores from the next one
REJECTED = ONSET + dt.timedelta(days=15)
ROLLBACK = ONSET + dt.timedelta(days=25)  # v2 -> v1; v1 scores from the next date
FAILED = {
    ONSET + dt.timedelta(days=10): {
        "task": "ScorePredictions",
        "cause": "KilledWorker: the worker died twice while scoring partition 7",
    },
    ONSET + dt.timedelta(days=30): {"task": "CheckMetrics", "cause": "quarantine_rate = 0.21 outside <= 0.05"},
}
WARNED = START + dt.timedelta(days=8)
LABEL_ONLY = [START - dt.timedelta(days=i) for i in (3, 2, 1)]
PENDING = 3  # the last dates have no labels yet
LAG = 2  # each date's checks measure the realized error of the date LAG days before
HOLDOUT = {"1": 4.1, "2": 3.6}  # each version's holdout MAE
MAX_ERROR_RATIO = 1.5
FEATURES = ["amount", "channel", "hour", "region", "score", "segment", "tenure", "weekday", "distance"]
DRIFTING = ["amount", "region", "score"]
THRESHOLDS = {"psi": 0.2, "js": 0.1, "wasserstein": 0.1, "drift_share": 0.3}
CATEGORICAL = {"channel", "region", "segment"}


def _date(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def _version(date: dt.date) -> str:
    return "2" if PROMOTED < date <= ROLLBACK else "1"


def _column(name: str, date: dt.date, i: int) -> dict:
    drifted = name in DRIFTING and date >= ONSET
    wobble = ((i * 7 + len(name)) % 5) / 100  # deterministic noise
    methods = ("psi", "js") if name in CATEGORICAL else ("psi", "wasserstein")
    values = {
        "psi": (0.35 if drifted else 0.02) + wobble,
        "js": (0.16 if drifted else 0.03) + wobble / 2,
        "wasserstein": (0.22 if drifted else 0.02) + wobble / 2,
    }
    if name in CATEGORICAL:
        values.pop("wasserstein")
        values["chi2_pvalue"] = 1e-9 if drifted else 0.4
    over = [m for m in methods if values[m] >= THRESHOLDS[m]]
    return {
        "kind": "categorical" if name in CATEGORICAL else "numeric",
        **values,
        "deciding_methods": list(methods),
        "over_threshold": over,
        "drifted": bool(over),
    }


def day_documents(i: int) -> dict:
    """What the monitoring folder and the manifests hold for the i-th date of the scenario."""
    date = _date(i)
    docs: dict = {"date": date.isoformat(), "has_report": True}
    failure = FAILED.get(date)
    if failure:
        docs["failure"] = {**failure, "task_id": f"{failure['task']}(date={date})", "at": f"{date}T06:{i:02d}:00+00:00"}
        docs["has_report"] = False
        if failure["task"] == "ScorePredictions":
            return docs
    version = _version(date)
    rows_in = 12_000 + (i * 37) % 900
    quarantined = 40 + (i * 13) % 50
    features = {f: _column(f, date, i) for f in FEATURES}
    drifted = [f for f, c in features.items() if c["drifted"]]
    share = len(drifted) / len(FEATURES)
    drift = {
        "verdict": "drift" if share >= THRESHOLDS["drift_share"] else "no drift",
        "drifted_share": share,
        "drifted_features": drifted,
        "features": features,
        "prediction": _column("prediction", date, i),
        "thresholds": THRESHOLDS,
        "model": {"name": "demand", "version": version},
    }
    after = date >= ONSET
    pending = i >= DAYS - PENDING
    labelled = date - dt.timedelta(days=LAG)
    scored_by = _version(labelled)  # the version that scored the measured rows, not the run date's
    error = (
        4.0 + (2.2 if labelled >= ONSET and scored_by == "1" else 0.5 if labelled >= ONSET else 0) + ((i * 11) % 7) / 20
    )
    unscored = (
        labelled < START or FAILED.get(labelled, {}).get("task") == "ScorePredictions"
    )  # no predictions to measure
    realized = (
        None
        if pending or unscored
        else {
            "mae": error,
            "rmse": error * 1.3,
            "coverage": 0.62 if i == 33 else 0.95,
            "labelled": 11_000,
            "scored": 11_600,
            "model_version": scored_by,
            "date": labelled.isoformat(),
        }
    )
    failed = ["quarantine_rate"] if failure else []
    warned = (
        ["row_count_ratio"] if date == WARNED else (["realized_mae_ratio"] if after and realized and error > 6 else [])
    )
    median = 30 + (8 if after else 0)
    metrics = {
        "status": "fail" if failed else "warn" if warned else "ok",
        "failed": failed,
        "warned": warned,
        "checks": [
            {"name": n, "value": 1.0, "bound": "<= 0.5", "ok": False, "severity": "error" if n in failed else "warning"}
            for n in failed + warned
        ],
        "labelled_date": labelled.isoformat(),
        "thresholds": {"max_error_ratio": MAX_ERROR_RATIO},
        "numbers": {
            "rows_in": rows_in,
            "quarantined": quarantined,
            "prediction": {
                "mean": median * 1.05,
                "std": 9.0,
                "null_rate": 0.0,
                "count": rows_in - quarantined,
                "quantiles": {"0.05": median - 14, "0.5": median, "0.95": median + 19},
            },
            "realized": realized,
            "realized_status": "pending" if pending else "not scored" if unscored else "available",
            "champion_holdout_mae": None if pending or unscored else HOLDOUT[scored_by],
        },
    }
    docs.update(metrics=metrics, drift=drift)
    docs["predictions"] = {
        "rows": {"in": rows_in, "written": rows_in - quarantined, "quarantined": quarantined},
        "model": {"name": "demand", "version": version, "sha256": "ab" * 32},
    }
    if date == PROMOTED:
        docs["retrain"] = {
            "decision": "promoted",
            "reason": "the challenger beat the champion on recent labels",
            "challenger_version": "2",
            "champion_version": "1",
        }
    elif date == REJECTED:
        docs["retrain"] = {
            "decision": "rejected",
            "reason": "the challenger lost on recent labels",
            "challenger_version": "3",
            "champion_version": "2",
        }
    elif after:
        docs["retrain"] = {"decision": "deferred" if date < PROMOTED else "not triggered", "reason": "policy"}
    if date == ROLLBACK:
        docs["rollback"] = {
            "from_version": "2",
            "to_version": "1",
            "reason": "v2 regressed on late labels",
            "date": date.isoformat(),
        }
    return docs


def drift_scenario() -> list[dict]:
    """The documents of every date, label-only dates first."""
    return [{"date": d.isoformat(), "labels": True} for d in LABEL_ONLY] + [day_documents(i) for i in range(DAYS)]


def write_scenario(root, scenario: list[dict] | None = None) -> Storage:
    """The scenario (by default `drift_scenario`) laid out as the pipeline writes it under a storage root."""
    storage = Storage(root)
    for docs in drift_scenario() if scenario is None else scenario:
        date = dt.date.fromisoformat(docs["date"])
        folder = f"monitoring/date={date}"
        if docs.get("labels"):  # ExtractLabels records its duration there, and commits the labels
            storage.write_text(
                f"{folder}/durations/ExtractLabels.json", json.dumps({"task": "ExtractLabels", "seconds": 1.0})
            )
            manifest = Manifest(
                dataset="labels",
                date=str(date),
                rows={"in": 10, "written": 10, "quarantined": 0},
                schema_hash="x",
                input_fingerprint="x",
                code_version="x",
                run_id="r",
            )
            storage.write_text(f"labels/date={date}/_MANIFEST.json", manifest.to_json())
        for key in ("metrics", "drift", "retrain", "rollback", "failure", "estimated"):
            if docs.get(key) is not None:  # an empty document is written too
                storage.write_text(f"{folder}/{key}.json", json.dumps(docs[key]))
        if docs.get("has_report"):
            storage.write_text(f"{folder}/report.html", "<html></html>")
        if docs.get("predictions"):
            p = docs["predictions"]
            manifest = Manifest(
                dataset="predictions",
                date=str(date),
                rows=p["rows"],
                schema_hash="x",
                input_fingerprint="x",
                code_version="x",
                run_id="r",
                model=p["model"],
            )
            storage.write_text(f"predictions/date={date}/_MANIFEST.json", manifest.to_json())
    return storage


@pytest.fixture(scope="module")
def summaries() -> list[dict]:
    return [summarize_date(d) for d in drift_scenario()]


@pytest.fixture(scope="module")
def page(summaries):
    html = render_dashboard(summaries)
    return html, Dom(html)


class Dom(HTMLParser):
    """Start tags with their attributes, and the text inside each <title> and <td class="cause">."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.titles: list[str] = []
        self.text: list[str] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_title:
            self.titles.append(data)

    def find(self, tag: str, cls: str | None = None, **attrs) -> list[dict]:
        return [
            a
            for t, a in self.tags
            if t == tag
            and (cls is None or cls in a.get("class", "").split())
            and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


# --- status precedence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "metrics, verdict, failure, labels, expected",
    [
        ({"status": "ok"}, "drift", {"cause": "x"}, False, "fail"),  # a failure record outranks everything
        (None, None, {"cause": "x"}, False, "fail"),  # a failure record alone is not "missing"
        ({"status": "fail"}, "drift", None, False, "fail"),
        ({"status": "warn"}, "drift", None, False, "drift"),
        ({"status": "ok"}, "drift", None, False, "drift"),
        ({"status": "warn"}, "no drift", None, False, "warn"),
        ({"status": "ok"}, "collecting baseline", None, False, "ok"),
        (None, None, None, True, "labels"),  # labels only is not "missing" either
        (None, "no drift", None, False, "missing"),
        (None, None, None, False, "missing"),
    ],
)
def test_status_precedence(metrics, verdict, failure, labels, expected):
    assert status_of(metrics, {"verdict": verdict} if verdict else None, failure, labels_only=labels) == expected


def test_a_failed_date_carries_its_cause(summaries):
    by_date = {s["date"]: s for s in summaries}
    for date, failure in FAILED.items():
        s = by_date[date.isoformat()]
        assert s["status"] == "fail"
        assert s["cause"] == f"{failure['task']} failed: {failure['cause']}"
        assert failure["cause"] in s["tip"]
    assert by_date[(ONSET + dt.timedelta(days=10)).isoformat()]["rows_in"] is None  # nothing was scored


def test_every_status_of_the_scenario(summaries):
    statuses = {s["date"]: s["status"] for s in summaries}
    assert [statuses[d.isoformat()] for d in LABEL_ONLY] == ["labels"] * 3
    assert statuses[WARNED.isoformat()] == "warn"
    assert statuses[(ONSET - dt.timedelta(days=1)).isoformat()] == "ok"
    assert statuses[ONSET.isoformat()] == "drift"
    assert sum(s == "fail" for s in statuses.values()) == 2
    assert "missing" not in statuses.values()


# --- summaries ------------------------------------------------------------------------------


def test_a_summary_holds_the_numbers_drawn(summaries):
    s = next(s for s in summaries if s["date"] == ONSET.isoformat())
    assert s["task"] == "regression" and s["metric"] == "mae"
    assert s["drifted_features"] == DRIFTING and s["drifted_share"] == pytest.approx(3 / 9)
    assert set(s["cells"]) == {*FEATURES, "prediction"}
    assert [n for n, c in s["cells"].items() if c[1]] == DRIFTING
    ratio, _, method, value = s["cells"]["amount"]
    stats = day_documents(20)["drift"]["features"]["amount"]
    assert method == "wasserstein" and value == stats["wasserstein"]  # the deciding method furthest past its threshold
    assert ratio == pytest.approx(max(stats[m] / THRESHOLDS[m] for m in ("psi", "wasserstein")), rel=1e-3) and ratio > 1
    assert s["cells"]["region"][2] in ("psi", "js")  # the p-value is not a deciding method here
    assert s["prediction"] == {"mean": pytest.approx(39.9), "q0.05": 24, "q0.5": 38, "q0.95": 57}
    assert s["quarantine_share"] == pytest.approx(s["quarantined"] / s["rows_in"])
    assert s["version"] == "1" and s["realized_status"] == "available"
    assert json.loads(json.dumps(s)) == s  # small and plain


def test_pending_realized_metrics_and_defaults_of_older_documents(summaries):
    assert [s["realized_status"] for s in summaries[-PENDING - 1 :]] == ["available"] + ["pending"] * PENDING
    assert all(s["realized"] is None for s in summaries[-PENDING:])
    old = summarize_date(
        {"date": "2026-01-01", "metrics": {"status": "ok", "numbers": {"rows_in": 10, "realized": None}}}
    )
    assert (old["task"], old["metric"], old["window_days"], old["realized_status"]) == (
        "regression",
        "mae",
        1,
        "pending",
    )
    assert old["version"] is None and old["cells"] == {} and old["events"] == []


def test_a_classifier_date_and_a_p_value_as_deciding_statistic():
    docs = {
        "date": "2026-02-01",
        "metrics": {
            "status": "ok",
            "task": "classification",
            "primary_metric": "log_loss",
            "window_days": 7,
            "numbers": {
                "rows_in": 100,
                "quarantined": 0,
                "class_shares": {"yes": 0.3, "no": 0.7},
                "realized": {"log_loss": 0.41, "coverage": 0.9},
            },
        },
        "drift": {
            "verdict": "drift",
            "features": {"c": {"deciding_methods": ["chi2_pvalue"], "chi2_pvalue": 0.001, "drifted": True}},
            "thresholds": {"chi2_pvalue": 0.01},
        },
    }
    s = summarize_date(docs)
    assert (s["metric"], s["realized"], s["class_shares"], s["window_days"]) == (
        "log_loss",
        0.41,
        {"yes": 0.3, "no": 0.7},
        7,
    )
    assert s["cells"]["c"][:3] == [10.0, True, "chi2_pvalue"]
    html = render_dashboard([s])
    assert 'data-chart="classes"' in html and 'data-chart="prediction"' not in html
    assert len(Dom(html).find("rect", "class-share")) == 2


def test_events_from_retrain_and_rollback(summaries):
    by_date = {s["date"]: s for s in summaries}
    assert [e["kind"] for e in by_date[PROMOTED.isoformat()]["events"]] == ["promoted"]
    assert by_date[PROMOTED.isoformat()]["events"][0]["version"] == "2"
    assert [e["kind"] for e in by_date[REJECTED.isoformat()]["events"]] == ["rejected"]
    assert by_date[ROLLBACK.isoformat()]["events"][0]["text"] == "rolled back v2 → v1: v2 regressed on late labels"


# --- gathering from storage -----------------------------------------------------------------


def test_collect_reads_the_storage_layout_into_the_same_summaries(tmp_path, summaries):
    storage = write_scenario(tmp_path)
    collected = collect(storage)
    assert [s["date"] for s in collected] == [s["date"] for s in summaries]
    assert collected == summaries
    write_index(storage)
    assert "date=2026-04-01/report.html" in storage.read_text("monitoring/index.html")


def test_collect_reads_each_document_once(tmp_path, monkeypatch):
    storage = write_scenario(tmp_path)
    reads: list[str] = []
    read_text = storage.read_text
    monkeypatch.setattr(storage, "read_text", lambda relative: reads.append(relative) or read_text(relative))
    collect(storage)
    assert len(reads) == len(set(reads))
    assert not [r for r in reads if r.endswith("report.html")]  # listed, not read


# --- the page -------------------------------------------------------------------------------


def test_heatmap_cells_are_drifted_from_the_onset_only(page):
    _, dom = page
    cells = dom.find("rect", "cell")
    assert len(cells) == (DAYS - 1) * (len(FEATURES) + 1)  # the date whose scoring failed has no drift report
    drifted = {(c["data-feature"], c["data-date"]) for c in dom.find("rect", "cell") if "drifted" in c["class"].split()}
    scored_after = {
        _date(i).isoformat()
        for i in range(DAYS)
        if _date(i) >= ONSET and _date(i) not in FAILED or _date(i) == ONSET + dt.timedelta(days=30)
    }
    assert drifted == {(f, d) for f in DRIFTING for d in scored_after}
    assert [r["data-feature"] for r in dom.find("g", "heat-row")] == sorted(FEATURES) + ["prediction"]


def test_version_bands_and_event_markers(page):
    _, dom = page
    bands = [(b["data-version"], b["data-start"], b["data-end"]) for b in dom.find("g", "band")]
    first = _date(0).isoformat()
    assert bands == [
        ("1", first, PROMOTED.isoformat()),
        ("2", (PROMOTED + dt.timedelta(days=1)).isoformat(), ROLLBACK.isoformat()),
        ("1", (ROLLBACK + dt.timedelta(days=1)).isoformat(), _date(DAYS - 1).isoformat()),
    ]
    markers = [(m["data-kind"], m["data-date"], m["data-version"]) for m in dom.find("g", "marker")]
    assert markers == [
        ("promoted", PROMOTED.isoformat(), "2"),
        ("rejected", REJECTED.isoformat(), "3"),
        ("rollback", ROLLBACK.isoformat(), "1"),
    ]


def test_status_strip_and_table_show_each_date_with_its_cause(page):
    _, dom = page
    strip = dom.find("rect", "status")
    assert [r["data-date"] for r in strip] == [d.isoformat() for d in LABEL_ONLY] + [
        _date(i).isoformat() for i in range(DAYS)
    ]
    rows = dom.find("tr", data_status="fail")
    assert [r["data-date"] for r in rows] == [d.isoformat() for d in sorted(FAILED, reverse=True)]
    for date, failure in FAILED.items():
        assert any(t.startswith(f"{date} · Failed: {failure['task']} failed: {failure['cause']}") for t in dom.titles)
        assert f"{failure['task']} failed: {failure['cause']}" in dom.text
        assert failure["cause"] in next(r["title"] for r in rows if r["data-date"] == date.isoformat())
    assert [r["data-date"] for r in dom.find("tr") if "data-date" in r] == sorted(
        [r["data-date"] for r in dom.find("tr") if "data-date" in r], reverse=True
    )


def test_pending_dates_are_drawn_as_pending(page):
    """Pending on the dates whose labels are awaited (D - lag of the last run dates), not on the run dates."""
    _, dom = page
    assert [r["data-date"] for r in dom.find("rect", "pending", data_state="pending")] == [
        _date(i - LAG).isoformat() for i in range(DAYS - PENDING, DAYS)
    ]
    not_scored = [r["data-date"] for r in dom.find("rect", "pending", data_state="not scored")]
    assert not_scored == [d.isoformat() for d in LABEL_ONLY[-LAG:]] + [(ONSET + dt.timedelta(days=10)).isoformat()]


def test_a_realized_point_is_the_number_of_the_file_it_came_from_on_the_date_it_measures(tmp_path):
    """Each point against metrics.json of the run date that computed it and the measured date's predictions manifest."""
    storage = write_scenario(tmp_path)
    write_index(storage)
    dom = Dom(storage.read_text("monitoring/index.html"))
    points = dom.find("circle", "realized-point")
    unscored = LAG + 1  # the first dates measure dates before the first scored one; one measured date failed at scoring
    assert len(points) == DAYS - PENDING - unscored - 1  # and the run date that failed at scoring measured nothing
    for point in points:
        measured = dt.date.fromisoformat(point["data-date"])
        run = dt.date.fromisoformat(point["data-measured-on"])
        assert run == measured + dt.timedelta(days=LAG)
        document = json.loads(storage.read_text(f"monitoring/date={run}/metrics.json"))
        assert float(point["data-value"]) == document["numbers"]["realized"]["mae"]
        scored = json.loads(storage.read_text(f"predictions/date={measured}/_MANIFEST.json"))["model"]["version"]
        assert point["data-version"] == scored == _version(measured)
    # the dates just after the promotion were measured while v2 held the alias, but v1 scored them
    first_of_v2 = PROMOTED + dt.timedelta(days=1)
    by_date = {p["data-date"]: p for p in points}
    assert (
        by_date[PROMOTED.isoformat()]["data-version"] == "1" and by_date[first_of_v2.isoformat()]["data-version"] == "2"
    )
    # the holdout of the scoring version, and its error threshold, drawn across each measured date
    holdouts = {line["data-date"]: float(line["y1"]) for line in dom.find("line", "holdout")}
    limits = {line["data-date"]: float(line["y1"]) for line in dom.find("line", "error-threshold")}
    assert set(by_date) <= set(holdouts) and set(holdouts) == set(limits)
    assert len({holdouts[d] for d in by_date if _version(dt.date.fromisoformat(d)) == "1"}) == 1
    assert holdouts[PROMOTED.isoformat()] != holdouts[first_of_v2.isoformat()]
    assert all(limits[d] < holdouts[d] for d in holdouts)  # a higher error sits higher on the chart


def test_the_threshold_is_the_holdout_times_the_ratio_and_inverted_for_a_higher_is_better_metric():
    def measured(metric, holdout):
        metrics = {
            "status": "ok",
            "primary_metric": metric,
            "task": "classification",
            "thresholds": {"max_error_ratio": 1.5},
        }
        metrics["numbers"] = {
            "rows_in": 10,
            "realized": {metric: 0.5, "date": "2026-01-01", "model_version": 3},
            f"champion_holdout_{metric}": holdout,
        }
        return summarize_date({"date": "2026-01-03", "metrics": metrics})["measured"]

    assert measured("log_loss", 0.4) == {
        "date": "2026-01-01",
        "state": "available",
        "value": 0.5,
        "values": {"log_loss": 0.5},
        "coverage": None,
        "version": "3",
        "holdout": 0.4,
        "threshold": pytest.approx(0.6),
    }
    assert measured("accuracy", 0.9)["threshold"] == pytest.approx(0.6)


def test_dates_with_drift_count_only_dates_with_a_verdict():
    def day(i, verdict):
        return summarize_date(
            {
                "date": f"2026-01-0{i}",
                "metrics": {"status": "ok", "numbers": {"rows_in": 1}},
                "drift": {"verdict": verdict, "drifted_share": 0.5},
            }
        )

    dates = [
        day(1, "collecting baseline (1 of 3 dates)"),
        day(2, "collecting baseline (2 of 3 dates)"),
        day(3, "drift"),
        day(4, "no drift"),
    ]
    tiles = {label: (value, sub) for label, value, sub, _ in _tiles(place_realized(dates))}
    assert tiles["Dates with drift"][0] == "1 of 2"


def test_links_only_to_reports_that_exist_and_nothing_external(page):
    html, dom = page
    hrefs = [a["href"] for a in dom.find("a") if a["href"].startswith("date=")]
    expected = [f"date={_date(i)}/report.html" for i in reversed(range(DAYS)) if _date(i) not in FAILED]
    assert hrefs == expected
    assert "http://" not in html and "https://" not in html and "url(" not in html and "@import" not in html
    assert not [t for t, a in dom.tags if t in ("link", "img", "iframe", "object", "embed") or "src" in a]


def test_strings_from_the_documents_are_escaped():
    evil = "<script>alert('x')</script>"
    docs = {
        "date": "2026-03-01",
        "failure": {"task": evil, "cause": evil},
        "drift": {"verdict": "drift", "features": {evil: {"drifted": True}}, "model": {"version": evil}},
    }
    html = render_dashboard([summarize_date(docs)])
    assert "<script>alert" not in html
    assert len(re.findall(r"<script>", html)) == 1  # the page's own hover script


def test_an_empty_storage_renders_a_note():
    html = render_dashboard([])
    assert "No dates have been reported yet" in html and "<script>" not in html


def test_400_dates_render_from_their_summaries():
    base = [summarize_date(day_documents(i % DAYS)) for i in range(DAYS)]
    summaries = []
    for i in range(400):
        s = dict(base[i % DAYS])
        s["date"] = (dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat()
        summaries.append(s)
    html = render_dashboard(summaries)
    dom = Dom(html)
    assert len(dom.find("rect", "status")) == 400
    assert len([r for r in dom.find("tr") if "data-date" in r]) == 400
    assert len(dom.find("rect", "cell")) == sum(len(s["cells"]) for s in summaries)
    assert len(html) < 3_000_000
    ticks = [t for t, a in dom.tags if t == "line" and "tick" in a.get("class", "").split()]
    assert len(ticks) <= 5 * 9  # about eight date labels per chart, not 400


def test_heatmap_colour_follows_the_ratio_to_the_threshold(page):
    _, dom = page
    fills = {
        (c["data-feature"], c["data-date"]): (float(c["data-ratio"]), c["fill"], "drifted" in c["class"].split())
        for c in dom.find("rect", "cell")
    }

    def violet(colour: str) -> bool:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return b > g + 60 and r < b

    assert all(violet(fill) == drifted for ratio, fill, drifted in fills.values())
    assert all(ratio >= 1 for ratio, _, drifted in fills.values() if drifted)
    stable = sorted((ratio, fill) for ratio, fill, drifted in fills.values() if not drifted)
    assert stable[0][1] != stable[-1][1]  # the colour moves with the ratio below the threshold too


def test_a_date_scored_only_for_a_later_dates_realized_metrics_is_not_missing():
    from batchml.monitor.summary import status_of

    assert status_of(None, None, None, scored_only=True, labels_only=True) == "scored"
    assert status_of({"status": "ok"}, None, None, scored_only=True) == "ok"
    assert status_of(None, None, None) == "missing"


# --- estimated performance beside the realized (issue 21) -----------------------------------

NOT_YET = PROMOTED + dt.timedelta(days=1)  # v2's first date: batchml did not train it, no estimator yet
OLDER = 5  # the first dates predate estimation: no estimated.json
EMPTY = (5, 6)  # then two dates with an empty one


def estimated_document(i: int) -> dict | None:
    """estimated.json of the i-th date: v1's estimator fitted on reference, v2's from its first labelled dates."""
    date = _date(i)
    if i < OLDER or FAILED.get(date, {}).get("task") == "ScorePredictions":
        return None
    if i in EMPTY:
        return {}
    version = _version(date)
    doc: dict = {
        "date": date.isoformat(),
        "version": version,
        "model": {"name": "demand", "version": version},
        "task": "regression",
        "rows": 12_000 + i,
    }
    if date == NOT_YET:
        nothing = {"mae": None, "rmse": None}
        return {
            **doc,
            "status": "not yet available",
            "status_detail": "no labelled dates of v2 yet",
            "metrics": nothing,
            "sampling_error": nothing,
            "window": {"metrics": nothing, "window_days": 1},
        }
    mae = 4.0 + (i % 5) / 10 + (1.5 if date >= ONSET and version == "1" else 0.3 if date >= ONSET else 0.0)
    estimates = {"mae": mae, "rmse": mae * 1.3}
    bands = {"mae": 0.04 + i / 1000, "rmse": 0.09}
    return {
        **doc,
        "status": "fitted on reference" if version == "1" else "from first labelled dates",
        "metrics": estimates,
        "sampling_error": bands,
        "window": {"metrics": estimates, "sampling_error": bands, "window_days": 1},
    }


def estimated_scenario() -> list[dict]:
    """The drift scenario with estimated.json on every scored date from the sixth on."""
    out = []
    for docs in drift_scenario():
        i = (dt.date.fromisoformat(docs["date"]) - START).days
        estimated = estimated_document(i) if i >= 0 else None
        out.append({**docs, "estimated": estimated} if estimated is not None else docs)
    return out


def test_the_estimated_metrics_are_the_estimators():
    from batchml.monitor.summary import ESTIMATED_METRICS
    from batchml.stats.estimators import CLASSIFICATION_METRICS, REGRESSION_METRICS

    assert sorted(ESTIMATED_METRICS) == sorted((*CLASSIFICATION_METRICS, *REGRESSION_METRICS))


def test_an_estimate_is_summarized_from_its_document_and_nan_is_left_out():
    from batchml.monitor.summary import estimate_of

    doc = {
        "version": 3,
        "status": "from first labelled dates",
        "status_detail": "fitted on 2026-01-01..2026-01-03",
        "task": "classification",
        "rows": 900,
        "metrics": {"roc_auc": 0.81, "accuracy": 0.7, "f1": None},
        "sampling_error": {"roc_auc": 0.012, "accuracy": 0.015, "f1": None},
        "window": {"metrics": {"roc_auc": 0.79, "accuracy": 0.72}, "sampling_error": {"roc_auc": 0.006}, "days": 7},
    }
    assert estimate_of(doc) == {
        "status": "from first labelled dates",
        "detail": "fitted on 2026-01-01..2026-01-03",
        "version": "3",
        "task": "classification",
        "rows": 900,
        "days": 7,  # the realized metrics are over the same window then
        "values": {"roc_auc": 0.79, "accuracy": 0.72},
        "bands": {"roc_auc": 0.006},
    }
    one_day = {**doc, "window": {**doc["window"], "days": 1}}
    assert estimate_of(one_day)["values"] == {"roc_auc": 0.81, "accuracy": 0.7}  # f1 was NaN (null)
    assert estimate_of(one_day)["days"] == 1
    as_written = {**doc, "window": {**doc["window"], "window_days": 7, "dates": ["2026-01-07"], "rows": 900}}
    del as_written["window"]["days"]  # batchml.monitor.estimated names it window_days
    assert estimate_of(as_written) == estimate_of(doc)
    assert estimate_of(None) is None and estimate_of({}) is None


def test_an_estimated_point_is_the_number_of_the_file_it_came_from(tmp_path):
    """Each estimated point against estimated.json of its own date; realized points beside them once labels came."""
    storage = write_scenario(tmp_path, estimated_scenario())
    write_index(storage)
    dom = Dom(storage.read_text("monitoring/index.html"))
    points = dom.find("circle", "estimated-point")
    expected = {
        _date(i).isoformat(): d for i in range(DAYS) if (d := estimated_document(i)) and d["metrics"]["mae"] is not None
    }
    assert [p["data-date"] for p in points] == sorted(expected)
    for point in points:
        document = json.loads(storage.read_text(f"monitoring/date={point['data-date']}/estimated.json"))
        assert point["data-kind"] == "estimated" and point["data-metric"] == "mae"
        assert float(point["data-value"]) == document["metrics"]["mae"]
        assert point["data-version"] == document["version"] == _version(dt.date.fromisoformat(point["data-date"]))
        assert point["data-status"] == document["status"]
        se = document["sampling_error"]["mae"]
        assert float(point["data-se"]) == se
        assert float(point["data-low"]) == pytest.approx(document["metrics"]["mae"] - 2 * se)
        assert float(point["data-high"]) == pytest.approx(document["metrics"]["mae"] + 2 * se)
    by_date = {p["data-date"]: p for p in points}
    assert by_date[(PROMOTED + dt.timedelta(days=2)).isoformat()]["data-status"] == "from first labelled dates"
    assert NOT_YET.isoformat() not in by_date  # no estimator yet: nothing drawn, said in the hover text
    assert any(
        "estimated performance: not yet available" in t
        for t in dom.titles + [r["title"] for r in dom.find("tr") if r.get("data-date") == NOT_YET.isoformat()]
    )
    # the estimates of the dates whose labels are pending are drawn, with no realized point beside them
    realized = {p["data-date"]: p for p in dom.find("circle", "realized-point")}
    pending = [r["data-date"] for r in dom.find("rect", "pending", data_state="pending")]
    assert pending and all(d in by_date and d not in realized for d in pending)
    both = set(by_date) & set(realized)
    assert len(both) > 20
    for date in both:  # beside each other: same x, each at its own value
        assert by_date[date]["cx"] == realized[date]["cx"]
        higher = float(by_date[date]["data-value"]) > float(realized[date]["data-value"])
        assert (float(by_date[date]["cy"]) < float(realized[date]["cy"])) == higher
    # the band: a light area over each run of consecutive estimated dates (the not-yet date breaks a run)
    assert len(dom.find("polygon", "estimate-band")) == 3  # dates 7..failed-1, failed+1..NOT_YET-1, NOT_YET+1..end
    legend = dom.find("div", "perf-legend")
    assert [a["data-chart"] for a in legend] == ["realized"]
    assert "Realized and estimated error (mae) and label coverage" in dom.text


def test_absent_or_empty_estimates_draw_as_before(summaries):
    older = [dict(docs, estimated={}) if i % 2 else docs for i, docs in enumerate(drift_scenario())]
    assert render_dashboard([summarize_date(d) for d in older]) == render_dashboard(summaries)
    dom = Dom(render_dashboard(summaries))
    assert not dom.find("circle", "estimated-point") and not dom.find("div", "perf-legend")
    assert not dom.find("svg", chart="estimated")


def classifier_date(day: int, *, roc_auc: float | None, estimated: dict | None, version: str = "4") -> dict:
    """A classifier's run date measuring the date LAG days before, with an estimate of its own date."""
    date = dt.date(2026, 5, day)
    measured = (date - dt.timedelta(days=LAG)).isoformat()
    realized = (
        {
            "log_loss": 0.4,
            "roc_auc": roc_auc,
            "accuracy": 0.8,
            "coverage": 1.0,
            "date": measured,
            "model_version": version,
        }
        if roc_auc is not None
        else None
    )
    docs: dict = {
        "date": date.isoformat(),
        "metrics": {
            "status": "ok",
            "task": "classification",
            "primary_metric": "log_loss",
            "window_days": 7,
            "labelled_date": measured,
            "numbers": {
                "rows_in": 500,
                "realized": realized,
                "realized_status": "available" if realized else "pending",
                "champion_holdout_log_loss": 0.38,
            },
            "thresholds": {"max_error_ratio": 1.5},
        },
        "predictions": {"rows": {"in": 500}, "model": {"name": "churn", "version": version}},
    }
    if estimated is not None:
        docs["estimated"] = estimated
    return docs


def test_a_classifier_draws_its_estimated_roc_auc_beside_the_realized_in_a_chart_of_its_own():
    """log loss is not estimated: the estimate gets its own chart, on the window the realized metrics cover."""

    def estimate(value, se):
        return {
            "version": "4",
            "status": "fitted on reference",
            "task": "classification",
            "rows": 500,
            "metrics": {"roc_auc": value + 0.05, "accuracy": 0.81},  # the day's own: not drawn over a 7-day window
            "sampling_error": {"roc_auc": se * 2, "accuracy": 0.02},
            "window": {
                "metrics": {"roc_auc": value, "accuracy": 0.8},
                "sampling_error": {"roc_auc": se},
                "window_days": 7,
            },
        }

    days = [
        classifier_date(1, roc_auc=None, estimated=None),  # before estimation
        classifier_date(2, roc_auc=None, estimated=estimate(0.84, 0.01)),
        classifier_date(3, roc_auc=0.83, estimated=estimate(0.82, 0.01)),  # measures 05-01
        classifier_date(4, roc_auc=0.79, estimated=estimate(0.995, 0.01)),  # measures 05-02; band capped at 1
        classifier_date(5, roc_auc=None, estimated=estimate(0.75, 0.02)),  # 05-03: labels pending
    ]
    summaries = [summarize_date(d) for d in days]
    dom = Dom(render_dashboard(summaries))
    estimated = dom.find("circle", "estimated-point")
    assert [(p["data-date"], float(p["data-value"]), p["data-metric"], p["data-days"]) for p in estimated] == [
        ("2026-05-02", 0.84, "roc_auc", "7"),
        ("2026-05-03", 0.82, "roc_auc", "7"),
        ("2026-05-04", 0.995, "roc_auc", "7"),
        ("2026-05-05", 0.75, "roc_auc", "7"),
    ]
    assert float(estimated[2]["data-high"]) == 1.0 and float(estimated[2]["data-low"]) == pytest.approx(0.975)
    realized = [p for p in dom.find("circle", "realized-point") if p["data-metric"] == "roc_auc"]
    assert [(p["data-date"], float(p["data-value"]), p["data-version"]) for p in realized] == [
        ("2026-05-01", 0.83, "4"),
        ("2026-05-02", 0.79, "4"),
    ]
    primary = [p for p in dom.find("circle", "realized-point") if p["data-metric"] == "log_loss"]
    assert [p["data-date"] for p in primary] == ["2026-05-01", "2026-05-02"]
    assert [s["data-chart"] for s in dom.find("svg", "timeline")] == [
        "status",
        "volume",
        "realized",
        "estimated",
        "drift",
        "prediction",
    ]
    assert [a["data-chart"] for a in dom.find("div", "perf-legend")] == ["estimated"]
    assert [p["data-date"] for p in dom.find("rect", "pending", data_state="pending")] == ["2026-05-03"] * 2  # charts
    assert "Estimated and realized roc_auc" in dom.text
