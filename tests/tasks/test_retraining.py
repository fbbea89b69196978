"""Drift-triggered retraining through luigi.build, one date at a time as the daily cron runs it."""

import datetime as dt
import json

import luigi
import numpy as np
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipelines import DailyScore
from tasks.config import make_registry, make_storage
from tasks.retrain import Rollback
from tests.conftest import trips

DAY0 = dt.date(2026, 5, 1)


def run_days(first: int, last: int) -> None:
    for i in range(first, last + 1):
        result = luigi.build(
            [DailyScore(DAY0 + dt.timedelta(days=i))], local_scheduler=True, detailed_summary=True, log_level="WARNING"
        )
        assert result.status == LuigiStatusCode.SUCCESS, f"day {i}: {result.summary_text}"


def read(day: int, name: str):
    text = make_storage().read_text(f"monitoring/date={DAY0 + dt.timedelta(days=day)}/{name}")
    return json.loads(text) if text else None


def champion() -> str:
    return str(make_registry().version_by_alias("champion").version)


def realized(day: int, key: str):
    return (read(day, "metrics.json")["numbers"]["realized"] or {}).get(key)


@pytest.mark.slow
def test_drift_at_day_20_retrains_promotes_and_error_recovers(pipeline):
    pipeline(
        {"source": trips(drift_start=(DAY0 + dt.timedelta(days=20)).isoformat()), "retrain": {"min_train_days": "5"}}
    )
    run_days(0, 39)
    decisions = {i: read(i, "retrain.json")["decision"] for i in range(40)}
    trained = [i for i, d in decisions.items() if d in ("promoted", "rejected")]
    # Fires k days after the onset, then waits for 5 labelled post-drift dates plus the gate dates.
    assert trained and 22 <= trained[0] <= 29, decisions
    first = read(trained[0], "retrain.json")
    assert first["decision"] == "promoted", first
    assert first["window"][0] >= (DAY0 + dt.timedelta(days=20)).isoformat()  # trained on post-drift data only
    assert first["gate"]["challenger"]["mae"] < first["gate"]["champion"]["mae"]
    assert all(decisions[i] == "not triggered" for i in range(20))
    assert {decisions[i] for i in range(20, trained[0])} <= {"not triggered", "deferred"}

    # Pinning: dates up to the promotion kept version 1, later dates score with the challenger.
    storage = make_storage()
    version = lambda i: storage.manifest("predictions", DAY0 + dt.timedelta(days=i)).model["version"]  # noqa: E731
    assert {version(i) for i in range(trained[0] + 1)} == {"1"}
    assert {version(i) for i in range(trained[0] + 1, 40)} == {first["challenger_version"]} == {champion()}

    pre = np.mean([realized(i, "mape") for i in range(5, 20)])  # labelled dates 3..17, pre-drift, version 1
    during = np.mean([realized(i, "mape") for i in range(22, trained[0] + 3)])  # drifted data, old model
    after = np.mean([realized(i, "mape") for i in range(trained[0] + 5, 40)])  # new model, labels arrived
    assert during > 1.3 * pre
    assert after < 1.15 * pre, (pre, during, after)


@pytest.mark.slow
def test_no_drift_means_no_retrain_in_40_dates(pipeline):
    run_days(0, 39)
    assert sum(read(i, "drift.json")["verdict"] == "no drift" for i in range(30)) >= 28
    assert {read(i, "retrain.json")["decision"] for i in range(40)} == {"not triggered"}
    assert champion() == "1"


def test_a_worse_challenger_is_rejected_and_the_champion_stays(pipeline):
    run_days(0, 2)
    # Any realized error now triggers, and the challenger gets one boosting round: it must lose.
    pipeline(
        {
            "retrain": {"error_increase": "-1", "gate_days": "1", "min_train_days": "1"},
            "training": {"params": json.dumps({"max_iter": 1})},
        }
    )
    run_days(3, 3)
    decision = read(3, "retrain.json")
    assert decision["decision"] == "rejected" and "not better" in decision["reason"]
    assert decision["gate"]["challenger"]["mae"] > decision["gate"]["champion"]["mae"]
    assert champion() == "1"
    tags = make_registry().client.get_model_version("trip_duration", decision["challenger_version"]).tags
    assert tags["gate"] == "rejected" and "challenger for 2026-05-04" in tags["reason"]


def test_rollback_restores_the_previous_version_and_records_why(pipeline):
    run_days(0, 0)
    registry = make_registry()
    mv = registry.client.get_model_version("trip_duration", "1")
    second = str(
        registry.client.create_model_version("trip_duration", source=mv.source, run_id=mv.run_id, tags=mv.tags).version
    )
    registry.set_alias("previous", "1")
    registry.set_alias("champion", second)
    day = DAY0 + dt.timedelta(days=1)
    result = luigi.build(
        [Rollback(date=day, reason="bad promotion")], local_scheduler=True, detailed_summary=True, log_level="WARNING"
    )
    assert result.status == LuigiStatusCode.SUCCESS
    assert champion() == "1" and str(registry.version_by_alias("previous").version) == second
    assert read(1, "rollback.json") == {
        "decision": "rolled back",
        "reason": "bad promotion",
        "from_version": second,
        "to_version": "1",
        "date": str(day),
    }
    assert "bad promotion" in registry.client.get_model_version("trip_duration", second).tags["rolled_back"]
    run_days(1, 1)
    assert make_storage().manifest("predictions", day).model["version"] == "1"
