"""The dashboard's timeline figures: one SVG per chart, every chart on the same date axis so that dates line up.

Pure: from the date summaries (summary.py, with place_realized's `r_*` keys) to escaped SVG.
Each mark carries its date (and, where it has one, its value and model version) as data-*
attributes, so that a point can be checked against the document it came from.
"""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

from batchml.monitor.charts import axis_ticks, format_number, format_share, is_finite_number, svg_element, y_grid
from batchml.monitor.summary import ESTIMATED_METRICS, STATUS_LABELS, estimated_metric

WIDTH, LEFT, RIGHT = 1080, 132, 18  # every timeline shares this x axis, so dates line up across charts
CLASS_COLOURS = ("#2f6fdf", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899")


def timeline_charts(dates: list[dict]) -> list[dict]:
    """The figures of the timeline section, top to bottom, each sharing the x axis."""
    axis = _Axis(dates)
    metric = estimated_metric(dates)
    together = metric is not None and metric in {d["metric"] for d in dates}
    charts: list[dict] = [
        {
            "key": "status",
            "title": "Status and model version",
            "note": "hover a date for its cause",
            "svg": _status_chart(axis),
        },
        {"key": "volume", "title": "Rows in and quarantine share", "note": "", "svg": _volume_chart(axis)},
        {
            "key": "realized",
            "title": _realized_title(dates, estimated=together),
            "note": _realized_note(dates) + ("; " + _estimated_note(dates) if together else ""),
            "svg": _realized_chart(axis, estimated=together),
            "legend": _legend(holdout=True) if together else [],
        },
    ]
    if metric is not None and not together:
        charts.append(
            {
                "key": "estimated",
                "title": f"Estimated and realized {metric}",
                "note": _estimated_note(dates),
                "svg": _estimated_chart(axis, metric),
                "legend": _legend(holdout=False),
            }
        )
    charts += [
        {
            "key": "drift",
            "title": "Drift",
            "note": "cell colour: the deciding statistic relative to its threshold",
            "svg": _drift_chart(axis),
        },
    ]
    if any(d["class_shares"] for d in dates):
        charts.append({"key": "classes", "title": "Predicted class shares", "note": "", "svg": _class_chart(axis)})
    else:
        charts.append(
            {
                "key": "prediction",
                "title": "Predictions",
                "note": "median, 5%–95% band and mean",
                "svg": _prediction_chart(axis),
            }
        )
    return charts


def _realized_title(dates: list[dict], *, estimated: bool = False) -> str:
    metrics = sorted({d["r_metric"] for d in dates if d["r_state"]})
    return (
        f"Realized {'and estimated ' if estimated else ''}error ({', '.join(metrics) or 'none yet'}) and label coverage"
    )


def _realized_note(dates: list[dict]) -> str:
    windows = sorted({d["window_days"] for d in dates if d["realized_status"] and d["window_days"] > 1})
    window = f" over {'/'.join(map(str, windows))}-day windows" if windows else ""
    return (
        f"on the date measured, by the version that scored it{window}; dashed: its holdout value, red: the error "
        "threshold; grey: pending"
    )


def _estimated_note(dates: list[dict]) -> str:
    windows = sorted({d["estimate"]["days"] for d in dates if d.get("estimate") and d["estimate"]["days"] > 1})
    window = f" over {'/'.join(map(str, windows))}-day windows" if windows else ""
    return (
        f"estimated{window} on every scored date before its labels arrive, with a band of ± 2 sampling errors; "
        "realized points beside it once labels measured the date"
    )


def _legend(*, holdout: bool) -> list[tuple[str, str]]:
    """The legend under a chart with estimates: (swatch class, text)."""
    items = [
        ("line estimated", "estimated"),
        ("estimate-band", "± 2 s.e. of the estimate"),
        ("dot realized", "realized"),
    ]
    if holdout:
        items += [("line dashed holdout", "holdout"), ("line dashed error-threshold", "error threshold")]
    return [*items, ("pending", "labels pending")]


class _Axis:
    """The x axis every timeline shares: one slot per date, left to right."""

    def __init__(self, dates: list[dict]):
        self.dates = dates
        self.n = len(dates)
        self.step = (WIDTH - LEFT - RIGHT) / max(self.n, 1)

    def x(self, i: int) -> float:
        return LEFT + i * self.step

    @property
    def gap(self) -> float:
        """White space between neighbouring cells; none when dates are too narrow to spare it."""
        return 1.0 if self.step >= 4 else 0.0

    def cell(self, i: int) -> str:
        """x and width attributes of the cell of date i."""
        return f'x="{self.x(i) + self.gap / 2:.2f}" width="{max(self.step - self.gap, 0.5):.2f}"'

    def mid(self, i: int) -> float:
        return LEFT + (i + 0.5) * self.step

    def ticks(self, y: float) -> str:
        """Date labels under a chart: about eight, the first and the last always."""
        every = max(1, math.ceil(self.n / 8))
        picks = sorted(set(range(0, self.n, every)) - {self.n - 1} | {self.n - 1}) if self.n else []
        if len(picks) > 1 and picks[-1] - picks[-2] < every / 2:
            picks.pop(-2)
        out = ""
        for i in picks:
            date = self.dates[i]["date"]
            anchor = "start" if i == 0 and self.n > 1 else "end" if i == self.n - 1 and self.n > 1 else "middle"
            x = self.x(i) if anchor == "start" else self.x(i + 1) if anchor == "end" else self.mid(i)
            out += f'<line class="tick" x1="{self.mid(i):.1f}" x2="{self.mid(i):.1f}" y1="{y}" y2="{y + 4}"/>'
            out += (
                f'<text x="{x:.1f}" y="{y + 15}" '
                f'text-anchor="{anchor}">{escape(date if i in (0, self.n - 1) else date[5:])}</text>'
            )
        return out

    def svg(self, height: int, body: str, *, chart: str, label: str) -> Markup:
        guide = f'<line class="guide" x1="0" x2="0" y1="0" y2="{height - 22}" visibility="hidden"/>'
        return svg_element(
            WIDTH,
            height,
            body + guide,
            cls="timeline" + (" dense" if not self.gap else ""),
            label=label,
            chart=chart,
            left=LEFT,
            step=f"{self.step:.4f}",
            n=self.n,
        )


def _lane_ticks(ticks: list[float], y_of, fmt) -> str:
    """A lane's y ticks: grid lines across the plot, labels right-aligned against it."""
    return y_grid(ticks, y_of, fmt, LEFT, WIDTH - RIGHT)


def _lane_label(y: float, text: str) -> str:
    """A lane's name at the left edge; the lane's y ticks sit right-aligned against the plot."""
    return f'<text class="lane" x="2" y="{y:.1f}">{escape(text)}</text>'


def _polyline(axis: _Axis, values: list, y_of, cls: str) -> str:
    """A line through the values, broken where a value is missing."""
    out, run = "", []
    for i, v in enumerate([*values, None]):
        if is_finite_number(v):
            run.append(f"{axis.mid(i):.1f},{y_of(v):.1f}")
            continue
        if len(run) > 1:
            out += f'<polyline class="{cls}" points="{" ".join(run)}"/>'
        elif run:
            x, y = run[0].split(",")
            out += f'<circle class="{cls}-dot" cx="{x}" cy="{y}" r="2.2"/>'
        run = []
    return out


def _scale(
    values: list, *, floor: float | None = None, ceiling: float | None = None
) -> tuple[list[float], float, float]:
    finite = [float(v) for v in values if is_finite_number(v)]
    lo = min(finite, default=0.0) if floor is None else floor
    hi = max(finite, default=1.0) if ceiling is None else ceiling
    ticks = axis_ticks(lo, max(hi, lo + 1e-9))
    return ticks, ticks[0], ticks[-1]


def _status_chart(axis: _Axis) -> Markup:
    """A cell per date in its status colour, then the model version bands with their events."""
    top, lane, gap = 6, 18, 12
    band_y = top + lane + gap
    out = _lane_label(top + 13, "Status") + _lane_label(band_y + 14, "Model")
    for i, d in enumerate(axis.dates):
        title = escape(d["date"] + " · " + STATUS_LABELS[d["status"]] + (f": {d['cause']}" if d["cause"] else ""))
        out += (
            f'<rect class="status status-{d["status"]}" data-date="{d["date"]}" data-i="{i}" '
            f'data-status="{d["status"]}" '
            f'{axis.cell(i)} y="{top}" height="{lane}"><title>{title}</title></rect>'
        )
    for version, start, end in _bands(axis.dates):
        x, w = axis.x(start), axis.x(end + 1) - axis.x(start)
        first, last = axis.dates[start]["date"], axis.dates[end]["date"]
        label = (
            f'<text class="band-label" x="{x + w / 2:.1f}" y="{band_y + 14}" '
            f'text-anchor="middle">v{escape(version)}</text>'
            if w >= 26
            else ""
        )
        out += (
            f'<g class="band" data-version="{escape(version)}" data-start="{first}" data-end="{last}">'
            f"<title>model v{escape(version)}: {first} to {last}</title>"
            f'<rect class="band v{_band_colour(version)}" x="{x + 0.5:.1f}" y="{band_y}" width="{max(w - 1, 0.6):.1f}" '
            f'height="20" rx="3"/>{label}</g>'
        )
    for i, d in enumerate(axis.dates):
        for e in d["events"]:
            out += _marker(axis.mid(i), band_y - 4, e, d["date"])
    return axis.svg(
        band_y + 20 + 28, out + axis.ticks(band_y + 24), chart="status", label="status and model version per date"
    )


def _bands(dates: list[dict]) -> list[tuple[str, int, int]]:
    """Runs of consecutive dates on one model version; a date with no version extends the run before it."""
    bands: list[list] = []
    for i, d in enumerate(dates):
        version = d["version"]
        if version is None:
            if bands:
                bands[-1][2] = i
            continue
        if bands and bands[-1][0] == version:
            bands[-1][2] = i
        else:
            bands.append([version, i, i])
    return [tuple(b) for b in bands]


def _band_colour(version: str) -> int:
    """One of four band shades, so that neighbouring versions differ."""
    try:
        return int(version) % 4
    except ValueError:
        return sum(map(ord, version)) % 4


def _marker(x: float, y: float, event: dict, date: str) -> str:
    """An event above the version band: ▼ promotion, ✕ rejected challenger, ↺ rollback."""
    kind = event["kind"]
    if kind == "promoted":
        shape = f'<path d="M{x - 6:.1f},{y - 8:.1f} L{x + 6:.1f},{y - 8:.1f} L{x:.1f},{y + 2:.1f} Z"/>'
    elif kind == "rejected":
        shape = (
            f'<path d="M{x - 4.5:.1f},{y - 8:.1f} L{x + 4.5:.1f},{y + 1:.1f} M{x + 4.5:.1f},{y - 8:.1f} '
            f'L{x - 4.5:.1f},{y + 1:.1f}"/>'
        )
    else:
        shape = (
            f'<circle cx="{x:.1f}" cy="{y - 3:.1f}" r="5"/><path d="M{x - 2:.1f},{y - 3:.1f} '
            f'L{x + 2.5:.1f},{y - 6:.1f} L{x + 2.5:.1f},{y:.1f} Z" class="inner"/>'
        )
    return (
        f'<g class="marker {kind}" data-kind="{kind}" data-date="{date}" '
        f'data-version="{escape(event.get("version") or "")}">'
        f"<title>{escape(date + ': ' + event['text'])}</title>{shape}</g>"
    )


def _volume_chart(axis: _Axis) -> Markup:
    """Rows in as bars, and the quarantined share as a line below them."""
    top, h1, gap, h2 = 8, 80, 22, 44
    out = _lane_label(top + h1 / 2 + 4, "rows in")
    rows = [d["rows_in"] for d in axis.dates]
    ticks, lo, hi = _scale(rows, floor=0)
    ticks = [lo, hi / 2, hi] if len(ticks) > 3 else ticks

    def y1(v):
        return top + h1 * (1 - (v - lo) / (hi - lo))

    out += _lane_ticks(ticks, y1, lambda v: format_number(int(v)) if v == int(v) else format_number(v, 3))
    for i, v in enumerate(rows):
        if is_finite_number(v):
            out += (
                f'<rect class="rows" x="{axis.x(i) + axis.step * 0.12:.1f}" y="{y1(v):.1f}" '
                f'width="{axis.step * 0.76:.1f}" height="{top + h1 - y1(v):.1f}"/>'
            )
    out += _lane_label(top + h1 + gap + h2 / 2 + 4, "quarantined")
    shares = [d["quarantine_share"] for d in axis.dates]
    qticks, qlo, qhi = _scale(shares, floor=0)
    qticks = [qlo, qhi]
    y0 = top + h1 + gap

    def y2(v):
        return y0 + h2 * (1 - (v - qlo) / (qhi - qlo))

    out += _lane_ticks(qticks, y2, format_share) + _polyline(axis, shares, y2, "quarantine")
    base = y0 + h2
    return axis.svg(base + 26, out + axis.ticks(base), chart="volume", label="rows in and quarantined share per date")


def _realized_chart(axis: _Axis, estimated: bool = False) -> Markup:
    """The realized error on the dates it measures, with the scoring version's holdout value and error threshold;
    coverage below; with `estimated`, each date's estimate of the same metric and its band too.

    A point per measured date carries its date, value, version and the run date that
    computed it (data-*), so it can be checked against metrics.json; pending dates are grey.
    """
    top, h1, gap, h2 = 8, 86, 16, 30
    values = [d["r_value"] for d in axis.dates]
    holdouts = [d["r_holdout"] if d["r_value"] is not None or d["r_state"] == "pending" else None for d in axis.dates]
    thresholds = [d["r_threshold"] if h is not None else None for d, h in zip(axis.dates, holdouts, strict=True)]
    metrics = sorted({d["r_metric"] for d in axis.dates if d["r_value"] is not None})
    metric = metrics[0] if len(metrics) == 1 else axis.dates[-1]["metric"]
    band = _estimate_band(axis, metric) if estimated else []
    ticks, lo, hi = _scale(values + holdouts + thresholds + [v for lo_hi in band for v in lo_hi[1:]])

    def y1(v):
        return top + h1 * (1 - (v - lo) / (hi - lo))

    out = _lane_label(top + h1 / 2 + 4, " / ".join(metrics) or "error") + _lane_ticks(
        ticks, y1, lambda v: format_number(v, 3)
    )
    y0 = top + h1 + gap
    out += _lane_label(y0 + h2 / 2 + 4, "label coverage")
    out += _pending(axis, top, h1)
    for i, d in enumerate(axis.dates):
        coverage = d["r_coverage"]
        if is_finite_number(coverage):
            h = h2 * max(0.0, min(1.0, coverage))
            out += (
                f'<rect class="coverage{" low" if coverage < 0.8 else ""}" x="{axis.x(i) + axis.step * 0.12:.1f}" '
                f'y="{y0 + h2 - h:.1f}" '
                f'width="{axis.step * 0.76:.1f}" height="{h:.1f}"><title>{d["date"]}: label coverage '
                f"{format_share(coverage)}</title></rect>"
            )
    out += f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y0}" y2="{y0}"/>'
    out += _steps(axis, holdouts, y1, "holdout") + _steps(axis, thresholds, y1, "error-threshold")
    out += _estimate_marks(axis, metric, band, y1) if estimated else ""
    out += _polyline(axis, values, y1, "realized")
    for i, d in enumerate(axis.dates):
        if d["r_value"] is not None:
            out += _realized_point(axis, i, d["r_metric"], d["r_value"], y1, holdout=d["r_holdout"])
    base = y0 + h2
    return axis.svg(
        base + 26,
        out + axis.ticks(base),
        chart="realized",
        label="realized error on the dates it measures, and label coverage"
        + (f"; estimated {metric} on every date" if estimated else ""),
    )


def _estimated_chart(axis: _Axis, metric: str) -> Markup:
    """A metric the realized chart does not show (a classifier's ROC AUC beside its log loss): each date's estimate
    with its band, and the realized value on the dates it measures once labels arrived."""
    top, h1 = 8, 100
    band = _estimate_band(axis, metric)
    realized = [d["r_values"].get(metric) for d in axis.dates]
    ticks, lo, hi = _scale(realized + [v for lo_hi in band for v in lo_hi[1:]])

    def y1(v):
        return top + h1 * (1 - (v - lo) / (hi - lo))

    out = _lane_label(top + h1 / 2 + 4, metric) + _lane_ticks(ticks, y1, lambda v: format_number(v, 3))
    out += _pending(axis, top, h1) + _estimate_marks(axis, metric, band, y1) + _polyline(axis, realized, y1, "realized")
    for i, v in enumerate(realized):
        if is_finite_number(v):
            out += _realized_point(axis, i, metric, v, y1)
    base = top + h1
    return axis.svg(
        base + 26,
        out + axis.ticks(base),
        chart="estimated",
        label=f"estimated {metric} on every date, and realized {metric} on the dates labels measured",
    )


def _pending(axis: _Axis, top: float, height: float) -> str:
    """A grey cell on each date whose realized metrics are pending (or impossible: the date was not scored)."""
    out = ""
    for i, d in enumerate(axis.dates):
        state = d["r_state"]
        if state in ("pending", "not scored"):
            out += (
                f'<rect class="pending" data-date="{d["date"]}" data-state="{state}" {axis.cell(i)} y="{top}" '
                f'height="{height}"><title>{d["date"]}: realized {escape(d["r_metric"])} {state}</title></rect>'
            )
    return out


def _realized_point(axis: _Axis, i: int, metric: str, value: float, y_of, holdout: float | None = None) -> str:
    """The realized `metric` of date i, with the version that scored it and the run date that measured it."""
    d = axis.dates[i]
    tip = (
        f"{d['date']}: realized {metric} {format_number(value)} of v{d['r_version']}"
        + (f" (holdout {format_number(holdout)})" if holdout is not None else "")
        + f", computed on {d['r_by']}"
    )
    estimate = d["estimate"]["values"].get(metric) if d.get("estimate") else None
    if estimate is not None:
        tip += f"; estimated {format_number(estimate)}"
    return (
        f'<circle class="realized-point" data-kind="realized" data-metric="{escape(metric)}" data-date="{d["date"]}" '
        f'data-value="{value!r}" data-version="{escape(d["r_version"] or "")}" '
        f'data-measured-on="{d["r_by"]}" cx="{axis.mid(i):.1f}" cy="{y_of(value):.1f}" '
        f'r="2.4"><title>{escape(tip)}</title></circle>'
    )


def _estimate_band(axis: _Axis, metric: str) -> list[tuple[int, float, float]]:
    """(date index, low, high) of each date with an estimate of `metric`: the estimate ± 2 sampling errors, kept
    within the metric's range (never below 0; at most 1 for a classifier's metrics)."""
    top = 1.0 if metric in ESTIMATED_METRICS[:5] else math.inf
    out = []
    for i, d in enumerate(axis.dates):
        estimate = d.get("estimate") or {}
        value, se = (estimate.get("values") or {}).get(metric), (estimate.get("bands") or {}).get(metric)
        if value is not None:
            spread = 2 * se if se is not None else 0.0
            out.append((i, max(value - spread, 0.0), min(value + spread, top)))
    return out


def _estimate_marks(axis: _Axis, metric: str, band: list[tuple[int, float, float]], y_of) -> str:
    """The ± 2 s.e. band as a light area over each run of consecutive estimated dates, the estimate as a line and a
    point per date (date, value, version and status as data-*, to check against estimated.json)."""
    out, run = "", []
    for k, item in enumerate(band):
        run.append(item)
        if k + 1 < len(band) and band[k + 1][0] == item[0] + 1:
            continue
        upper = [f"{axis.mid(i):.1f},{y_of(hi):.1f}" for i, _, hi in run]
        lower = [f"{axis.mid(i):.1f},{y_of(lo):.1f}" for i, lo, _ in reversed(run)]
        if len(run) == 1:  # a lone date: a short bar across its cell
            i, lo, hi = run[0]
            out += (
                f'<rect class="estimate-band" x="{axis.mid(i) - 2.5:.1f}" y="{y_of(hi):.1f}" width="5" '
                f'height="{max(y_of(lo) - y_of(hi), 0.5):.1f}"/>'
            )
        else:
            out += f'<polygon class="estimate-band" points="{" ".join(upper + lower)}"/>'
        run = []
    values = [(d.get("estimate") or {}).get("values", {}).get(metric) for d in axis.dates]
    out += _polyline(axis, values, y_of, "estimated")
    for i, lo, hi in band:
        d = axis.dates[i]
        estimate = d["estimate"]
        value, se = estimate["values"][metric], estimate["bands"].get(metric)
        days = f" over {estimate['days']} days" if estimate["days"] > 1 else ""
        tip = (
            f"{d['date']}: estimated {metric} {format_number(value)}{days}"
            + (f" ± {format_number(2 * se, 3)} (2 s.e.)" if se is not None else "")
            + f" of v{estimate['version'] or '?'} · estimator {estimate['status'] or 'status unknown'}"
        )
        out += (
            f'<circle class="estimated-point" data-kind="estimated" data-metric="{escape(metric)}" '
            f'data-date="{d["date"]}" data-value="{value!r}" data-version="{escape(estimate["version"] or "")}" '
            f'data-se="{se!r}" data-low="{lo!r}" data-high="{hi!r}" data-days="{estimate["days"]}" '
            f'data-status="{escape(estimate["status"] or "")}" cx="{axis.mid(i):.1f}" cy="{y_of(value):.1f}" '
            f'r="3"><title>{escape(tip)}</title></circle>'
        )
    return out


def _steps(axis: _Axis, values: list, y_of, cls: str) -> str:
    """A level per date (the holdout value of the version that scored it), drawn across the date's cell."""
    out = ""
    for i, v in enumerate(values):
        if is_finite_number(v):
            out += (
                f'<line class="{cls}" data-date="{axis.dates[i]["date"]}" x1="{axis.x(i):.1f}" '
                f'x2="{axis.x(i + 1):.1f}" y1="{y_of(v):.1f}" y2="{y_of(v):.1f}"/>'
            )
    return out


def _drift_chart(axis: _Axis) -> Markup:
    """The drifted share of features as bars (with the dataset threshold), then one heatmap row per column."""
    top, h1, gap, row = 8, 64, 14, 16

    def y1(v):
        return top + h1 * (1 - v)

    out = _lane_ticks([0.0, 0.5, 1.0], y1, lambda v: f"{100 * v:.0f}%")
    for i, d in enumerate(axis.dates):
        v = d["drifted_share"]
        if is_finite_number(v) and v > 0:
            cls = "share drifted" if d["verdict"] == "drift" else "share"
            out += (
                f'<rect class="{cls}" x="{axis.x(i) + axis.step * 0.12:.1f}" y="{y1(v):.1f}" '
                f'width="{axis.step * 0.76:.1f}" height="{top + h1 - y1(v):.1f}"/>'
            )
    thresholds = [d["drift_threshold"] for d in axis.dates if is_finite_number(d["drift_threshold"])]
    if thresholds:
        y = y1(thresholds[-1])
        out += (
            f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"><title>the dataset '
            f"drifts at ≥ {format_share(thresholds[-1])} of features</title></line>"
        )
    out += _lane_label(top + h1 / 2 + 4, "drifted share")
    columns = _columns(axis.dates)
    y0 = top + h1 + gap
    for r, name in enumerate(columns):
        y = y0 + r * row
        out += (
            f'<g class="heat-row" data-feature="{escape(name)}"><text class="feature" x="2" '
            f'y="{y + 12}">{escape(name)}</text>'
        )
        for i, d in enumerate(axis.dates):
            cell = d["cells"].get(name)
            if cell is None:
                continue
            ratio, drifted, method, value = cell
            what = (
                f"{method} {format_number(value, 3)} = {ratio:.2f}× threshold"
                if method
                else ("drifted" if drifted else "stable")
            )
            out += (
                f'<rect class="cell{" drifted" if drifted else ""}" data-feature="{escape(name)}" '
                f'data-date="{d["date"]}" data-ratio="{ratio}" '
                f'{axis.cell(i)} y="{y + 0.5}" height="{row - 1}" fill="{_heat(ratio, drifted)}">'
                f"<title>{d['date']} · {escape(name)}: {escape(what)}{' (drifted)' if drifted else ''}</title></rect>"
            )
        out += "</g>"
    base = y0 + len(columns) * row + 2
    return axis.svg(
        base + 26, out + axis.ticks(base), chart="drift", label="drifted feature share and drift heatmap per date"
    )


def _columns(dates: list[dict]) -> list[str]:
    """Heatmap rows: every column seen, features by name, the prediction last."""
    names = {n for d in dates for n in d["cells"]}
    return sorted(names - {"prediction"}) + (["prediction"] if "prediction" in names else [])


def _heat(ratio: float, drifted: bool) -> str:
    """Colour of a heatmap cell: pale grey to amber below the threshold, violet darkening past it."""
    if drifted or ratio >= 1:
        t = min(1.0, max(0.0, (ratio - 1) / 2))  # 1x .. 3x the threshold
        return _mix((167, 139, 250), (76, 29, 149), t)
    t = max(0.0, min(1.0, ratio))
    if t < 0.6:
        return _mix((238, 241, 246), (250, 234, 196), t / 0.6)
    return _mix((250, 234, 196), (245, 158, 11), (t - 0.6) / 0.4)


def _mix(a: tuple, b: tuple, t: float) -> str:
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _prediction_chart(axis: _Axis) -> Markup:
    """The 5%-95% band of the predictions, their median and their mean."""
    top, h = 8, 110
    preds = [d["prediction"] for d in axis.dates]
    values = [p.get(k) for p in preds for k in ("mean", "q0.05", "q0.5", "q0.95")]
    ticks, lo, hi = _scale(values)

    def y(v):
        return top + h * (1 - (v - lo) / (hi - lo))

    out = _lane_label(top + h / 2 + 4, "prediction") + _lane_ticks(ticks, y, lambda v: format_number(v, 3))
    for i, p in enumerate(preds):
        a, b = p.get("q0.05"), p.get("q0.95")
        if is_finite_number(a) and is_finite_number(b):
            out += (
                f'<rect class="qband" x="{axis.x(i) + axis.step * 0.2:.1f}" y="{y(b):.1f}" '
                f'width="{axis.step * 0.6:.1f}" height="{max(y(a) - y(b), 0.5):.1f}"/>'
            )
    out += _polyline(axis, [p.get("q0.5") for p in preds], y, "median") + _polyline(
        axis, [p.get("mean") for p in preds], y, "mean"
    )
    base = top + h
    return axis.svg(base + 26, out + axis.ticks(base), chart="prediction", label="prediction quantiles per date")


def _class_chart(axis: _Axis) -> Markup:
    """Predicted class shares as stacked bars, one per date."""
    top, h = 8, 100
    classes = sorted({str(c) for d in axis.dates for c in (d["class_shares"] or {})})
    out = _lane_ticks([0.0, 0.5, 1.0], lambda v: top + h * (1 - v), format_share)
    for i, d in enumerate(axis.dates):
        acc = 0.0
        for k, name in enumerate(classes):
            share = (d["class_shares"] or {}).get(name)
            if not is_finite_number(share) or share <= 0:
                continue
            y = top + h * (1 - acc - share)
            out += (
                f'<rect class="class-share" data-class="{escape(name)}" fill="{CLASS_COLOURS[k % len(CLASS_COLOURS)]}" '
                f'x="{axis.x(i) + axis.step * 0.1:.1f}" '
                f'y="{y:.1f}" width="{axis.step * 0.8:.1f}" height="{h * share:.1f}"><title>{d["date"]} · '
                f"{escape(name)}: {format_share(share)}</title></rect>"
            )
            acc += share
    legend = "".join(
        f'<rect x="{LEFT + 110 * k}" y="{top + h + 30}" width="10" height="10" '
        f'fill="{CLASS_COLOURS[k % len(CLASS_COLOURS)]}"/>'
        f'<text x="{LEFT + 110 * k + 14}" y="{top + h + 39}">{escape(name)}</text>'
        for k, name in enumerate(classes)
    )
    base = top + h
    return axis.svg(
        base + 48, out + axis.ticks(base) + legend, chart="classes", label="predicted class shares per date"
    )
