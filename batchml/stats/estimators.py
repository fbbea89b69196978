"""Performance estimated before the labels arrive: confidence-based for classifiers, loss-based for regressors.

Both follow the methods NannyML describes (CBPE and DLE) and rest on one assumption: the way
labels follow the inputs does not change, only the inputs do (covariate shift). When that
assumption breaks the estimate is wrong, which is why each estimate is checked against the
realized metric once labels arrive (`estimate_error`, `estimator_check`).

Classifier (CBPE). `fit_calibrator` fits, per class, an isotonic map from the model's
probability to the observed frequency on reference rows the model did not train on, and keeps
it only where it lowers the expected calibration error on the held-out half of those rows (two-fold: each half
judges the map fitted on the other); the kept maps are then refitted on all rows. A calibrator
is a small JSON-able dict (the isotonic breakpoints), stored with a model version without pickle.
`estimate_classification` turns calibrated probabilities p into the expected confusion matrix
(truth i, predicted j: the sum of p_i over the rows predicted j), hence accuracy, precision,
recall and F1 (binary: of the last class, as batchml's realized metrics; more classes: macro
means), and the expected ROC AUC (each row counts p as a positive and 1 - p as a negative at
its score; one-vs-rest mean for several classes).

Regressor (DLE). `fit_loss_model` fits two small gradient-boosted models, of each row's
absolute error and of its squared error, from the model's inputs and its prediction;
`estimate_regression` averages their predictions into MAE and RMSE.

Sampling error. Each estimate carries `sampling_error`: the standard deviation the realized
metric would have by chance at this row count if the estimator's assumptions hold (the labels
of the rows being independent draws from what the estimator expects). Classifier: the spread
of each metric over 200 label sets drawn from the calibrated probabilities (the scores and the
predicted classes fixed; seeded, so the same rows give the same band). Regressor: MAE from the
per-row variance of the absolute error, E[e^2] - E[|e|]^2, from both models; RMSE by the delta
method from the per-row variance of e^2, taken as (kurtosis - 1) * E[e^2]^2 with the kurtosis of
the standardised reference residuals.

Status of an estimator (`STATUSES`):
- 'fitted on reference': fitted when batchml registered the model, on its held-out reference rows;
- 'from first labelled dates': for a version batchml did not train, fitted on the rows of its
  first labelled dates (the caller chooses the rows, as it does for the drift baseline);
  those dates' own estimates are then in-sample and flatter than later ones;
- 'not yet available': no estimator yet (no labelled rows so far); estimates are NaN.

Only numpy, pandas, scipy and scikit-learn are used (skops to store the loss models).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from batchml.model.onnx_io import class_codes as _codes  # `True` matches `True`, never `1`
from batchml.model.onnx_io import plain as _plain

FITTED_ON_REFERENCE = "fitted on reference"
FROM_FIRST_LABELLED_DATES = "from first labelled dates"
NOT_YET_AVAILABLE = "not yet available"
STATUSES = (FITTED_ON_REFERENCE, FROM_FIRST_LABELLED_DATES, NOT_YET_AVAILABLE)

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
_DRAWS = 200
_MIN_ROWS = 20  # fewer reference rows than this cannot judge a calibration: identity


# ---------------------------------------------------------------- classes and probabilities


def _probabilities(proba, classes) -> np.ndarray:
    k = len(classes)
    if k < 2:
        raise ValueError(f"classes: at least two are needed, got {list(classes)!r}")
    p = np.asarray(proba, dtype="float64")
    if p.ndim != 2 or p.shape[1] != k:
        raise ValueError(f"proba: one column per class expected ({k}: {list(classes)!r}), got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("proba: every probability must be finite (NaN or infinite found)")
    p = np.clip(p, 0.0, 1.0)
    total = p.sum(axis=1, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, 1.0 / k), where=total > 0)


# ---------------------------------------------------------------- isotonic maps


def isotonic_map(score, outcome) -> dict:
    """The isotonic (non-decreasing) fit of `outcome` on `score`, as its breakpoints {'x': [...], 'y': [...]}.

    Between breakpoints the map is linear, beyond them constant: `apply_map` is `np.interp`.
    """
    from sklearn.isotonic import IsotonicRegression

    fit = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(
        np.asarray(score, float), np.asarray(outcome, float)
    )
    return {"x": [float(v) for v in fit.X_thresholds_], "y": [float(v) for v in fit.y_thresholds_]}


def apply_map(mapping: dict | None, score) -> np.ndarray:
    """`score` through an isotonic map (None: unchanged)."""
    score = np.asarray(score, dtype="float64")
    return score if mapping is None else np.interp(score, mapping["x"], mapping["y"])


def _brier(p: np.ndarray, hit: np.ndarray) -> float:
    return float(((p - hit) ** 2).mean())


def expected_calibration_error(p, hit, bins: int = 10) -> float:
    """ECE of probability `p` for outcome `hit`: the row-weighted mean |mean(p) - mean(hit)| over equal-count bins."""
    p, hit = np.asarray(p, float), np.asarray(hit, float)
    if not len(p):
        return float("nan")
    order = np.argsort(p, kind="stable")
    return float(
        sum(len(b) * abs(p[b].mean() - hit[b].mean()) for b in np.array_split(order, min(bins, len(p))) if len(b))
        / len(p)
    )


# ---------------------------------------------------------------- classifier: the calibrator


def fit_calibrator(proba, y_true, classes, *, seed: int = 0, status: str = FITTED_ON_REFERENCE) -> dict:
    """A per-class isotonic calibrator of `proba` (columns in `classes` order) from reference rows with labels.

    The rows must be ones the model did not train on. Two classes: one map, of the last class's
    probability (the first is its complement). More: one map per class, rows renormalised to sum
    to 1 after mapping. A class's map is kept only where it lowers the expected calibration error
    (10 equal-count bins) on held-out rows: rows split in two halves at random with `seed`, each
    half judging the map fitted on the other, the two errors summed (the Brier scores are recorded
    too: Brier, dominated by how well the model separates the classes, missed an overconfident
    model that ECE caught, and calibration is what the expected counts need); kept maps are
    refitted on all rows. Rows whose label is none
    of `classes` (or missing) are left out. Returns a JSON-able dict (see `calibrator_to_json`).
    """
    if status not in STATUSES[:2]:
        raise ValueError(f"status: one of {STATUSES[:2]!r}, got {status!r}")
    classes = [_plain(c) for c in classes]
    p = _probabilities(proba, classes)
    truth = _codes(y_true, classes)
    if len(truth) != len(p):
        raise ValueError(f"y_true: {len(truth)} labels for {len(p)} rows of proba")
    p, truth = p[truth >= 0], truth[truth >= 0]
    n = len(truth)
    order = np.random.default_rng(seed).permutation(n)
    halves = (order[: n // 2], order[n // 2 :])
    columns = [1] if len(classes) == 2 else range(len(classes))
    maps: list[dict | None] = [None] * len(classes)
    checks = []
    for j in columns:
        hit = (truth == j).astype(float)
        before = after = brier_before = brier_after = 0.0
        if n >= _MIN_ROWS:
            for fit_rows, held in (halves, halves[::-1]):
                mapping = isotonic_map(p[fit_rows, j], hit[fit_rows])
                before += expected_calibration_error(p[held, j], hit[held])
                after += expected_calibration_error(apply_map(mapping, p[held, j]), hit[held])
                brier_before += _brier(p[held, j], hit[held])
                brier_after += _brier(apply_map(mapping, p[held, j]), hit[held])
        kept = n >= _MIN_ROWS and after < before
        if kept:
            maps[j] = isotonic_map(p[:, j], hit)
        checks.append(
            {
                "class": classes[j],
                "kept": bool(kept),
                "held_out_ece_raw": before / 2 if n >= _MIN_ROWS else None,
                "held_out_ece_calibrated": after / 2 if n >= _MIN_ROWS else None,
                "held_out_brier_raw": brier_before / 2 if n >= _MIN_ROWS else None,
                "held_out_brier_calibrated": brier_after / 2 if n >= _MIN_ROWS else None,
            }
        )
    return {
        "kind": "isotonic per class",
        "classes": classes,
        "maps": maps,
        "checks": checks,
        "rows": int(n),
        "status": status,
    }


def calibrate(proba, calibrator: dict) -> np.ndarray:
    """Calibrated probabilities: each class's map applied, rows summing to 1."""
    classes = calibrator["classes"]
    p = _probabilities(proba, classes)
    maps = calibrator["maps"]
    if len(classes) == 2:
        last = apply_map(maps[1], p[:, 1])
        return np.column_stack([1.0 - last, last])
    if all(m is None for m in maps):
        return p
    return _probabilities(np.column_stack([apply_map(m, p[:, j]) for j, m in enumerate(maps)]), classes)


def calibrator_to_json(calibrator: dict) -> str:
    """The calibrator as JSON text (classes, breakpoints, the checks behind each kept map, status)."""
    return json.dumps(calibrator, sort_keys=True)


def calibrator_from_json(text: str) -> dict:
    calibrator = json.loads(text)
    if calibrator.get("kind") != "isotonic per class" or len(calibrator.get("maps", ())) != len(
        calibrator.get("classes", ())
    ):
        raise ValueError("calibrator: not an isotonic per-class calibrator (kind, classes and maps expected)")
    return calibrator


# ---------------------------------------------------------------- classifier: the estimate


def estimate_classification(
    proba, classes, calibrator: dict | None, y_pred=None, *, seed: int = 0, draw_rows: int = 50_000
) -> dict:
    """Estimated accuracy, precision, recall, F1 and ROC AUC of one date's rows, with their sampling errors.

    `proba`: the model's probabilities (columns in `classes` order); `y_pred`: its labels (default,
    and where a label is none of the classes: the most probable class of the raw probabilities).
    The ranking for ROC AUC uses the raw probabilities (the model's score); the calibrated ones
    give each row's chance of being each class. Returns the metrics, `n`, `sampling_error` (per
    metric), `confusion_matrix` (expected counts, truth rows by predicted columns, `classes`
    order) and `status`; with no calibrator, `status` 'not yet available' and NaN metrics. Above `draw_rows` rows
    the label sets are drawn on a seeded sample of `draw_rows` rows and their spread scaled by sqrt(draw_rows / rows)
    (a sampling error shrinks as one over the square root of the rows; 200 draws of 5 million rows cost minutes).
    """
    classes = [_plain(c) for c in classes]
    raw = _probabilities(proba, classes)
    n, k = raw.shape
    if calibrator is None:
        nan = dict.fromkeys(CLASSIFICATION_METRICS, float("nan"))
        return {**nan, "n": n, "sampling_error": dict(nan), "status": NOT_YET_AVAILABLE}
    if [_plain(c) for c in calibrator["classes"]] != classes:
        raise ValueError(f"calibrator: fitted for classes {calibrator['classes']!r}, the model has {classes!r}")
    p = calibrate(raw, calibrator)
    pred = raw.argmax(axis=1)
    if y_pred is not None:
        given = _codes(y_pred, classes)
        if len(given) != n:
            raise ValueError(f"y_pred: {len(given)} labels for {n} rows of proba")
        pred = np.where(given >= 0, given, pred)
    predicted = np.eye(k)[pred]  # n x k, one-hot of the predicted class
    confusion = p.T @ predicted  # truth i, predicted j: sum of p_i over the rows predicted j
    rankings = [None, _ranking(raw[:, 1])] if k == 2 else [_ranking(raw[:, j]) for j in range(k)]
    out = _metrics(confusion, rankings, p)
    rng, scale = np.random.default_rng(seed), 1.0
    if n > draw_rows > 0:
        rows = np.sort(rng.choice(n, draw_rows, replace=False))
        raw, p, pred, scale = raw[rows], p[rows], pred[rows], math.sqrt(draw_rows / n)
        rankings = [None, _ranking(raw[:, 1])] if k == 2 else [_ranking(raw[:, j]) for j in range(k)]
    draws = _drawn_metrics(rankings, p, pred, rng)
    out["n"] = n
    out["sampling_error"] = {m: float(np.std(draws[m])) * scale if n else float("nan") for m in CLASSIFICATION_METRICS}
    out["confusion_matrix"] = confusion.tolist()
    out["status"] = calibrator.get("status", FITTED_ON_REFERENCE)
    return out


def _ratio(a, b):
    return a / b if b > 0 else float("nan")


def _metrics(confusion: np.ndarray, rankings: list, p: np.ndarray) -> dict:
    """Accuracy, precision, recall, F1 of a confusion matrix (of counts or expected counts); ROC AUC of the rankings
    (`_ranking` of each
    class's raw probability; two classes: of the last only) for labels `p`."""
    total = confusion.sum()
    k = len(confusion)
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    precision = [_ratio(tp[j], tp[j] + fp[j]) for j in range(k)]
    recall = [_ratio(tp[j], tp[j] + fn[j]) for j in range(k)]
    f1 = [_ratio(2 * tp[j], 2 * tp[j] + fp[j] + fn[j]) for j in range(k)]
    if k == 2:
        pick = {"precision": precision[1], "recall": recall[1], "f1": f1[1], "roc_auc": _auc(rankings[-1], p[:, 1])}
    else:
        aucs = [a for j in range(k) if np.isfinite(a := _auc(rankings[j], p[:, j]))]
        present = [
            j for j in range(k) if tp[j] + fp[j] + fn[j] > 0
        ]  # a class neither expected nor predicted is left out

        def mean(values):
            values = [values[j] for j in present if np.isfinite(values[j])]
            return float(np.mean(values)) if values else float("nan")

        pick = {
            "precision": mean(precision),
            "recall": mean(recall),
            "f1": mean(f1),
            "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
        }
    return {"accuracy": float(_ratio(tp.sum(), total)), **{m: float(v) for m, v in pick.items()}}


def expected_auc(score, positive) -> float:
    """ROC AUC of `score` where each row is positive with weight `positive` and negative with weight 1 - `positive`.

    The expected number of (positive, negative) pairs of distinct rows ranked right, ties counted
    half, over the expected number of such pairs. With 0/1 weights it is the ordinary (Mann-Whitney)
    AUC; with probabilities it is, up to the pairs of a row with itself (O(1/n)), the area under
    expected TPR against expected FPR over all thresholds, as CBPE computes it. NaN without weight
    on both sides.
    """
    return _auc(_ranking(score), positive)


def _ranking(score) -> tuple[np.ndarray, np.ndarray]:
    """The rows in score order and where each group of equal scores starts (computed once per score column)."""
    score = np.asarray(score, float)
    order = np.argsort(score, kind="stable")
    ordered = score[order]
    return order, np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])


def _auc(ranking: tuple[np.ndarray, np.ndarray], positive) -> float:
    order, starts = ranking
    pos = np.asarray(positive, float)[order]
    neg = 1.0 - pos
    itself = (pos * neg).sum()  # a row paired with itself: no pair
    pairs = pos.sum() * neg.sum() - itself
    if pairs <= 0:
        return float("nan")
    pos_g, neg_g = np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)
    below = np.cumsum(neg_g) - neg_g
    return float(((pos_g * (below + 0.5 * neg_g)).sum() - 0.5 * itself) / pairs)


def _drawn_metrics(rankings: list, p: np.ndarray, pred: np.ndarray, rng, draws: int = _DRAWS) -> dict[str, list[float]]:
    """Each metric on `draws` label sets drawn from the calibrated probabilities, scores and predictions fixed."""
    n, k = p.shape
    out: dict[str, list[float]] = {m: [] for m in CLASSIFICATION_METRICS}
    if not n:
        return out
    cumulative = np.cumsum(p, axis=1)
    cumulative[:, -1] = 1.0
    for _ in range(draws):
        truth = (rng.random((n, 1)) > cumulative).sum(axis=1)
        onehot = np.eye(k)[truth]
        confusion = np.zeros((k, k))
        np.add.at(confusion, (truth, pred), 1.0)
        for m, v in _metrics(confusion, rankings, onehot).items():
            out[m].append(v)
    return out


# ---------------------------------------------------------------- regressor: the loss model


class Predictor(Protocol):
    """A fitted scikit-learn regressor, as LossModel uses it."""

    def predict(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass
class LossModel:
    """Two gradient-boosted models of a regressor's per-row loss, and what they need to read a frame.

    `columns`: the input columns, in order, then the prediction; `categories`: for each text or
    categorical input, its reference categories (codes of other values are missing); `kurtosis`:
    E[z^4] of the standardised reference residuals z = e / sqrt(E[e^2]), for the RMSE band.
    """

    absolute: Predictor
    squared: Predictor
    columns: list[str]
    categories: dict[str, list] = field(default_factory=dict)
    kurtosis: float = 3.0
    rows: int = 0
    status: str = FITTED_ON_REFERENCE


def _loss_frame(
    inputs_frame: pd.DataFrame, prediction, columns: list[str], categories: dict[str, list]
) -> pd.DataFrame:
    """The models' input: numeric columns as float, categorical ones as codes of the reference categories, the
    prediction last."""
    missing = [c for c in columns if c not in inputs_frame.columns]
    if missing:
        raise ValueError(f"inputs_frame: column(s) {missing} the loss model was fitted with are missing")
    prediction = np.asarray(prediction, dtype="float64").reshape(-1)
    if len(prediction) != len(inputs_frame):
        raise ValueError(f"prediction: {len(prediction)} values for {len(inputs_frame)} rows of inputs_frame")
    out = {}
    for c in columns:
        s = inputs_frame[c]
        if c in categories:
            out[c] = pd.Index(categories[c], dtype="object").get_indexer(s.astype("object")).astype("float64")
            out[c][out[c] < 0] = np.nan
        else:
            out[c] = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    out["__prediction__"] = prediction
    return pd.DataFrame(out)


def _categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)) or isinstance(
        series.dtype, pd.CategoricalDtype
    )


def fit_loss_model(
    inputs_frame: pd.DataFrame, prediction, y_true, seed: int = 0, *, status: str = FITTED_ON_REFERENCE
) -> LossModel:
    """Models of each row's absolute and squared error from the inputs and the prediction, on labelled rows the model
    did not train on.

    Text and categorical inputs become categorical features (up to 255 reference categories,
    by frequency; the rest count as missing). The models use Poisson loss, so their predictions
    are positive and their means are unbiased; both are small (50 iterations of 15 leaves, seeded).
    Rows with a missing truth are left out.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    if status not in STATUSES[:2]:
        raise ValueError(f"status: one of {STATUSES[:2]!r}, got {status!r}")
    y = pd.to_numeric(pd.Series(np.asarray(y_true).reshape(-1)), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    if len(y) != len(inputs_frame):
        raise ValueError(f"y_true: {len(y)} values for {len(inputs_frame)} rows of inputs_frame")
    columns = [str(c) for c in inputs_frame.columns]
    categories = {
        c: [_plain(v) for v in inputs_frame[c].value_counts(dropna=True).index[:255]]
        for c in columns
        if _categorical(inputs_frame[c])
    }
    frame = _loss_frame(inputs_frame, prediction, columns, categories)
    keep = np.isfinite(y) & np.isfinite(frame["__prediction__"].to_numpy())
    frame, y = frame[keep].reset_index(drop=True), y[keep]
    if len(y) < _MIN_ROWS:
        raise ValueError(f"fit_loss_model: {len(y)} labelled rows, at least {_MIN_ROWS} are needed")
    error = frame["__prediction__"].to_numpy() - y
    mask = np.array([c in categories for c in frame.columns])

    def model(target):
        return HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=50,
            max_leaf_nodes=15,
            min_samples_leaf=50,
            learning_rate=0.1,
            categorical_features=mask,
            early_stopping=False,
            random_state=seed,
        ).fit(frame, target)

    absolute, squared = model(np.abs(error)), model(error**2)
    second = np.maximum(squared.predict(frame), 1e-300)
    kurtosis = float(np.mean(error**4 / second**2))
    return LossModel(absolute, squared, columns, categories, kurtosis, int(len(y)), status)


def estimate_regression(inputs_frame: pd.DataFrame, prediction, loss_model: LossModel | None) -> dict:
    """Estimated MAE and RMSE of one date's rows, with their sampling errors (see the module's docstring)."""
    n = len(inputs_frame)
    if loss_model is None:
        nan = dict.fromkeys(REGRESSION_METRICS, float("nan"))
        return {**nan, "n": n, "sampling_error": dict(nan), "status": NOT_YET_AVAILABLE}
    frame = _loss_frame(inputs_frame, prediction, loss_model.columns, loss_model.categories)
    if not n:
        nan = dict.fromkeys(REGRESSION_METRICS, float("nan"))
        return {**nan, "n": 0, "sampling_error": dict(nan), "status": loss_model.status}
    absolute = loss_model.absolute.predict(frame)
    squared = loss_model.squared.predict(frame)
    mae, mse = float(absolute.mean()), float(squared.mean())
    var_abs = np.maximum(squared - absolute**2, 0.0)  # Var(|e|) = E[e^2] - E[|e|]^2, per row
    var_sq = max(loss_model.kurtosis - 1.0, 0.0) * squared**2  # Var(e^2) = (kurtosis - 1) E[e^2]^2, per row
    se_mse = math.sqrt(var_sq.sum()) / n
    return {
        "mae": mae,
        "rmse": math.sqrt(mse),
        "n": n,
        "sampling_error": {
            "mae": math.sqrt(var_abs.sum()) / n,
            "rmse": se_mse / (2 * math.sqrt(mse)) if mse > 0 else float("nan"),
        },
        "status": loss_model.status,
    }


# The types a stored loss model holds beyond skops's defaults; loading trusts these and nothing else.
LOSS_MODEL_TRUSTED_TYPES = [
    "functools.partial",  # HGB's categorical preprocessing: a partial of check_array
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def loss_model_to_bytes(loss_model: LossModel) -> bytes:
    """The loss model as skops bytes (no pickle): both models and the metadata that reads a frame for them."""
    import skops.io

    meta = {k: v for k, v in asdict(loss_model).items() if k not in ("absolute", "squared")}
    return skops.io.dumps({"absolute": loss_model.absolute, "squared": loss_model.squared, "meta": json.dumps(meta)})


def loss_model_from_bytes(data: bytes) -> LossModel:
    """A loss model back from `loss_model_to_bytes`; refuses any type beyond `LOSS_MODEL_TRUSTED_TYPES`."""
    import skops.io

    untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(LOSS_MODEL_TRUSTED_TYPES))
    if untrusted:
        raise ValueError(f"loss model: refusing to load types not expected in a loss model: {untrusted}")
    stored = skops.io.loads(data, trusted=LOSS_MODEL_TRUSTED_TYPES)
    return LossModel(stored["absolute"], stored["squared"], **json.loads(stored["meta"]))


# ---------------------------------------------------------------- the estimator's own check


def estimate_error(estimated: dict, realized: dict) -> dict:
    """Per metric both hold (finite in both): estimated, realized, their difference, relative difference, and the
    estimate's sampling error."""
    out = {}
    bands = estimated.get("sampling_error", {})
    for metric in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS):
        e, r = estimated.get(metric), realized.get(metric)
        if e is None or r is None or not (np.isfinite(e) and np.isfinite(r)):
            continue
        out[metric] = {
            "estimated": float(e),
            "realized": float(r),
            "error": float(e - r),
            "relative_error": float((e - r) / abs(r)) if r else float("nan"),
            "sampling_error": float(bands.get(metric, float("nan"))),
        }
    return out


@dataclass(frozen=True)
class EstimatorCheck:
    """When an estimator counts as wrong: on a date, |error| of `metric` above `margin` (relative to the
    realized value if `relative`) and above `band` sampling errors; the check fires at `k` such dates
    among the last `n` dates whose error is known."""

    metric: str = "roc_auc"
    margin: float = 0.03
    relative: bool = False
    band: float = 2.0
    k: int = 2
    n: int = 3

    def __post_init__(self):
        if not 1 <= self.k <= self.n:
            raise ValueError(f"estimator check: k ({self.k}) must be between 1 and n ({self.n})")
        if self.margin < 0 or self.band < 0:
            raise ValueError(f"estimator check: margin ({self.margin}) and band ({self.band}) must not be negative")


def estimator_check(date: dt.date, errors: list[tuple[dt.date, dict]], check: EstimatorCheck) -> dict:
    """`estimator wrong` or `ok` on `date`, from the recorded `estimate_error` of earlier and this date, with the
    numbers behind it."""
    known = sorted(((d, e[check.metric]) for d, e in errors if d <= date and check.metric in e), key=lambda x: x[0])[
        -check.n :
    ]
    wrong = []
    for d, e in known:
        size = abs(e["relative_error"] if check.relative else e["error"])
        chance = check.band * e["sampling_error"] if np.isfinite(e["sampling_error"]) else 0.0
        if np.isfinite(size) and size > check.margin and abs(e["error"]) > chance:
            wrong.append(d.isoformat())
    numbers = {
        "date": date.isoformat(),
        "wrong_dates": wrong,
        "dates_considered": [d.isoformat() for d, _ in known],
        "check": asdict(check),
    }
    limit = f"{check.margin:.0%} relative" if check.relative else f"{check.margin:g}"
    if len(wrong) >= check.k:
        reason = (
            f"{check.metric} estimate off by more than {limit} on {len(wrong)} of the last {len(known)} labelled dates "
            f"(check: {check.k} of {check.n}):"
            " the labels no longer follow the inputs as on the reference rows"
        )
        return {"verdict": "estimator wrong", "reason": reason, **numbers}
    return {
        "verdict": "ok",
        "reason": (
            f"{check.metric} estimate off by more than {limit} on {len(wrong)} of the last {len(known)} labelled dates"
        ),
        **numbers,
    }
