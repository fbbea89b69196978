"""Noise floors, windows and weekday-matched references on generated dates (issue 14 items 2-3, issue 13 item 10)."""

import datetime as dt
import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

from batchml.stats.drift import DriftThresholds, _bootstrap_floors, drift_report, noise_floors, window_dates
from batchml.stats.profile import (
    add_profiles,
    daily_profile,
    date_profiles,
    profile_partition,
    reference_profile,
    window_profile,
)


def synthetic_trips(date: dt.date, rows: int, drift_start: dt.date | None = None) -> pd.DataFrame:
    """One date of the taxi-like generator (the only import of it: it moves to the taxi example)."""
    from taxi_synthetic import trips

    frame = pd.concat(trips(date, rows_per_day=rows, seed=42, drift_start=drift_start), ignore_index=True)
    return frame.rename(
        columns={
            "pickup_location_id": "pickup_zone",
            "dropoff_location_id": "dropoff_zone",
            "rate_code_id": "rate_code",
        }
    )


NUMERIC = ("trip_distance", "passenger_count", "pickup_hour", "is_weekend")
CATEGORICAL = ("pickup_zone", "dropoff_zone", "vendor_id", "payment_type", "rate_code")
FEATURES = (*CATEGORICAL, "pickup_weekday", *NUMERIC)
EXCLUDE = ("pickup_weekday", "is_weekend")  # constant within a date, as luigi.cfg [drift] exclude
REFERENCE_END = dt.date(2026, 5, 31)
HEALTHY_START = dt.date(2026, 6, 7)


def model_inputs(date: dt.date, rows: int, drift_start: dt.date | None = None) -> pd.DataFrame:
    """Features of the generated trips, and a prediction that is a fixed function of them (faster on weekends)."""
    trips = synthetic_trips(date, rows, drift_start)
    ts = trips["pickup_datetime"]
    f = pd.DataFrame(
        {
            c: trips[c].astype("float64")
            for c in ("pickup_zone", "dropoff_zone", "trip_distance", "passenger_count", *CATEGORICAL[2:])
        }
    )
    f["pickup_hour"] = ts.dt.hour + ts.dt.minute / 60.0
    f["pickup_weekday"] = ts.dt.day_of_week.astype("float64")
    f["is_weekend"] = (f["pickup_weekday"] >= 5).astype("float64")
    rush = (f["pickup_hour"].between(7, 10, inclusive="left") | f["pickup_hour"].between(16, 19, inclusive="left")) & (
        f["is_weekend"] == 0
    )
    f["prediction"] = (
        60.0
        + 240.0 * f["trip_distance"] * np.where(f["is_weekend"] == 1, 0.85, 1.0)
        + 120.0 * rush
        + 30.0 * (f["passenger_count"] >= 5)
    )
    return f


@cache
def reference(rows: int, days: int = 14) -> tuple[dict, dict]:
    """A reference as training makes it (14 dates of rows concatenated), with its per-date profiles; and the bins."""
    dates = window_dates(REFERENCE_END, days)
    train = pd.concat([model_inputs(d, rows).assign(date=pd.Timestamp(d)) for d in dates], ignore_index=True)
    ref = reference_profile(train[list(FEATURES)], categorical=(*CATEGORICAL, "pickup_weekday"))
    ref["prediction"] = reference_profile(train[["prediction"]])["columns"]["prediction"]
    specs = {**ref["columns"], "prediction": ref["prediction"]}
    ref["dates"] = date_profiles(train[[*FEATURES, "prediction"]], train["date"], specs)
    return ref, specs


@cache
def daily(date: dt.date, rows: int, drift_start: dt.date | None = None) -> dict:
    specs = reference(rows)[1]
    return daily_profile(profile_partition(model_inputs(date, rows, drift_start), specs), specs)


def reports(rows: int, window: int, n_dates: int, *, drift_start=None, start=HEALTHY_START, **kw) -> list[dict]:
    ref, specs = reference(rows)
    thresholds = DriftThresholds(exclude=EXCLUDE, window_days=window, **kw)
    out = []
    for i in range(n_dates):
        dates = window_dates(start + dt.timedelta(days=i), window)
        current = window_profile({d.isoformat(): daily(d, rows, drift_start) for d in dates}, specs)
        out.append(drift_report(ref, current, list(FEATURES), thresholds))
    return out


def flagged_dates(results: list[dict]) -> dict[str, int]:
    """Per monitored column (and the prediction), on how many dates it was flagged."""
    counts = {name: sum(r["features"][name]["drifted"] for r in results) for name in results[0]["features"]}
    return {**counts, "prediction": sum(r["prediction"]["drifted"] for r in results)}


def test_a_window_of_daily_profiles_is_the_profile_of_the_concatenated_rows():
    rng = np.random.default_rng(3)
    frames = {
        f"2026-06-0{i}": pd.DataFrame(
            {"x": rng.lognormal(1, 1, 500 + 100 * i), "c": rng.choice([1.0, 2.0, 3.0, 7.0, np.nan], 500 + 100 * i)}
        )
        for i in range(1, 5)
    }
    specs = reference_profile(
        pd.DataFrame({"x": rng.lognormal(1, 1, 2000), "c": rng.choice([1.0, 2.0, 3.0], 2000)}), categorical=("c",)
    )["columns"]
    # the saved JSON files, as the pipeline writes them, one date missing from the window
    saved = {d: json.loads(json.dumps(daily_profile(profile_partition(f, specs), specs))) for d, f in frames.items()}
    window = window_profile({**saved, "2026-06-05": None}, specs)
    whole = daily_profile(add_profiles(*(profile_partition(f, specs) for f in frames.values())), specs)
    assert (window["window_days"], window["dates"], window["missing"]) == (5, sorted(frames), ["2026-06-05"])
    assert window["rows"] == whole["rows"] == sum(len(f) for f in frames.values())
    for name in ("x", "c"):
        got, want = window["columns"][name], whole["columns"][name]
        assert (got["counts"], got["count"], got["null_rate"]) == (want["counts"], want["count"], want["null_rate"])
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12) and got["std"] == pytest.approx(
            want["std"], rel=1e-9
        )
    assert window["columns"]["x"]["bin_means"] == pytest.approx(whole["columns"]["x"]["bin_means"], rel=1e-12)
    assert window["columns"]["x"]["std"] == pytest.approx(pd.concat(frames.values())["x"].std(ddof=0), rel=1e-9)


def test_profiles_counted_on_other_bins_do_not_add_up():
    specs = reference_profile(pd.DataFrame({"x": np.arange(100.0)}))["columns"]
    other = reference_profile(pd.DataFrame({"x": np.arange(100.0)}), n_bins=5)["columns"]
    with pytest.raises(ValueError, match="bins"):
        window_profile(
            {"2026-06-01": daily_profile(profile_partition(pd.DataFrame({"x": [1.0, 2.0]}), other), other)}, specs
        )


def test_analytic_floors_agree_with_the_bootstrap_and_shrink_with_rows():
    ref = {"kind": "categorical", "counts": [4000, 3000, 2000, 1000, 0]}
    for n in (300, 2_000, 20_000):
        floors = noise_floors(ref, n)
        boot = _bootstrap_floors(tuple(float(c) for c in ref["counts"]), (), 0.0, 0.0, n, 0.95, 4000, 1)
        assert floors["psi"]["how"] == floors["js"]["how"] == "analytic"
        assert floors["psi"]["floor"] == pytest.approx(boot["psi"], rel=0.1) and floors["js"]["floor"] == pytest.approx(
            boot["js"], rel=0.1
        )
    assert noise_floors(ref, 300)["js"]["floor"] > 3 * noise_floors(ref, 20_000)["js"]["floor"]
    assert noise_floors(ref, 300) == noise_floors(ref, 300)  # seeded: the same every run


def test_at_300_rows_a_day_noise_decides_for_the_zones_and_a_fixed_threshold_would_flag_them():
    result = reports(300, window=1, n_dates=1)[0]["features"]["pickup_zone"]
    js = result["methods"]["js"]
    assert js["floor_how"] == "bootstrap" and js["decided_by"] == "floor" and js["floor"] > js["threshold"]
    assert result["js"] > js["threshold"] and not result["drifted"]  # 0.35 from noise alone: flagged by the old rule
    assert set(js) >= {"value", "floor", "threshold", "limit", "excess", "drifted", "decided_by"}


def test_healthy_300_rows_a_day_with_a_7_day_window_flags_no_column_on_more_than_5_percent_of_40_dates():
    results = reports(300, window=7, n_dates=40)
    assert all(r["window_days"] == 7 and r["rows"] == 7 * 300 for r in results)
    flags = flagged_dates(results)
    assert max(flags.values()) <= 2, flags
    assert all(r["verdict"] == "no drift" for r in results)


def test_healthy_20000_rows_a_day_one_day_window_flags_nothing_on_more_than_5_percent_of_30_dates():
    flags = flagged_dates(reports(20_000, window=1, n_dates=30))
    assert max(flags.values()) <= 1, flags
    # the same dates against the pooled 14-day reference: the prediction's weekend dates look drifted
    pooled = flagged_dates(reports(20_000, window=1, n_dates=30, match_weekdays=False))
    assert pooled["prediction"] >= 6, pooled


def test_the_drift_scenario_at_20000_rows_is_flagged_from_its_first_drifted_day():
    onset = dt.date(2026, 6, 14)
    results = reports(20_000, window=1, n_dates=14, drift_start=onset)
    verdicts = [r["verdict"] for r in results]
    assert verdicts == ["no drift"] * 7 + ["drift"] * 7, verdicts
    first = results[7]
    assert first["dates"] == [onset.isoformat()] and first["prediction"]["drifted"]
    assert {"trip_distance", "payment_type", "dropoff_zone"} <= set(first["drifted_features"])


def test_a_window_with_missing_dates_is_judged_on_what_exists_and_says_so():
    ref, specs = reference(300)
    dates = window_dates(HEALTHY_START, 7)
    current = window_profile({d.isoformat(): daily(d, 300) if i % 2 else None for i, d in enumerate(dates)}, specs)
    report = drift_report(ref, current, list(FEATURES), DriftThresholds(exclude=EXCLUDE, window_days=7))
    assert report["rows"] == 3 * 300 and len(report["missing_dates"]) == 4 and report["window_days"] == 7
    assert report["features"]["trip_distance"]["rows"] == 900


def test_a_reference_without_per_date_profiles_is_compared_whole():
    ref, specs = reference(300)
    pooled = {k: v for k, v in ref.items() if k != "dates"}
    current = window_profile({HEALTHY_START.isoformat(): daily(HEALTHY_START, 300)}, specs)
    report = drift_report(pooled, current, list(FEATURES), DriftThresholds(exclude=EXCLUDE))
    assert report["reference_dates"] == [] and report["prediction"] is not None
    matched = drift_report(ref, current, list(FEATURES), DriftThresholds(exclude=EXCLUDE))
    assert [dt.date.fromisoformat(d).weekday() for d in matched["reference_dates"]] == [HEALTHY_START.weekday()] * 2
