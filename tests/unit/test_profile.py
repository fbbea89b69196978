"""Partial profiles: the short ways (integer columns counted by value, numbers compared with
each edge) give exactly what counting value by value gives."""

import numpy as np
import pandas as pd
import pytest

from batchml.stats.profile import N_BINS, finalize, n_bins, partial_profile


def counted_one_by_one(values: pd.Series, spec: dict) -> np.ndarray:
    """The oracle: every value put in its slot in plain Python."""
    k = n_bins(spec)
    counts, sums = np.zeros(k), np.zeros(k)
    present = [float(v) for v in values if not pd.isna(v)]
    for v in present:
        if spec["kind"] == "numeric":
            slot = sum(1 for e in spec["edges"] if v >= e)
        else:
            slot = spec["categories"].index(v) if v in spec["categories"] else k - 1
        counts[slot] += 1
        sums[slot] += v
    head = [counts, sums] if spec["kind"] == "numeric" else [counts]
    tail = [len(values) - len(present), len(values), sum(present), sum(v * v for v in present)]
    return np.concatenate([*head, tail])


rng = np.random.default_rng(7)
CASES = {
    "ids with gaps, unseen ids inside the range": (
        pd.Series(rng.integers(1, 266, 5000)),
        {"kind": "categorical", "categories": list(range(1, 266, 3))},
    ),
    "values below and above the categories": (
        pd.Series(rng.integers(-5, 12, 5000)),
        {"kind": "categorical", "categories": [0, 1, 2, 5]},
    ),
    "int8 far from zero": (
        pd.Series(rng.integers(-120, 120, 5000), dtype="int8"),
        {"kind": "categorical", "categories": [-120, -3, 100, 119]},
    ),
    "nullable integers": (
        pd.Series([1, None, 3, 3, 7] * 100, dtype="Int64"),
        {"kind": "categorical", "categories": [1, 3]},
    ),
    "numbers with NaN on 19 edges": (
        pd.Series(np.where(rng.random(5000) < 0.1, np.nan, rng.normal(10, 5, 5000))),
        {"kind": "numeric", "edges": np.quantile(rng.normal(10, 5, 999), np.linspace(0, 1, N_BINS + 1)[1:-1]).tolist()},
    ),
    "values on the edges": (pd.Series([0.0, 1.0, 1.0, 2.0, 2.5, 3.0]), {"kind": "numeric", "edges": [1.0, 2.0, 3.0]}),
    "float32 on many edges": (
        pd.Series(rng.random(5000).astype("float32")),
        {"kind": "numeric", "edges": np.linspace(0.01, 0.99, 80).tolist()},
    ),
    "empty": (pd.Series([], dtype="int64"), {"kind": "categorical", "categories": [1, 2]}),
}


@pytest.mark.parametrize("name", CASES)
def test_partial_profile_counts_every_value_in_its_slot(name):
    values, spec = CASES[name]
    got, want = partial_profile(values, spec), counted_one_by_one(values, spec)
    k = n_bins(spec)
    np.testing.assert_array_equal(got[:k], want[:k])  # counts exactly
    np.testing.assert_array_equal(got[-4:-2], want[-4:-2])  # nulls and rows exactly
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert finalize(spec, got)["count"] == len(values)


def test_null_counts_add_up_batch_by_batch_and_survive_json():
    import json

    from batchml.dataset.nulls import NullCounts

    counts = NullCounts().add(100, {"fee": 5}).add(300, {"fee": 15, "note": 30})
    assert counts.rate("fee") == 20 / 400 and counts.rate("note") == 30 / 400 and counts.rate("km") is None
    assert (
        NullCounts.from_json(json.loads(json.dumps(counts.as_json()))) == counts and NullCounts.from_json(None) is None
    )
