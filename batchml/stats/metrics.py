"""Task-aware model metrics and which way each one improves.

Regression: MAE, RMSE, R2, MAPE. Classification: log loss, ROC AUC (binary, or
one-vs-rest macro), accuracy, F1 (binary on the contract's last class, macro otherwise),
Brier score, computed by hand so that no library reorders the classes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from batchml.model.onnx_io import PREDICTION, class_codes, proba_columns

LOWER_IS_BETTER = {"mae", "rmse", "mape", "log_loss", "brier"}
HIGHER_IS_BETTER = {"r2", "roc_auc", "accuracy", "f1"}
PRIMARY = {"regression": "mae", "classification": "log_loss"}


def lower_is_better(metric: str) -> bool:
    if metric not in LOWER_IS_BETTER | HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}: one of {', '.join(sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER))}")
    return metric in LOWER_IS_BETTER


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MAE, RMSE, R2 and MAPE (on rows with a positive truth)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    err = y_pred - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum()) if len(y_true) else 0.0
    pos = y_true > 0
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot else float("nan"),
        "mape": float(np.abs(err[pos] / y_true[pos]).mean()) if pos.any() else float("nan"),
        "n": int(len(y_true)),
    }


def classification_metrics(y_true, proba: np.ndarray, classes, y_pred=None) -> dict[str, float]:
    """Log loss, ROC AUC, accuracy, F1 and Brier score of class probabilities (columns in `classes` order).

    Computed here, not by scikit-learn (which orders labels itself), so any class order and
    label type (text, integer, boolean) give the same numbers. Truth values are matched to
    `classes` by identity (`True` is not `1`); a truth outside `classes` is excluded from every
    metric and counted in `outside_classes`. `y_pred` is the model's label (default, and where
    it is none of the classes, as 0/1 once written for booleans: the most probable class).
    Probabilities are clipped to [1e-15, 1] and each row rescaled to sum to 1.

    - log loss: -mean(log p(true class)); Brier: mean over rows of the sum over classes of
      (p - 1[true])^2 (0 to 2).
    - ROC AUC: two classes, of p(last class); more, the mean one-vs-rest AUC over the classes
      that have both positive and negative rows on these rows (a class absent from a date is
      left out, not a failure); NaN when no class has both.
    - F1: two classes, of the contract's last class (the positive one); more, the macro mean
      over the classes present in the truth or the predictions.
    """
    classes = list(classes)
    k = len(classes)
    truth = class_codes(y_true, classes)
    known = truth >= 0
    missing = pd.isna(pd.Series(y_true)).to_numpy() if len(truth) else np.zeros(0, bool)
    truth = truth[known]
    n = len(truth)
    proba = np.clip(np.asarray(proba, dtype="float64").reshape(-1, k)[known], 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    if y_pred is not None:  # the model's own label; the most probable class where it is none of the classes
        given = class_codes(y_pred, classes)[known]
        pred = np.where(given >= 0, given, pred)
    rows = np.arange(n)
    onehot = np.zeros((n, k))
    onehot[rows, truth] = 1.0
    out = {
        "log_loss": float(-np.log(proba[rows, truth]).mean()) if n else float("nan"),
        "accuracy": float((pred == truth).mean()) if n else float("nan"),
        "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()) if n else float("nan"),
        "n": int(n),
        "outside_classes": int((~known & ~missing).sum()),
    }
    if k == 2:
        out["roc_auc"] = _auc(proba[:, 1], truth == 1)
        out["f1"] = _f1(pred == 1, truth == 1) if n else float("nan")
    else:
        aucs = [a for j in range(k) if np.isfinite(a := _auc(proba[:, j], truth == j))]
        out["roc_auc"] = float(np.mean(aucs)) if aucs else float("nan")
        present = np.union1d(truth, pred)
        out["f1"] = float(np.mean([_f1(pred == j, truth == j) for j in present])) if n else float("nan")
    return out


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of `score` for `positive` rows (Mann-Whitney, ties counted half); NaN without both kinds of rows."""
    p = int(positive.sum())
    q = len(positive) - p
    if not p or not q:
        return float("nan")
    return float((_ranks(score)[positive].sum() - p * (p + 1) / 2) / (p * q))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (as `scipy.stats.rankdata`, without importing scipy.stats)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = np.cumsum(starts) - 1  # each sorted value's group of equal values
    bounds = np.concatenate([np.flatnonzero(starts), [len(values)]])
    ranks = np.empty(len(values))
    ranks[order] = (bounds[group] + bounds[group + 1] + 1) / 2
    return ranks


def _f1(predicted: np.ndarray, actual: np.ndarray) -> float:
    tp = int((predicted & actual).sum())
    wrong = int((predicted & ~actual).sum() + (~predicted & actual).sum())
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def model_metrics(task: str, y_true, outputs: dict, classes=None) -> dict[str, float]:
    """Metrics of a model's outputs (`prediction`, `proba_<class>`) against the truth."""
    if task == "classification":
        proba = np.column_stack([np.asarray(outputs[name], dtype="float64") for name in proba_columns(classes)])
        return classification_metrics(y_true, proba, classes, outputs.get(PREDICTION))
    return regression_metrics(y_true, outputs["prediction"])
