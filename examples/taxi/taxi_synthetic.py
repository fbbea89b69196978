"""A synthetic, NYC-taxi-like trip generator: the embedded default source.

Deterministic per (seed, date, chunk): the same date always yields the same rows, so a
re-run scores the same data and labels can be produced again later. From `drift_start`
on, both the inputs (longer trips to outer zones, more night and group trips) and the
relation between inputs and duration (slower traffic) change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd

N_ZONES = 265
_ZONE_IDS = np.arange(1, N_ZONES + 1)


def _zone_layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed zone positions (miles), popularity and congestion, the same in every run."""
    rng = np.random.default_rng(265)
    core = N_ZONES * 2 // 5  # a dense, slow "Manhattan" strip
    xy = np.empty((N_ZONES, 2))
    xy[:core] = np.column_stack([rng.uniform(0, 3, core), rng.uniform(0, 12, core)])
    xy[core:] = np.column_stack([rng.uniform(-10, 15, N_ZONES - core), rng.uniform(-12, 18, N_ZONES - core)])
    popularity = rng.pareto(1.2, N_ZONES) + 0.05
    popularity[:core] *= 6
    congestion = np.where(np.arange(N_ZONES) < core, 0.7, 1.25)
    return xy, popularity / popularity.sum(), congestion


_XY, _POPULARITY, _CONGESTION = _zone_layout()
_OUTER = _POPULARITY * np.where(np.arange(N_ZONES) < N_ZONES * 2 // 5, 0.35, 3.0)
_OUTER /= _OUTER.sum()
_HOURS = np.array(
    [2, 1.4, 1, 0.7, 0.6, 0.9, 2, 3.6, 4.4, 4.3, 4.1, 4.3, 4.5, 4.6, 4.8, 5, 5.2, 5.6, 6, 5.8, 5.2, 4.8, 4, 3]
)
_NIGHT_HOURS = _HOURS * np.where((np.arange(24) >= 21) | (np.arange(24) < 5), 2.5, 1.0)


def _rush_speed(hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Typical speed in mph by time of day: slow at the rush hours, fast at night."""
    speed = np.where((hour >= 22) | (hour < 6), 19.0, 12.0)
    rush = ((hour >= 7) & (hour < 10)) | ((hour >= 16) & (hour < 19))
    speed = np.where(rush & ~weekend, 7.5, speed)
    return speed * np.where(weekend, 1.2, 1.0)


def trips(
    date: dt.date,
    *,
    rows_per_day: int,
    seed: int,
    drift_start: dt.date | str | None = None,
    bad_row_share: float = 0.0,
    chunk_rows: int = 250_000,
) -> Iterator[pd.DataFrame]:
    """Yield the trips of `date` in chunks, as the TLC publishes them (the duration is dropoff - pickup)."""
    if isinstance(drift_start, str):
        drift_start = dt.date.fromisoformat(drift_start) if drift_start else None
    rows = rows_per_day
    drifted = drift_start is not None and date >= drift_start
    for chunk, start in enumerate(range(0, rows, chunk_rows)):
        n = min(chunk_rows, rows - start)
        rng = np.random.default_rng([seed, date.toordinal(), chunk])
        yield _chunk(rng, date, n, drifted=drifted, bad_row_share=bad_row_share)


def _chunk(rng, date, n, *, drifted, bad_row_share) -> pd.DataFrame:
    hours_w = _NIGHT_HOURS if drifted else _HOURS
    hour = rng.choice(24, n, p=hours_w / hours_w.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, n)
    pickup = np.datetime64(date, "us") + seconds.astype("timedelta64[s]")
    pz = rng.choice(N_ZONES, n, p=_POPULARITY)
    dz = rng.choice(N_ZONES, n, p=_OUTER if drifted else _POPULARITY)
    euclid = np.hypot(*(_XY[pz] - _XY[dz]).T)
    distance = np.where(pz == dz, rng.uniform(0.3, 2.0, n), 1.25 * euclid * rng.lognormal(0, 0.12, n))
    distance = np.round(np.maximum(distance, 0.1), 2)
    groups = [0.55, 0.2, 0.08, 0.05, 0.08, 0.04] if drifted else [0.72, 0.14, 0.05, 0.03, 0.04, 0.02]
    passengers = rng.choice(np.arange(1, 7), n, p=groups)
    vendor = rng.choice([1, 2], n, p=[0.45, 0.55])
    payment = rng.choice([1, 2, 3, 4], n, p=[0.5, 0.46, 0.03, 0.01] if drifted else [0.74, 0.23, 0.02, 0.01])
    rate = rng.choice(np.arange(1, 7), n, p=[0.94, 0.025, 0.01, 0.005, 0.015, 0.005])

    weekend = np.full(n, date.weekday() >= 5)
    speed = _rush_speed(hour, weekend) * _CONGESTION[pz]
    minutes = 2.0 + 60.0 * distance / speed + 1.5 * (passengers >= 5) + 4.0 * (rate == 2)
    if drifted:  # traffic got slower everywhere: the old model now under-predicts
        minutes = 3.0 + minutes * 1.35
    duration = np.round(minutes * 60.0 * rng.lognormal(0, 0.18, n), 1)

    frame = pd.DataFrame(
        {
            "vendor_id": vendor.astype("int64"),
            "pickup_datetime": pickup,
            "dropoff_datetime": pickup + (duration * 1e6).astype("timedelta64[us]"),
            "passenger_count": passengers.astype("int64"),
            "trip_distance": distance,
            "rate_code_id": rate.astype("int64"),
            "pickup_location_id": pd.array(_ZONE_IDS[pz], dtype="Int64"),
            "dropoff_location_id": pd.array(_ZONE_IDS[dz], dtype="Int64"),
            "payment_type": payment.astype("int64"),
        }
    )
    if bad_row_share > 0:
        _corrupt(frame, rng, bad_row_share)
    return frame


def _corrupt(frame: pd.DataFrame, rng, share: float) -> None:
    """Break a few rows the way real feeds do, so the quarantine path runs every day."""
    bad = np.flatnonzero(rng.random(len(frame)) < share)
    kinds = rng.integers(0, 4, len(bad))
    frame.loc[bad[kinds == 0], "passenger_count"] = 0
    frame.loc[bad[kinds == 1], "trip_distance"] = -frame.loc[bad[kinds == 1], "trip_distance"]
    frame.loc[bad[kinds == 2], "dropoff_location_id"] = pd.NA
    frame.loc[bad[kinds == 3], "vendor_id"] = 9
