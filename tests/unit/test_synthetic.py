import datetime as dt

import numpy as np
import pandas as pd

from batchml import synthetic

DAY = dt.date(2026, 4, 7)


def one_day(date=DAY, **kw) -> pd.DataFrame:
    return pd.concat(synthetic.trips(date, **{"rows": 30_000, "seed": 5, **kw}), ignore_index=True)


def test_a_date_is_deterministic_per_seed_and_chunking_does_not_change_ids():
    a = one_day(chunk_rows=7_000)
    pd.testing.assert_frame_equal(a, one_day(chunk_rows=7_000))
    assert len(a) == 30_000 and a["trip_id"].is_unique
    assert not one_day(seed=6)["trip_duration_s"].equals(a["trip_duration_s"])
    assert np.array_equal(one_day(chunk_rows=10_000)["trip_id"], a["trip_id"])


def test_trip_ids_never_collide_across_dates():
    assert not set(one_day()["trip_id"]) & set(one_day(DAY + dt.timedelta(days=1))["trip_id"])


def test_every_pickup_falls_on_its_date_and_values_are_in_range():
    frame = one_day()
    assert (frame["pickup_datetime"].dt.date == DAY).all()
    assert frame["pickup_zone"].between(1, 265).all() and frame["passenger_count"].between(1, 6).all()
    assert (frame["trip_distance"] > 0).all() and (frame["trip_duration_s"] > 0).all()


def test_duration_grows_with_distance_and_rush_hour_is_slower():
    frame = one_day(rows=60_000)
    assert np.corrcoef(frame["trip_distance"], frame["trip_duration_s"])[0, 1] > 0.7
    pace = frame["trip_duration_s"] / frame["trip_distance"]
    hour = frame["pickup_datetime"].dt.hour
    assert pace[hour.between(7, 9)].median() > 1.3 * pace[hour.between(1, 4)].median()


def test_drift_shifts_inputs_and_the_duration_relation_from_drift_start():
    before = one_day(DAY - dt.timedelta(days=1), drift_start=DAY)
    after = one_day(DAY, drift_start=DAY)
    assert after["trip_distance"].mean() > 1.2 * before["trip_distance"].mean()
    pace = lambda f: (f["trip_duration_s"] / f["trip_distance"]).median()  # noqa: E731
    assert pace(after) > 1.2 * pace(before)
    pd.testing.assert_frame_equal(before, one_day(DAY - dt.timedelta(days=1)))


def test_bad_row_share_corrupts_about_that_share():
    frame = one_day(bad_row_share=0.02)
    broken = (frame["passenger_count"] == 0) | (frame["trip_distance"] < 0) | frame["dropoff_zone"].isna() | (frame["vendor_id"] == 9)
    assert 0.015 < broken.mean() < 0.025
