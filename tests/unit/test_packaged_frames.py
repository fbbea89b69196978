"""The registered raw-rows model takes a column in every form a team's files give it, with the same answers."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from batchml.model.packaged import importable
from tests.unit.test_packaged import orders, registered  # noqa: F401  (the fixture: a classifier registered with and without ONNX)


def forms(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same rows as Parquet, CSV and JSON readers give them."""
    return {
        "parquet": raw.assign(
            placed_at=pd.to_datetime(raw["placed_at"]).astype("datetime64[us]")
        ),  # datetime64; items Int64 with <NA>
        "text": raw.astype({"items": "float64"}),  # ISO text, items float64 with NaN
        # aware and in UTC: the same instants as the contract's wall-clock text (its timezone is Europe/Paris)
        "offsets": raw.assign(
            placed_at=pd.to_datetime(raw["placed_at"]).dt.tz_localize("Europe/Paris").dt.tz_convert("UTC")
        ),
        "whole": raw.assign(
            items=raw["items"].fillna(0).astype("int64")
        ),  # int64 in a column that may be null (no null today)
    }


@pytest.mark.parametrize("kind", ["onnx", "estimator"])
def test_every_form_of_the_same_rows_gets_the_same_outputs(registered, kind, tmp_path):  # noqa: F811
    registry, _, _, versions = registered
    raw = orders(40, 11).drop(columns=["returned"])
    assert raw["items"].dtype == "Int64" and raw["items"].isna().any()
    with importable(tmp_path):
        pyfunc = mlflow.pyfunc.load_model(str(registry._download_model(versions[kind], tmp_path / "cache")))
        got = {name: pyfunc.predict(frame) for name, frame in forms(raw).items()}
    columns = ["proba_False", "proba_True"]
    for name in ("parquet", "offsets"):
        np.testing.assert_array_equal(got[name][columns].to_numpy(), got["text"][columns].to_numpy(), err_msg=name)
    filled = got["whole"][columns].to_numpy()
    missing = raw["items"].isna().to_numpy()
    np.testing.assert_array_equal(
        filled[~missing], got["text"][columns].to_numpy()[~missing]
    )  # rows whose items were there agree
