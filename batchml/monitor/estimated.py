"""Estimated performance of each date before its labels arrive, stored with the version, checked once they do.

Where a version's estimator comes from (batchml.stats.estimators holds the methods):
- batchml trained it: fitted at registration on the held-out rows (`fit_estimator`), logged
  with the version as artifacts of its run, `estimator/meta.json` beside `estimator/calibrator.json`
  (classifier) or `estimator/loss_model.skops` (regressor); fetched through the model cache;
- otherwise (a model registered with MLflow's own APIs, or one whose holdout was too small):
  fitted on the rows of the first `baseline_days` dates the version scored, once all of
  their labels are committed, and written once under the storage root:

    _estimators/<model>/<version>/meta.json            status, rows, the dates it was fitted on
    _estimators/<model>/<version>/calibrator.json      or loss_model.skops.b64 (the skops bytes, base64)

  Until then the status is 'not yet available' and `status_detail` says how many labelled
  dates are still awaited.

What a date gets, monitoring/date=D/estimated.json (NaN written as null):

    {"date", "version", "model": {"name", "version"}, "status", "status_detail", "task", "rows",
     "metrics": {name: value}, "sampling_error": {name: value},
     "window": {"window_days", "dates", "rows", "metrics", "sampling_error"}}

`window` is the row-weighted combination of the estimates of the dates of `[drift]
window_days` ending at D scored by the same version (RMSE combined as the root of the
row-weighted mean square; sampling errors as independent dates', sqrt(sum n_i^2 s_i^2) / N).

When the labels of a date arrive, the metrics.json that holds its realized metrics records
`estimate_error` (`estimate_errors`), and the `estimator` check (a warning, never a failure)
says whether the estimator was wrong on k of the last n labelled dates (`estimator_check`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from batchml.base.setting import count, number, setting, share
from batchml.model.onnx_io import PREDICTION, proba_columns
from batchml.model.pin import ModelPin
from batchml.stats.estimators import (
    CLASSIFICATION_METRICS,
    FITTED_ON_REFERENCE,
    FROM_FIRST_LABELLED_DATES,
    NOT_YET_AVAILABLE,
    REGRESSION_METRICS,
    EstimatorCheck,
    LossModel,
    calibrator_from_json,
    calibrator_to_json,
    estimate_classification,
    estimate_error,
    estimate_regression,
    estimator_check,
    fit_calibrator,
    fit_loss_model,
    loss_model_from_bytes,
    loss_model_to_bytes,
)
from batchml.store import layout
from batchml.store.documents import read_document

ESTIMATED = "estimated.json"
ESTIMATOR_CHECK = "estimator"
META, CALIBRATOR, LOSS_MODEL = "meta.json", "calibrator.json", "loss_model.skops"
ARTIFACT_DIR = "estimator"  # the folder of a version's run that holds its estimator


@dataclass(frozen=True)
class EstimationPolicy:
    """[estimation] settings: whether dates get estimated performance, and when the estimator's own check warns."""

    enabled: bool = setting(
        True,
        "Estimate each date's performance before its labels arrive (estimated.json), and check the estimate once "
        "they do.",
    )
    margin: float = number(
        EstimatorCheck.margin,
        "Classifiers: the estimated ROC AUC counts as wrong on a labelled date when it is off the realized by more "
        "than this (absolute).",
        low=0,
    )
    relative_margin: float = share(
        0.1, "Regressors: the estimated MAE counts as wrong when it is off the realized by more than this (relative)."
    )
    band: float = number(
        EstimatorCheck.band,
        "An error counts only beyond this many sampling errors of the estimate (what chance gives at its row count).",
        low=0,
    )
    k: int = count(EstimatorCheck.k, "The estimator check warns when the estimate was wrong on k of the last n dates.")
    n: int = count(
        EstimatorCheck.n, "The labelled dates (with a known estimate error) the estimator check looks back on."
    )

    def check(self, task: str) -> EstimatorCheck:
        """The check of a task's estimator: ROC AUC by an absolute margin, or MAE by a relative one."""
        if task == "classification":
            return EstimatorCheck("roc_auc", self.margin, False, self.band, self.k, self.n)
        return EstimatorCheck("mae", self.relative_margin, True, self.band, self.k, self.n)


@dataclass
class Estimator:
    """A version's estimator (a calibrator or a loss model) and where it came from; `status` says which."""

    task: str
    status: str
    calibrator: dict | None = None
    loss_model: LossModel | None = None
    rows: int = 0
    fitted_on: str = ""
    detail: str = ""

    def meta(self) -> dict:
        """What meta.json holds."""
        return {"task": self.task, "status": self.status, "rows": self.rows, "fitted_on": self.fitted_on}

    def files(self) -> dict[str, bytes]:
        """The estimator as files (names relative to its folder); meta.json last, as it marks the others whole."""
        out: dict[str, bytes] = {}
        if self.calibrator is not None:
            out[CALIBRATOR] = calibrator_to_json(self.calibrator).encode()
        if self.loss_model is not None:
            out[LOSS_MODEL] = loss_model_to_bytes(self.loss_model)
        out[META] = json.dumps(self.meta(), sort_keys=True).encode()
        return out


def not_yet(task: str, detail: str) -> Estimator:
    return Estimator(task, NOT_YET_AVAILABLE, detail=detail)


def fit_estimator(
    task: str,
    inputs: pd.DataFrame,
    outputs: dict[str, Any],
    y_true,
    classes,
    *,
    status: str = FITTED_ON_REFERENCE,
    fitted_on: str,
    seed: int = 0,
) -> Estimator:
    """A version's estimator from labelled rows it did not train on: its inputs, its outputs (`prediction`,
    `proba_<class>`) and their truth. Too few labelled rows: 'not yet available', saying so."""
    try:
        if task == "classification":
            proba = np.column_stack([np.asarray(outputs[c], dtype="float64") for c in proba_columns(classes)])
            calibrator = fit_calibrator(proba, y_true, classes, seed=seed, status=status)
            return Estimator(task, status, calibrator=calibrator, rows=calibrator["rows"], fitted_on=fitted_on)
        loss = fit_loss_model(inputs, outputs[PREDICTION], y_true, seed, status=status)
        return Estimator(task, status, loss_model=loss, rows=loss.rows, fitted_on=fitted_on)
    except ValueError as exc:  # too few labelled rows, or none of the classes
        return not_yet(task, f"could not be fitted on {fitted_on}: {exc}")


def estimator_from_files(task: str, read) -> Estimator | None:
    """An estimator from its files (`read(name)` gives bytes or None); None when there is none (no meta.json)."""
    meta_bytes = read(META)
    if meta_bytes is None:
        return None
    meta = json.loads(meta_bytes)
    if meta["status"] == NOT_YET_AVAILABLE:
        return not_yet(task, meta.get("detail", ""))
    found = Estimator(task, meta["status"], rows=meta.get("rows", 0), fitted_on=meta.get("fitted_on", ""))
    if task == "classification":
        found.calibrator = calibrator_from_json(read(CALIBRATOR).decode())
    else:
        found.loss_model = loss_model_from_bytes(read(LOSS_MODEL))
    return found


def registered_estimator_files(estimator: Estimator) -> dict[str, bytes]:
    """The files logged with a registered version: `estimator/<name>` artifacts of its run."""
    return {f"{ARTIFACT_DIR}/{name}": data for name, data in estimator.files().items()}


# ---------------------------------------------------------------- a version's estimator


def _versions_dates(storage, pin: ModelPin, days: int) -> list[dt.date]:
    """The first `days` dates the version scored (committed predictions whose manifest names it), oldest first."""
    found = []
    for date in sorted(storage.committed_dates(layout.PREDICTIONS)):
        manifest = storage.manifest(layout.PREDICTIONS, date)
        if manifest is not None and (manifest.model.get("name"), manifest.model.get("version")) == (
            pin.name,
            pin.version,
        ):
            found.append(date)
            if len(found) == days:
                break
    return found


def labelled_rows(storage, dates: list[dt.date], contract, pin: ModelPin) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """(inputs, outputs, truth) of the committed predictions of `dates` joined with their labels on the key."""
    key, label = list(contract.key), contract.require_label().column
    outputs = [PREDICTION, *proba_columns(pin.classes or ())]
    frames = []
    for date in dates:
        joined = storage.read_table(layout.PREDICTIONS, date, columns=[*key, *outputs]).merge(
            storage.read_table(layout.LABELS, date)[[*key, label]], on=key
        )
        if not pin.classes:
            joined = joined.merge(_features(storage, date, key, pin), on=key)
        frames.append(joined[joined[label].notna()])
    frame = pd.concat(frames, ignore_index=True)
    if pin.classes:
        return frame.iloc[:, :0], frame[outputs], frame[label].to_numpy()
    names = list(pin.inputs) or [c for c in frame.columns if c not in (*key, *outputs, label)]
    return frame[names], frame[outputs], frame[label].to_numpy()


def _features(storage, date: dt.date, key: list[str], pin: ModelPin) -> pd.DataFrame:
    """The date's features: the model's inputs, or every column when its signature names none (scoring's rule)."""
    columns = list(dict.fromkeys([*key, *pin.inputs])) if pin.inputs else None
    return storage.read_table(layout.FEATURES, date, columns=columns)


def awaited_labels(storage, pin: ModelPin, date: dt.date, days: int, lag: int) -> list[dt.date]:
    """The first `days` dates the version scored whose labels are due by `date` (`lag` days after each) and not yet
    committed: what its estimator waits for."""
    return [
        d
        for d in _versions_dates(storage, pin, days)
        if d <= date - dt.timedelta(days=lag) and not storage.is_committed(layout.LABELS, d)
    ]


def first_dates_estimator(storage, pin: ModelPin, contract, date: dt.date, days: int, lag: int) -> Estimator:
    """The estimator of a version batchml did not train: read, or fitted on its first `days` scored dates once their
    labels, due `lag` days after each, are committed (then written once), or 'not yet available' saying how many
    labelled dates are still awaited."""
    task = contract.task
    found = _read_stored(storage, pin, task)
    if found is not None:
        return found
    dates = _versions_dates(storage, pin, days)
    due = date - dt.timedelta(days=lag)
    labelled = [d for d in dates if d <= due and storage.is_committed(layout.LABELS, d)]
    if len(labelled) < days:
        missing = days - len(labelled)
        return not_yet(
            task,
            f"models:/{pin.name}/{pin.version} carries no estimator of batchml's: it is fitted on its first {days} "
            f"labelled dates; waiting for {missing} more labelled date{'s' if missing != 1 else ''}",
        )
    inputs, outputs, truth = labelled_rows(storage, labelled, contract, pin)
    fitted_on = f"{labelled[0].isoformat()}..{labelled[-1].isoformat()}"
    estimator = fit_estimator(
        task, inputs, outputs, truth, pin.classes, status=FROM_FIRST_LABELLED_DATES, fitted_on=fitted_on
    )
    if estimator.status == NOT_YET_AVAILABLE:
        return estimator
    files = estimator.files()
    for name in (CALIBRATOR, LOSS_MODEL, META):  # meta.json last: it marks the estimator whole
        if name in files:
            text = base64.b64encode(files[name]).decode() if name == LOSS_MODEL else files[name].decode()
            storage.write_once(layout.estimator_file(pin.name, pin.version, _stored_name(name)), text)
    return _read_stored(storage, pin, task) or estimator  # a concurrent run's estimator wins (the same rows)


def _stored_name(name: str) -> str:
    """Files under the storage root are text: the loss model's skops bytes are kept base64-encoded."""
    return f"{name}.b64" if name == LOSS_MODEL else name


def _read_stored(storage, pin: ModelPin, task: str) -> Estimator | None:
    def read(name: str) -> bytes | None:
        text = storage.read_text(layout.estimator_file(pin.name, pin.version, _stored_name(name)))
        if text is None:
            return None
        return base64.b64decode(text) if name == LOSS_MODEL else text.encode()

    return estimator_from_files(task, read)


def own_estimator(registry, pin: ModelPin, task: str, cache_dir) -> Estimator | None:
    """The estimator logged with the version at registration (through the model cache); None when it has none."""
    own = estimator_from_files(task, lambda name: registry.version_file(pin, f"{ARTIFACT_DIR}/{name}", cache_dir))
    return own if own is not None and own.status != NOT_YET_AVAILABLE else None


# ---------------------------------------------------------------- a date's estimate


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _numbers(values: dict) -> dict[str, float | None]:
    return {k: _finite(v) for k, v in values.items()}


LOSS_MODEL_ROWS = 250_000  # a regressor's date is estimated on a seeded sample of at most this many rows


def sample_positions(rows: int, most_rows: int) -> np.ndarray | None:
    """The seeded, sorted positions of at most `most_rows` of `rows` rows; None: every row."""
    if not rows > most_rows > 0:
        return None
    return np.sort(np.random.default_rng(0).choice(rows, most_rows, replace=False))


def estimate_rows(
    estimator: Estimator,
    outputs: pd.DataFrame,
    inputs: pd.DataFrame,
    classes,
    *,
    rows: int | None = None,
    most_rows: int = LOSS_MODEL_ROWS,
) -> dict:
    """The estimate of some scored rows (a sample of `rows` when given): their metrics and sampling errors (NaN as
    None).

    A regressor's loss models read at most `most_rows` rows, a seeded sample of the date's (two
    gradient-boosted models cost about 2 s per million rows and core here, 5 times scoring's
    own cost): the estimate is the mean over the sample of each row's predicted loss, whose own
    spread at 250,000 rows is far below the margin the check allows; the band is still the one
    of every row (scaled by sqrt(sample / rows)).
    """
    names: tuple[str, ...]
    total = rows or len(outputs)
    if estimator.task == "classification":
        proba = outputs[proba_columns(classes)].to_numpy(dtype="float64")
        raw = estimate_classification(proba, list(classes), estimator.calibrator, outputs[PREDICTION])
        names = CLASSIFICATION_METRICS
    else:
        kept = sample_positions(len(outputs), most_rows)
        if kept is not None:
            outputs, inputs = outputs.iloc[kept], inputs.iloc[kept]
        raw = estimate_regression(inputs, outputs[PREDICTION], estimator.loss_model)
        names = REGRESSION_METRICS
    scale = math.sqrt(len(outputs) / total) if total > len(outputs) else 1.0
    bands = {m: v * scale for m, v in raw["sampling_error"].items()}
    return {"metrics": _numbers({m: raw[m] for m in names}), "sampling_error": _numbers(bands)}


def scored_rows(
    storage, date: dt.date, pin: ModelPin, estimator: Estimator, key, *, most_rows: int = LOSS_MODEL_ROWS
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(outputs, inputs, rows) of a date's committed predictions: the columns the estimator reads, read once, and
    how many rows the date has. A regressor's rows are sampled (`sample_positions`) before its predictions are joined
    with its features on the key (at 5 million rows the join of every row took 5.5 s, of the sample 2.7 s)."""
    if estimator.task == "classification":
        outputs = storage.read_table(layout.PREDICTIONS, date, columns=[PREDICTION, *proba_columns(pin.classes)])
        return outputs, pd.DataFrame(), len(outputs)
    assert estimator.loss_model is not None
    columns = estimator.loss_model.columns
    predictions = storage.read_table(layout.PREDICTIONS, date, columns=[*key, PREDICTION])
    kept = sample_positions(len(predictions), most_rows)
    frame = (predictions if kept is None else predictions.iloc[kept]).merge(
        storage.read_table(layout.FEATURES, date, columns=list(dict.fromkeys([*key, *columns]))), on=list(key)
    )
    return frame[[PREDICTION]], frame[columns], len(predictions)


def combine(estimates: list[dict]) -> dict:
    """Estimates of several dates as one: row-weighted (RMSE: root of the weighted mean square); sampling errors as
    independent dates'."""
    usable = [e for e in estimates if e.get("metrics") and e.get("rows")]
    total = sum(e["rows"] for e in usable)
    metrics: dict[str, float | None] = {}
    errors: dict[str, float | None] = {}
    for name in dict.fromkeys(m for e in usable for m in e["metrics"]):
        pairs = [(e["rows"], e["metrics"].get(name), e["sampling_error"].get(name)) for e in usable]
        pairs = [(n, v, s) for n, v, s in pairs if v is not None]
        rows = sum(n for n, _, _ in pairs)
        if not rows:
            metrics[name] = errors[name] = None
            continue
        if name == "rmse":
            metrics[name] = math.sqrt(sum(n * v * v for n, v, _ in pairs) / rows)
        else:
            metrics[name] = sum(n * v for n, v, _ in pairs) / rows
        spread = [(n, s) for n, _, s in pairs if s is not None]
        errors[name] = math.sqrt(sum((n * s) ** 2 for n, s in spread)) / rows if len(spread) == len(pairs) else None
    return {"rows": total, "metrics": metrics, "sampling_error": errors}


def date_estimate(storage, date: dt.date, pin: ModelPin, estimator: Estimator, contract, *, window_days: int) -> dict:
    """estimated.json of a date (see the module docstring): its estimate, and its window's."""
    body: dict[str, Any] = {
        "date": date.isoformat(),
        "version": pin.version,
        "model": {"name": pin.name, "version": pin.version},
        "status": estimator.status,
        "status_detail": estimator.detail or f"fitted on {estimator.fitted_on} ({estimator.rows} labelled rows)",
        "task": contract.task,
        "rows": 0,
        "metrics": {},
        "sampling_error": {},
        "estimator": {"rows": estimator.rows, "fitted_on": estimator.fitted_on},
    }
    if estimator.status != NOT_YET_AVAILABLE:
        outputs, inputs, rows = scored_rows(storage, date, pin, estimator, contract.key)
        body.update(rows=rows, **estimate_rows(estimator, outputs, inputs, pin.classes, rows=rows))
    days = [date - dt.timedelta(days=i) for i in range(window_days - 1, 0, -1)]
    earlier = [read_document(storage, layout.monitoring_file(d, ESTIMATED)) for d in days]
    same = [e for e in earlier if e and e.get("version") == pin.version and e.get("model", {}).get("name") == pin.name]
    counted = [*same, body] if body["metrics"] else []  # a date without an estimate has no window's either
    window = combine(counted)
    dates = [e["date"] for e in counted if e.get("metrics") and e.get("rows")]
    body["window"] = {"window_days": window_days, "dates": dates, **window}
    return body


# ---------------------------------------------------------------- when the labels arrive


def estimate_errors(storage, realized: dict) -> dict | None:
    """The estimate of the rows a realized metric measures (its `dates`, row-weighted) against it; None when those
    dates have no estimate."""
    dates = realized.get("dates") or [realized["date"]]
    read = [read_document(storage, layout.monitoring_file(dt.date.fromisoformat(d), ESTIMATED)) for d in dates]
    found = [e for e in read if e and e.get("metrics") and e.get("version") == realized.get("model_version")]
    if not found:
        return None
    estimated = combine(found)
    flat = {
        **{k: (v if v is not None else float("nan")) for k, v in estimated["metrics"].items()},
        "sampling_error": {k: (v if v is not None else float("nan")) for k, v in estimated["sampling_error"].items()},
    }
    return {
        "date": realized["date"],
        "version": realized.get("model_version"),
        "status": found[-1]["status"],
        "dates": [e["date"] for e in found],
        "metrics": {m: _numbers(e) for m, e in estimate_error(flat, realized).items()},
    }


def _recorded_errors(storage, date: dt.date, version: str | None, lookback: int) -> list[tuple[dt.date, dict]]:
    """The estimate errors recorded in the metrics.json of the `lookback` dates before `date`, of `version`."""
    out = []
    for i in range(lookback, 0, -1):
        body = read_document(storage, layout.monitoring_file(date - dt.timedelta(days=i), "metrics.json")) or {}
        error = body.get("estimate_error")
        if error and error.get("version") == version:
            out.append((dt.date.fromisoformat(error["date"]), _nan_for_none(error["metrics"])))
    return out


def _nan_for_none(metrics: dict) -> dict:
    return {m: {k: (float("nan") if v is None else v) for k, v in e.items()} for m, e in metrics.items()}


def with_estimate_error(storage, date: dt.date, metrics: dict, policy: EstimationPolicy) -> dict:
    """metrics.json with the date's own estimate (`estimated`), the labelled date's `estimate_error` and the
    `estimator` check (a warning, never a failure).

    The check looks at the errors recorded for the same version in the metrics.json of the
    `3 n + 7` dates before `date` (wide enough for gaps and a label lag), and this one's.
    """
    if not policy.enabled:
        return metrics
    own = read_document(storage, layout.monitoring_file(date, ESTIMATED))
    if own:  # the date's own estimate beside its realized numbers (estimated.json holds the whole of it)
        metrics = {**metrics, "estimated": {k: own.get(k) for k in ("version", "status", "metrics", "sampling_error")}}
    realized = (metrics.get("numbers") or {}).get("realized")
    error = estimate_errors(storage, realized) if realized else None
    if error is None:
        return metrics
    check = policy.check(metrics.get("task", "regression"))
    recorded = _recorded_errors(storage, date, error["version"], 3 * check.n + 7)
    labelled = dt.date.fromisoformat(error["date"])
    verdict = estimator_check(labelled, [*recorded, (labelled, _nan_for_none(error["metrics"]))], check)
    wrong = verdict["verdict"] != "ok"
    entry = {
        "name": ESTIMATOR_CHECK,
        "value": float(len(verdict["wrong_dates"])),
        "bound": f"< {check.k} of the last {check.n} labelled dates off by more than the margin",
        "ok": not wrong,
        "severity": "warn",
        "detail": verdict,
    }
    out = {**metrics, "estimate_error": error, "checks": [*metrics["checks"], entry]}
    if wrong:
        out["warned"] = [*metrics.get("warned", []), ESTIMATOR_CHECK]
        out["status"] = "warn" if metrics.get("status") == "ok" else metrics.get("status")
    return out


def flat_estimates(estimated: dict | None, metrics: dict | None) -> dict[str, float]:
    """MLflow metrics of a date: `estimated_<metric>`, `estimated_<metric>_sampling_error` and, once known,
    `estimate_error_<metric>` (of the labelled date whose realized metrics the date's metrics.json holds)."""
    out: dict[str, float] = {}
    for name, value in ((estimated or {}).get("metrics") or {}).items():
        if value is not None:
            out[f"estimated_{name}"] = float(value)
    for name, value in ((estimated or {}).get("sampling_error") or {}).items():
        if value is not None:
            out[f"estimated_{name}_sampling_error"] = float(value)
    for name, error in (((metrics or {}).get("estimate_error") or {}).get("metrics") or {}).items():
        if error.get("error") is not None:
            out[f"estimate_error_{name}"] = float(error["error"])
    return out
