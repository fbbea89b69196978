"""Self-contained HTML monitoring pages: one report per date, and the templates every page is rendered from.

Pure functions from the JSON documents the pipeline writes to HTML strings. The markup lives
in Jinja2 templates (batchml/templates, autoescaped); charts are SVG drawn by the small
functions below, which escape what they take from the inputs and return Markup. Styles are
inline, so a page opens with no network.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from html import escape

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from batchml.monitor.charts import (
    axis_ticks,
    format_number,
    format_share,
    is_finite_number,
    nice_ceiling,
    svg_element,
    y_grid,
)
from batchml.monitor.summary import STATUS_LABELS, status_key, status_of
from batchml.stats.estimators import CLASSIFICATION_METRICS, REGRESSION_METRICS

SECTIONS = (
    ("summary", "Summary"),
    ("drift", "Drift"),
    ("metrics", "Metrics"),
    ("estimated", "Estimated performance"),
    ("trends", "Trends"),
    ("retraining", "Retraining"),
)
DECISION_STATUS = {
    "not triggered": "missing",
    "triggered": "warn",
    "promoted": "ok",
    "rejected": "fail",
    "rolled back": "fail",
}
TOP_CATEGORIES = 20  # bars of a categorical histogram before the rest is folded into "other"
TRENDS = (("rows_in", "Rows in"), ("drift_share", "Drifted feature share"))  # then the task's own, see _trend_series
# The realized metrics shown per task, the primary one first (its tile compares with the hold-out).
REALIZED = {
    "regression": (("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²"), ("mape", "MAPE")),
    "classification": (
        ("log_loss", "Log loss"),
        ("roc_auc", "ROC AUC"),
        ("accuracy", "Accuracy"),
        ("f1", "F1"),
        ("brier", "Brier score"),
    ),
}
# What an estimator's status means, for the estimated-performance section (batchml.stats.estimators.STATUSES).
ESTIMATOR_STATUS = {
    "fitted on reference": (
        "ok",
        "The estimator was fitted when batchml registered this version, on reference rows the model did not train on.",
    ),
    "from first labelled dates": (
        "scored",
        "batchml did not train this version: its estimator was fitted on the rows of its first labelled dates, "
        "whose own estimates are therefore in-sample (flatter than later ones).",
    ),
    "not yet available": (
        "missing",
        "No estimator yet: this version has no labelled dates so far. Estimates appear once the labels of its "
        "first dates are in; until then only drift and the realized metrics speak for it.",
    ),
}
ESTIMATE_TITLES = {"precision": "Precision", "recall": "Recall"}  # with those of REALIZED
STATISTICS = (
    ("psi", "PSI"),
    ("js", "JS distance"),
    ("wasserstein", "Wasserstein / std"),
    ("chi2_pvalue", "χ² p-value"),
)


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
    failure: dict | None = None,
    estimated: dict | None = None,
) -> str:
    """The monitoring page of one date: its cause first when it failed, then summary, drift, metric checks, estimated
    performance (`estimated`: the date's estimated.json), trends and retraining."""
    model = summary.get("model") or {}
    durations = summary.get("durations") or {}
    longest = max(durations.values(), default=0) or 1
    threshold = ((drift or {}).get("thresholds") or {}).get("drift_share")
    return render(
        "daily.html",
        date=date.isoformat(),
        status=status_of(metrics, drift, failure),
        cause=failure_cause(failure, metrics),
        meta=Markup("model {} v{} · sha256 {}").format(
            _text(model.get("name")), _text(model.get("version")), _sha(model.get("sha256"))
        ),
        sections=SECTIONS,
        summary=summary,
        model=model,
        reasons=[
            [_text(r), format_number(n), format_share(_ratio(n, summary.get("rows_in")))]
            for r, n in summary.get("top_reasons") or []
        ],
        durations=[(task, s, 100 * s / longest) for task, s in durations.items()],
        total_seconds=sum(durations.values()),
        drift=_drift_view(drift, reference, daily),
        statistics=[(key, title, ((drift or {}).get("thresholds") or {}).get(key)) for key, title in STATISTICS],
        metrics=_metrics_view(metrics),
        estimated=_estimated_view(estimated, metrics),
        trends=[
            (title, _line_svg(key, history, date.isoformat(), threshold if key == "drift_share" else None))
            for key, title in _trend_series(metrics, history)
        ]
        if history
        else [],
        history_length=len(history),
        retrain=_retrain_view(retrain),
    )


def failure_cause(failure: dict | None, metrics: dict | None) -> str:
    """Why a date failed, in one line: its failure record, else its breached error checks with their values ("" when it
    did not fail)."""
    if failure:
        return f"{failure.get('task') or 'a task'} failed: {failure.get('cause') or 'no cause recorded'}"
    breached = [c for c in (metrics or {}).get("checks") or [] if not c.get("ok") and c.get("severity") == "error"]
    if breached:
        return "checks failed: " + "; ".join(
            f"{c['name']} = {format_number(c.get('value'))} outside {c.get('bound')}" for c in breached
        )
    if (metrics or {}).get("status") == "fail":
        failed = ", ".join(map(str, (metrics or {}).get("failed") or []))
        return f"checks failed: {failed}" if failed else "checks failed"
    return ""


def _trend_series(metrics: dict | None, history: list[dict]) -> list[tuple[str, str]]:
    """The trend charts of the date's task: realized error and the prediction mean for a regression; log loss,
    accuracy and each class's predicted share for a classifier (never a chart its task cannot fill)."""
    metrics = metrics or {}
    keys = {k for h in history for k in h}
    task = metrics.get("task") or (
        "classification" if any(k.startswith("class_share.") for k in keys) else "regression"
    )
    titles = dict(REALIZED[task])
    primary = metrics.get("primary_metric") or REALIZED[task][0][0]
    if task == "classification":
        realized = [primary] + [m for m in ("accuracy",) if m != primary]
        shares = sorted(k for k in keys if k.startswith("class_share."))
        outputs = [(k, f"Predicted share of {k.removeprefix('class_share.')}") for k in shares]
    else:
        realized, outputs = [primary], [("prediction_mean", "Prediction mean")]
    return [*TRENDS, *((f"realized_{m}", f"Realized {titles.get(m, m)}") for m in realized), *outputs]


def render(template: str, **context) -> str:
    """One page from a template of batchml/templates."""
    return _environment().get_template(template).render(**context)


_ENV: Environment | None = None


def _environment() -> Environment:
    """The templates shipped in the package, autoescaped, with the number formats as filters."""
    global _ENV
    if _ENV is None:
        env = Environment(
            loader=PackageLoader("batchml", "templates"), autoescape=True, undefined=StrictUndefined, trim_blocks=False
        )
        env.filters.update(
            num=format_number,
            pct=format_share,
            text=_text,
            sha=_sha,
            seconds=_seconds,
            value=_value,
            ratio=_ratio,
            status_key=status_key,
        )
        env.filters["status_label"] = lambda s: STATUS_LABELS[status_key(s)]
        env.filters["capitalize"] = lambda s: str(s)[:1].upper() + str(s)[1:]
        _ENV = env
    return _ENV


def _drift_view(drift: dict | None, reference: dict | None, daily: dict | None) -> dict | None:
    """What the drift section shows: the verdict's banner, and one row and one chart per column."""
    if not drift:
        return None
    features, drifted = drift.get("features") or {}, drift.get("drifted_features") or []
    thresholds = drift.get("thresholds") or {}
    share, bound = format_share(drift.get("drifted_share")), format_share(thresholds.get("drift_share"))
    details = (
        f"Reference rows {format_number(drift.get('reference_rows'))} · current rows "
        f"{format_number(drift.get('current_rows'))}"
    )
    if drift.get("excluded"):
        details += " · not monitored: " + ", ".join(_text(f) for f in drift["excluded"])
    reference, daily = reference or {}, daily or {}
    ref_columns, cur_columns = reference.get("columns") or {}, daily.get("columns") or {}
    entries = [(name, stats, False) for name, stats in features.items()]
    if drift.get("prediction"):
        entries.append(("prediction", drift["prediction"], True))
    columns = []
    for name, stats, is_pred in entries:
        svg, wide = _histogram_svg(
            name, reference.get("prediction") if is_pred else ref_columns.get(name), cur_columns.get(name)
        )
        is_drifted = bool(stats.get("drifted"))
        columns.append(
            {
                "name": name,
                "stats": stats,
                "svg": svg,
                "classes": " ".join(
                    c for c in ("drifted" if is_drifted else "", "prediction-row" if is_pred else "") if c
                ),
                "figure_classes": " ".join(c for c in ("wide" if wide else "", "drifted" if is_drifted else "") if c),
            }
        )
    return {
        "colour": "drift" if drift.get("verdict") == "drift" else "ok",
        "title": str(drift.get("verdict", "unknown")).capitalize(),
        "headline": (
            f"{len(drifted)} of {len(features)} monitored features drifted ({share}); the dataset drifts at ≥ {bound}."
        ),
        "details": details,
        "columns": columns,
    }


def _metrics_view(metrics: dict | None) -> dict | None:
    if not metrics:
        return None
    checks = metrics.get("checks") or []
    numbers = metrics.get("numbers") or {}
    return {
        "status": metrics.get("status", "missing"),
        "checks": [{"name": None, "value": None, "bound": None, "severity": None, "ok": None, **c} for c in checks],
        "breached": [c for c in checks if not c.get("ok")],
        "failed": metrics.get("failed") or [],
        "warned": metrics.get("warned") or [],
        "numbers": {"realized": numbers.get("realized"), "champion_holdout_mae": numbers.get("champion_holdout_mae")},
        **_realized_view(metrics),
    }


def _realized_view(metrics: dict) -> dict:
    """The realized metrics of the date's task, and its champion's hold-out value of the primary one."""
    task = metrics.get("task", "regression")
    shown = REALIZED.get(task, REALIZED["regression"])
    primary = metrics.get("primary_metric") or shown[0][0]
    shown = tuple(sorted(shown, key=lambda item: item[0] != primary))
    holdout = (metrics.get("numbers") or {}).get(f"champion_holdout_{primary}")
    title = dict(shown).get(primary, primary)
    return {"realized_metrics": shown, "champion_holdout": f"champion hold-out {title} {format_number(holdout)}"}


def _estimated_view(estimated: dict | None, metrics: dict | None) -> dict | None:
    """The estimated-performance section: the date's estimates with their ± 2 s.e. band and the estimator's status
    and version; the estimate of the date whose labels this date's metrics measured beside its realized value and
    error; the `estimator` check. None when the date has neither an estimate nor an estimate's error."""
    metrics = metrics or {}
    error = metrics.get("estimate_error") or {}
    compared = error.get("metrics") if isinstance(error.get("metrics"), dict) else error  # {metric: {...}} either way
    check = next((c for c in metrics.get("checks") or [] if c.get("name") == "estimator"), None)
    if not estimated and not compared:
        return None
    estimated = estimated or {}
    task = estimated.get("task") or metrics.get("task") or "regression"
    titles = {**dict(REALIZED["classification"]), **dict(REALIZED["regression"]), **ESTIMATE_TITLES}
    window = estimated.get("window") or {}
    days = window.get("window_days", window.get("days")) or 1
    rows = []
    top = 1.0 if task == "classification" else math.inf  # a classifier's metrics are shares
    for name in CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS:
        value = (estimated.get("metrics") or {}).get(name)
        se = (estimated.get("sampling_error") or {}).get(name)
        row = {"metric": name, "title": titles.get(name, name), **_band(value, se, top)}
        if days > 1:
            row["window"] = _band(
                (window.get("metrics") or {}).get(name), (window.get("sampling_error") or {}).get(name), top
            )
        rows.append(row)
    status = estimated.get("status")
    colour, meaning = ESTIMATOR_STATUS.get(str(status), ("missing", ""))
    model = estimated.get("model") or {}
    version = estimated.get("version", model.get("version"))
    detail = (check or {}).get("detail") or {}
    return {
        "present": bool(estimated),
        "status": status or "no status recorded",
        "colour": colour,
        "meaning": meaning,
        "status_detail": estimated.get("status_detail"),
        "version": _text(version),
        "rows": estimated.get("rows"),
        "days": days,
        "estimates": rows if any(r["value"] is not None for r in rows) else [],
        "compared": [
            {"metric": name, "title": titles.get(name, name), **_compared(e)}
            for name, e in (compared or {}).items()
            if isinstance(e, dict)
        ],
        "compared_date": error.get("date") or ((metrics.get("numbers") or {}).get("realized") or {}).get("date"),
        "compared_version": error.get("version"),
        "check": check
        and {
            "ok": bool(check.get("ok")),
            "value": check.get("value"),
            "bound": check.get("bound"),
            "reason": detail.get("reason") if isinstance(detail, dict) else None,
        },
    }


def _band(value, se, top: float = math.inf) -> dict:
    """An estimate with its ± 2 s.e. band, kept within [0, top] (None where the document holds null: NaN, or no
    estimator yet)."""
    value = value if is_finite_number(value) else None
    se = se if is_finite_number(se) else None
    band = (max(value - 2 * se, 0.0), min(value + 2 * se, top)) if value is not None and se is not None else None
    return {"value": value, "se": se, "band": band}


def _compared(entry: dict) -> dict:
    """One metric of `estimate_error`: estimated, realized, error, relative error, and whether the error is within
    2 sampling errors (what chance alone would give)."""
    numbers = {
        k: entry.get(k) if is_finite_number(entry.get(k)) else None
        for k in ("estimated", "realized", "error", "relative_error", "sampling_error")
    }
    error, se = numbers["error"], numbers["sampling_error"]
    numbers["within"] = abs(error) <= 2 * se if error is not None and se is not None else None
    return numbers


def _retrain_view(retrain: dict | None) -> dict | None:
    if not retrain:
        return None
    decision = str(retrain.get("decision", "unknown"))
    return {
        "decision": decision,
        "reason": _text(retrain.get("reason", "")),
        "colour": DECISION_STATUS.get(decision, "missing"),
        "items": list(retrain.items()),
    }


# --- charts ---------------------------------------------------------------------------------


def _histogram_svg(name: str, ref: dict | None, cur: dict | None) -> tuple[Markup | None, bool]:
    """The reference and current shares of one column side by side per bin, and whether it needs the full width."""
    if not ref or not cur or len(ref.get("counts", [])) != len(cur.get("counts", [])):
        return None, False
    bars, ticks = _histogram_bars(ref, cur)
    wide = ref["kind"] == "categorical" and len(bars) > 8
    return _bars_svg(name, bars, ticks, wide=wide), wide


def _histogram_bars(ref: dict, cur: dict) -> tuple[list[tuple[str, float, float]], list[tuple[float, str]]]:
    """Bars as (label, reference share, current share), and x-axis ticks as (position in bars, label).

    Numeric: one bar per reference bin, ticks at a few bin edges. Categorical: the top
    categories by reference share, the rest folded into "other", and the unseen slot if used.
    """
    p, q = _shares(ref["counts"]), _shares(cur["counts"])
    if ref["kind"] == "numeric":
        edges = ref.get("edges") or []
        bars = [(_bin_label(edges, i), a, b) for i, (a, b) in enumerate(zip(p, q, strict=True))]
        picks = sorted({round(j * (len(edges) - 1) / 4) for j in range(5)}) if edges else []
        return bars, [(i + 1, format_number(edges[i], 3)) for i in picks]
    labels = [_category(c) for c in ref.get("categories", [])]
    order = sorted(range(len(labels)), key=lambda i: -p[i])
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    bars = [(labels[i], p[i], q[i]) for i in top]
    if rest:
        bars.append(("other", sum(p[i] for i in rest), sum(q[i] for i in rest)))
    if p[-1] or q[-1]:
        bars.append(("unseen", p[-1], q[-1]))
    return bars, [(i + 0.5, label) for i, (label, _, _) in enumerate(bars)]


def _bars_svg(name: str, bars: list[tuple[str, float, float]], ticks: list[tuple[float, str]], *, wide: bool) -> Markup:
    width, height = (1080 if wide else 520), 180
    left, right, top, bottom = 40, 8, 8, 22
    pw, ph = width - left - right, height - top - bottom
    ymax = nice_ceiling(max((max(a, b) for _, a, b in bars), default=0))
    step = pw / max(len(bars), 1)
    out = y_grid(
        [0, ymax / 2, ymax],
        lambda v: top + ph * (1 - v / ymax),
        lambda v: f"{100 * v:.0f}%" if ymax >= 0.05 else f"{100 * v:.1f}%",
        left,
        width - right,
    )
    for i, (label, a, b) in enumerate(bars):
        x = left + i * step
        tip = f"{label}: reference {format_share(a)}, current {format_share(b)}"
        bar = ""
        for cls, share, dx in (("ref", a, 0.1), ("cur", b, 0.5)):
            h = ph * share / ymax
            bar += (
                f'<rect class="{cls}" x="{x + dx * step:.1f}" y="{top + ph - h:.1f}" width="{0.4 * step:.1f}" '
                f'height="{h:.1f}"/>'
            )
        out += f'<g class="bin" data-label="{escape(label)}"><title>{escape(tip)}</title>{bar}</g>'
    base = top + ph
    out += f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>'
    for pos, label in ticks:
        out += f'<text x="{left + pos * step:.1f}" y="{base + 14}" text-anchor="middle">{escape(label)}</text>'
    return svg_element(
        width,
        height,
        out,
        cls="hist",
        label=f"Reference and current distribution of {name}",
        column=name,
        bars=len(bars),
    )


def _line_svg(key: str, history: list[dict], today: str, threshold: float | None) -> Markup:
    """A line over the history of one number, with a dot per date in that date's status colour."""
    width, height = 520, 180
    left, right, top, bottom = 56, 12, 10, 24
    pw, ph = width - left - right, height - top - bottom
    n = len(history)
    points = [(i, float(h[key]), h) for i, h in enumerate(history) if is_finite_number(h.get(key))]
    fmt = (lambda v: f"{100 * v:.3g}%") if key == "drift_share" else (lambda v: format_number(v, 3))

    def x_of(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    out = ""
    if not points:
        out += f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>'
    else:
        values = [v for _, v, _ in points] + ([threshold] if threshold is not None else [])
        ticks = axis_ticks(min(values), max(values))
        lo, hi = ticks[0], ticks[-1]

        def y_of(v: float) -> float:
            return top + ph * (1 - (v - lo) / (hi - lo))

        out += y_grid(ticks, y_of, fmt, left, width - right)
        if threshold is not None:
            y = y_of(threshold)
            out += (
                f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"><title>dataset '
                f"drift threshold {fmt(threshold)}</title></line>"
            )
        if any(h.get("date") == today for h in history):
            xt = x_of(next(i for i, h in enumerate(history) if h.get("date") == today))
            out += f'<line class="today" x1="{xt:.1f}" x2="{xt:.1f}" y1="{top}" y2="{top + ph}"/>'
        coords = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v, _ in points)
        out += f'<polyline class="line" points="{coords}"/>'
        for i, v, h in points:
            tip = f"<title>{escape(str(h.get('date')))}: {escape(fmt(v))}</title>"
            out += (
                f'<circle class="point status-{status_key(h.get("status"))}" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" '
                f'r="3.5">{tip}</circle>'
            )
    base = top + ph
    out += f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>'
    for i, anchor in ((0, "start"), (n - 1, "end")) if n > 1 else ((0, "middle"),):
        out += (
            f'<text x="{x_of(i):.1f}" y="{base + 15}" '
            f'text-anchor="{anchor}">{escape(str(history[i].get("date")))}</text>'
        )
    return svg_element(
        width, height, out, cls="trend", label=f"{key} over the last {n} dates", series=key, points=len(points)
    )


# --- small helpers --------------------------------------------------------------------------


def _text(value) -> str:
    """Raw text for the templates (they escape it); a dash when absent."""
    return "—" if value is None else str(value)


def _value(value) -> str | Markup:
    if isinstance(value, (dict, list)):
        return Markup("<code>{}</code>").format(json.dumps(value, sort_keys=True, default=str))
    return format_number(value) if isinstance(value, (int, float)) else _text(value)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {s % 60:.0f} s"


def _sha(sha) -> str | Markup:
    return Markup('<code title="{}">{}</code>').format(str(sha), str(sha)[:12]) if sha else "—"


def _ratio(part, whole) -> float | None:
    return part / whole if part is not None and whole else None


def _shares(counts: list) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _category(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bin_label(edges: list[float], i: int) -> str:
    if not edges:
        return "all values"
    if i == 0:
        return f"< {format_number(edges[0], 3)}"
    if i == len(edges):
        return f"≥ {format_number(edges[-1], 3)}"
    return f"[{format_number(edges[i - 1], 3)}, {format_number(edges[i], 3)})"
