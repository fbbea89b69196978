"""Null checks of a project whose nullable columns have nulls on every healthy date, through luigi.build.

A tiny project written into tmp_path: rides with an optional fee (about 5% null, passed to the
model as it is) and an optional note (about 5% null, which the features hook fills with "",
so the model's inputs never show it). The model is trained by batchml's cold start.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipelines import DailyScore
from tasks.config import make_storage

DAY = dt.date(2026, 3, 10)
JUMP = dt.date(2026, 3, 11)  # the notes go missing on 40% of rows

CONTRACT = """\
dataset: rides
key: id
timestamp: at
columns:
  id:    {dtype: integer, nullable: false}
  at:    {dtype: datetime, nullable: false}
  km:    {dtype: float, nullable: false, min: 0}
  fee:   {dtype: float, nullable: true}
  note:  {dtype: string, nullable: true}
label:
  column: fare
  task: regression
"""

HOOKS = f'''\
import datetime as dt

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor


def rows(date, *, n=3000):
    date = dt.date.fromisoformat(date) if isinstance(date, str) else date
    rng = np.random.default_rng(date.toordinal())
    fee = rng.uniform(1, 5, n).round(2)
    fee[rng.random(n) < 0.05] = np.nan
    note_share = 0.4 if date == dt.date.fromisoformat("{JUMP}") else 0.05
    note = np.where(rng.random(n) < note_share, None, rng.choice(["quiet", "luggage", "child seat"], n)).astype(object)
    return pd.DataFrame(
        {{
            "id": date.toordinal() * 100_000 + np.arange(n),
            "at": pd.Timestamp(date) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "km": rng.uniform(0.5, 20, n).round(2),
            "fee": fee,
            "note": note,
        }}
    )


def features(rows):
    """fee as it is (the model takes its gaps); the note's length, a missing note counted as ''."""
    note_len = rows["note"].fillna("").str.len().astype("int64")
    return pd.DataFrame({{"km": rows["km"], "fee": rows["fee"], "note_len": note_len}})


def fare(rows):
    return (rows[["id"]].assign(fare=3.0 + 2.0 * rows["km"] + rows["fee"].fillna(0.0))).reset_index(drop=True)


def recipe(frame, settings):
    model = HistGradientBoostingRegressor(max_iter=20, random_state=settings.seed)
    return model.fit(frame[list(settings.inputs)], frame[settings.label])
'''


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def checks_of(day) -> dict:
    return json.loads(make_storage().read_text(f"monitoring/date={day}/metrics.json"))


@pytest.fixture
def rides(pipeline, tmp_path):
    (tmp_path / "rides_hooks.py").write_text(HOOKS)
    (tmp_path / "contract.yaml").write_text(CONTRACT)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("rides_hooks", None)
    importlib.import_module("rides_hooks")
    pipeline(
        {
            "source": {"kind": "python", "generator": "rides_hooks:rows", "options": "{}", "label_lag_days": "1"},
            "features": {"transform": "rides_hooks:features"},
            "labels": {"transform": "rides_hooks:fare"},
            "training": {
                "recipe": "rides_hooks:recipe",
                "params": "{}",
                "window_days": "3",
                "max_rows": "20000",
                "seed": "3",
            },
            "schema": {"path": str(tmp_path / "contract.yaml"), "max_reject_share": "0.05"},
            "drift": {"exclude": "[]"},
            "mlflow": {"registered_model": "rides"},
        }
    )
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("rides_hooks", None)


def test_healthy_dates_of_nullable_columns_pass_with_the_default_checks_and_a_jump_in_hidden_nulls_fails(rides):
    assert build(DailyScore(DAY)).status == LuigiStatusCode.SUCCESS
    healthy = {c["name"]: c for c in checks_of(DAY)["checks"]}
    assert (
        healthy["null_rate.fee"]["ok"] and 0.03 < healthy["null_rate.fee"]["value"] < 0.07
    )  # the model's input as scored, or the valid rows
    note = healthy["null_rate.note"]
    assert (
        note["ok"] and note["detail"]["measured_on"] == "validated rows" and 0.03 < note["value"] < 0.07
    )  # the hook's "" does not hide it
    assert note["detail"]["reference_from"].startswith("the training window")

    assert build(DailyScore(JUMP)).status == LuigiStatusCode.FAILED
    jumped = checks_of(JUMP)
    note = next(c for c in jumped["checks"] if c["name"] == "null_rate.note")
    assert jumped["failed"] == ["null_rate.note"] and 0.37 < note["value"] < 0.43
    reference = note["detail"]["reference"]
    assert 0.04 < reference < 0.06 and note["detail"]["limit"] == pytest.approx(2 * reference, abs=0.005)
    counts = make_storage().manifest("features", JUMP).extra["validated_nulls"]
    assert note["value"] == counts["nulls"]["note"] / counts["rows"]  # read from what extraction counted
