"""Alerts of the daily job, end to end: DailyScore through luigi.build, webhooks on 127.0.0.1 (one up, one down)."""

from __future__ import annotations

import datetime as dt
import json
import queue

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipelines import DailyScore
from tasks.config import make_registry, make_storage, project_name
from tasks.retrain import Rollback
from tests.conftest import free_port, trips
from tests.servers import Webhook

DAY0 = dt.date(2026, 5, 1)
FAST = {"timeout_seconds": "2", "retries": "1", "backoff_seconds": "0.05"}


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def posts(hook: Webhook) -> list[dict]:
    """Every POST the webhook received so far (the run is over: nothing more is on its way)."""
    out = []
    while True:
        try:
            out.append(hook.received.get_nowait())
        except queue.Empty:
            return out


def texts(received: list[dict], title: str) -> list[str]:
    """The lines of the received messages that are alerts of this title ("Drift onset", "Date failed")."""
    return [line for r in received for line in r["json"]["text"].splitlines() if line.startswith(title + " (")]


def monitoring(day: dt.date, name: str):
    text = make_storage().read_text(f"monitoring/date={day}/{name}")
    return json.loads(text) if text else None


@pytest.fixture
def hook():
    with Webhook() as server:
        yield server


def test_drift_setting_in_on_day_3_sends_one_onset_and_a_webhook_that_is_down_never_fails_a_date(
    pipeline, hook, tmp_path, capfd, caplog
):
    down = f"http://127.0.0.1:{free_port()}/services/T9/B9/downSECRETpath"  # nothing listens there
    pipeline(
        {
            "source": trips(drift_start=(DAY0 + dt.timedelta(days=3)).isoformat()),
            "alerts": {"webhooks": f"{hook.url}, {down}", **FAST},
        }
    )
    for i in range(6):  # one date at a time, as the daily cron runs them
        result = build(DailyScore(DAY0 + dt.timedelta(days=i)))
        assert result.status == LuigiStatusCode.SUCCESS, f"day {i}: {result.summary_text}"

    verdicts = [monitoring(DAY0 + dt.timedelta(days=i), "drift.json")["verdict"] for i in range(6)]
    assert verdicts[3:] == ["drift"] * 3 and "drift" not in verdicts[:3], verdicts
    received = posts(hook)
    onsets = texts(received, "Drift onset")
    assert len(onsets) == 1, onsets  # days 4 and 5 still drifted: no second alert
    onset = DAY0 + dt.timedelta(days=3)
    assert f"· {onset} ·" in onsets[0] and "drift in" in onsets[0]

    # The onset date records both deliveries: sent to the one, failed (after its retry) to the one that is down.
    (entry,) = [e for e in monitoring(onset, "alerts.json")["sent"] if e["alerts"][0]["kind"] == "drift_onset"]
    by_status = {d["status"]: d for d in entry["deliveries"]}
    assert set(by_status) == {"sent", "failed"}
    assert by_status["failed"]["attempts"] == 2 and by_status["failed"]["target"].startswith("http://127.0.0.1:")
    assert "Connection" in by_status["failed"]["error"] or "refused" in by_status["failed"]["error"]
    assert monitoring(DAY0 + dt.timedelta(days=4), "alerts.json") is None or all(
        e["alerts"][0]["kind"] != "drift_onset" for e in monitoring(DAY0 + dt.timedelta(days=4), "alerts.json")["sent"]
    )
    state = json.loads(make_storage().read_text("monitoring/alerts.json"))
    (drift_key,) = [k for k in state["conditions"] if k.startswith("drift_onset/")]
    assert state["conditions"][drift_key]["since"] == onset.isoformat() and state["conditions"][drift_key]["holds"]
    # the estimated breach was evaluated on every date from estimated.json and the version's holdout MAE (its tag)
    (estimated_key,) = [k for k in state["conditions"] if k.startswith("estimated_breach/")]
    assert state["conditions"][estimated_key]["last"] == (DAY0 + dt.timedelta(days=5)).isoformat()

    # Webhook URLs are secrets: their paths are nowhere in the run's output, logs or the storage.
    secrets = ("/hooks/T0/B0/xyzSECRETpath", "/services/T9/B9/downSECRETpath")
    # What the run printed and logged: batchml's log handler writes to stderr, or, once another test configured
    # logging in this process, its records reach pytest's handler.
    output = capfd.readouterr()
    shown = output.out + output.err + caplog.text
    assert "alert webhook http://127.0.0.1:" in shown  # the deliveries were logged, by their label
    assert not [s for s in secrets if s in shown]
    written = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert len(written) > 50
    assert not [p for p in written if any(s.encode() in p.read_bytes() for s in secrets)]


def test_a_failed_date_sends_one_alert_naming_its_cause_and_a_rerun_that_fails_again_sends_none(pipeline, hook, day):
    pipeline({"source": trips(bad_row_share=0.2), "alerts": {"webhooks": hook.url, **FAST}})
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED
    (line,) = texts(posts(hook), "Date failed")
    assert line.startswith(f"Date failed ({project_name()} · {day}): ExtractFeatures failed: RejectedShareTooHigh: ")
    (entry,) = monitoring(day, "alerts.json")["sent"]
    assert [d["status"] for d in entry["deliveries"]] == ["sent"]
    assert entry["alerts"][0]["details"]["task"] == "ExtractFeatures"


def test_no_alert_state_is_kept_when_no_webhook_or_email_is_set(pipeline, day):
    pipeline({"source": trips(bad_row_share=0.2)})
    assert build(DailyScore(day)).status == LuigiStatusCode.FAILED
    assert make_storage().read_text("monitoring/alerts.json") is None
    assert monitoring(day, "alerts.json") is None


def test_a_rejection_and_a_rollback_are_told(pipeline, hook):
    pipeline({"alerts": {"webhooks": hook.url, **FAST}, "retrain": {"triggers": "drift, estimated, realized"}})
    for i in range(3):
        assert build(DailyScore(DAY0 + dt.timedelta(days=i))).status == LuigiStatusCode.SUCCESS
    # Any realized error now triggers, and the challenger gets one boosting round: it must lose.
    pipeline(
        {
            "alerts": {"webhooks": hook.url, **FAST},
            "retrain": {"error_increase": "-1", "gate_days": "1", "min_train_days": "1"},
            "training": {"params": json.dumps({"max_iter": 1})},
        }
    )
    day = DAY0 + dt.timedelta(days=3)
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    decision = monitoring(day, "retrain.json")
    assert (decision["decision"], decision["trigger"]) == ("rejected", "realized")
    (line,) = texts(posts(hook), "Candidate rejected")
    assert f"v{decision['challenger_version']} rejected, v1 stays" in line

    registry = make_registry()
    registry.set_alias("previous", "1")
    registry.set_alias("champion", decision["challenger_version"])
    assert build(Rollback(date=day, reason="bad promotion")).status == LuigiStatusCode.SUCCESS
    assert build(Rollback(date=day, reason="bad promotion")).status == LuigiStatusCode.SUCCESS  # done: nothing new
    (line,) = texts(posts(hook), "Rollback")
    assert line.endswith(f"v{decision['challenger_version']} rolled back to v1: bad promotion")
