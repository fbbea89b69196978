"""Self-contained HTML monitoring pages: one report per date and an index of the dates.

Pure functions from the JSON documents the pipeline writes to HTML strings. Styles are
inline and charts are SVG drawn here, so a page opens with no network and no JavaScript.
Every string taken from the inputs goes through `html.escape`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from html import escape

SECTIONS = (("summary", "Summary"), ("drift", "Drift"), ("metrics", "Metrics"), ("trends", "Trends"), ("retraining", "Retraining"))
STATUS_LABELS = {"ok": "OK", "warn": "Warning", "fail": "Failed", "drift": "Drift", "missing": "Missing"}
DECISION_STATUS = {"not triggered": "missing", "triggered": "warn", "promoted": "ok", "rejected": "fail", "rolled back": "fail"}
TOP_CATEGORIES = 20  # bars of a categorical histogram before the rest is folded into "other"
TRENDS = (
    ("rows_in", "Rows in"),
    ("drift_share", "Drifted feature share"),
    ("realized_mae", "Realized MAE"),
    ("prediction_mean", "Prediction mean"),
)
INDEX_NUMBERS = (("rows_in", "Rows in"), ("drift_share", "Drift share"), ("realized_mae", "Realized MAE"), ("prediction_mean", "Prediction mean"))
STATISTICS = (("psi", "PSI"), ("js", "JS distance"), ("wasserstein", "Wasserstein / std"), ("chi2_pvalue", "χ² p-value"))

CSS = """
:root { --ok:#1f8a4c; --warn:#c27803; --fail:#d1343b; --drift:#7c3aed; --missing:#6b7280;
        --ink:#1c2330; --muted:#667085; --line:#e4e7ec; --bg:#f4f6f9; --ref:#a7b1c2; --cur:#2f6fdf; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif; }
.status-ok { --c:var(--ok); } .status-warn { --c:var(--warn); } .status-fail { --c:var(--fail); }
.status-drift { --c:var(--drift); } .status-missing { --c:var(--missing); }
header.top { background:var(--c, #344054); color:#fff; padding:22px 0 18px; }
header.top a { color:#fff; opacity:.85; text-decoration:none; font-size:13px; }
header.top h1 { margin:6px 0 4px; font-size:26px; font-weight:650; letter-spacing:-.01em; }
header.top .meta { margin:0; opacity:.9; }
header.top h1 .badge { background:rgba(255,255,255,.2); border:1px solid rgba(255,255,255,.55); vertical-align:middle; margin-left:10px; }
.wrap { max-width:1180px; margin:0 auto; padding:0 24px; }
nav.sections { background:#fff; border-bottom:1px solid var(--line); }
nav.sections a { display:inline-block; padding:10px 14px 9px 0; margin-right:6px; color:var(--muted); text-decoration:none; font-weight:550; }
nav.sections a:hover { color:var(--ink); }
main { padding:8px 0 40px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 22px 20px; margin:18px 0; }
h2 { margin:0 0 14px; font-size:18px; font-weight:650; }
h3 { margin:18px 0 8px; font-size:14px; font-weight:650; color:#344054; }
.note { color:var(--muted); background:#f8f9fb; border:1px dashed #d0d5dd; border-radius:8px; padding:12px 14px; margin:0; }
.badge { display:inline-block; padding:2px 10px; border-radius:999px; background:var(--c); color:#fff;
         font-size:12px; font-weight:650; letter-spacing:.02em; white-space:nowrap; }
.banner { border-left:5px solid var(--c); background:color-mix(in srgb, var(--c) 9%, #fff); border-radius:6px;
          padding:10px 14px; margin:0 0 14px; }
.banner strong { color:var(--c); margin-right:8px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:12px; margin-bottom:6px; }
.tile { border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.tile .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.05em; }
.tile .value { font-size:22px; font-weight:650; font-variant-numeric:tabular-nums; }
.tile .sub { color:var(--muted); font-size:12px; }
.columns { display:grid; grid-template-columns:repeat(auto-fit, minmax(340px, 1fr)); gap:8px 28px; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:middle; }
th { font-size:12px; color:var(--muted); font-weight:600; background:#fafbfc; }
td.num, th.num { text-align:right; }
td.aside { color:#98a2b3; }
td.over { background:#fde8e8; color:#9b1c1c; font-weight:650; }
tr.drifted td:first-child { box-shadow:inset 4px 0 0 var(--drift); font-weight:650; }
tr.prediction-row td { border-top:2px solid var(--line); }
tr.breach.error td { background:#fdf0f0; } tr.breach.warn td { background:#fff7e6; }
code { font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace; }
.track { width:200px; }
.bar { height:8px; border-radius:4px; background:var(--cur); min-width:2px; }
.legend { color:var(--muted); font-size:12px; margin:6px 0 10px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin:0 5px 0 12px; vertical-align:-1px; }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(440px, 1fr)); gap:14px; }
figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:10px 12px 6px; min-width:0; }
figure.wide { grid-column:1 / -1; }
figure.drifted { border-color:var(--drift); box-shadow:0 0 0 1px var(--drift) inset; }
figcaption { display:flex; justify-content:space-between; align-items:baseline; gap:8px; margin-bottom:4px; }
figcaption .name { font-weight:650; }
figcaption .kind { color:var(--muted); font-size:12px; }
figure.drifted .flag { color:var(--drift); font-weight:650; font-size:12px; }
svg { display:block; max-width:100%; height:auto; font-family:inherit; }
svg text { fill:#667085; font-size:10px; }
svg .grid { stroke:#edf0f3; } svg .axis { stroke:#cfd4dc; }
svg .ref { fill:var(--ref); } svg .cur { fill:var(--cur); }
svg .point { fill:var(--c); stroke:#fff; stroke-width:1; }
svg .line { fill:none; stroke:#344054; stroke-width:1.6; } svg .today { stroke:#98a2b3; stroke-dasharray:3 3; }
svg .threshold { stroke:var(--drift); stroke-dasharray:5 3; }
.muted { color:var(--muted); }
td a { color:#1d4ed8; text-decoration:none; font-weight:550; }
"""


def status_of(metrics: dict | None, drift: dict | None) -> str:
    """One word for a date: failed checks, then warnings, then drift, then ok; "missing" without checks."""
    checks = metrics.get("status") if metrics else None
    if checks in ("fail", "warn"):
        return checks
    if drift and drift.get("verdict") == "drift":
        return "drift"
    return "ok" if checks == "ok" else "missing"


def render_daily_report(
    date: dt.date,
    *,
    summary: dict,
    drift: dict | None,
    reference: dict,
    daily: dict,
    metrics: dict | None,
    history: list[dict],
    retrain: dict | None,
) -> str:
    """The monitoring page of one date: summary, drift, metric checks, trends and retraining."""
    status = status_of(metrics, drift)
    model = summary.get("model") or {}
    meta = f"model {_text(model.get('name'))} v{_text(model.get('version'))} · sha256 {_sha(model.get('sha256'))}"
    header = _header(f"Daily report {escape(date.isoformat())}", meta, status, back="../index.html")
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS)
    body = "".join(
        [
            header,
            f'<nav class="sections"><div class="wrap">{nav}</div></nav>',
            '<main class="wrap">',
            _summary_section(summary),
            _drift_section(drift, reference, daily),
            _metrics_section(metrics),
            _trends_section(history, date, drift),
            _retraining_section(retrain),
            "</main>",
        ]
    )
    return _page(f"{date.isoformat()} · {STATUS_LABELS[status]}", body)


def render_index(entries: list[dict]) -> str:
    """Every date newest first, with its status badge and a link to its report.

    An entry is `{"date", "status"}`, optionally with the numbers of a `history` row (shown
    as columns when any entry has them) and `has_report` (no link when it is false).
    """
    ordered = sorted(entries, key=lambda e: str(e["date"]), reverse=True)
    counts = Counter(_status_key(e.get("status")) for e in ordered)
    meta = " ".join(f'<span class="badge status-{s}">{n} {STATUS_LABELS[s].lower()}</span>' for s, n in counts.items())
    numbers = [(k, title) for k, title in INDEX_NUMBERS if any(e.get(k) is not None for e in ordered)]
    rows = [[_index_link(e), _badge(e.get("status")), *(_pct(e.get(k)) if k == "drift_share" else _num(e.get(k)) for k, _ in numbers)] for e in ordered]
    table = _table(["Date", "Status", *(title for _, title in numbers)], rows, numeric=set(range(2, 2 + len(numbers))))
    content = table if ordered else '<p class="note">No dates have been reported yet.</p>'
    main = f'<main class="wrap"><section id="dates"><h2>Dates</h2>{content}</section></main>'
    body = _header("Batch inference monitoring", f"{len(ordered)} dates · {meta}", None) + main
    return _page("Batch inference monitoring", body)


def _index_link(entry: dict) -> str:
    date = escape(str(entry["date"]))
    if entry.get("has_report", True):
        return f'<a href="{escape(_report_href(entry["date"]))}">{date}</a>'
    return f'{date} <small class="muted">no report</small>'


# --- sections -------------------------------------------------------------------------------


def _summary_section(summary: dict) -> str:
    rows_in, quarantined = summary.get("rows_in"), summary.get("quarantined")
    model = summary.get("model") or {}
    tiles = _tiles(
        [
            ("Rows in", _num(rows_in), ""),
            ("Scored", _num(summary.get("scored")), _pct(_ratio(summary.get("scored"), rows_in)) + " of rows in"),
            ("Quarantined", _num(quarantined), _pct(_ratio(quarantined, rows_in)) + " of rows in"),
            ("Model", f"{_text(model.get('name'))} <small>v{_text(model.get('version'))}</small>", f"sha256 {_sha(model.get('sha256'))}"),
        ]
    )
    reasons = summary.get("top_reasons") or []
    reason_rows = [[_text(r), _num(n), _pct(_ratio(n, rows_in))] for r, n in reasons]
    reason_table = _table(["Reason", "Rows", "Share"], reason_rows, numeric={1, 2}) if reasons else '<p class="note">No rows were quarantined.</p>'
    durations = summary.get("durations") or {}
    longest = max(durations.values(), default=0) or 1
    bar = '<div class="track"><div class="bar" style="width:{:.1f}%"></div></div>'
    duration_rows = [[_text(task), _seconds(s), bar.format(100 * s / longest)] for task, s in durations.items()]
    if durations:
        duration_rows.append(["<strong>Total</strong>", f"<strong>{_seconds(sum(durations.values()))}</strong>", ""])
    duration_table = _table(["Task", "Duration", ""], duration_rows, numeric={1}) if durations else '<p class="note">No task durations recorded.</p>'
    columns = f'<div class="columns"><div><h3>Top quarantine reasons</h3>{reason_table}</div><div><h3>Task durations</h3>{duration_table}</div></div>'
    return _section("summary", "Summary", tiles + columns)


def _drift_section(drift: dict | None, reference: dict | None, daily: dict | None) -> str:
    if not drift:
        return _section("drift", "Drift", '<p class="note">Drift report not available for this date.</p>')
    features = drift.get("features") or {}
    drifted = drift.get("drifted_features") or []
    thresholds = drift.get("thresholds") or {}
    verdict = "drift" if drift.get("verdict") == "drift" else "ok"
    share, bound = _pct(drift.get("drifted_share")), _pct(thresholds.get("drift_share"))
    headline = f"{len(drifted)} of {len(features)} monitored features drifted ({share}); the dataset drifts at ≥ {bound}."
    details = f"Reference rows {_num(drift.get('reference_rows'))} · current rows {_num(drift.get('current_rows'))}"
    if drift.get("excluded"):
        details += " · not monitored: " + ", ".join(_text(f) for f in drift["excluded"])
    title = escape(str(drift.get("verdict", "unknown")).capitalize())
    banner = f'<div class="banner status-{verdict}"><strong>{title}</strong>{headline}<br><small>{details}</small></div>'
    columns = [(name, stats, False) for name, stats in features.items()]
    if drift.get("prediction"):
        columns.append(("prediction", drift["prediction"], True))
    reference, daily = reference or {}, daily or {}
    ref_columns, cur_columns = reference.get("columns") or {}, daily.get("columns") or {}
    charts = [
        _histogram_figure(name, reference.get("prediction") if is_pred else ref_columns.get(name), cur_columns.get(name), stats)
        for name, stats, is_pred in columns
    ]
    swatch = '<span class="swatch" style="background:var(--{})"></span>'
    legend = f'<div class="legend">Share of rows per bin:{swatch.format("ref")}reference{swatch.format("cur")}current</div>'
    body = banner + _drift_table(columns, thresholds) + "<h3>Distributions</h3>" + legend + f'<div class="charts">{"".join(charts)}</div>'
    return _section("drift", "Drift", body)


def _drift_table(columns: list[tuple[str, dict, bool]], thresholds: dict) -> str:
    statistics = [title + (f" <small>≥ {_num(thresholds[key])}</small>" if key in thresholds else "") for key, title in STATISTICS]
    head = ["Column", "Kind", *statistics, "Verdict"]
    rows = []
    for name, stats, is_pred in columns:
        cells = [f"<td>{_text(name)}</td>", f"<td>{_text(stats.get('kind'))}</td>"]
        for key, _ in STATISTICS:
            cls = "over" if key in stats.get("over_threshold", []) else "" if key in stats.get("deciding_methods", []) else "aside"
            cells.append(f'<td class="num {cls}">{_num(stats.get(key)) if key in stats else ""}</td>')
        cells.append(f"<td>{_badge('drift', 'drifted') if stats.get('drifted') else _badge('ok', 'stable')}</td>")
        classes = " ".join(c for c in ("drifted" if stats.get("drifted") else "", "prediction-row" if is_pred else "") if c)
        rows.append(f'<tr class="{classes}" data-column="{escape(name)}">{"".join(cells)}</tr>')
    header = "".join(f'<th class="{"num" if 2 <= i < 2 + len(STATISTICS) else ""}">{h}</th>' for i, h in enumerate(head))
    note = '<p class="legend">Highlighted: a deciding statistic over its threshold. Grey: computed but not deciding.</p>'
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"


def _metrics_section(metrics: dict | None) -> str:
    if not metrics:
        return _section("metrics", "Metrics", '<p class="note">Metric checks not available for this date.</p>')
    checks = metrics.get("checks") or []
    status = metrics.get("status", "missing")
    breached = [c for c in checks if not c.get("ok")]
    text = f"all {len(checks)} checks passed" if not breached else f"{len(breached)} of {len(checks)} checks breached"
    listed = "".join(f" · {kind}: {', '.join(_text(n) for n in metrics.get(kind) or [])}" for kind in ("failed", "warned") if metrics.get(kind))
    banner = f'<div class="banner status-{_status_key(status)}"><strong>{STATUS_LABELS[_status_key(status)]}</strong>{text}{listed}</div>'
    rows = []
    for c in checks:
        if c.get("value") is None:
            result, cls = '<span class="badge status-missing">no data</span>', ""
        elif c.get("ok"):
            result, cls = _badge("ok", "pass"), ""
        else:
            error = c.get("severity") == "error"
            result, cls = _badge("fail" if error else "warn", "breach"), f"breach {'error' if error else 'warn'}"
        cells = [
            f"<td><code>{_text(c.get('name'))}</code></td>",
            f'<td class="num">{_num(c.get("value"))}</td>',
            f"<td>{_text(c.get('bound'))}</td>",
            f"<td>{_text(c.get('severity'))}</td>",
            f"<td>{result}</td>",
        ]
        rows.append(f'<tr class="{cls}" data-check="{escape(str(c.get("name")))}">{"".join(cells)}</tr>')
    head = "".join(f'<th class="{cls}">{h}</th>' for h, cls in (("Check", ""), ("Value", "num"), ("Bound", ""), ("Severity", ""), ("Result", "")))
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return _section("metrics", "Metrics", banner + table + "<h3>Realized performance</h3>" + _realized(metrics.get("numbers") or {}))


def _realized(numbers: dict) -> str:
    realized = numbers.get("realized")
    champion = f"champion hold-out MAE {_num(numbers.get('champion_holdout_mae'))}"
    if not realized:
        return f'<p class="note">Realized performance not available: no labels have arrived for this date yet ({champion}).</p>'
    return _tiles(
        [
            ("MAE", _num(realized.get("mae")), champion),
            ("RMSE", _num(realized.get("rmse")), ""),
            ("R²", _num(realized.get("r2")), ""),
            ("MAPE", _num(realized.get("mape")), ""),
            ("Label coverage", _pct(realized.get("coverage")), f"{_num(realized.get('labelled'))} of {_num(realized.get('scored'))} scored rows"),
        ]
    )


def _trends_section(history: list[dict], date: dt.date, drift: dict | None) -> str:
    if not history:
        return _section("trends", "Trends", '<p class="note">No history available yet.</p>')
    threshold = ((drift or {}).get("thresholds") or {}).get("drift_share")
    figures = []
    for key, title in TRENDS:
        svg = _line_svg(key, history, date.isoformat(), threshold if key == "drift_share" else None)
        figures.append(f'<figure><figcaption><span class="name">{title}</span><span class="kind">last {len(history)} dates</span></figcaption>{svg}</figure>')
    return _section("trends", "Trends", f'<div class="charts">{"".join(figures)}</div>')


def _retraining_section(retrain: dict | None) -> str:
    if not retrain:
        return _section("retraining", "Retraining", '<p class="note">No retraining decision recorded for this date.</p>')
    decision = str(retrain.get("decision", "unknown"))
    colour = DECISION_STATUS.get(decision, "missing")
    banner = f'<div class="banner status-{colour}"><strong>{escape(decision.capitalize())}</strong>{_text(retrain.get("reason", ""))}</div>'
    rows = [[f"<code>{_text(k)}</code>", _value(v)] for k, v in retrain.items()]
    return _section("retraining", "Retraining", banner + _table(["Key", "Value"], rows))


# --- charts ---------------------------------------------------------------------------------


def _histogram_figure(name: str, ref: dict | None, cur: dict | None, stats: dict) -> str:
    """A figure with the reference and current shares of one column, side by side per bin."""
    if not ref or not cur or len(ref.get("counts", [])) != len(cur.get("counts", [])):
        svg = '<p class="note">No profile to chart.</p>'
        wide = False
    else:
        bars, ticks = _histogram_bars(ref, cur)
        wide = ref["kind"] == "categorical" and len(bars) > 8
        svg = _bars_svg(name, bars, ticks, wide=wide)
    drifted = bool(stats.get("drifted"))
    flag = f'<span class="flag">drifted: {", ".join(escape(m) for m in stats.get("over_threshold", []))}</span>' if drifted else ""
    classes = " ".join(c for c in ("wide" if wide else "", "drifted" if drifted else "") if c)
    caption = f'<figcaption><span><span class="name">{_text(name)}</span> <span class="kind">{_text(stats.get("kind"))}</span></span>{flag}</figcaption>'
    return f'<figure class="{classes}" data-column="{escape(name)}">{caption}{svg}</figure>'


def _histogram_bars(ref: dict, cur: dict) -> tuple[list[tuple[str, float, float]], list[tuple[float, str]]]:
    """Bars as (label, reference share, current share), and x-axis ticks as (position in bars, label).

    Numeric: one bar per reference bin, ticks at a few bin edges. Categorical: the top
    categories by reference share, the rest folded into "other", and the unseen slot if used.
    """
    p, q = _shares(ref["counts"]), _shares(cur["counts"])
    if ref["kind"] == "numeric":
        edges = ref.get("edges") or []
        bars = [(_bin_label(edges, i), a, b) for i, (a, b) in enumerate(zip(p, q))]
        picks = sorted({round(j * (len(edges) - 1) / 4) for j in range(5)}) if edges else []
        return bars, [(i + 1, _num(edges[i], 3)) for i in picks]
    labels = [_category(c) for c in ref.get("categories", [])]
    order = sorted(range(len(labels)), key=lambda i: -p[i])
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    bars = [(labels[i], p[i], q[i]) for i in top]
    if rest:
        bars.append(("other", sum(p[i] for i in rest), sum(q[i] for i in rest)))
    if p[-1] or q[-1]:
        bars.append(("unseen", p[-1], q[-1]))
    return bars, [(i + 0.5, label) for i, (label, _, _) in enumerate(bars)]


def _bars_svg(name: str, bars: list[tuple[str, float, float]], ticks: list[tuple[float, str]], *, wide: bool) -> str:
    width, height = (1080 if wide else 520), 180
    left, right, top, bottom = 40, 8, 8, 22
    pw, ph = width - left - right, height - top - bottom
    ymax = _nice_ceiling(max((max(a, b) for _, a, b in bars), default=0))
    step = pw / max(len(bars), 1)
    out = _y_grid([0, ymax / 2, ymax], lambda v: f"{100 * v:.0f}%" if ymax >= 0.05 else f"{100 * v:.1f}%", left, width - right, top, ph, 0, ymax)
    for i, (label, a, b) in enumerate(bars):
        x = left + i * step
        tip = f"{label}: reference {_pct(a)}, current {_pct(b)}"
        bar = ""
        for cls, share, dx in (("ref", a, 0.1), ("cur", b, 0.5)):
            h = ph * share / ymax
            bar += f'<rect class="{cls}" x="{x + dx * step:.1f}" y="{top + ph - h:.1f}" width="{0.4 * step:.1f}" height="{h:.1f}"/>'
        out += f'<g class="bin" data-label="{escape(label)}"><title>{escape(tip)}</title>{bar}</g>'
    base = top + ph
    out += f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>'
    for pos, label in ticks:
        out += f'<text x="{left + pos * step:.1f}" y="{base + 14}" text-anchor="middle">{escape(label)}</text>'
    return _svg(width, height, out, cls="hist", label=f"Reference and current distribution of {name}", column=name, bars=len(bars))


def _line_svg(key: str, history: list[dict], today: str, threshold: float | None) -> str:
    """A line over the history of one number, with a dot per date in that date's status colour."""
    width, height = 520, 180
    left, right, top, bottom = 56, 12, 10, 24
    pw, ph = width - left - right, height - top - bottom
    n = len(history)
    points = [(i, float(h[key]), h) for i, h in enumerate(history) if _finite(h.get(key))]
    fmt = (lambda v: f"{100 * v:.3g}%") if key == "drift_share" else (lambda v: _num(v, 3))

    def x_of(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    out = ""
    if not points:
        out += f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>'
    else:
        values = [v for _, v, _ in points] + ([threshold] if threshold is not None else [])
        ticks = _axis(min(values), max(values))
        lo, hi = ticks[0], ticks[-1]

        def y_of(v: float) -> float:
            return top + ph * (1 - (v - lo) / (hi - lo))

        out += _y_grid(ticks, fmt, left, width - right, top, ph, lo, hi)
        if threshold is not None:
            y = y_of(threshold)
            out += f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"><title>dataset drift threshold {fmt(threshold)}</title></line>'
        if any(h.get("date") == today for h in history):
            xt = x_of(next(i for i, h in enumerate(history) if h.get("date") == today))
            out += f'<line class="today" x1="{xt:.1f}" x2="{xt:.1f}" y1="{top}" y2="{top + ph}"/>'
        coords = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v, _ in points)
        out += f'<polyline class="line" points="{coords}"/>'
        for i, v, h in points:
            tip = f"<title>{escape(str(h.get('date')))}: {escape(fmt(v))}</title>"
            out += f'<circle class="point status-{_status_key(h.get("status"))}" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3.5">{tip}</circle>'
    base = top + ph
    out += f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>'
    for i, anchor in ((0, "start"), (n - 1, "end")) if n > 1 else ((0, "middle"),):
        out += f'<text x="{x_of(i):.1f}" y="{base + 15}" text-anchor="{anchor}">{escape(str(history[i].get("date")))}</text>'
    return _svg(width, height, out, cls="trend", label=f"{key} over the last {n} dates", series=key, points=len(points))


def _y_grid(values: list[float], fmt, x1: float, x2: float, top: float, ph: float, lo: float, hi: float) -> str:
    out = ""
    for v in values:
        y = top + ph * (1 - (v - lo) / (hi - lo))
        out += f'<line class="grid" x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}"/><text x="{x1 - 6}" y="{y + 3:.1f}" text-anchor="end">{escape(fmt(v))}</text>'
    return out


def _svg(width: int, height: int, body: str, *, cls: str, label: str, **data) -> str:
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    return f'<svg class="{cls}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{escape(label)}"{attrs}>{body}</svg>'


# --- small helpers --------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def _header(title: str, meta: str, status: str | None, back: str | None = None) -> str:
    link = f'<a href="{back}">← All dates</a>' if back else ""
    badge = f'<span class="badge">{STATUS_LABELS[status]}</span>' if status else ""
    cls = f"top status-{status}" if status else "top"
    return f'<header class="{cls}"><div class="wrap">{link}<h1>{title}{badge}</h1><p class="meta">{meta}</p></div></header>'


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{title}</h2>{body}</section>'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """A table from already-escaped cell HTML."""
    th = "".join(f'<th class="{"num" if i in numeric else ""}">{h}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _tiles(tiles: list[tuple[str, str, str]]) -> str:
    """Headline numbers as (label, value HTML, sub-line HTML)."""
    tile = '<div class="tile"><div class="label">{}</div><div class="value">{}</div><div class="sub">{}</div></div>'
    return '<div class="tiles">' + "".join(tile.format(*t) for t in tiles) + "</div>"


def _badge(status: str | None, text: str | None = None) -> str:
    key = _status_key(status)
    return f'<span class="badge status-{key}">{escape(text or STATUS_LABELS[key])}</span>'


def _status_key(status) -> str:
    return status if status in STATUS_LABELS else "missing"


def _report_href(date) -> str:
    return f"date={date}/report.html"


def _text(value) -> str:
    return "—" if value is None else escape(str(value))


def _value(value) -> str:
    if isinstance(value, (dict, list)):
        return f"<code>{escape(json.dumps(value, sort_keys=True, default=str))}</code>"
    return _num(value) if isinstance(value, (int, float)) else _text(value)


def _num(value, digits: int = 4) -> str:
    """A number for people: thousands separators for large ones, `digits` significant otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 10**digits:
        return f"{v:,.0f}"
    if abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


def _pct(share) -> str:
    if not _finite(share):
        return "—"
    return f"{100 * share:.2f}%" if 0 < abs(share) < 0.001 else f"{100 * share:.1f}%"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {s % 60:.0f} s"


def _sha(sha) -> str:
    return f'<code title="{escape(str(sha))}">{escape(str(sha)[:12])}</code>' if sha else "—"


def _ratio(part, whole) -> float | None:
    return part / whole if part is not None and whole else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shares(counts: list) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _category(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bin_label(edges: list[float], i: int) -> str:
    if not edges:
        return "all values"
    if i == 0:
        return f"< {_num(edges[0], 3)}"
    if i == len(edges):
        return f"≥ {_num(edges[-1], 3)}"
    return f"[{_num(edges[i - 1], 3)}, {_num(edges[i], 3)})"


def _nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `x`."""
    if x <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if x <= m * power * (1 + 1e-9))


def _axis(lo: float, hi: float) -> list[float]:
    """Round tick values covering [lo, hi]; the first and the last are the ends of the axis."""
    if hi <= lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_ceiling((hi - lo) / 4)
    return [k * step for k in range(math.floor(lo / step), math.ceil(hi / step) + 1)]
