"""The feature pipeline shared by training and scoring: validated trips -> model inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY = "trip_id"
LABEL = "trip_duration_s"
FEATURES = (
    "pickup_zone",
    "dropoff_zone",
    "trip_distance",
    "passenger_count",
    "vendor_id",
    "payment_type",
    "rate_code",
    "pickup_hour",
    "pickup_weekday",
    "is_weekend",
)
CATEGORICAL = ("pickup_zone", "dropoff_zone", "vendor_id", "payment_type", "rate_code", "pickup_weekday")


def build_features(trips: pd.DataFrame) -> pd.DataFrame:
    """The key and the model features of validated trips, integers as int64, reals as float64.

    int64/float64 keep the MLflow signature and a CSV of the same rows in agreement.
    """
    ts = trips["pickup_datetime"]
    weekday = ts.dt.day_of_week.astype("int64")
    out = pd.DataFrame(
        {
            KEY: trips[KEY].astype("int64"),
            "pickup_zone": trips["pickup_zone"].astype("int64"),
            "dropoff_zone": trips["dropoff_zone"].astype("int64"),
            "trip_distance": trips["trip_distance"].astype("float64"),
            "passenger_count": trips["passenger_count"].astype("int64"),
            "vendor_id": trips["vendor_id"].astype("int64"),
            "payment_type": trips["payment_type"].astype("int64"),
            "rate_code": trips["rate_code"].astype("int64"),
            "pickup_hour": (ts.dt.hour + ts.dt.minute / 60.0).astype("float64"),
            "pickup_weekday": weekday,
            "is_weekend": (weekday >= 5).astype("int64"),
        }
    )
    return out


def model_matrix(features: pd.DataFrame, dtype=np.float32) -> np.ndarray:
    """The features in model order as one C-contiguous matrix (float32 for ONNX Runtime)."""
    out = np.empty((len(features), len(FEATURES)), dtype=dtype)
    for j, name in enumerate(FEATURES):
        out[:, j] = features[name].to_numpy()
    return out
