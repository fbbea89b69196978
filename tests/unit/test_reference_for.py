"""One rule for a version's reference (batchml.monitor.baseline.reference_for), on a real MLflow SQLite store.

A version batchml registered carries its reference profile: every call site gets it. A
version registered by someone else carries none: scoring gets its baseline bins (made once),
drift its baseline once collected (None before), the checks and the report nothing.
"""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from batchml.model.registry import Registry, _fluent_uris
from batchml.monitor.baseline import reference_for
from batchml.stats.profile import reference_profile
from batchml.store.storage import open_storage

DAY = dt.date(2026, 6, 10)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """(registry, pin of a version batchml registered with its profile, pin of a plain MLflow sklearn version, that
    profile)."""
    root = tmp_path_factory.mktemp("reference")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    x = pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) % 7})
    y = 2 * x["a"] + 1
    registry = Registry(uri, "prices", str(root / "artifacts"))
    profile = reference_profile(x)
    own = registry.register(
        LinearRegression().fit(x, y),
        x,
        onnx_bytes=None,
        profile=profile,
        params={},
        metrics={},
        tags={},
        inputs=["a", "b"],
        classes=None,
        run_name="own",
    )
    with _fluent_uris(uri), mlflow.start_run():  # registered with MLflow's own API: no profile of batchml's
        logged = mlflow.sklearn.log_model(LinearRegression().fit(x, y), name="model", input_example=x.head(3))
        other = mlflow.register_model(logged.model_uri, "prices").version
    cache = root / "cache"
    return registry, registry.pin_version(own, cache), registry.pin_version(other, cache), profile, cache


def test_a_version_with_its_own_profile_gets_it_at_every_call_site(versions, tmp_path):
    registry, own, _, profile, cache = versions
    storage = open_storage(tmp_path / "data")

    def never():
        raise AssertionError("bins made for a version that carries its own profile")

    for kwargs in ({"make_bins": never}, {"baseline_days": 3}, {}):
        assert reference_for(storage, registry, own, DAY, cache_dir=cache, **kwargs) == (profile, 0)
    assert storage.read_text(f"_baselines/prices/{own.version}/bins.json") is None


def test_a_version_without_one_is_scored_on_its_baseline_bins_made_once(versions, tmp_path):
    registry, _, other, _, cache = versions
    storage = open_storage(tmp_path / "data")
    first = {"columns": {"a": {"kind": "numeric", "edges": [0.0, 1.0]}}, "bins_from": DAY.isoformat()}
    assert reference_for(storage, registry, other, DAY, cache_dir=cache, make_bins=lambda: first) == (first, 0)
    later = {"columns": {}, "bins_from": "2026-06-11"}
    assert reference_for(
        storage, registry, other, DAY + dt.timedelta(days=1), cache_dir=cache, make_bins=lambda: later
    ) == (first, 0)


def test_a_version_without_one_is_compared_with_its_baseline_only_once_collected_and_checked_against_none(
    versions, tmp_path
):
    registry, _, other, _, cache = versions
    storage = open_storage(tmp_path / "data")
    assert reference_for(storage, registry, other, DAY, cache_dir=cache, baseline_days=3) == (None, 0)  # no bins yet
    reference_for(storage, registry, other, DAY, cache_dir=cache, make_bins=lambda: {"columns": {}})
    assert reference_for(storage, registry, other, DAY, cache_dir=cache, baseline_days=3) == (
        None,
        0,
    )  # bins, but no date scored on them
    assert reference_for(storage, registry, other, DAY, cache_dir=cache) == (
        None,
        0,
    )  # the checks and the report: the version's own only
