"""What the daily monitoring reads from storage: trailing history and per-date results."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd

from batchml.base.setting import count
from batchml.store import layout
from batchml.store.documents import read_document
from batchml.store.layout import monitoring_file
from batchml.store.storage import Storage


def record_duration(storage: Storage, date: dt.date, task: str, seconds: float) -> None:
    """One file per task, so tasks of a date that finish at once (--workers N) never race."""
    storage.write_text(
        monitoring_file(date, f"durations/{task}.json"), json.dumps({"task": task, "seconds": round(float(seconds), 3)})
    )


def read_durations(storage: Storage, date: dt.date) -> dict[str, float]:
    """Seconds per task family of a date's last run of each task."""
    out = {}
    for name in storage.list_names(monitoring_file(date, "durations")):
        body = read_document(storage, monitoring_file(date, f"durations/{name}"))
        if body:
            out[body["task"]] = body["seconds"]
    return out


def trailing_rows(storage: Storage, dataset: str, date: dt.date, days: int) -> list[int]:
    """Rows in of the committed dates among the `days` before `date`."""
    out = []
    for i in range(1, days + 1):
        m = storage.manifest(dataset, date - dt.timedelta(days=i))
        if m is not None:
            out.append(m.rows["in"])
    return out


def has_failed(failure: dict | None, metrics: dict | None) -> bool:
    """A date failed: a task of it failed (its failure.json, see batchml.monitor.failures) or an error check breached.

    The one definition the dashboard's status and `Backfill --dry-run` share: a date that
    failed at extraction has no predictions, but it is failed, not missing.
    """
    return bool(failure) or (metrics or {}).get("status") == "fail"


REALIZED_TRENDS = ("mae", "rmse", "r2", "mape", "log_loss", "roc_auc", "accuracy", "f1", "brier")


def history(storage: Storage, date: dt.date, days: int) -> list[dict]:
    """The last `days` dates up to `date` (oldest first) with the numbers the trends plot.

    A date's realized metrics (`realized_<metric>`) are those measuring it, computed by the
    run lag days later (its `realized.date`), not those its own run computed for an earlier
    date; a classifier's predicted class shares are `class_share.<class>`.
    """
    rows, measured = [], {}
    for i in range(days - 1, -1, -1):
        d = date - dt.timedelta(days=i)
        metrics = read_document(storage, monitoring_file(d, "metrics.json"))
        drift = read_document(storage, monitoring_file(d, "drift.json"))
        numbers = (metrics or {}).get("numbers") or {}
        realized = numbers.get("realized") or {}
        if realized:
            measured[realized.get("date") or (metrics or {}).get("labelled_date") or d.isoformat()] = realized
        if metrics is None and drift is None:
            continue
        rows.append(
            {
                "date": d.isoformat(),
                "status": (metrics or {}).get("status", "missing"),
                "rows_in": numbers.get("rows_in"),
                "drift_share": (drift or {}).get("drifted_share"),
                "drift_verdict": (drift or {}).get("verdict"),
                "prediction_mean": (numbers.get("prediction") or {}).get("mean"),
                **{f"class_share.{c}": share for c, share in (numbers.get("class_shares") or {}).items()},
            }
        )
    for row in rows:
        realized = measured.get(row["date"]) or {}
        row.update({f"realized_{m}": realized.get(m) for m in REALIZED_TRENDS})
    return rows


def realized_of(
    storage, labelled: dt.date, contract, classes, holdout_of, window_days: int = 1
) -> tuple[dict, float | None]:
    """Realized performance of the labelled date's committed predictions against its labels.

    With `window_days` > 1, the rows of the window's labelled dates ending at `labelled`
    that were scored by the same version and whose labels are committed count together (the
    drift window's counterpart: a low-volume table gets a metric on enough rows).
    `holdout_of(version, metric)` gives that version's holdout value of the primary metric
    (its training-time reference), returned beside the numbers.
    """
    from batchml.model.onnx_io import PREDICTION, proba_columns
    from batchml.monitor.checks import realized_performance
    from batchml.stats.metrics import PRIMARY

    version = storage.manifest(layout.PREDICTIONS, labelled).model["version"]
    dates = [labelled - dt.timedelta(days=i) for i in range(window_days - 1, -1, -1)]
    dates = [
        d
        for d in dates
        if d == labelled or (_scored_by(storage, d) == version and storage.is_committed(layout.LABELS, d))
    ]
    columns = [*contract.key, PREDICTION, *proba_columns(classes)]
    preds = pd.concat([storage.read_table(layout.PREDICTIONS, d, columns=columns) for d in dates], ignore_index=True)
    labels = pd.concat([storage.read_table(layout.LABELS, d) for d in dates], ignore_index=True)
    result = realized_performance(
        preds, labels, key=list(contract.key), label=contract.label.column, task=contract.task, classes=classes
    )
    window = {"window_days": window_days, "dates": [d.isoformat() for d in dates]}
    return {**result, "date": labelled.isoformat(), "model_version": version, **window}, holdout_of(
        version, PRIMARY[contract.task]
    )


def _scored_by(storage, date: dt.date) -> str | None:
    manifest = storage.manifest(layout.PREDICTIONS, date)
    return manifest.model["version"] if manifest else None


def date_checks(
    storage,
    date: dt.date,
    *,
    pin,
    reference: dict | None,
    contract,
    thresholds,
    trailing_days: int,
    realized,
    holdout,
    status: str,
) -> dict:
    """Every number and check of a date (metrics.json): rows, quarantine, nulls, outputs, realized error."""
    from batchml.dataset.extract import trailing_nulls, validated_nulls
    from batchml.model.onnx_io import PREDICTION
    from batchml.monitor.checks import null_rates_of, run_checks
    from batchml.scoring.predictions import profile_path

    predictions = storage.verify(layout.PREDICTIONS, date)
    daily = read_document(storage, profile_path(date)) or {"columns": {}}
    reference = reference or {}
    classes = pin.classes
    prediction = dict(daily["columns"].get(PREDICTION, {})) if not classes else {}
    if prediction and reference.get("prediction"):
        from batchml.stats.profile import binned_quantiles

        prediction["quantiles"] = binned_quantiles(reference["prediction"], prediction)
    result = run_checks(
        rows_in=predictions.rows["in"],
        trailing_rows=trailing_rows(storage, layout.FEATURES, date, trailing_days),
        quarantined=predictions.rows["quarantined"],
        nulls=null_rates_of(
            contract, daily, reference, validated_nulls(storage, date), *trailing_nulls(storage, date, trailing_days)
        ),
        prediction=prediction,
        reference_prediction=reference.get("prediction") or {},
        realized=realized,
        holdout=holdout,
        thresholds=thresholds,
        task=contract.task,
        class_shares=class_shares(daily, classes) if classes else None,
        reference_shares=class_shares({"columns": reference.get("outputs") or {}}, classes) if classes else None,
        realized_status=status,
    )
    result["model"] = predictions.model
    return result


def class_shares(profile: dict | None, classes) -> dict[str, float] | None:
    """Mean probability of each class over a date (or the reference): a classifier's class balance."""
    from batchml.model.onnx_io import proba_columns

    cols = (profile or {}).get("columns") or {}
    out = {
        str(c): cols[name]["mean"]
        for c, name in zip(classes, proba_columns(classes), strict=True)
        if cols.get(name, {}).get("mean") is not None
    }
    return out or None


@dataclass(frozen=True)
class ReportSettings:
    """[report] settings: the monitoring pages (the home of their defaults)."""

    trend_days: int = count(30, "Dates shown in the report's trend charts.")


def report_inputs(storage, date: dt.date, *, reference: dict | None, trend_days: int) -> dict:
    """Everything the daily report of `date` shows, read from the storage root."""
    from batchml.scoring.predictions import profile_path

    predictions = storage.verify(layout.PREDICTIONS, date)
    features = storage.manifest(layout.FEATURES, date)
    decision = read_document(storage, monitoring_file(date, "retrain.json"))
    rollback = read_document(storage, monitoring_file(date, "rollback.json"))
    if rollback:
        decision = {
            **(decision or {}),
            "rollback": f"{rollback['from_version']} -> {rollback['to_version']}: {rollback['reason']}",
        }
    return {
        "summary": {
            "rows_in": predictions.rows["in"],
            "scored": predictions.rows["written"],
            "quarantined": predictions.rows["quarantined"],
            "top_reasons": features.extra.get("top_reasons", []),
            "model": predictions.model,
            "durations": read_durations(storage, date),
        },
        "drift": read_document(storage, monitoring_file(date, "drift.json")),
        "reference": reference,
        "daily": read_document(storage, profile_path(date)),
        "metrics": read_document(storage, monitoring_file(date, "metrics.json")),
        "history": history(storage, date, trend_days),
        "retrain": decision,
        "failure": read_document(storage, monitoring_file(date, "failure.json")),
        "estimated": read_document(storage, monitoring_file(date, "estimated.json")),
    }


def date_drift(
    storage, date: dt.date, pin, reference: dict | None, have: int, *, baseline_days: int, thresholds
) -> dict:
    """drift.json of a date: its window's profiles against the version's reference.

    The window counts only dates scored by the same version (same reference bins). Without a
    reference yet (a version batchml did not train, its baseline still collected: `have` of
    `baseline_days` dates in) or without the date's profile, the verdict says so.
    """
    from batchml.scoring.predictions import profile_specs
    from batchml.stats.drift import drift_report, window_dates
    from batchml.stats.profile import window_profile

    daily = read_document(storage, layout.profile(date))
    result: dict
    if reference is None or daily is None:
        result = {
            "verdict": f"collecting baseline ({have} of {baseline_days} dates)",
            "reason": f"models:/{pin.name}/{pin.version} carries no reference profile of batchml's: "
            f"its reference is the sum of its first {baseline_days} scored dates ({have} in so far)",
            "drifted_share": None,
            "drifted_features": [],
            "features": {},
            "prediction": None,
        }
    else:
        profiles = {
            d.isoformat(): _window_profile(storage, d, date, pin) for d in window_dates(date, thresholds.window_days)
        }
        specs = profile_specs(reference)
        assert specs is not None  # reference is not None
        result = drift_report(reference, window_profile(profiles, specs), list(reference["columns"]), thresholds)
    result["model"] = {"name": pin.name, "version": pin.version}
    return result


def _window_profile(storage, day: dt.date, date: dt.date, pin) -> dict | None:
    """A window date's daily profile, when it was scored by the same version (same reference bins); the date's own
    always."""
    if day != date:
        manifest = storage.manifest(layout.PREDICTIONS, day)
        if manifest is None or manifest.model.get("version") != pin.version:
            return None
    return read_document(storage, layout.profile(day))


def date_metrics(
    storage, date: dt.date, labelled: dt.date, *, pin, labelled_pin, status: str, holdout_of, window_days: int, **checks
) -> dict:
    """metrics.json of a date: its checks, with the realized performance of `labelled` (date - lag) once its labels are
    in.

    `status` says where the labelled date's labels stand ("not scored", "pending",
    "available"); realized metrics are computed only when available, over `window_days`
    labelled dates scored by the same version. `checks` are date_checks' keyword arguments
    (reference, contract, thresholds, trailing_days).
    """
    realized, holdout = None, None
    if status == "available":
        realized, holdout = realized_of(
            storage, labelled, checks["contract"], labelled_pin.classes, holdout_of, window_days=window_days
        )
    result = date_checks(storage, date, pin=pin, realized=realized, holdout=holdout, status=status, **checks)
    result["labelled_date"] = labelled.isoformat()
    result["window_days"] = window_days
    return result


def log_date_metrics(registry, date: dt.date, metrics: dict, drift: dict, estimated: dict | None = None) -> None:
    """The date's numbers, status, drift verdict and documents on its MLflow monitoring run (with its estimated
    performance and, once labels are in, the estimate's error: batchml.monitor.estimated)."""
    from batchml.monitor.checks import flat_metrics
    from batchml.monitor.estimated import ESTIMATED, flat_estimates

    registry.log_daily(
        date.isoformat(),
        {**flat_metrics(metrics, drift if drift.get("features") else None), **flat_estimates(estimated, metrics)},
        {"status": metrics["status"], "drift_verdict": drift["verdict"], "model_version": metrics["model"]["version"]},
        {"metrics.json": metrics, "drift.json": drift, **({ESTIMATED: estimated} if estimated else {})},
    )
