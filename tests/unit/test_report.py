import datetime as dt
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from batchml.monitor.checks import CheckThresholds, run_checks
from batchml.monitor.report import render_daily_report
from batchml.monitor.summary import status_of
from batchml.stats.drift import DriftThresholds, drift_report
from batchml.stats.profile import add_profiles, daily_profile, profile_partition, reference_profile

DAY = dt.date(2026, 6, 3)
EVIL = "<script>alert('x')</script>"
FEATURES = ["distance", "zone", "vendor", EVIL]
SECTIONS = ["summary", "drift", "metrics", "estimated", "trends", "retraining"]


class Page(HTMLParser):
    """Start tags (with attributes, unescaped by the parser) and text of an HTML page."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]

    def inside(self, tag: str, cls: str, key: str, value: str, child: str) -> list[dict]:
        """Attributes of the `child` tags after the matching tag, up to the next `tag` of `cls`."""
        out, inside = [], False
        for t, a in self.tags:
            if t == tag and cls in a.get("class", "").split():
                inside = a.get(key) == value
            elif inside and t == child:
                out.append(a)
        return out


def make_inputs(shift: float = 1.0, quarantined: int = 5) -> dict:
    rng = np.random.default_rng(0)
    zones, popularity = np.arange(1, 266), rng.dirichlet(np.full(265, 2.0))

    def frame(n, scale, new_zone=False):
        zone = rng.choice(zones, n, p=popularity)
        if new_zone:
            zone[:50] = 300  # a zone the reference never saw
        out = pd.DataFrame(
            {
                "distance": rng.lognormal(1, 0.5, n) * scale,
                "zone": zone,
                "vendor": rng.choice([1, 2], n),
                EVIL: rng.normal(0, 1, n),
            }
        )
        return out, 100 + 60 * out["distance"]

    ref, ref_pred = frame(20_000, 1.0)
    cur, cur_pred = frame(10_000, 1.0 + shift, new_zone=True)
    reference = reference_profile(ref, categorical=("zone", "vendor"))
    reference["prediction"] = reference_profile(pd.DataFrame({"prediction": ref_pred}))["columns"]["prediction"]
    specs = {**reference["columns"], "prediction": reference["prediction"]}
    cur["prediction"] = cur_pred
    daily = daily_profile(
        add_profiles(profile_partition(cur.iloc[:4000], specs), profile_partition(cur.iloc[4000:], specs)), specs
    )
    drift = drift_report(reference, daily, FEATURES, DriftThresholds())
    metrics = run_checks(
        rows_in=10_000 + quarantined,
        trailing_rows=[9_800, 10_100, 10_050],
        quarantined=quarantined,
        null_rates={f: daily["columns"][f]["null_rate"] for f in FEATURES},
        prediction=daily["columns"]["prediction"],
        reference_prediction=reference["prediction"],
        realized={
            "mae": 90.0,
            "rmse": 120.0,
            "r2": 0.7,
            "mape": 0.2,
            "coverage": 0.95,
            "labelled": 9_500,
            "scored": 10_000,
        },
        holdout=50.0,
        thresholds=CheckThresholds(),
    )
    history = [
        {
            "date": "2026-06-01",
            "status": "ok",
            "rows_in": 9_800,
            "drift_share": 0.0,
            "realized_mae": 48.0,
            "prediction_mean": 300.0,
        },
        {
            "date": "2026-06-02",
            "status": "warn",
            "rows_in": None,
            "drift_share": None,
            "realized_mae": None,
            "prediction_mean": None,
        },
        {
            "date": "2026-06-03",
            "status": status_of(metrics, drift),
            "rows_in": 10_005,
            "drift_share": drift["drifted_share"],
            "realized_mae": None,
            "prediction_mean": 420.0,
        },
    ]
    summary = {
        "rows_in": 10_000 + quarantined,
        "scored": 10_000,
        "quarantined": quarantined,
        "top_reasons": [[f"trip_distance: {EVIL}", quarantined]],
        "model": {"name": "trip_duration", "version": "3", "sha256": "ab" * 32},
        "durations": {"ExtractTrips": 3.5, "ScorePredictions": 75.0},
    }
    retrain = {"decision": "triggered", "reason": f"drift in {EVIL}", "candidate_mae": 41.5, "window_days": 7}
    return {
        "summary": summary,
        "drift": drift,
        "reference": reference,
        "daily": daily,
        "metrics": metrics,
        "history": history,
        "retrain": retrain,
    }


@pytest.fixture(scope="module")
def inputs():
    return make_inputs()


@pytest.fixture(scope="module")
def html(inputs):
    return render_daily_report(DAY, **inputs)


def test_every_section_is_there_and_the_header_has_the_status_colour(inputs, html):
    page = Page(html)
    assert [a["id"] for a in page.find("section")] == SECTIONS
    assert status_of(inputs["metrics"], inputs["drift"]) == "warn"
    assert "status-warn" in page.find("header")[0]["class"].split()


def test_one_histogram_per_feature_and_one_for_the_prediction(html):
    assert [a["data-column"] for a in Page(html).find("svg", "hist")] == FEATURES + ["prediction"]


def test_drifted_features_and_over_threshold_statistics_are_marked(inputs, html):
    drift, page = inputs["drift"], Page(html)
    assert "distance" in drift["drifted_features"] and "vendor" not in drift["drifted_features"]
    drifted = set(drift["drifted_features"]) | ({"prediction"} if drift["prediction"]["drifted"] else set())
    assert {a["data-column"] for a in page.find("tr", "drifted")} == drifted
    assert {a["data-column"] for a in page.find("figure", "drifted")} == drifted
    over = sum(len(c["over_threshold"]) for c in [*drift["features"].values(), drift["prediction"]])
    assert len(page.find("td", "over")) == over > 0


def test_many_categories_show_the_top_20_by_reference_share_then_other_and_unseen(inputs, html):
    bins = Page(html).inside("svg", "hist", "data-column", "zone", "g")
    labels = [b["data-label"] for b in bins if "bin" in b.get("class", "")]
    ref = inputs["reference"]["columns"]["zone"]
    top = [str(ref["categories"][i]) for i in np.argsort(-np.asarray(ref["counts"][:-1]), kind="stable")[:20]]
    assert labels == top + ["other", "unseen"]
    assert len(Page(html).inside("svg", "hist", "data-column", "vendor", "rect")) == 2 * 2  # two vendors, no unseen bar


def test_every_string_from_the_inputs_is_escaped(html):
    assert "<script" not in html.lower()
    # Jinja2 escapes a quote as &#39;, the SVG helpers (html.escape) as &#x27;.
    escaped = sum(html.count(f"&lt;script&gt;alert({q}x{q})&lt;/script&gt;") for q in ("&#39;", "&#x27;"))
    assert escaped >= 4  # reason, feature, its chart, retrain reason
    assert EVIL in "".join(Page(html).text)


def test_the_page_needs_no_network(html):
    page = Page(html)
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html and "@import" not in html
    assert not [t for t, a in page.tags if t in ("script", "link", "img", "iframe", "object", "embed") or "src" in a]
    assert {a["href"] for a in page.find("a")} == {"../index.html", *(f"#{s}" for s in SECTIONS)}


def test_every_check_is_a_row_and_a_breached_warning_is_marked(inputs, html):
    page, metrics = Page(html), inputs["metrics"]
    assert [a["data-check"] for a in page.find("tr") if "data-check" in a] == [c["name"] for c in metrics["checks"]]
    assert [a["data-check"] for a in page.find("tr", "warn")] == metrics["warned"]
    assert "realized_error_ratio" in metrics["warned"] and not metrics["failed"]
    assert not page.find("tr", "error")


def test_a_failed_check_shows_in_the_banner_and_the_table():
    html = render_daily_report(DAY, **make_inputs(quarantined=2_000))
    page = Page(html)
    assert [a["data-check"] for a in page.find("tr", "error")] == ["quarantine_rate"]
    assert "failed: quarantine_rate" in "".join(page.text)


def test_trends_skip_missing_points(html):
    page = Page(html)
    trends = {a["data-series"]: a for a in page.find("svg", "trend")}
    assert set(trends) == {"rows_in", "drift_share", "realized_mae", "prediction_mean"}
    assert {k: int(a["data-points"]) for k, a in trends.items()} == {
        "rows_in": 2,
        "drift_share": 2,
        "realized_mae": 1,
        "prediction_mean": 2,
    }
    assert len(page.inside("svg", "trend", "data-series", "rows_in", "circle")) == 2
    assert "nan" not in page.inside("svg", "trend", "data-series", "rows_in", "polyline")[0]["points"]


def test_missing_pieces_render_a_note_instead_of_failing(inputs):
    html = render_daily_report(
        DAY, summary=inputs["summary"], drift=None, reference={}, daily={}, metrics=None, history=[], retrain=None
    )
    page = Page(html)
    text = " ".join(page.text)
    assert [a["id"] for a in page.find("section")] == SECTIONS
    assert "Drift report not available" in text and "Metric checks not available" in text
    assert "No history available" in text and "No retraining decision recorded" in text
    assert "status-missing" in page.find("header")[0]["class"].split()
    assert not page.find("svg")


def test_no_labels_yet_and_an_empty_day_render():
    inputs = make_inputs()
    inputs["metrics"]["numbers"]["realized"] = None
    inputs["summary"].update(rows_in=0, scored=0, quarantined=0, top_reasons=[], durations={})
    text = " ".join(Page(render_daily_report(DAY, **inputs)).text)
    assert "Realized performance not available" in text and "No rows were quarantined" in text


def test_the_retrain_decision_is_a_table_of_its_keys(html):
    page = Page(html)
    codes = [t for t in page.text if t in ("decision", "reason", "candidate_mae", "window_days")]
    assert codes == ["decision", "reason", "candidate_mae", "window_days"]
    assert "status-warn" in [a["class"] for a in page.find("div", "banner")][-1]


@pytest.mark.parametrize(
    "metrics, verdict, expected",
    [
        ({"status": "fail"}, "drift", "fail"),
        ({"status": "warn"}, "drift", "drift"),  # drift outranks warnings (status_of docstring)
        ({"status": "warn"}, "no drift", "warn"),
        ({"status": "ok"}, "drift", "drift"),
        ({"status": "ok"}, "no drift", "ok"),
        ({"status": "ok"}, None, "ok"),
        (None, "drift", "drift"),
        (None, "no drift", "missing"),
        (None, None, "missing"),
    ],
)
def test_status_of(metrics, verdict, expected):
    assert status_of(metrics, {"verdict": verdict} if verdict else None) == expected


# --- a failed date, a classifier's trends, realized metrics on the date they measure -----------


def test_a_failed_report_starts_with_its_cause():
    html = render_daily_report(DAY, **make_inputs(quarantined=2_000))
    page = Page(html)
    main = html.index("<main")
    first = html.index("<", html.index(">", main) + 1)
    assert html[first:].startswith(
        '<div id="cause" class="banner status-fail cause">'
    )  # before the summary, not below the fold
    rate = next(
        c["value"] for c in make_inputs(quarantined=2_000)["metrics"]["checks"] if c["name"] == "quarantine_rate"
    )
    text = "".join(page.text)
    assert f"checks failed: quarantine_rate = {rate:.4g} outside <= 0.02" in text
    recorded = {"task": "CheckMetrics", "cause": "MetricBreach: 2026-06-03: quarantine_rate = 0.1667 outside <= 0.02"}
    page = Page(render_daily_report(DAY, **make_inputs(), failure=recorded))
    assert "CheckMetrics failed: MetricBreach: 2026-06-03" in "".join(page.text)
    assert "status-fail" in page.find("header")[0]["class"].split()
    assert not Page(render_daily_report(DAY, **make_inputs())).find("div", "cause")


def test_a_classifiers_trends_are_its_own_and_have_data():
    inputs = make_inputs()
    inputs["metrics"] = {**inputs["metrics"], "task": "classification", "primary_metric": "log_loss"}
    inputs["history"] = [
        {
            "date": f"2026-06-0{i}",
            "status": "ok",
            "rows_in": 100,
            "drift_share": 0.0,
            "realized_log_loss": 0.4 + i / 100,
            "realized_accuracy": 0.8,
        }
        | {"class_share.stay": 0.6, "class_share.upgrade": 0.3, "class_share.downgrade": 0.1}
        for i in (1, 2, 3)
    ]
    page = Page(render_daily_report(DAY, **inputs))
    trends = {a["data-series"]: int(a["data-points"]) for a in page.find("svg", "trend")}
    expected = [
        "rows_in",
        "drift_share",
        "realized_log_loss",
        "realized_accuracy",
        "class_share.downgrade",
        "class_share.stay",
        "class_share.upgrade",
    ]
    assert list(trends) == expected and all(n == 3 for n in trends.values())
    text = " ".join(page.text)
    assert (
        "Realized MAE" not in text
        and "Prediction mean" not in text
        and "Realized Log loss" in text
        and "Predicted share of upgrade" in text
    )


def test_history_puts_realized_metrics_on_the_date_they_measure(tmp_path):
    import json

    from batchml.monitor.monitoring import history
    from batchml.store.storage import Storage

    storage = Storage(tmp_path)
    for day, measures, mae in (
        ("2026-06-01", None, None),
        ("2026-06-02", None, None),
        ("2026-06-03", "2026-06-01", 7.5),
    ):
        realized = {"mae": mae, "date": measures, "model_version": "1"} if measures else None
        body = {
            "status": "ok",
            "labelled_date": measures,
            "numbers": {"rows_in": 10, "realized": realized, "prediction": {"mean": 3.0}},
        }
        storage.write_text(f"monitoring/date={day}/metrics.json", json.dumps(body))
    rows = {r["date"]: r for r in history(storage, dt.date(2026, 6, 3), 3)}
    assert rows["2026-06-01"]["realized_mae"] == 7.5
    assert rows["2026-06-03"]["realized_mae"] is None  # computed there, but of June 1st


def test_a_grid_line_and_its_label_stand_at_the_value_they_name():
    """The grid the report's charts and the dashboard's timelines share: a line at y_of(v), its label 3 px lower,
    right-aligned 6 px left of the plot."""
    from batchml.monitor.charts import y_grid

    svg = y_grid([0.0, 2.5], lambda v: 100 - 10 * v, lambda v: f"{v:g} <s>", 40, 500)
    assert svg == (
        '<line class="grid" x1="40" x2="500" y1="100.0" y2="100.0"/><text x="34" y="103.0" text-anchor="end">0 '
        "&lt;s&gt;</text>"
        '<line class="grid" x1="40" x2="500" y1="75.0" y2="75.0"/><text x="34" y="78.0" text-anchor="end">2.5 '
        "&lt;s&gt;</text>"
    )


def test_a_failed_date_whose_checks_name_nothing_says_checks_failed_without_a_dangling_colon():
    from batchml.monitor.report import failure_cause

    assert failure_cause(None, {"status": "fail", "failed": []}) == "checks failed"
    assert failure_cause(None, {"status": "fail", "failed": ["null_rate.fee"]}) == "checks failed: null_rate.fee"


# --- estimated performance (issue 21) --------------------------------------------------------


def estimated_document(**changes) -> dict:
    """estimated.json of DAY as batchml.monitor.estimated writes it: a regression estimated from reference."""
    doc = {
        "date": DAY.isoformat(),
        "version": "3",
        "model": {"name": "trip_duration", "version": "3"},
        "status": "fitted on reference",
        "status_detail": None,
        "task": "regression",
        "rows": 10_000,
        "metrics": {"mae": 52.0, "rmse": 71.5},
        "sampling_error": {"mae": 1.5, "rmse": 2.25},
        "window": {
            "window_days": 7,
            "dates": ["2026-06-01", "2026-06-02", "2026-06-03"],
            "rows": 30_000,
            "metrics": {"mae": 50.5, "rmse": 70.0},
            "sampling_error": {"mae": 0.6, "rmse": 1.25},
        },
    }
    return {**doc, **changes}


def with_estimate_error(metrics: dict, *, wrong: bool) -> dict:
    """metrics.json of DAY once the labels of June 1st are in: the estimate made for that date against them, and
    the estimator check (the shape batchml.monitor.estimated writes)."""
    error = {
        "date": "2026-06-01",
        "version": "3",
        "status": "fitted on reference",
        "dates": ["2026-06-01"],
        "metrics": {
            "mae": {
                "estimated": 49.0,
                "realized": 90.0,
                "error": -41.0,
                "relative_error": -41 / 90,
                "sampling_error": 1.5,
            },
            "rmse": {
                "estimated": 70.0,
                "realized": 71.0,
                "error": -1.0,
                "relative_error": -1 / 71,
                "sampling_error": 2.0,
            },
        },
    }
    check = {
        "name": "estimator",
        "value": 2.0 if wrong else 0.0,
        "bound": "< 2 of the last 3 labelled dates off by more than the margin",
        "ok": not wrong,
        "severity": "warn",
        "detail": {
            "verdict": "estimator wrong" if wrong else "ok",
            "reason": "mae estimate off by more than 10% relative",
        },
    }
    warned = [*metrics["warned"], "estimator"] if wrong else metrics["warned"]
    return {**metrics, "estimate_error": error, "checks": [*metrics["checks"], check], "warned": warned}


def test_the_estimated_section_shows_each_estimate_with_its_band_status_and_version():
    page = Page(render_daily_report(DAY, **make_inputs(), estimated=estimated_document()))
    rows = {a["data-metric"]: a for a in page.find("tr") if "data-value" in a}
    assert {m: (float(a["data-value"]), float(a["data-se"])) for m, a in rows.items()} == {
        "mae": (52.0, 1.5),
        "rmse": (71.5, 2.25),
    }
    text = " ".join(page.text)
    assert "± 3" in text and "49 to 55" in text  # 52 ± 2 × 1.5, formatted by hand
    assert "± 4.5" in text and "67 to 76" in text  # 71.5 ± 2 × 2.25
    assert "50.5 ± 1.2" in text and "Over 7 days" in text  # the window's estimate
    banner = next(a for a in page.find("div", "banner") if a.get("data-estimator-status"))
    assert banner["data-estimator-status"] == "fitted on reference" and "status-ok" in banner["class"]
    assert "model v3 on 10,000 scored rows" in text
    assert "Estimated beside realized" not in text  # no labels yet for an estimated date


def test_an_estimator_not_yet_available_says_so_in_words():
    nothing = {"mae": None, "rmse": None}
    doc = estimated_document(
        status="not yet available",
        status_detail="2 of 3 labelled dates of v3 awaited",
        metrics=nothing,
        sampling_error=nothing,
        window={"window_days": 1, "metrics": nothing, "sampling_error": nothing},
    )
    page = Page(render_daily_report(DAY, **make_inputs(), estimated=doc))
    text = " ".join(page.text)
    assert "No estimator yet" in text and "2 of 3 labelled dates of v3 awaited" in text
    assert "No estimate for this date's rows (not yet available)" in text
    assert not [a for a in page.find("tr") if "data-value" in a]
    doc = estimated_document(status="from first labelled dates")
    assert "batchml did not train this version" in " ".join(
        Page(render_daily_report(DAY, **make_inputs(), estimated=doc)).text
    )


def test_the_estimate_of_the_labelled_date_stands_beside_its_realized_value_and_the_estimator_check_warns():
    inputs = make_inputs()
    inputs["metrics"] = with_estimate_error(inputs["metrics"], wrong=True)
    page = Page(render_daily_report(DAY, **inputs, estimated=estimated_document()))
    compared = {a["data-metric"]: a for a in page.find("tr") if "data-estimated" in a}
    expected = inputs["metrics"]["estimate_error"]["metrics"]
    assert {
        m: (float(a["data-estimated"]), float(a["data-realized"]), float(a["data-error"])) for m, a in compared.items()
    } == {m: (e["estimated"], e["realized"], e["error"]) for m, e in expected.items()}
    assert float(compared["mae"]["data-realized"]) == inputs["metrics"]["numbers"]["realized"]["mae"]
    text = " ".join(page.text)
    assert "Estimated beside realized, 2026-06-01" in text and "-45.6%" in text  # -41 / 90, by hand
    # |-41| > 2 × 1.5: not chance; |-1| <= 2 × 2.0: within the band
    badges = [t for t in page.text if t in ("yes", "no")]
    assert badges == ["no", "yes"]
    check = page.find("div", "estimator-check")[0]
    assert "status-warn" in check["class"] and "Estimator check: breach" in text
    assert [a["data-check"] for a in page.find("tr", "warn")][-1] == "estimator"  # with the other checks
    inputs["metrics"] = with_estimate_error(make_inputs()["metrics"], wrong=False)
    page = Page(render_daily_report(DAY, **inputs, estimated=estimated_document()))
    assert "status-ok" in page.find("div", "estimator-check")[0]["class"] and "Estimator check: pass" in " ".join(
        page.text
    )


def test_the_estimate_error_in_the_flat_shape_reads_the_same():
    inputs = make_inputs()
    nested = with_estimate_error(inputs["metrics"], wrong=False)
    flat = {**nested, "estimate_error": nested["estimate_error"]["metrics"]}
    pages = [Page(render_daily_report(DAY, **inputs | {"metrics": m})) for m in (nested, flat)]
    rows = [[a for a in p.find("tr") if "data-estimated" in a] for p in pages]
    assert rows[0] == rows[1] and len(rows[0]) == 2


def test_no_estimated_json_renders_a_note():
    text = " ".join(Page(render_daily_report(DAY, **make_inputs())).text)
    assert "No performance estimate for this date: estimation is off, or the date predates it." in text


def test_the_report_inputs_carry_the_dates_estimated_json(tmp_path):
    import json

    from batchml.monitor.monitoring import report_inputs
    from batchml.store.storage import Storage
    from tests.conftest import make_manifest

    storage = Storage(tmp_path)
    for dataset in ("predictions", "features"):
        with storage.writer(dataset, DAY) as w:
            w.commit(make_manifest(0, dataset=dataset, date=DAY, model={"version": "3"}))
    assert report_inputs(storage, DAY, reference=None, trend_days=3)["estimated"] is None
    storage.write_text(f"monitoring/date={DAY}/estimated.json", json.dumps(estimated_document()))
    assert report_inputs(storage, DAY, reference=None, trend_days=3)["estimated"] == estimated_document()


def test_a_classifiers_estimates_are_its_five_metrics_by_name():
    values = {"accuracy": 0.81, "precision": 0.62, "recall": 0.55, "f1": 0.583, "roc_auc": 0.994}
    doc = estimated_document(
        task="classification",
        metrics=values,
        sampling_error=dict.fromkeys(values, 0.01),
        window={"window_days": 1, "metrics": values, "sampling_error": dict.fromkeys(values, 0.01)},
    )
    page = Page(render_daily_report(DAY, **make_inputs(), estimated=doc))
    rows = [(a["data-metric"], float(a["data-value"])) for a in page.find("tr") if "data-value" in a]
    assert rows == list(values.items())
    text = " ".join(page.text)
    assert all(title in text for title in ("Accuracy", "Precision", "Recall", "F1", "ROC AUC"))
    assert "Over 1 days" not in text  # a one-day window adds no column
    assert "0.79 to 0.83" in text  # accuracy 0.81 ± 2 × 0.01
    assert "0.974 to 1" in text  # ROC AUC 0.994 ± 0.02, no band above 1
