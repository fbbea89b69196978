"""The taxi example's generator and hooks: deterministic trips as the TLC publishes them."""

import datetime as dt

import numpy as np
import pandas as pd
from taxi_hooks import duration, features
from taxi_synthetic import trips

DAY = dt.date(2026, 4, 7)


def one_day(date=DAY, **kw) -> pd.DataFrame:
    return pd.concat(trips(date, **{"rows_per_day": 30_000, "seed": 5, **kw}), ignore_index=True)


def test_a_date_is_deterministic_per_seed_and_chunking():
    a = one_day(chunk_rows=7_000)
    pd.testing.assert_frame_equal(a, one_day(chunk_rows=7_000))
    assert len(a) == 30_000
    assert not one_day(seed=6)["trip_distance"].equals(a["trip_distance"])


def test_every_pickup_falls_on_its_date_and_values_are_in_range():
    frame = one_day()
    assert (frame["pickup_datetime"].dt.date == DAY).all()
    assert frame["pickup_location_id"].between(1, 265).all() and frame["passenger_count"].between(1, 6).all()
    seconds = duration(frame)
    assert (frame["trip_distance"] > 0).all() and (seconds.dropna() > 0).all() and seconds.notna().mean() > 0.99


def test_duration_grows_with_distance_and_rush_hour_is_slower():
    frame = one_day(rows_per_day=60_000)
    seconds = duration(frame)
    ok = seconds.notna()
    assert np.corrcoef(frame["trip_distance"][ok], seconds[ok])[0, 1] > 0.7
    pace = seconds / frame["trip_distance"]
    hour = frame["pickup_datetime"].dt.hour
    assert pace[hour.between(7, 9)].median() > 1.3 * pace[hour.between(1, 4)].median()


def test_drift_shifts_inputs_and_the_duration_relation_from_drift_start():
    before = one_day(DAY - dt.timedelta(days=1), drift_start=DAY)
    after = one_day(DAY, drift_start=DAY.isoformat())
    assert after["trip_distance"].mean() > 1.2 * before["trip_distance"].mean()
    pace = lambda f: (duration(f) / f["trip_distance"]).median()  # noqa: E731
    assert pace(after) > 1.2 * pace(before)
    pd.testing.assert_frame_equal(before, one_day(DAY - dt.timedelta(days=1)))


def test_bad_row_share_corrupts_about_that_share():
    frame = one_day(bad_row_share=0.02)
    broken = (
        (frame["passenger_count"] == 0)
        | (frame["trip_distance"] < 0)
        | frame["dropoff_location_id"].isna()
        | (frame["vendor_id"] == 9)
    )
    assert 0.015 < broken.mean() < 0.025


def test_features_keep_every_row_and_labels_refuse_impossible_durations():
    frame = one_day(rows_per_day=100)
    f = features(frame)
    assert len(f) == 100 and f["pickup_weekday"].eq(DAY.weekday()).all() and f["is_weekend"].eq(0).all()
    frame.loc[0, "dropoff_datetime"] = frame.loc[0, "pickup_datetime"] - pd.Timedelta(seconds=5)
    assert np.isnan(duration(frame).iloc[0])
