"""The daily report and the dashboard in a real browser: headless Chromium, no network.

A realistic daily page (synthetic trips with 265 zones, drifted current data) and the
dashboard of a generated 60-day drift scenario are written to files, screenshotted and their
DOM dumped; the screenshots must not be blank, and the DOM must show the sections, the
drifted heatmap cells, the version bands and the failed dates' causes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from taxi_hooks import duration, features
from taxi_synthetic import trips

from batchml.monitor.checks import CheckThresholds, realized_performance, run_checks
from batchml.monitor.dashboard import render_dashboard
from batchml.monitor.report import render_daily_report
from batchml.monitor.summary import summarize_date
from batchml.stats.drift import DriftThresholds, drift_report
from batchml.stats.profile import add_profiles, daily_profile, profile_partition, reference_profile
from tests.conftest import TAXI_INPUTS
from tests.unit.test_dashboard import (
    DAYS,
    DRIFTING,
    FAILED,
    LABEL_ONLY,
    ONSET,
    PROMOTED,
    Dom,
    drift_scenario,
    estimated_document,
    estimated_scenario,
)
from tests.unit.test_dashboard import START as START_DAY

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DAY = dt.date(2026, 6, 14)
LABEL = "trip_duration_s"
FEATURES = TAXI_INPUTS
CATEGORICAL = ("pickup_zone", "dropoff_zone", "vendor", "payment_type", "rate_code", "pickup_weekday")
SECTIONS = ("summary", "drift", "metrics", "estimated", "trends", "retraining")


def _scored(
    date: dt.date, rows: int, drift_start: dt.date | None, coef: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features, label and prediction of one date; a linear stand-in model is fitted when `coef` is None."""
    raw = pd.concat(trips(date, rows_per_day=rows, seed=7, drift_start=drift_start), ignore_index=True)
    frame = features(raw)
    frame["trip"] = np.arange(len(frame))
    frame[LABEL] = duration(raw).fillna(0.0).to_numpy()
    hour = frame["pickup_hour"].to_numpy()
    rush = ((hour >= 7) & (hour < 10)) | ((hour >= 16) & (hour < 19))
    x = np.column_stack(
        [
            np.ones(len(frame)),
            frame["trip_distance"],
            frame["trip_distance"] * rush,
            frame["passenger_count"] >= 5,
            frame["rate_code"] == 2,
        ]
    )
    if coef is None:
        coef = np.linalg.lstsq(x, frame[LABEL].to_numpy(), rcond=None)[0]
    frame["prediction"] = x @ coef
    return frame, coef


def realistic_inputs(day: dt.date = DAY) -> dict:
    """Every input of `render_daily_report` for a drifted date, made by the real functions."""
    drift_start = day - dt.timedelta(days=3)
    train, coef = _scored(day - dt.timedelta(days=30), 42_000, None)
    train = pd.concat(
        [train] + [_scored(day - dt.timedelta(days=30 + i), 6_000, None, coef)[0] for i in range(1, 7)],
        ignore_index=True,
    )
    current, _ = _scored(day, 12_000, drift_start, coef)
    champion_mae = float(np.mean(np.abs(train["prediction"] - train[LABEL])))
    reference = reference_profile(train[list(FEATURES)], categorical=CATEGORICAL)
    reference["prediction"] = reference_profile(train[["prediction"]])["columns"]["prediction"]
    specs = {**reference["columns"], "prediction": reference["prediction"]}
    parts = np.array_split(np.arange(len(current)), 4)
    daily = daily_profile(add_profiles(*(profile_partition(current.iloc[p], specs) for p in parts)), specs)
    drift = drift_report(reference, daily, list(FEATURES), DriftThresholds(exclude=("is_weekend", "pickup_weekday")))
    realized = realized_performance(
        current[["trip", "prediction"]],
        current[["trip", LABEL]].sample(frac=0.8, random_state=1),
        key=["trip"],
        label=LABEL,
        task="regression",
    )
    metrics = run_checks(
        rows_in=12_031,
        trailing_rows=[11_800, 12_100, 11_950, 12_300, 12_050, 11_700, 12_200],
        quarantined=31,
        null_rates={c: daily["columns"][c]["null_rate"] for c in FEATURES},
        prediction=daily["columns"]["prediction"],
        reference_prediction=reference["prediction"],
        realized=realized,
        holdout=champion_mae,
        thresholds=CheckThresholds(),
    )
    history = []
    for i in range(14, -1, -1):
        date = day - dt.timedelta(days=i)
        drifted, gap = date >= drift_start, i == 6  # one date whose run never finished
        wobble = ((i * 37) % 11 - 5) / 5  # deterministic day-to-day noise in [-1, 1]
        history.append(
            {
                "date": date.isoformat(),
                "status": "missing" if gap else "warn" if drifted else "fail" if i == 9 else "ok",
                "rows_in": None if gap else int(12_000 + 300 * wobble),
                "drift_share": None if gap else (drift["drifted_share"] if drifted else 0.0) + 0.0625 * (wobble > 0.5),
                "realized_mae": None
                if gap or i < 2
                else (realized["mae"] if drifted else champion_mae) * (1 + 0.04 * wobble),
                "prediction_mean": None
                if gap
                else (daily["columns"]["prediction"] if drifted else reference["prediction"])["mean"]
                * (1 + 0.01 * wobble),
            }
        )
    summary = {
        "rows_in": 12_031,
        "scored": 12_000,
        "quarantined": 31,
        "top_reasons": [
            ["passenger_count: value is not >= 1", 12],
            ["trip_distance: value is not > 0", 9],
            ["dropoff_zone: null", 6],
            ["vendor_id: value is not in {1, 2}", 4],
        ],
        "model": {
            "name": "trip_duration",
            "version": "4",
            "sha256": "9f2c1e7a5b3d8c0e4f6a2b1c9d7e5f3a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e",
        },
        "durations": {
            "ExtractTrips": 4.8,
            "ResolveModel": 0.6,
            "ScorePredictions": 9.3,
            "DailyProfile": 2.1,
            "DriftReport": 0.4,
            "MetricChecks": 1.2,
        },
    }
    retrain = {
        "decision": "promoted",
        "reason": "dataset drift for 3 consecutive dates; the candidate beat the champion on recent labels",
        "candidate_version": "5",
        "candidate_mae": round(0.7 * realized["mae"], 1),
        "champion_mae": round(realized["mae"], 1),
        "training_rows": 200_000,
        "window": ["2026-06-07", "2026-06-13"],
    }
    return {
        "summary": summary,
        "drift": drift,
        "reference": reference,
        "daily": daily,
        "metrics": metrics,
        "history": history,
        "retrain": retrain,
    }


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile and nothing that would reach the network on its own."""
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={user_data}"]
    return subprocess.run([CHROMIUM, *flags, *args], check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium is not installed ({CHROMIUM} missing; apt-get install chromium)")


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory) -> Path:
    """A monitoring folder as the pipeline lays it out: index.html (the scenario's dashboard) and date=D/report.html."""
    root = tmp_path_factory.mktemp("monitoring")
    page = root / f"date={DAY}" / "report.html"
    page.parent.mkdir()
    page.write_text(render_daily_report(DAY, **realistic_inputs()), encoding="utf-8")
    (root / "index.html").write_text(render_dashboard([summarize_date(d) for d in drift_scenario()]), encoding="utf-8")
    return root


def _not_blank(png: Path, size: tuple[int, int]) -> list:
    """The colours of a screenshot, after checking it has the size asked and is not blank."""
    image = Image.open(png).convert("RGB")
    assert image.size == size
    colours = image.getcolors(maxcolors=1 << 20)
    background = max(colours)[1]
    foreground = sum(n for n, c in colours if c != background) / (image.width * image.height)
    assert len(colours) > 200, "the page looks blank: too few distinct colours"
    assert foreground > 0.1, f"the page looks blank: only {foreground:.0%} of pixels differ from the background"
    return colours


def test_the_daily_report_renders_in_chromium(chromium, monitoring, tmp_path):
    page = (monitoring / f"date={DAY}" / "report.html").as_uri()
    png = tmp_path / "report.png"
    shot = _chromium(f"--screenshot={png}", "--window-size=1280,2400", page, user_data=tmp_path / "profile-shot")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]

    colours = _not_blank(png, (1280, 2400))
    # The header is painted in the status colour (drift violet: #7c3aed; drift outranks the
    # warnings it causes), so the CSS was applied.
    assert sum(n for n, c in colours if c == (0x7C, 0x3A, 0xED)) > 20_000

    dom = _chromium("--dump-dom", page, user_data=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout
    assert dom.stdout.count('class="hist"') == len(FEATURES) - 2 + 1  # monitored features + the prediction


def test_the_dashboard_renders_in_chromium(chromium, monitoring, tmp_path):
    """Drifted heatmap cells from the onset only, bands v1 then v2 with the promotion, failed dates with their
    causes."""
    page = (monitoring / "index.html").as_uri()
    png = Path(os.environ.get("BATCHML_SCREENSHOTS", tmp_path)) / "dashboard.png"
    shot = _chromium(f"--screenshot={png}", "--window-size=1280,1800", page, user_data=tmp_path / "profile-shot")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    colours = _not_blank(png, (1280, 1800))
    assert sum(n for n, c in colours if c == (0x7C, 0x3A, 0xED)) > 5_000  # the drift status cells, so the CSS applied

    dump = _chromium("--dump-dom", page, user_data=tmp_path / "profile-dom")
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = Dom(dump.stdout)
    cells = dom.find("rect", "cell")
    assert cells, "no heatmap in the DOM"
    for feature in DRIFTING:
        row = {c["data-date"]: "drifted" in c["class"].split() for c in cells if c["data-feature"] == feature}
        assert row[ONSET.isoformat()] and row[(ONSET + dt.timedelta(days=1)).isoformat()]
        assert not any(flag for date, flag in row.items() if date < ONSET.isoformat())
        assert all(flag for date, flag in row.items() if date >= ONSET.isoformat())
    assert not [c for c in cells if c["data-feature"] not in DRIFTING and "drifted" in c["class"].split()]

    bands = [(b["data-version"], b["data-start"], b["data-end"]) for b in dom.find("g", "band")]
    assert [v for v, _, _ in bands][:2] == ["1", "2"]
    assert bands[0][2] == PROMOTED.isoformat() and bands[1][1] == (PROMOTED + dt.timedelta(days=1)).isoformat()
    promotions = [m["data-date"] for m in dom.find("g", "marker") if m["data-kind"] == "promoted"]
    assert promotions == [PROMOTED.isoformat()]

    for date, failure in FAILED.items():
        row = dom.find("tr", data_date=date.isoformat())
        assert row and row[0]["data-status"] == "fail" and failure["cause"] in row[0]["title"]
        assert f"{failure['task']} failed: {failure['cause']}" in dom.text
        assert dom.find("rect", "status", data_date=date.isoformat())[0]["data-status"] == "fail"
    assert len(dom.find("rect", "status")) == len(LABEL_ONLY) + DAYS


def test_hovering_a_date_shows_its_cause_in_chromium(chromium, monitoring, tmp_path):
    """The inline script: a mouse move over a failed date's status cell fills the hover box with its cause."""
    date, failure = next(iter(FAILED.items()))
    probe = monitoring / "hover-probe.html"
    script = (
        f"<script>var r = document.querySelector('rect.status[data-date=\"{date}\"]').getBoundingClientRect();"
        "document.querySelector('svg.timeline').dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width / "
        "2, clientY: r.top + 2, bubbles: true}));"
        "</script></body>"
    )
    probe.write_text(
        (monitoring / "index.html").read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8"
    )
    dump = _chromium("--dump-dom", probe.as_uri(), user_data=tmp_path / "profile")
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = Dom(dump.stdout)
    box = dom.find("div", "hover")[0]
    assert "hidden" not in box
    assert any(failure["cause"] in t for t in dom.text)
    guides = [a for t, a in dom.tags if t == "line" and "guide" in a.get("class", "").split()]
    assert len(guides) == 5 and all(g["visibility"] == "visible" for g in guides)
    assert len({g["x1"] for g in guides}) == 1  # one date, the same x on every chart


LONG_CAUSE = (
    "SourceMissing: no source file for 2026-05-31: looked for /data/exports/customer_activity/"
    "year=2026/month=05/day=31/part-00000-5f1c2d7e-93aa-4b1e-8c55-1d0b6f2a9e44.c000.snappy.parquet "
    "and 3 other patterns under [source] path; check the export job of the upstream warehouse"
)
MEASURE = """<script>
(function () {
  var width = window.innerWidth, out = [];
  document.querySelectorAll('%s').forEach(function (el) {
    var r = el.getBoundingClientRect();
    var box = [Math.round(r.left), Math.round(r.right), Math.round(r.top), Math.round(r.bottom)];
    out.push([el.className].concat(box).join(','));
  });
  document.body.setAttribute('data-viewport', width + ',' + window.innerHeight);
  document.body.setAttribute('data-scroll-width', document.documentElement.scrollWidth);
  document.body.setAttribute('data-boxes', out.join(';'));
})();
</script></body>"""


def _measured(
    page: Path, selector: str, width: int, tmp_path: Path
) -> tuple[int, int, int, list[tuple[str, int, int, int, int]]]:
    """Viewport width and height, the page's scroll width and the boxes of `selector`, laid out by Chromium at `width`
    px."""
    probe = page.with_name(f"measure-{width}-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE % selector), encoding="utf-8")
    dump = _chromium(
        "--dump-dom", f"--window-size={width},900", probe.as_uri(), user_data=tmp_path / f"profile-{width}"
    )
    assert dump.returncode == 0, dump.stderr[-2000:]
    (body,) = Dom(dump.stdout).find("body")
    view_w, view_h = map(int, body["data-viewport"].split(","))
    boxes = [(c, *map(int, rest)) for c, *rest in (b.rsplit(",", 4) for b in body["data-boxes"].split(";") if b)]
    return view_w, view_h, int(body["data-scroll-width"]), boxes


@pytest.fixture(scope="module")
def failed_pages(tmp_path_factory) -> tuple[Path, Path]:
    """The dashboard whose latest date failed with a long cause, and a failed date's report."""
    root = tmp_path_factory.mktemp("failed")
    docs = drift_scenario()
    last = dt.date.fromisoformat(docs[-1]["date"]) + dt.timedelta(days=1)
    docs.append(
        {
            "date": last.isoformat(),
            "failure": {"task": "ExtractFeatures", "cause": LONG_CAUSE, "task_id": "x", "at": "x"},
        }
    )
    (root / "index.html").write_text(render_dashboard([summarize_date(d) for d in docs]), encoding="utf-8")
    report = root / f"date={DAY}" / "report.html"
    report.parent.mkdir()
    failure = {"task": "CheckMetrics", "cause": "MetricBreach: " + LONG_CAUSE}
    report.write_text(render_daily_report(DAY, **realistic_inputs(), failure=failure), encoding="utf-8")
    return root / "index.html", report


@pytest.mark.parametrize("width", [1024, 1400])
def test_headline_tiles_fit_the_viewport_with_a_long_cause(chromium, failed_pages, width, tmp_path):
    index, _ = failed_pages
    view, _, scroll, tiles = _measured(index, ".tiles.headline .tile, .tiles.headline .tile > div", width, tmp_path)
    assert view == width and len(tiles) == 5 * 4
    assert scroll <= width, f"the page scrolls sideways at {width} px: {scroll}"
    outside = [t for t in tiles if t[1] < 0 or t[2] > width]
    assert not outside, f"boxes past the {width} px viewport: {outside}"
    dom = Dom(index.read_text(encoding="utf-8"))
    latest = dom.find("div", "sub")[0]
    assert LONG_CAUSE in latest["title"]  # the whole cause on hover, though the tile cuts it
    if os.environ.get("BATCHML_SCREENSHOTS"):
        shot = Path(os.environ["BATCHML_SCREENSHOTS"]) / f"dashboard-failed-{width}.png"
        _chromium(
            f"--screenshot={shot}", f"--window-size={width},900", index.as_uri(), user_data=tmp_path / "profile-shot"
        )


@pytest.mark.parametrize("width", [1024, 1400])
def test_a_failed_report_shows_its_cause_on_the_first_screen(chromium, failed_pages, width, tmp_path):
    _, report = failed_pages
    view, height, scroll, boxes = _measured(report, "#cause, #summary", width, tmp_path)
    (cause, summary) = boxes
    assert (
        cause[0].split()[0] == "banner" and cause[4] <= height and cause[3] < summary[3]
    )  # above the summary, not below the fold
    assert scroll <= width and cause[2] <= width
    if os.environ.get("BATCHML_SCREENSHOTS"):
        shot = Path(os.environ["BATCHML_SCREENSHOTS"]) / f"report-failed-{width}.png"
        _chromium(
            f"--screenshot={shot}", f"--window-size={width},900", report.as_uri(), user_data=tmp_path / "profile-shot"
        )


# --- estimated beside realized (issue 21) ----------------------------------------------------

PLACED = """<script>
(function () {
  // Each estimated and realized point: its date, kind and value as written, the value its height stands for on the
  // chart's own labelled grid, and how far its centre is from the centre of its date's status cell.
  function centre(el) { var r = el.getBoundingClientRect(); return [(r.left + r.right) / 2, (r.top + r.bottom) / 2]; }
  var cells = {};
  document.querySelectorAll('rect.status').forEach(function (r) { cells[r.dataset.date] = centre(r)[0]; });
  var out = [];
  document.querySelectorAll('circle.estimated-point, circle.realized-point').forEach(function (c) {
    var svg = c.closest('svg'), grid = [];
    svg.querySelectorAll('line.grid').forEach(function (line) {
      var label = line.nextElementSibling;
      if (label && label.tagName === 'text') {
        grid.push([centre(line)[1], parseFloat(label.textContent.replace(/,/g, ''))]);
      }
    });
    grid.sort(function (a, b) { return a[0] - b[0]; });
    var top = grid[0], bottom = grid[grid.length - 1], xy = centre(c);
    var value = bottom[1] + (xy[1] - bottom[0]) * (top[1] - bottom[1]) / (top[0] - bottom[0]);
    out.push([c.dataset.kind, c.dataset.date, c.dataset.value, value, xy[0] - cells[c.dataset.date],
              svg.dataset.chart, (top[1] - bottom[1])].join(','));
  });
  var legend = document.querySelector('.perf-legend'), r = legend.getBoundingClientRect();
  var boxes = [];
  document.querySelectorAll('figure.timeline, .perf-legend, .tiles.headline').forEach(function (el) {
    var b = el.getBoundingClientRect(); boxes.push([Math.round(b.left), Math.round(b.right)].join(','));
  });
  var host = window.parent.document.body;  // the page holding this one in a frame as wide as the width tested
  host.setAttribute('data-points', out.join(';'));
  host.setAttribute('data-legend', [r.width, r.height, r.left, r.right, legend.textContent].join('|'));
  host.setAttribute('data-boxes', boxes.join(';'));
  host.setAttribute('data-scroll-width', document.documentElement.scrollWidth);
  host.setAttribute('data-viewport', window.innerWidth);
})();
</script></body>"""


@pytest.fixture(scope="module")
def estimated_dashboard(tmp_path_factory) -> Path:
    """The dashboard of the drift scenario with estimated.json on every scored date from the sixth on."""
    page = tmp_path_factory.mktemp("estimated") / "index.html"
    page.write_text(render_dashboard([summarize_date(d) for d in estimated_scenario()]), encoding="utf-8")
    return page


@pytest.mark.parametrize("width", [1400, 1024, 390])
def test_estimated_and_realized_points_stand_where_their_documents_say_in_chromium(
    chromium, estimated_dashboard, width, tmp_path
):
    """Drawn by Chromium at three widths: every estimated point at the value of its estimated.json on its date's
    x, every realized point at the value of the metrics.json that measured it, the legend visible, no overflow."""
    probe = estimated_dashboard.with_name(f"placed-{width}.html")
    probe.write_text(estimated_dashboard.read_text(encoding="utf-8").replace("</body>", PLACED), encoding="utf-8")
    # Headless Chromium keeps its window at least 500 px wide: the page is laid out in a frame `width` px wide, a
    # viewport of its own (media queries included), and reports to the page around it (file pages may reach each
    # other with --allow-file-access-from-files).
    host = probe.with_name(f"host-{width}.html")
    host.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe src="{probe.name}" '
        f'style="border:0;display:block;width:{width}px;height:900px"></iframe></body></html>',
        encoding="utf-8",
    )
    window = f"--window-size={max(width, 500)},900"
    flags = ("--allow-file-access-from-files", window)
    dump = _chromium("--dump-dom", *flags, host.as_uri(), user_data=tmp_path / "profile")
    assert dump.returncode == 0, dump.stderr[-2000:]
    (body,) = Dom(dump.stdout).find("body")
    assert int(body["data-viewport"]) == width
    assert int(body["data-scroll-width"]) <= width, f"the page scrolls sideways at {width} px"
    for box in body["data-boxes"].split(";"):
        left, right = map(int, box.split(","))
        assert left >= 0 and right <= width, f"a chart or the legend passes the {width} px viewport: {box}"

    points = [p.split(",") for p in body["data-points"].split(";")]
    estimated = {
        date: (float(value), float(drawn), float(dx), span)
        for kind, date, value, drawn, dx, chart, span in points
        if kind == "estimated"
    }
    realized = {
        date: (float(value), float(drawn), float(dx), span)
        for kind, date, value, drawn, dx, chart, span in points
        if kind == "realized"
    }
    expected = {
        (START_DAY + dt.timedelta(days=i)).isoformat(): d["metrics"]["mae"]
        for i in range(DAYS)
        if (d := estimated_document(i)) and d["metrics"]["mae"] is not None
    }
    assert set(estimated) == set(expected)
    for date, (value, drawn, dx, span) in estimated.items():
        assert value == expected[date]  # the document's number, on its own date
        assert drawn == pytest.approx(value, abs=0.01 * float(span)), f"{date}: drawn at {drawn}, written {value}"
        assert abs(dx) < 1.0, f"{date}: the estimated point is {dx:.2f} px off its date"
    by_run = {s["date"]: s for s in (summarize_date(d) for d in estimated_scenario())}
    measured = {
        s["measured"]["date"]: s["measured"]["value"]
        for s in by_run.values()
        if s["measured"] and s["measured"]["value"]
    }
    assert set(realized) == set(measured) and len(set(realized) & set(estimated)) > 20
    for date, (value, drawn, dx, span) in realized.items():
        assert value == measured[date]
        assert drawn == pytest.approx(value, abs=0.01 * float(span)), f"{date}: drawn at {drawn}, measured {value}"
        assert abs(dx) < 1.0

    width_px, height_px, left, right, text = body["data-legend"].split("|")
    assert float(width_px) > 0 and float(height_px) > 0 and float(left) >= 0 and float(right) <= width
    assert "estimated" in text and "realized" in text and "± 2 s.e." in text
    if os.environ.get("BATCHML_SCREENSHOTS"):
        shot = Path(os.environ["BATCHML_SCREENSHOTS"]) / f"dashboard-estimated-{width}.png"
        _chromium(
            f"--screenshot={shot}",
            f"--window-size={width},1600",
            estimated_dashboard.as_uri(),
            user_data=tmp_path / "profile-shot",
        )


SECTION_BOXES = """<script>
(function () {
  // The estimated section and everything in it, laid out at the frame's width.
  var out = [];
  // A wide table scrolls inside its .table-scroll box: that box must fit, not the table.
  document.querySelectorAll('#estimated, #estimated > *, #estimated .table-scroll').forEach(function (el) {
    var r = el.getBoundingClientRect();
    out.push([el.tagName.toLowerCase(), Math.round(r.left), Math.round(r.right)].join(','));
  });
  var host = window.parent.document.body;
  host.setAttribute('data-boxes', out.join(';'));
  host.setAttribute('data-viewport', window.innerWidth);
  host.setAttribute('data-scroll-width', document.documentElement.scrollWidth);
  host.setAttribute('data-text', document.getElementById('estimated').textContent);
})();
</script></body>"""


def _in_frame(page: Path, script: str, width: int, tmp_path: Path) -> dict:
    """The attributes `script` sets on the host page, `page` laid out by Chromium in a frame `width` px wide."""
    probe = page.with_name(f"probe-{width}-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    host = page.with_name(f"host-{width}-{page.name}")
    host.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe src="{probe.name}" '
        f'style="border:0;display:block;width:{width}px;height:900px"></iframe></body></html>',
        encoding="utf-8",
    )
    flags = ("--allow-file-access-from-files", f"--window-size={max(width, 500)},900")
    dump = _chromium("--dump-dom", *flags, host.as_uri(), user_data=tmp_path / f"profile-{width}")
    assert dump.returncode == 0, dump.stderr[-2000:]
    (body,) = Dom(dump.stdout).find("body")
    assert int(body["data-viewport"]) == width
    return body


@pytest.mark.parametrize("width", [1400, 1024, 390])
def test_the_estimated_section_of_a_daily_report_fits_in_chromium(chromium, tmp_path, width):
    inputs = realistic_inputs()
    realized = inputs["metrics"]["numbers"]["realized"]
    estimated = {
        "version": "4",
        "model": {"name": "trip_duration", "version": "4"},
        "status": "from first labelled dates",
        "status_detail": "fitted on the rows of 2026-05-20 to 2026-05-26 (v4 was registered outside batchml)",
        "task": "regression",
        "rows": 12_000,
        "metrics": {"mae": realized["mae"] * 0.93, "rmse": realized["rmse"] * 0.95},
        "sampling_error": {"mae": 1.7, "rmse": 3.1},
        "window": {
            "window_days": 7,
            "metrics": {"mae": realized["mae"] * 0.9, "rmse": realized["rmse"]},
            "sampling_error": {"mae": 0.7, "rmse": 1.2},
        },
    }
    error = {
        m: {
            "estimated": e,
            "realized": realized[m],
            "error": e - realized[m],
            "relative_error": (e - realized[m]) / realized[m],
            "sampling_error": estimated["sampling_error"][m],
        }
        for m, e in estimated["metrics"].items()
    }
    check = {
        "name": "estimator",
        "value": 2.0,
        "bound": "< 2 of the last 3 labelled dates off by more than the margin",
        "ok": False,
        "severity": "warn",
        "detail": {
            "reason": "mae estimate off by more than 10% relative on 2 of "
            "the last 3 labelled dates: the labels no longer follow"
        },
    }
    inputs["metrics"] = {
        **inputs["metrics"],
        "estimate_error": {"date": realized.get("date") or DAY.isoformat(), "version": "4", "metrics": error},
        "checks": [*inputs["metrics"]["checks"], check],
    }
    page = tmp_path / "report.html"
    page.write_text(render_daily_report(DAY, **inputs, estimated=estimated), encoding="utf-8")
    body = _in_frame(page, SECTION_BOXES, width, tmp_path)
    boxes = [(tag, int(left), int(right)) for tag, left, right in (b.split(",") for b in body["data-boxes"].split(";"))]
    assert [tag for tag, _, _ in boxes].count("div") >= 4  # the banners and the two tables' scroll boxes
    outside = [b for b in boxes if b[1] < 0 or b[2] > width]
    assert not outside, f"the estimated section passes the {width} px viewport: {outside[:5]}"
    text = body["data-text"]
    assert (
        "From first labelled dates" in text
        and "Estimated beside realized" in text
        and "Estimator check: breach" in text
    )
    if os.environ.get("BATCHML_SCREENSHOTS"):
        shot = Path(os.environ["BATCHML_SCREENSHOTS"]) / f"report-estimated-{width}.png"
        _chromium(
            f"--screenshot={shot}", f"--window-size={max(width, 500)},4000", page.as_uri(), user_data=tmp_path / "shot"
        )
