"""Task-aware model metrics and which way each one improves.

Regression: MAE, RMSE, R2, MAPE. Classification: log loss, ROC AUC (binary, or
one-vs-rest macro), accuracy, F1 (binary on the last class, macro otherwise), Brier score.
"""

from __future__ import annotations

import numpy as np

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


def classification_metrics(y_true, proba: np.ndarray, classes) -> dict[str, float]:
    """Log loss, ROC AUC, accuracy, F1 and Brier score of class probabilities (columns in `classes` order)."""
    from sklearn import metrics as skm

    classes = list(classes)
    # Truth and predicted labels in the classes' own dtype: scikit-learn calls an object array
    # of integers an 'unknown' target and refuses it, and labels read back may be object or Int64.
    labels = np.asarray(classes)
    y_true = np.asarray(y_true, dtype=object)
    proba = np.clip(np.asarray(proba, dtype="float64"), 1e-15, 1 - 1e-15)
    proba = proba / proba.sum(axis=1, keepdims=True)
    known = np.isin(y_true, classes)
    y_true, proba = y_true[known].astype(labels.dtype), proba[known]
    y_pred = labels[proba.argmax(axis=1)] if len(proba) else np.empty(0, dtype=labels.dtype)
    onehot = (y_true[:, None] == labels[None, :]).astype("float64")
    out = {
        "log_loss": float(skm.log_loss(y_true, proba, labels=classes)) if len(y_true) else float("nan"),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()) if len(y_true) else float("nan"),
        "n": int(len(y_true)),
    }
    present = np.unique(y_true)
    binary = len(classes) == 2
    try:
        out["roc_auc"] = float(skm.roc_auc_score(onehot[:, 1] if binary else onehot, proba[:, 1] if binary else proba, average="macro"))
    except ValueError:  # one class only among the labels: AUC is undefined
        out["roc_auc"] = float("nan")
    if binary:
        out["f1"] = float(skm.f1_score(y_true, y_pred, pos_label=classes[1], labels=classes, zero_division=0)) if len(present) else float("nan")
    else:
        out["f1"] = float(skm.f1_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)) if len(present) else float("nan")
    return out


def model_metrics(task: str, y_true, outputs: dict, classes=None) -> dict[str, float]:
    """Metrics of a model's outputs (`prediction`, `proba_<class>`) against the truth."""
    if task == "classification":
        proba = np.column_stack([np.asarray(outputs[f"proba_{c}"], dtype="float64") for c in classes])
        return classification_metrics(y_true, proba, classes)
    return regression_metrics(y_true, outputs["prediction"])
