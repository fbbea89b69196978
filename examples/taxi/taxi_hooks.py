"""The taxi example's hooks: synthetic trips, the features transform, labels and the training recipe.

Named in luigi.cfg as `taxi_hooks:<function>`; batchml imports this module from the
project folder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from taxi_synthetic import trips  # noqa: F401  ([source] generator = taxi_hooks:trips)


def features(rows: pd.DataFrame) -> pd.DataFrame:
    """Validated trips -> the model's inputs: zones, distance, party, payment and the time of day.

    Integers as int64, reals as float64, so the MLflow signature and a CSV of the same rows agree.
    """
    ts = rows["pickup_datetime"]
    weekday = ts.dt.day_of_week.astype("int64")
    return pd.DataFrame(
        {
            "pickup_zone": rows["pickup_location_id"].astype("int64"),
            "dropoff_zone": rows["dropoff_location_id"].astype("int64"),
            "trip_distance": rows["trip_distance"].astype("float64"),
            "passenger_count": rows["passenger_count"].astype("int64"),
            "vendor": rows["vendor_id"].astype("int64"),
            "payment_type": rows["payment_type"].astype("int64"),
            "rate_code": rows["rate_code_id"].astype("int64"),
            "pickup_hour": (ts.dt.hour + ts.dt.minute / 60.0).astype("float64"),
            "pickup_weekday": weekday,
            "is_weekend": (weekday >= 5).astype("int64"),
        }
    )


def duration(rows: pd.DataFrame) -> pd.Series:
    """The label: seconds from pickup to dropoff; zero, negative or over-six-hour trips have none (NaN)."""
    seconds = (rows["dropoff_datetime"] - rows["pickup_datetime"]).dt.total_seconds()
    return seconds.where((seconds > 0) & (seconds <= 6 * 3600))


def recipe(frame: pd.DataFrame, settings):
    """Gradient-boosted trees on the model inputs (float64: see NOTES on float32 and HGB).

    scikit-learn is imported here, not at the top: every task that calls a hook imports this
    module, and extracting a date should not pay the second scikit-learn takes to import.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    params = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, **settings.params}
    model = HistGradientBoostingRegressor(early_stopping=False, random_state=settings.seed, **params)
    return model.fit(frame[list(settings.inputs)], frame[settings.label].to_numpy(dtype=np.float64))
