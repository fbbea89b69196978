"""How well estimated performance follows realized performance while the inputs shift (batchml/stats/estimators.py).

Usage:
  bench/estimators.py [--rows 20000] [--dates 30] [--concept-dates 3] [--seed 0] [--threads 1]

Generated data, two tasks. Inputs: five numeric features and one with three categories.
Classifier: the label is drawn with probability sigmoid(2 x0 + 1.5 sin(2 x1) + 0.8 x2 x3 - 0.5
+ a category's offset). Regressor: the target is 3 x0 + 2 sin(x1) + x2 x3 plus noise whose
spread grows with |x4| and in one category. A HistGradientBoosting model of each task is trained
on reference rows; the estimators (calibrator, loss model) are fitted on other reference rows
the model did not see. Then --dates dates of --rows rows each, the inputs shifting more every
date (x0's mean up and its spread down, x1's mean up, x4's mean up, the categories' shares
changing) while labels follow the inputs as before (covariate shift); then --concept-dates
dates where they do not (classifier: the x1 term flips sign and x0 counts less; regressor: the
noise doubles). Each date's estimate is compared with the realized metric, computed
independently (sklearn's roc_auc_score, plain MAE), and the estimator's own check
(roc_auc off by 0.03, MAE off by 10%, on 2 of the last 3 dates) is run after each date.

Pass criteria (from issue 21): on covariate-shift dates, estimated ROC AUC within 0.03 of
realized on at least 90% of dates, estimated MAE within 10% of realized on at least 90% of
dates; the check fires on a concept-shift date and on no covariate-shift date. As a control,
the same counts are given for an "estimator" that returns the reference (holdout) metric
unchanged: it must fail, or the shift was too small to tell anything.

Printed: one row per date, then one JSON object (the summary) as the last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("batchml_estimators", REPO / "batchml" / "stats" / "estimators.py")
est = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = est  # dataclasses look their module up by name
_spec.loader.exec_module(est)

FEATURES = ["x0", "x1", "x2", "x3", "x4", "c"]
CATEGORY_OFFSET = {"a": 0.0, "b": 0.5, "c": -0.5}
AUC_MARGIN, MAE_MARGIN, SHARE = 0.03, 0.10, 0.90
AUC_CHECK = est.EstimatorCheck(metric="roc_auc", margin=AUC_MARGIN, k=2, n=3)
MAE_CHECK = est.EstimatorCheck(metric="mae", margin=MAE_MARGIN, relative=True, k=2, n=3)


def inputs(rows: int, shift: float, rng) -> pd.DataFrame:
    """Inputs at `shift` (0: as on the reference dates, 1: the last covariate-shift date)."""
    shares = np.array([0.5, 0.3, 0.2]) * (1 - shift) + np.array([0.2, 0.3, 0.5]) * shift
    return pd.DataFrame(
        {
            "x0": rng.normal(0.8 * shift, 1.0 - 0.6 * shift, rows),
            "x1": rng.normal(0.6 * shift, 1.0, rows),
            "x2": rng.normal(0.0, 1.0, rows),
            "x3": rng.normal(0.0, 1.0, rows),
            "x4": rng.normal(1.5 * shift, 1.0, rows),
            "c": pd.Categorical(rng.choice(["a", "b", "c"], rows, p=shares), categories=["a", "b", "c"]),
        }
    )


def labels(x: pd.DataFrame, rng, concept: bool = False) -> np.ndarray:
    offset = x["c"].astype(str).map(CATEGORY_OFFSET).to_numpy(dtype=float)
    if concept:  # the labels stop following the inputs as they did
        logit = 0.8 * x.x0 - 1.5 * np.sin(2 * x.x1) + 0.8 * x.x2 * x.x3 - 0.5 + offset
    else:
        logit = 2.0 * x.x0 + 1.5 * np.sin(2 * x.x1) + 0.8 * x.x2 * x.x3 - 0.5 + offset
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(np.int64)


def targets(x: pd.DataFrame, rng, concept: bool = False) -> np.ndarray:
    spread = (0.5 + np.abs(x.x4) + 0.5 * (x["c"].astype(str) == "c")).to_numpy()
    noise = rng.normal(0.0, 1.0, len(x)) * spread * (2.0 if concept else 1.0)
    return (3 * x.x0 + 2 * np.sin(x.x1) + x.x2 * x.x3).to_numpy() + noise


def _model_frame(x: pd.DataFrame) -> pd.DataFrame:
    return x.assign(c=x["c"].cat.codes.astype("int64"))


def run(
    rows: int = 20000, dates: int = 30, concept_dates: int = 3, seed: int = 0, reference_rows: int | None = None
) -> dict:
    """Train, fit the estimators, and compare estimated with realized on every date; returns the rows and the
    summary."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    reference_rows = reference_rows or rows
    train, held = inputs(reference_rows, 0.0, rng), inputs(reference_rows, 0.0, rng)
    y_train_c, y_held_c = labels(train, rng), labels(held, rng)
    y_train_r, y_held_r = targets(train, rng), targets(held, rng)
    categorical = [False] * 5 + [True]
    clf = HistGradientBoostingClassifier(max_iter=100, categorical_features=categorical, random_state=seed).fit(
        _model_frame(train), y_train_c
    )
    reg = HistGradientBoostingRegressor(max_iter=100, categorical_features=categorical, random_state=seed).fit(
        _model_frame(train), y_train_r
    )
    classes = [int(c) for c in clf.classes_]
    held_proba = clf.predict_proba(_model_frame(held))
    held_pred = reg.predict(_model_frame(held))
    calibrator = est.calibrator_from_json(
        est.calibrator_to_json(est.fit_calibrator(held_proba, y_held_c, classes, seed=seed))
    )
    loss_model = est.loss_model_from_bytes(est.loss_model_to_bytes(est.fit_loss_model(held, held_pred, y_held_r, seed)))
    reference = {
        "roc_auc": float(roc_auc_score(y_held_c, held_proba[:, 1])),
        "mae": float(np.abs(held_pred - y_held_r).mean()),
    }
    fitted = time.perf_counter() - started

    start = dt.date(2026, 1, 1)
    table, auc_errors, mae_errors = [], [], []
    for i in range(dates + concept_dates):
        date = start + dt.timedelta(days=i)
        concept = i >= dates
        shift = min(i / max(dates - 1, 1), 1.0)
        x = inputs(rows, shift, rng)
        proba = clf.predict_proba(_model_frame(x))
        prediction = reg.predict(_model_frame(x))
        y_c, y_r = labels(x, rng, concept), targets(x, rng, concept)
        e_c = est.estimate_classification(proba, classes, calibrator, clf.classes_[proba.argmax(axis=1)], seed=seed + i)
        e_r = est.estimate_regression(x, prediction, loss_model)
        realized_c = {
            "roc_auc": float(roc_auc_score(y_c, proba[:, 1])),
            "accuracy": float((proba.argmax(axis=1) == y_c).mean()),
        }
        realized_r = {
            "mae": float(np.abs(prediction - y_r).mean()),
            "rmse": float(np.sqrt(((prediction - y_r) ** 2).mean())),
        }
        auc_errors.append((date, est.estimate_error(e_c, realized_c)))
        mae_errors.append((date, est.estimate_error(e_r, realized_r)))
        table.append(
            {
                "date": date.isoformat(),
                "kind": "concept shift" if concept else "covariate shift",
                "shift": round(shift, 3),
                "auc_estimated": e_c["roc_auc"],
                "auc_band": e_c["sampling_error"]["roc_auc"],
                "auc_realized": realized_c["roc_auc"],
                "accuracy_estimated": e_c["accuracy"],
                "accuracy_realized": realized_c["accuracy"],
                "mae_estimated": e_r["mae"],
                "mae_band": e_r["sampling_error"]["mae"],
                "mae_realized": realized_r["mae"],
                "rmse_estimated": e_r["rmse"],
                "rmse_realized": realized_r["rmse"],
                "auc_check": est.estimator_check(date, auc_errors, AUC_CHECK)["verdict"],
                "mae_check": est.estimator_check(date, mae_errors, MAE_CHECK)["verdict"],
            }
        )
    return {"rows": table, "summary": summarise(table, reference, rows, time.perf_counter() - started, fitted)}


def summarise(table: list[dict], reference: dict, rows: int, seconds: float, fitted: float) -> dict:
    covariate = [r for r in table if r["kind"] == "covariate shift"]
    concept = [r for r in table if r["kind"] == "concept shift"]

    def share(ok) -> float:
        return sum(map(ok, covariate)) / len(covariate) if covariate else float("nan")

    auc_err = [abs(r["auc_estimated"] - r["auc_realized"]) for r in covariate]
    mae_err = [abs(r["mae_estimated"] / r["mae_realized"] - 1) for r in covariate]
    out = {
        "rows_per_date": rows,
        "covariate_dates": len(covariate),
        "concept_dates": len(concept),
        "auc_within_margin": share(lambda r: abs(r["auc_estimated"] - r["auc_realized"]) <= AUC_MARGIN),
        "auc_error_max": max(auc_err, default=float("nan")),
        "auc_error_mean": float(np.mean(auc_err)) if auc_err else float("nan"),
        "mae_within_margin": share(lambda r: abs(r["mae_estimated"] / r["mae_realized"] - 1) <= MAE_MARGIN),
        "mae_relative_error_max": max(mae_err, default=float("nan")),
        "mae_relative_error_mean": float(np.mean(mae_err)) if mae_err else float("nan"),
        "auc_realized_range": [min(r["auc_realized"] for r in covariate), max(r["auc_realized"] for r in covariate)]
        if covariate
        else None,
        "mae_realized_range": [min(r["mae_realized"] for r in covariate), max(r["mae_realized"] for r in covariate)]
        if covariate
        else None,
        "reference": reference,
        "constant_auc_within_margin": share(lambda r: abs(reference["roc_auc"] - r["auc_realized"]) <= AUC_MARGIN),
        "constant_mae_within_margin": share(lambda r: abs(reference["mae"] / r["mae_realized"] - 1) <= MAE_MARGIN),
        "check_false_alarms": [r["date"] for r in covariate if "estimator wrong" in (r["auc_check"], r["mae_check"])],
        "auc_check_fires": next((r["date"] for r in concept if r["auc_check"] == "estimator wrong"), None),
        "mae_check_fires": next((r["date"] for r in concept if r["mae_check"] == "estimator wrong"), None),
        "seconds": round(seconds, 1),
        "seconds_to_fit": round(fitted, 1),
    }
    out["passed"] = bool(
        out["auc_within_margin"] >= SHARE
        and out["mae_within_margin"] >= SHARE
        and not out["check_false_alarms"]
        and (not concept or (out["auc_check_fires"] and out["mae_check_fires"]))
    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000, help="rows per date (and per reference set)")
    parser.add_argument("--dates", type=int, default=30, help="covariate-shift dates")
    parser.add_argument("--concept-dates", type=int, default=3, help="concept-shift dates after them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP threads of the models (1: a loaded, shared machine runs 5x faster than with 2)",
    )
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads):
        result = run(args.rows, args.dates, args.concept_dates, args.seed)
    print(
        f"{'date':10} {'kind':15} {'shift':>5} | {'AUC est':>8} {'±band':>6} {'real':>6} | {'MAE est':>8} {'±band':>6} "
        f"{'real':>6} {'rel':>6} | checks"
    )
    for r in result["rows"]:
        rel = r["mae_estimated"] / r["mae_realized"] - 1
        print(
            f"{r['date']:10} {r['kind']:15} {r['shift']:5.2f} | {r['auc_estimated']:8.4f} {r['auc_band']:6.4f} "
            f"{r['auc_realized']:6.4f} | "
            f"{r['mae_estimated']:8.4f} {r['mae_band']:6.4f} {r['mae_realized']:6.4f} {rel:+6.1%} | auc "
            f"{r['auc_check']}, mae {r['mae_check']}"
        )
    print(json.dumps(result["summary"]))
    return 0 if result["summary"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
