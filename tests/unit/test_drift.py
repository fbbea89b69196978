from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from batchml.stats.drift import DriftThresholds, drift_report, psi
from batchml.stats.profile import add_profiles, daily_profile, profile_partition, reference_profile

rng = np.random.default_rng(0)


def frames(shift=0.0, n=20_000, new_category=False):
    ref = pd.DataFrame({"x": rng.normal(10, 2, n), "c": rng.choice([1, 2, 3], n, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame(
        {
            "x": rng.normal(10 + shift, 2, n // 2),
            "c": rng.choice([1, 2, 3, 4], n // 2, p=[0.4, 0.3, 0.2, 0.1] if new_category else [0.5, 0.3, 0.2, 0]),
        }
    )
    return ref, cur


def profiles(ref, cur, parts=4):
    reference = reference_profile(ref, categorical=("c",))
    specs = reference["columns"]
    bounds = np.linspace(0, len(cur), parts + 1).astype(int)
    partials = [profile_partition(cur.iloc[a:b], specs) for a, b in pairwise(bounds)]
    return reference, daily_profile(add_profiles(*partials), specs)


def test_partition_profiles_add_up_to_the_whole():
    ref, cur = frames()
    reference, daily = profiles(ref, cur, parts=7)
    _, whole = profiles(ref, cur, parts=1)
    for name in ("x", "c"):
        assert daily["columns"][name]["counts"] == whole["columns"][name]["counts"]
        assert daily["columns"][name]["mean"] == pytest.approx(whole["columns"][name]["mean"])
    assert daily["columns"]["x"]["mean"] == pytest.approx(cur["x"].mean())
    assert daily["columns"]["x"]["std"] == pytest.approx(cur["x"].std(ddof=0))


def test_statistics_match_direct_numpy_and_scipy_on_the_raw_data():
    ref, cur = frames(shift=0.6)
    reference, daily = profiles(ref, cur)
    report = drift_report(reference, daily, ["x", "c"], DriftThresholds())
    edges = np.concatenate([[-np.inf], reference["columns"]["x"]["edges"], [np.inf]])
    p = np.histogram(ref["x"], edges)[0] / len(ref)
    q = np.histogram(cur["x"], edges)[0] / len(cur)
    assert report["features"]["x"]["psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-9)
    assert report["features"]["x"]["js"] == pytest.approx(distance.jensenshannon(p, q, base=2), rel=1e-9)
    exact = stats.wasserstein_distance(ref["x"], cur["x"]) / ref["x"].std(ddof=0)
    assert report["features"]["x"]["wasserstein"] == pytest.approx(exact, abs=0.02)
    pc = ref["c"].value_counts().sort_index().to_numpy()
    qc = cur["c"].value_counts().sort_index().to_numpy()
    assert report["features"]["c"]["chi2_pvalue"] == pytest.approx(
        stats.chi2_contingency(np.array([pc, qc]))[1], rel=1e-6
    )


def test_same_distribution_is_no_drift_and_a_shift_names_the_feature():
    ref, cur = frames()
    assert drift_report(*profiles(ref, cur), ["x", "c"], DriftThresholds())["verdict"] == "no drift"
    ref, cur = frames(shift=1.5)
    report = drift_report(*profiles(ref, cur), ["x", "c"], DriftThresholds())
    assert report["drifted_features"] == ["x"] and report["verdict"] == "drift"
    assert report["features"]["x"]["over_threshold"] == ["psi", "wasserstein"]


def test_an_unseen_category_lands_in_its_own_slot_and_counts_as_drift():
    ref, cur = frames(new_category=True)
    reference, daily = profiles(ref, cur)
    assert daily["columns"]["c"]["counts"][-1] == (cur["c"] == 4).sum() > 0
    assert drift_report(reference, daily, ["c"], DriftThresholds())["features"]["c"]["drifted"]


def test_excluded_features_are_not_judged():
    ref, cur = frames(shift=3)
    report = drift_report(*profiles(ref, cur), ["x", "c"], DriftThresholds(exclude=("x",)))
    assert report["verdict"] == "no drift" and "x" not in report["features"]


def test_psi_of_an_empty_bin_is_finite():
    assert np.isfinite(psi([10, 0, 5], [0, 10, 5]))


def test_quantiles_read_off_a_daily_profiles_bins_are_within_a_bin_of_the_exact_ones():
    from batchml.stats.profile import (
        add_profiles,
        binned_quantiles,
        daily_profile,
        profile_partition,
        reference_profile,
    )

    rng = np.random.default_rng(4)
    reference = reference_profile(pd.DataFrame({"p": rng.lognormal(6, 0.6, 20_000)}))
    spec = reference["columns"]["p"]
    current = pd.DataFrame({"p": rng.lognormal(6.1, 0.6, 8_000)})
    daily = daily_profile(add_profiles(profile_partition(current, {"p": spec})), {"p": spec})
    got = binned_quantiles(spec, daily["columns"]["p"])
    edges = np.asarray(spec["edges"])
    for q, value in got.items():
        exact = np.quantile(current["p"], float(q))
        width = np.diff(edges).max() if 0.05 < float(q) < 0.95 else exact * 0.5
        assert abs(value - exact) <= width, (q, value, exact)


@pytest.mark.parametrize("seed", range(6))
def test_the_numpy_statistics_equal_scipys_on_random_counts_and_samples(seed):
    """JS distance, W1, the chi-squared test's p-value (with Yates' correction at one degree of freedom) and its
    quantile, computed without scipy.stats and scipy.spatial, against them: counts with empty bins, two bins, ties."""
    from batchml.stats.chi2 import ppf
    from batchml.stats.drift import _wasserstein, chi2_pvalue, js_distance

    rng = np.random.default_rng(seed)
    k = 2 if seed % 3 == 0 else int(rng.integers(3, 12))
    ref, cur = rng.integers(0, 50, k), rng.integers(0, 50, k)
    ref[0], cur[-1] = 0, 0  # a bin empty on one side
    ref[1] = max(ref[1], 1)
    assert js_distance(ref, cur) == pytest.approx(distance.jensenshannon(ref, cur, base=2), rel=1e-12)
    kept = (ref + cur) > 0
    assert chi2_pvalue(ref, cur) == pytest.approx(stats.chi2_contingency(np.array([ref, cur])[:, kept])[1], rel=1e-9)
    u, v = rng.normal(size=k).round(1), rng.normal(0.5, size=k + 3).round(1)  # ties within and across
    uw, vw = rng.random(k), rng.random(k + 3)
    assert _wasserstein(u, v, uw, vw) == pytest.approx(stats.wasserstein_distance(u, v, uw, vw), rel=1e-12)
    assert ppf(0.95, k - 1) == pytest.approx(stats.chi2.ppf(0.95, k - 1), rel=1e-12)


@pytest.mark.parametrize("k", [*range(1, 12), 57, 100, 263, 264, 1000])
def test_the_chi_squared_survival_function_and_quantile_equal_scipys(k):
    """The closed forms (an integer number of degrees of freedom) against scipy's, from the centre to far tails."""
    from batchml.stats.chi2 import ppf, sf

    for x in (1e-6, 0.01, 0.5, 1.0, 5.0, k / 2, k, k + 3 * np.sqrt(2 * k), 2 * k + 50, 5 * k + 200, 1500.0):
        want = stats.chi2.sf(x, k)
        assert sf(x, k) == pytest.approx(want, rel=1e-11, abs=1e-300), (x, k)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        assert ppf(q, k) == pytest.approx(stats.chi2.ppf(q, k), rel=1e-12), (q, k)
    assert sf(0.0, k) == 1.0


def test_ranks_for_roc_auc_equal_scipys_rankdata_with_ties():
    from batchml.stats.metrics import _ranks

    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 5, 200).astype(float), rng.random(50), np.array([1.0]), np.array([2.0, 2.0, 2.0])):
        np.testing.assert_allclose(_ranks(values), stats.rankdata(values))
