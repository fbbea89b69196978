"""Drift of a date's (or a window's) profile against the model version's reference profile.

Per column: PSI and Jensen-Shannon distance on the reference bins, Wasserstein distance
normalised by the reference std (numeric, bins represented by the mean value inside them),
and the chi-squared p-value (categorical). Statistics come from numpy (and batchml.stats.chi2).

Reading the numbers (operations)
--------------------------------
Every statistic is positive even when nothing changed: n rows drawn from the reference
distribution itself differ from it by chance, more so with few rows and many bins (the JS
distance over 265 categories is about 0.35 at 300 rows however healthy the data). That chance
level is the column's **noise floor**: the 95th percentile of the statistic when n rows
(the current window's rows) and a reference of the reference's size are both drawn from
the reference's bin shares. It is analytic where the chi-squared approximation holds (PSI
and JS with at least 5 expected rows in every bin) and otherwise a seeded multinomial
bootstrap on the reference bins, which also sends the Good-Turing share of categories the
reference never saw to the unseen slot (deterministic, cached per column and n).

A column drifts on a method when the statistic, with its floor taken out, still reaches
the threshold: PSI - floor >= threshold (PSI is a divergence: noise adds to it), and for
the distances sqrt(value^2 - floor^2) >= threshold (noise adds to their squares). So the
threshold keeps one meaning at every volume, the size of a change worth acting on, and a
healthy column crosses it on well under 5% of dates (a plain max(threshold, floor) would
instead flag changes far below the threshold whenever the floor is high). At high volume
the floors are close to 0 and this is the fixed-threshold rule. Each column's `methods`
gives `value`, `floor`, `threshold`, `limit` (what the value had to reach), `excess` and
`decided_by`: "floor" when the floor alone is above the threshold, i.e. a fixed threshold
would flag this column every day at this volume. Example, a Sunday of 300 rows against
the 600 rows of the two training Sundays: a 265-category column, js 0.41, floor 0.42, limit 0.43, not
drifted (a true change of 0.1 would read about 0.43). Many columns decided by the floor
mean the table is small for its bins: raise `window_days` (7 days also compares with the
whole reference, all weekdays being in the window).

The **window** (`window_days`, default 1) sums the daily profiles of the dates ending at
D before comparing: 7 days of 300 rows are judged as 2,100 rows, which lowers the floor
and sees smaller changes, at the price of a change showing fully only after a week.
`rows` is the window's row count, `dates` what went in, `missing_dates` what did not.
When the reference carries its per-date profiles (`reference["dates"]`), the window is
compared with the reference dates of the same weekdays (`reference_dates`, and
`reference_rows` is their size), so a Saturday is judged against training Saturdays:
day-of-week structure is not drift. A reference without them is compared whole.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from batchml.base.setting import count, number, setting, share
from batchml.stats import chi2
from batchml.stats.profile import window_profile

PSI_EPSILON = 1e-4  # floor of a bin share, so an empty bin gives a finite PSI
FLOOR_METHODS = ("psi", "js", "wasserstein")
MIN_EXPECTED = 5.0  # rows expected in the smallest bin for the analytic floors to hold


@dataclass(frozen=True)
class DriftThresholds:
    """[drift] settings: thresholds, noise floors and the window a verdict uses (the home of their defaults)."""

    psi: float = number(0.2, "PSI at or above which a column drifted.", low=0)
    js: float = share(0.1, "Jensen-Shannon distance (base 2) at or above which a column drifted.")
    wasserstein: float = number(0.1, "Wasserstein distance / reference std at or above which a column drifted.", low=0)
    drift_share: float = share(0.5, "Share of drifted features at which the date's verdict is drift.")
    numeric_methods: tuple[str, ...] = setting(
        ("psi", "wasserstein"), "Methods that decide for numeric features (any crossing)."
    )
    categorical_methods: tuple[str, ...] = setting(
        ("psi", "js"), "Methods that decide for categorical features (any crossing)."
    )
    exclude: tuple[str, ...] = setting(
        (),
        "Features not judged, e.g. ones constant within a date (a weekday), always 'drifted' against a multi-day "
        "reference.",
    )
    # window_days is read by the caller (see profile.window_profile)
    window_days: int = count(
        1,
        "The current profile of D is the sum of the daily profiles of the window_days dates ending at D (scored by the "
        "same version): raise it for low-volume tables.",
    )
    floor_quantile: float = number(
        0.95,
        "A statistic's noise floor is this quantile of its value when nothing drifted, at the window's row count.",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    floor_draws: int = count(400, "Bootstrap draws per (column, rows) where no analytic floor applies.")
    match_weekdays: bool = setting(
        True,
        "Compare a window with the reference's dates on the same weekdays, when the reference keeps per-date profiles.",
    )


def psi(ref_counts, cur_counts) -> float:
    p = _shares(ref_counts)
    q = _shares(cur_counts)
    return float(np.sum((q - p) * np.log(q / p)))


# The statistics are numpy, the chi-squared distribution batchml.stats.chi2: a daily run that computes drift imports
# neither scipy.stats nor scipy.spatial for them. tests/unit/test_drift.py checks each against scipy's.


def js_distance(ref_counts, cur_counts) -> float:
    """The Jensen-Shannon distance (base 2) between two count vectors (as `scipy.spatial.distance.jensenshannon`)."""
    p, q = np.asarray(ref_counts, float), np.asarray(cur_counts, float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    return float(np.sqrt((_rel_entr(p, m).sum() + _rel_entr(q, m).sum()) / 2 / np.log(2)))


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x log(x / y), 0 where x is 0 (y > 0 wherever x > 0 here)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(x / y), 0.0)


def wasserstein_normalized(ref: dict, cur: dict, std: float | None = None) -> float:
    """W1 between the binned distributions (bin means as support), divided by the reference std (or `std`)."""
    u, uw = _support(ref)
    v, vw = _support(cur)
    scale = std or ref.get("std")
    if not len(u) or not len(v) or not scale:
        return 0.0
    return _wasserstein(u, v, uw, vw) / scale


def _wasserstein(u: np.ndarray, v: np.ndarray, uw: np.ndarray, vw: np.ndarray) -> float:
    """W1 of two weighted samples on a line: the area between their CDFs (as `scipy.stats.wasserstein_distance`)."""
    u, v, uw, vw = (np.asarray(a, float) for a in (u, v, uw, vw))
    u_order, v_order = np.argsort(u), np.argsort(v)
    values = np.sort(np.concatenate([u, v]), kind="mergesort")
    u_cum = np.concatenate([[0.0], np.cumsum(uw[u_order])])
    v_cum = np.concatenate([[0.0], np.cumsum(vw[v_order])])
    u_cdf = u_cum[u[u_order].searchsorted(values[:-1], "right")] / u_cum[-1]
    v_cdf = v_cum[v[v_order].searchsorted(values[:-1], "right")] / v_cum[-1]
    return float(np.sum(np.abs(u_cdf - v_cdf) * np.diff(values)))


def chi2_pvalue(ref_counts, cur_counts) -> float:
    """The p-value of the chi-squared test of independence of the two count vectors (as
    `scipy.stats.chi2_contingency`: Yates' correction with one degree of freedom)."""
    table = np.array([ref_counts, cur_counts], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = table.shape[1] - 1
    if dof == 1:
        diff = expected - table
        table = table + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    return chi2.sf(float(((table - expected) ** 2 / expected).sum()), dof)


def noise_floors(
    ref: dict, n: int, *, quantile: float = 0.95, draws: int = 400, std: float | None = None, seed: int = 0
) -> dict[str, dict]:
    """The `quantile` of PSI, JS distance and normalised Wasserstein under no drift, for n current rows.

    No drift: the current rows and a reference of the same size (sum of `ref["counts"]`) are
    both drawn from the reference bin shares, so the reference's own finite size counts too.
    Analytic (chi-squared with k-1 degrees of freedom, PSI ~ X (1/n + 1/N), JS^2 ~ PSI / (8 ln 2))
    when every bin expects >= MIN_EXPECTED rows on both sides; otherwise a seeded multinomial
    bootstrap. Returns {method: {"floor", "how"}}.
    """
    counts = np.asarray(ref["counts"], dtype=float)
    n_ref = int(counts.sum())
    if n <= 0 or n_ref <= 0:
        return {m: {"floor": 0.0, "how": "none"} for m in FLOOR_METHODS}
    means = tuple(m if m is not None else np.nan for m in ref["bin_means"]) if ref["kind"] == "numeric" else ()
    unseen = float(np.sum(counts == 1) / n_ref) if ref["kind"] == "categorical" else 0.0  # Good-Turing: singletons / N
    boot = _bootstrap_floors(
        tuple(counts),
        means,
        float(std or ref.get("std") or 0.0),
        unseen,
        int(n),
        float(quantile),
        int(draws),
        int(seed),
    )
    out = {m: {"floor": v, "how": "bootstrap"} for m, v in boot.items()}
    shares = counts[counts > 0] / n_ref
    if len(shares) > 1 and shares.min() * min(n, n_ref) >= MIN_EXPECTED:
        psi_floor = chi2.ppf(quantile, len(shares) - 1) * (1 / n + 1 / n_ref)
        out["psi"] = {"floor": psi_floor, "how": "analytic"}
        out["js"] = {"floor": float(np.sqrt(psi_floor / (8 * np.log(2)))), "how": "analytic"}
    return out


@lru_cache(maxsize=4096)
def _bootstrap_floors(
    counts: tuple, means: tuple, std: float, unseen: float, n: int, quantile: float, draws: int, seed: int
) -> dict[str, float]:
    """Bootstrap quantiles of the statistics (cached: one reference column and n cost one draw set)."""
    c = np.asarray(counts)
    n_ref = int(c.sum())
    p = c / n_ref
    rng = np.random.default_rng([seed, n, n_ref, len(c)])
    ref = rng.multinomial(n_ref, p, size=draws).astype(float)
    if unseen > 0:  # categories the reference never saw land in its last slot
        p = np.append(p[:-1] * (1 - unseen), p[-1] + unseen)
    cur = rng.multinomial(n, p, size=draws).astype(float)
    r, q = ref / n_ref, cur / n
    rs, qs = np.maximum(r, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    out = {"psi": np.sum((qs - rs) * np.log(qs / rs), axis=1)}
    m = (r + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(r > 0, r * np.log2(r / m), 0.0) + np.where(q > 0, q * np.log2(q / m), 0.0)
    out["js"] = np.sqrt(np.maximum(np.sum(kl, axis=1) / 2, 0.0))
    x = np.asarray(means, dtype=float)
    if len(x) and std > 0:
        keep = (c > 0) & ~np.isnan(x)
        order = np.argsort(x[keep])
        xs = x[keep][order]
        cdf_gap = np.abs(np.cumsum(r[:, keep][:, order], axis=1) - np.cumsum(q[:, keep][:, order], axis=1))[:, :-1]
        out["wasserstein"] = cdf_gap @ np.diff(xs) / std
    else:
        out["wasserstein"] = np.zeros(draws)
    return {k: float(np.quantile(v, quantile)) for k, v in out.items()}


def column_drift(ref: dict, cur: dict, thresholds: DriftThresholds, *, std: float | None = None) -> dict:
    """Every statistic of one column, its noise floors, and which deciding methods drifted.

    A method drifts when the statistic minus its floor (PSI) or sqrt(statistic^2 - floor^2)
    (JS, Wasserstein) reaches its threshold: the floor is the noise of n healthy rows, the
    threshold the size of change worth acting on, and the two add on the statistic's own
    scale, so the threshold means the same at 300 rows and at 20 million. `std` scales the
    Wasserstein distance (default: the std of `ref`).
    """
    n = int(np.sum(cur["counts"]))
    values = {"psi": psi(ref["counts"], cur["counts"]), "js": js_distance(ref["counts"], cur["counts"])}
    if ref["kind"] == "numeric":
        values["wasserstein"] = wasserstein_normalized(ref, cur, std)
        deciding = thresholds.numeric_methods
    else:
        values["chi2_pvalue"] = chi2_pvalue(ref["counts"], cur["counts"])
        deciding = thresholds.categorical_methods
    floors = noise_floors(ref, n, quantile=thresholds.floor_quantile, draws=thresholds.floor_draws, std=std)
    methods = {m: _decide(m, values[m], floors[m], getattr(thresholds, m)) for m in deciding if m in FLOOR_METHODS}
    over = [m for m in deciding if m in methods and methods[m]["drifted"]]
    return {
        "kind": ref["kind"],
        **values,
        "rows": n,
        "floors": {m: floors[m]["floor"] for m in FLOOR_METHODS if m in values},
        "methods": methods,
        "deciding_methods": list(deciding),
        "over_threshold": over,
        "drifted": bool(over),
    }


def _decide(method: str, value: float, floor: dict, threshold: float) -> dict:
    f = floor["floor"]
    if method == "psi":
        excess, limit = value - f, threshold + f
    else:
        excess, limit = float(np.sqrt(max(value * value - f * f, 0.0))), float(np.hypot(threshold, f))
    return {
        "value": value,
        "floor": f,
        "floor_how": floor["how"],
        "threshold": threshold,
        "limit": limit,
        "excess": excess,
        "drifted": bool(excess >= threshold),
        "decided_by": "floor" if f >= threshold else "threshold",
    }


def window_dates(end: dt.date, window_days: int) -> list[dt.date]:
    """The `window_days` dates ending at `end` (inclusive), oldest first."""
    return [end - dt.timedelta(days=i) for i in range(window_days - 1, -1, -1)]


def reference_dates(reference: dict, dates: list[str]) -> tuple[dict, list[str]]:
    """The reference to compare a window with: its per-date profiles on the window's weekdays.

    Returns (columns, reference dates used). Falls back to the whole reference (and []) when
    it has no per-date profiles or none on those weekdays.
    """
    pooled = _reference_columns(reference)
    per_date = reference.get("dates") or {}
    weekdays = {dt.date.fromisoformat(d).weekday() for d in dates}
    chosen = sorted(d for d in per_date if dt.date.fromisoformat(d).weekday() in weekdays)
    if not chosen or len(weekdays) == 7:
        return pooled, []
    summed = window_profile({d: per_date[d] for d in chosen}, pooled)["columns"]
    return {name: {**spec, **summed[name]} if name in summed else spec for name, spec in pooled.items()}, chosen


def drift_report(reference: dict, daily: dict, features: list[str], thresholds: DriftThresholds) -> dict:
    """The drift verdict of a date (or of a window: pass `window_profile`'s result): per feature, prediction, dataset.

    With thresholds.match_weekdays and a window that lists its `dates`, the window is compared
    with the reference's dates on the same weekdays; Wasserstein stays scaled by the whole
    reference's std, so its threshold does not move with the weekday.
    """
    monitored = [f for f in features if f not in thresholds.exclude]
    dates = daily.get("dates") or []
    pooled = _reference_columns(reference)
    ref_columns, matched = reference_dates(reference, dates) if thresholds.match_weekdays and dates else (pooled, [])

    def judge(name: str) -> dict:
        return column_drift(ref_columns[name], daily["columns"][name], thresholds, std=pooled[name].get("std"))

    per_feature = {f: judge(f) for f in monitored}
    # The prediction's drift: a regressor's prediction, or a classifier's probabilities (the most drifted class).
    outputs = [n for n in pooled if n not in reference["columns"] and n in daily["columns"]]
    judged = {n: judge(n) for n in outputs}
    prediction = max(judged.values(), key=lambda r: (r["drifted"], r.get("psi", 0.0)), default=None)
    if prediction is not None and len(judged) > 1:
        prediction = {
            **prediction,
            "output": max(judged, key=lambda n: (judged[n]["drifted"], judged[n].get("psi", 0.0))),
            "outputs": judged,
        }
    drifted = [f for f, r in per_feature.items() if r["drifted"]]
    share = len(drifted) / len(monitored) if monitored else 0.0
    return {
        "verdict": "drift" if share >= thresholds.drift_share else "no drift",
        "drifted_share": share,
        "drifted_features": drifted,
        "features": per_feature,
        "prediction": prediction,
        "excluded": list(thresholds.exclude),
        "thresholds": asdict(thresholds),
        "reference_rows": sum(reference["dates"][d]["rows"] for d in matched) if matched else reference.get("rows"),
        "reference_dates": matched,
        "current_rows": daily.get("rows"),
        "rows": daily.get("rows"),
        "window_days": daily.get("window_days", 1),
        "dates": dates,
        "missing_dates": daily.get("missing", []),
    }


def _reference_columns(reference: dict) -> dict[str, dict]:
    """The reference's feature columns and its output columns (the prediction, or a classifier's probabilities), by
    name."""
    outputs = reference.get("outputs") or ({"prediction": reference["prediction"]} if "prediction" in reference else {})
    return {**reference["columns"], **outputs}


def _shares(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    shares = c / total if total else np.full(len(c), 1 / len(c))
    return np.maximum(shares, PSI_EPSILON)


def _support(col: dict) -> tuple[np.ndarray, np.ndarray]:
    means = np.array([m if m is not None else np.nan for m in col["bin_means"]], dtype=float)
    counts = np.asarray(col["counts"], dtype=float)
    keep = (counts > 0) & ~np.isnan(means)
    return means[keep], counts[keep]
