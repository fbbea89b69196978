"""One date's monitoring documents boiled down to the few numbers the dashboard draws, and a date's status.

Pure: `summarize_date` takes a date's documents as `collect` reads them (a DateRecord) and
returns one small dict; `place_realized` moves each realized metric from the run date that
computed it to the date it measures. Missing documents and keys are tolerated.

A date's estimated.json (performance estimated before its labels arrive) stays on the date
it estimates: the estimate of D is drawn on D, beside the realized metric of D once a later
run date has measured it.
"""

from __future__ import annotations

from typing import TypedDict

from batchml.monitor.charts import format_number, format_share, is_finite_number
from batchml.monitor.monitoring import has_failed
from batchml.stats.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER

STATUS_LABELS = {
    "ok": "OK",
    "warn": "Warning",
    "fail": "Failed",
    "drift": "Drift",
    "scored": "Scored only",
    "labels": "Labels only",
    "missing": "Missing",
}
QUANTILES = ("0.05", "0.5", "0.95")
EVENT_LABELS = {"promoted": "promoted", "rejected": "challenger rejected", "rollback": "rolled back"}
METRICS = (*sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER), "precision", "recall")  # the numbers a realized dict may hold
# the estimated metrics, in the order the estimated line picks one when the realized chart's metric is not estimated
ESTIMATED_METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall", "mae", "rmse")


class DateRecord(TypedDict, total=False):
    """A date's documents as read from storage; every key but `date` is optional."""

    date: str
    has_report: bool  # the date's report.html exists
    metrics: dict | None  # the monitoring JSON files of the date
    drift: dict | None
    retrain: dict | None
    rollback: dict | None
    failure: dict | None
    estimated: dict | None  # estimated.json: the date's performance estimated before its labels
    predictions: dict | None  # the predictions and features manifests, as dicts
    features: dict | None
    labels: bool  # labels exist for the date (read only where nothing was scored)


def status_of(
    metrics: dict | None,
    drift: dict | None,
    failure: dict | None = None,
    *,
    labels_only: bool = False,
    scored_only: bool = False,
) -> str:
    """One word for a date, by precedence: fail > drift > warn > ok; then "scored", "labels", "missing".

    - "fail": a task of the date failed (failure.json) or an error check breached; a failure
      record alone is enough, the date is not missing.
    - "drift": the dataset drifted. It outranks warnings, which drift usually causes
      (prediction shift, realized error), so the cause people act on shows first.
    - "warn": a warning check breached; "ok": checks ran and passed.
    - "scored": predictions are committed but no checks ran: the date was scored as the
      labelled date of a later one (its realized metrics), not run by DailyScore itself.
    - "labels": nothing was scored for the date, but labels were extracted for it.
    - "missing": no result at all (or a date scored but not yet checked).
    """
    checks = metrics.get("status") if metrics else None
    if has_failed(failure, metrics):
        return "fail"
    if drift and drift.get("verdict") == "drift":
        return "drift"
    if checks in ("warn", "ok"):
        return checks
    return "scored" if scored_only else "labels" if labels_only else "missing"


def status_key(status) -> str:
    return status if status in STATUS_LABELS else "missing"


def summarize_date(docs: DateRecord) -> dict:
    """The few numbers the dashboard draws for one date, from its documents.

    `docs` holds "date" and, each optional, "metrics", "drift", "retrain", "rollback",
    "failure" (the monitoring JSON files), "predictions" and "features" (manifests as dicts),
    "labels" (labels exist for the date) and "has_report". Missing keys and shapes written
    by older or newer producers are tolerated: absent numbers are None.
    """
    metrics, drift = docs.get("metrics") or {}, docs.get("drift") or {}
    failure, retrain, rollback = docs.get("failure"), docs.get("retrain") or {}, docs.get("rollback")
    numbers = metrics.get("numbers") or {}
    predictions, features = docs.get("predictions") or {}, docs.get("features") or {}
    rows = predictions.get("rows") or features.get("rows") or {}
    rows_in = _first(numbers.get("rows_in"), rows.get("in"))
    quarantined = _first(numbers.get("quarantined"), rows.get("quarantined"))
    status = status_of(
        docs.get("metrics"),
        docs.get("drift"),
        failure,
        labels_only=bool(docs.get("labels")),
        scored_only=bool(docs.get("predictions")),
    )
    task = metrics.get("task") or "regression"
    metric = metrics.get("primary_metric") or ("mae" if task == "regression" else "log_loss")
    realized = numbers.get("realized") or None
    realized_status = numbers.get("realized_status") or ("available" if realized else "pending")
    model = predictions.get("model") or drift.get("model") or {}
    summary = {
        "date": str(docs["date"]),
        "status": status,
        "cause": _cause(status, metrics, drift, failure),
        "has_report": bool(docs.get("has_report")),
        "rows_in": rows_in,
        "quarantined": quarantined,
        "quarantine_share": quarantined / rows_in if is_finite_number(quarantined) and rows_in else None,
        "task": task,
        "metric": metric,
        "realized": realized.get(metric) if realized else None,
        "coverage": realized.get("coverage") if realized else None,
        "realized_status": realized_status if docs.get("metrics") else None,
        "measured": _measured(metrics, metric, realized, realized_status) if docs.get("metrics") else None,
        "labelled_date": metrics.get("labelled_date") or (realized or {}).get("date"),
        "window_days": metrics.get("window_days") or 1,
        "verdict": drift.get("verdict"),
        "drifted_share": drift.get("drifted_share"),
        "drift_threshold": (drift.get("thresholds") or {}).get("drift_share"),
        "drifted_features": list(drift.get("drifted_features") or []),
        "cells": _cells(drift),
        "prediction": _prediction(numbers.get("prediction") or {}),
        "class_shares": numbers.get("class_shares") or None,
        "version": str(model["version"]) if model.get("version") is not None else None,
        "decision": retrain.get("decision"),
        "events": _events(retrain, rollback),
        "estimate": estimate_of(docs.get("estimated")),
    }
    summary["tip"] = _tip(summary)
    return summary


def _measured(metrics: dict, metric: str, realized: dict | None, state: str) -> dict:
    """The realized metric a date's checks computed, for the date it measures (D - lag), not the run date D.

    `version` is the version that scored the measured rows (realized_of reads it from that
    date's predictions manifest); `holdout` is that version's holdout value and `threshold`
    where the realized_error_ratio check breaches.
    """
    numbers = metrics.get("numbers") or {}
    realized = realized or {}
    holdout = _first(numbers.get(f"champion_holdout_{metric}"), numbers.get("champion_holdout"))
    ratio = (metrics.get("thresholds") or {}).get("max_error_ratio")
    threshold = None
    if is_finite_number(holdout) and is_finite_number(ratio) and ratio > 0:
        threshold = holdout * ratio if metric in LOWER_IS_BETTER else holdout / ratio
    version = realized.get("model_version")
    return {
        "date": realized.get("date") or metrics.get("labelled_date"),
        "state": state,
        "value": realized.get(metric),
        "values": {k: realized[k] for k in METRICS if is_finite_number(realized.get(k))},
        "coverage": realized.get("coverage"),
        "version": str(version) if version is not None else None,
        "holdout": holdout if is_finite_number(holdout) else None,
        "threshold": threshold,
    }


def estimate_of(doc: dict | None) -> dict | None:
    """A date's estimated.json boiled down to what a chart draws; None when the date has none (or an empty one).

    Over the `[drift] window_days` window (`window.window_days`, or `window.days`) when the
    document has one longer than a day (the realized metrics are over the same window then),
    else the date's own rows. `values` and
    `bands` (the sampling errors) keep finite numbers only: a NaN is written as null, and an
    estimator "not yet available" has none.
    """
    if not doc:
        return None
    window = doc.get("window") or {}
    raw_days = window.get("window_days", window.get("days"))
    days = int(raw_days) if is_finite_number(raw_days) else 1
    source = window if days > 1 and window.get("metrics") else doc
    version = doc.get("version")
    return {
        "status": doc.get("status"),
        "detail": doc.get("status_detail"),
        "version": str(version) if version is not None else None,
        "task": doc.get("task"),
        "rows": doc.get("rows"),
        "days": days if source is window else 1,
        "values": {k: v for k, v in (source.get("metrics") or {}).items() if is_finite_number(v)},
        "bands": {k: v for k, v in (source.get("sampling_error") or {}).items() if is_finite_number(v)},
    }


def estimated_metric(dates: list[dict]) -> str | None:
    """The metric the estimated line shows: the realized chart's own when estimated, else the first estimated one
    (ROC AUC for a classifier); None when no date has an estimate."""
    held = {k for d in dates if d.get("estimate") for k in d["estimate"]["values"]}
    primary = {d["metric"] for d in dates}
    return next((m for m in (*sorted(primary), *ESTIMATED_METRICS) if m in held), None)


def _cause(status: str, metrics: dict, drift: dict, failure: dict | None) -> str:
    """Why a date has its status, in one line (empty when it is ok)."""
    warned = metrics.get("warned") or []
    if status == "fail":
        if failure:
            return f"{failure.get('task') or 'a task'} failed: {failure.get('cause') or 'no cause recorded'}"
        return (
            "checks failed: " + ", ".join(map(str, metrics.get("failed") or []))
            if metrics.get("failed")
            else "checks failed"
        )
    if status == "drift":
        drifted, total = drift.get("drifted_features") or [], len(drift.get("features") or {})
        text = f"drift in {len(drifted)} of {total} features: {', '.join(map(str, drifted))}"
        return text + (f"; warnings: {', '.join(map(str, warned))}" if warned else "")
    if status == "warn":
        return "warnings: " + ", ".join(map(str, warned))
    if status == "scored":
        return "scored for a later date's realized metrics; DailyScore of this date runs its checks"
    if status == "labels":
        return "labels only: nothing scored for this date"
    if status == "missing":
        return "no checks recorded yet"
    return ""


def _cells(drift: dict) -> dict[str, list]:
    """Per column (features, then the prediction): [ratio, drifted, statistic, value].

    The ratio is the deciding statistic relative to its threshold (1 = at the threshold),
    the statistic being the deciding method that is furthest past (or closest to) it. For a
    p-value, smaller is worse, so its ratio is threshold / value.
    """
    thresholds = drift.get("thresholds") or {}
    columns = dict(drift.get("features") or {})
    if drift.get("prediction"):
        columns["prediction"] = drift["prediction"]
    out = {}
    for name, stats in columns.items():
        best: tuple[float, str | None, float | None] = (0.0, None, None)
        for method in stats.get("deciding_methods") or []:
            value, bound = stats.get(method), thresholds.get(method)
            if not is_finite_number(value) or not is_finite_number(bound) or bound <= 0:
                continue
            ratio = bound / max(value, 1e-12) if method.endswith("pvalue") else value / bound
            best = max(best, (ratio, method, value), key=lambda b: b[0])
        ratio = best[0] if best[1] else (1.0 if stats.get("drifted") else 0.0)
        out[str(name)] = [round(ratio, 4), bool(stats.get("drifted")), best[1], best[2]]
    return out


def _prediction(stats: dict) -> dict:
    quantiles = stats.get("quantiles") or {}
    picked = {q: quantiles.get(q, quantiles.get(float(q))) for q in QUANTILES}
    return {"mean": stats.get("mean"), **{f"q{q}": v for q, v in picked.items() if is_finite_number(v)}}


def _events(retrain: dict, rollback: dict | None) -> list[dict]:
    """Promotions, rejected challengers and rollbacks recorded on a date."""
    out = []
    decision = retrain.get("decision")
    if decision in ("promoted", "rejected"):
        version = retrain.get("challenger_version") or retrain.get("candidate_version")
        text = (
            EVENT_LABELS[decision]
            + (f" v{version}" if version else "")
            + (f": {retrain['reason']}" if retrain.get("reason") else "")
        )
        out.append({"kind": decision, "version": str(version) if version else None, "text": text})
    if rollback:
        to = rollback.get("to_version")
        text = f"rolled back v{rollback.get('from_version')} → v{to}" + (
            f": {rollback['reason']}" if rollback.get("reason") else ""
        )
        out.append({"kind": "rollback", "version": str(to) if to is not None else None, "text": text})
    return out


def _tip(s: dict) -> str:
    """The hover text of a date: status and cause, then the headline numbers."""
    parts = [f"{s['date']} · {STATUS_LABELS[s['status']]}" + (f": {s['cause']}" if s["cause"] else "")]
    if s["rows_in"] is not None:
        parts.append(f"rows in {format_number(s['rows_in'])}, quarantined {format_share(s['quarantine_share'])}")
    if s["drifted_share"] is not None:
        parts.append(f"drifted features {format_share(s['drifted_share'])}")
    if s["realized_status"] == "available":
        parts.append(
            f"realized {s['metric']} {format_number(s['realized'])}, label coverage {format_share(s['coverage'])}"
        )
    elif s["realized_status"]:
        parts.append(f"realized {s['metric']}: {s['realized_status']}")
    estimate = s["estimate"]
    if estimate and estimate["values"]:
        shown = s["metric"] if s["metric"] in estimate["values"] else next(iter(estimate["values"]))
        band = estimate["bands"].get(shown)
        parts.append(
            f"estimated {shown} {format_number(estimate['values'][shown])}"
            + (f" ± {format_number(2 * band, 3)}" if band is not None else "")
            + f" ({estimate['status']})"
        )
    elif estimate:
        parts.append(f"estimated performance: {estimate['status'] or 'none'}")
    if s["version"]:
        parts.append(f"model v{s['version']}")
    parts += [e["text"] for e in s["events"]]
    return "\n".join(parts)


def _first(*values):
    return next((v for v in values if v is not None), None)


def place_realized(dates: list[dict]) -> list[dict]:
    """Each date with the realized metric that measures it (`r_*` keys), moved from the run date that computed it.

    A run date D reports the error of D - lag: it is drawn on D - lag, attributed to the
    version that scored D - lag (its `measured` version, else that date's own model), with
    that version's holdout value and error threshold. The latest run wins when several
    measured one date; a pending measurement marks its date pending until one is available.
    """
    by_date = {
        d["date"]: {
            **d,
            "r_value": None,
            "r_state": None,
            "r_version": None,
            "r_coverage": None,
            "r_by": None,
            "r_holdout": None,
            "r_threshold": None,
            "r_metric": d["metric"],
            "r_values": {},
        }
        for d in dates
    }
    for d in dates:
        m = d.get("measured")
        if not m or not m.get("date") or m["date"] not in by_date:
            continue
        target = by_date[m["date"]]
        if target["r_state"] == "available" and m["state"] != "available":
            continue
        target.update(
            r_value=m["value"] if is_finite_number(m["value"]) else None,
            r_state=m["state"],
            r_version=m["version"] or target["version"],
            r_coverage=m["coverage"],
            r_by=d["date"],
            r_holdout=m["holdout"],
            r_threshold=m["threshold"],
            r_metric=d["metric"],
            r_values=m.get("values") or {},
        )
    return [by_date[d["date"]] for d in dates]
