"""Alerts: one per onset (also with dates out of order), and delivery to a real local webhook that may be down, slow or
failing."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from dataclasses import replace

import pytest

from batchml.monitor.alerts import (
    KINDS,
    TITLES,
    Alert,
    AlertError,
    AlertSettings,
    AlertState,
    Cleared,
    decide,
    deliver,
    email_message,
    label,
    payload,
)
from tests.conftest import free_port
from tests.servers import Webhook

P = "demo"


def drift(date: str, version: str = "3", model: str = "m") -> Alert:
    return Alert(
        "drift_onset", P, date, "drift in 2 of 9 inputs", model=model, version=version, details={"share_drifted": 0.22}
    )


def cleared(date: str, model: str = "m") -> Cleared:
    return Cleared.of("drift_onset", P, date, model=model)


def run(dates_observed, state: AlertState | None = None) -> tuple[list[list[str]], AlertState]:
    """Feed one observation at a time through the state as saved to JSON and read back; the dates alerted at each
    step."""
    state = state or AlertState()
    sent = []
    for item in dates_observed:
        out, state = decide(state, [item])
        state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
        sent.append([a.date for a in out])
    return sent, state


# Onsets


def test_a_condition_alerts_once_on_its_onset_and_again_after_it_ended():
    sent, state = run(
        [
            drift("2026-06-01"),
            drift("2026-06-02"),
            drift("2026-06-03"),
            cleared("2026-06-04"),
            drift("2026-06-05"),
            drift("2026-06-06"),
        ]
    )
    assert sent == [["2026-06-01"], [], [], [], ["2026-06-05"], []]
    assert state.to_dict()["conditions"]["drift_onset/demo/m"] == {
        "holds": True,
        "last": "2026-06-06",
        "since": "2026-06-05",
        "ended": None,
        "version": "3",
    }


def test_dates_not_observed_do_not_end_a_condition():
    """A gap (dates not run, labels not in yet) is not an end: only an observation that it does not hold is."""
    sent, _ = run([drift("2026-06-01"), drift("2026-06-09")])
    assert sent == [["2026-06-01"], []]


def test_a_rerun_of_the_same_date_sends_nothing_new():
    sent, _ = run([drift("2026-06-01"), drift("2026-06-01")])
    assert sent == [["2026-06-01"], []]


def test_a_rerun_that_clears_the_onset_date_ends_it_and_a_later_onset_alerts():
    sent, state = run([drift("2026-06-01"), cleared("2026-06-01"), drift("2026-06-02")])
    assert sent == [["2026-06-01"], [], ["2026-06-02"]]


def test_an_older_date_never_reopens_ends_or_restarts_a_newer_state():
    # Ended on the 10th: a backfilled 5th that holds does not re-open it.
    sent, state = run([drift("2026-06-08"), cleared("2026-06-10"), drift("2026-06-05")])
    assert sent == [["2026-06-08"], [], []]
    assert state.conditions["drift_onset/demo/m"].holds is False
    assert state.conditions["drift_onset/demo/m"].last == "2026-06-10"
    # Holding since the 10th: a backfilled 7th that clears does not end it, and the 11th sends nothing.
    sent, state = run([drift("2026-06-10"), cleared("2026-06-07"), drift("2026-06-11")])
    assert sent == [["2026-06-10"], [], []]
    assert state.conditions["drift_onset/demo/m"].since == "2026-06-10"
    # Never seen before: the first date observed decides, whatever its place in the calendar.
    sent, _ = run([drift("2026-06-20"), drift("2026-06-03"), cleared("2026-06-01")])
    assert sent == [["2026-06-20"], [], []]


def test_observations_of_one_call_are_taken_in_date_order():
    out, state = decide(AlertState(), [drift("2026-06-03"), cleared("2026-06-02"), drift("2026-06-01")])
    assert [a.date for a in out] == ["2026-06-01", "2026-06-03"]
    assert state.conditions["drift_onset/demo/m"].since == "2026-06-03"


def test_a_new_version_breaching_is_a_new_onset():
    sent, _ = run(
        [drift("2026-06-01", version="3"), drift("2026-06-02", version="3"), drift("2026-06-03", version="4")]
    )
    assert sent == [["2026-06-01"], [], ["2026-06-03"]]


def test_conditions_are_kept_apart_by_kind_model_and_subject():
    a = Alert("estimated_breach", P, "2026-06-01", "estimated MAE 6.1 > 5.0", model="m", version="3", subject="mae")
    b = Alert("estimated_breach", P, "2026-06-01", "estimated RMSE 9 > 8", model="m", version="3", subject="rmse")
    c = Alert("realized_breach", P, "2026-06-01", "MAE 6.3 > 5.0", model="m", version="3", subject="mae")
    out, state = decide(AlertState(), [a, b, c, drift("2026-06-01"), drift("2026-06-01", model="other")])
    assert len(out) == 5
    out, _ = decide(
        state,
        [Cleared.of("estimated_breach", P, "2026-06-02", model="m", subject="rmse"), replace(a, date="2026-06-02")],
    )
    assert out == []


def test_events_alert_once_per_key_and_not_again_on_a_rerun():
    promo = Alert("promotion", P, "2026-06-02", "version 4 promoted (MAE 4.1 < 4.5)", model="m", version="4")
    rollback = Alert("rollback", P, "2026-06-05", "rolled back to version 3", model="m", version="3")
    out, state = decide(AlertState(), [promo])
    assert out == [promo]
    out, state = decide(state, [promo, rollback])
    assert out == [rollback]
    assert state.to_dict()["sent"] == {
        "promotion/demo/m/4/2026-06-02": "2026-06-02",
        "rollback/demo/m/3/2026-06-05": "2026-06-05",
    }


def test_a_failed_date_is_a_condition_of_the_project():
    def failed(date):
        return Alert("failed_date", P, date, "Predictions failed: source unreachable")

    out, state = decide(AlertState(), [failed("2026-06-01")])
    out2, state = decide(state, [failed("2026-06-02")])
    out3, state = decide(state, [Cleared.of("failed_date", P, "2026-06-03"), failed("2026-06-04")])
    assert [[a.date for a in o] for o in (out, out2, out3)] == [["2026-06-01"], [], ["2026-06-04"]]


def test_bad_alerts_and_states_are_refused_naming_the_rule():
    with pytest.raises(AlertError, match="'drift' is not one of failed_date"):
        Alert("drift", P, "2026-06-01", "x")
    with pytest.raises(AlertError, match="drift_onset alert date: '06/01/2026' is not a date"):
        Alert("drift_onset", P, "06/01/2026", "x")
    with pytest.raises(AlertError, match="summary must be one line"):
        Alert("drift_onset", P, "2026-06-01", "a\nb")
    with pytest.raises(AlertError, match="only a condition can be cleared"):
        Cleared.of("promotion", P, "2026-06-01")
    with pytest.raises(AlertError, match="monitoring/alerts.json: version 7 is not 1"):
        AlertState.from_dict({"version": 7}, "monitoring/alerts.json")
    with pytest.raises(AlertError, match=r"\[alerts\] events: 'drift' not among"):
        AlertSettings(events=("drift",))
    with pytest.raises(AlertError, match=r"\[alerts\] retries must be >= 0"):
        AlertSettings(retries=-1)
    with pytest.raises(AlertError, match=r"\[alerts\] webhooks: ftp://\*\*\*@host/\*\*\* #\w{8} is not an http"):
        AlertSettings(webhooks=("ftp://u:pw-secret@host/x",))
    assert AlertState.from_dict(None) == AlertState()


# Delivery, against a real HTTP server on 127.0.0.1


FAST = {"timeout_seconds": 2, "retries": 2, "backoff_seconds": 0.05}


def promotion(date="2026-06-02") -> Alert:
    return Alert("promotion", P, date, "version 4 promoted", model="m", version="4", details={"holdout_mae": 4.1})


def test_every_webhook_receives_the_alerts_as_slack_compatible_json():
    alerts = [drift("2026-06-01"), promotion()]
    with Webhook() as one, Webhook() as two:
        records = deliver(alerts, AlertSettings(webhooks=(one.url, two.url), **FAST))
        got = [one.get(), two.get()]
    assert [r.status for r in records] == ["sent", "sent"] and [r.attempts for r in records] == [1, 1]
    assert [r.http_status for r in records] == [200, 200]
    for request in got:
        assert request["path"] == "/hooks/T0/B0/xyzSECRETpath"
        assert request["headers"]["Content-Type"] == "application/json"
        message = request["json"]
        assert message == payload(alerts)
        assert message["text"].splitlines() == [
            "Drift onset (demo · 2026-06-01 · m v3): drift in 2 of 9 inputs",
            "Promotion (demo · 2026-06-02 · m v4): version 4 promoted",
        ]
        assert [b["type"] for b in message["blocks"]] == ["section", "section"]
        assert message["blocks"][0]["text"] == {
            "type": "mrkdwn",
            "text": "*Drift onset* — demo · 2026-06-01 · m v3\ndrift in 2 of 9 inputs\n• share_drifted: 0.22",
        }
    assert records[0].alerts == ("drift_onset/demo/m", "promotion/demo/m/4/2026-06-02")


def test_consecutive_dates_of_one_condition_reach_the_webhook_once():
    with Webhook() as hook:
        settings = AlertSettings(webhooks=(hook.url,), **FAST)
        state, records = AlertState(), []
        for day in ("2026-06-01", "2026-06-02", "2026-06-03"):
            out, state = decide(state, [drift(day)])
            records.append(deliver(out, settings))
        first = hook.get()
        assert hook.received.empty()  # a request is queued before it is answered, so all are queued by now
    assert [len(r) for r in records] == [1, 0, 0]
    assert [b["text"]["text"].splitlines()[0] for b in first["json"]["blocks"]] == [
        "*Drift onset* — demo · 2026-06-01 · m v3"
    ]


def test_only_the_kinds_listed_in_events_are_sent():
    with Webhook() as hook:
        records = deliver(
            [drift("2026-06-01"), promotion()], AlertSettings(webhooks=(hook.url,), events=("promotion",), **FAST)
        )
        got = hook.get()
    assert records[0].alerts == ("promotion/demo/m/4/2026-06-02",)
    assert [line.split(" (")[0] for line in got["json"]["text"].splitlines()] == ["Promotion"]
    assert deliver([drift("2026-06-01")], AlertSettings(webhooks=(hook.url,), events=("promotion",), **FAST)) == []


def test_a_500_is_retried_until_the_200():
    with Webhook(statuses=[500, 503]) as hook:
        (record,) = deliver([promotion()], AlertSettings(webhooks=(hook.url,), **FAST))
        bodies = [hook.get()["json"] for _ in range(3)]
    assert (record.status, record.attempts, record.http_status, record.error) == ("sent", 3, 200, None)
    assert bodies[0] == bodies[1] == bodies[2]


def test_retries_are_bounded_and_a_4xx_is_not_retried():
    with Webhook(statuses=[500, 500, 500, 500]) as hook:
        (record,) = deliver([promotion()], AlertSettings(webhooks=(hook.url,), **{**FAST, "retries": 1}))
        assert [hook.get()["path"] for _ in range(2)]
    assert (record.status, record.attempts, record.http_status) == ("failed", 2, 500)
    assert record.error == "HTTPError: Internal Server Error"
    with Webhook(statuses=[404]) as hook:
        (record,) = deliver([promotion()], AlertSettings(webhooks=(hook.url,), **FAST))
    assert (record.status, record.attempts, record.http_status) == ("failed", 1, 404)


def test_a_webhook_that_is_down_is_recorded_in_bounded_time_and_the_others_still_get_theirs():
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    settings = dict(FAST, timeout_seconds=1, retries=2, backoff_seconds=0.05)
    with Webhook() as up:
        start = time.monotonic()
        down, sent = deliver([promotion()], AlertSettings(webhooks=(closed, up.url), **settings))
        elapsed = time.monotonic() - start
        assert up.get()["json"]["text"].startswith("Promotion")
    assert (down.status, down.attempts, down.http_status) == ("failed", 3, None)
    assert "Connection refused" in down.error
    assert sent.status == "sent"
    assert elapsed < AlertSettings(**settings).longest_seconds()


def test_a_webhook_that_never_answers_times_out_on_every_attempt():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings = AlertSettings(
            webhooks=(f"http://127.0.0.1:{silent.getsockname()[1]}/hook",),
            timeout_seconds=0.3,
            retries=1,
            backoff_seconds=0.05,
        )
        start = time.monotonic()
        (record,) = deliver([promotion()], settings)
        elapsed = time.monotonic() - start
    assert (record.status, record.attempts) == ("failed", 2)
    assert "timed out" in record.error
    assert 0.6 <= elapsed < settings.longest_seconds() + 0.5


def test_a_password_or_token_in_a_webhook_url_is_never_recorded_nor_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="batchml.monitor.alerts")
    secrets = ("hunter2pass", "tok3nvalue", "xyzSECRETpath")
    with Webhook(statuses=[500]) as hook:
        port = hook.server.server_address[1]
        url = f"http://alerts:hunter2pass@127.0.0.1:{port}/hooks/T0/B0/xyzSECRETpath?token=tok3nvalue"
        down = f"http://alerts:hunter2pass@127.0.0.1:{free_port()}/hooks/xyzSECRETpath?token=tok3nvalue"
        records = deliver([promotion()], AlertSettings(webhooks=(url, down), **FAST))
        first, second = hook.get(), hook.get()
    # The credentials went where they belong: basic auth, and the path and query as given.
    assert first["headers"]["Authorization"] == "Basic " + base64.b64encode(b"alerts:hunter2pass").decode()
    assert first["path"] == "/hooks/T0/B0/xyzSECRETpath?token=tok3nvalue" and second["path"] == first["path"]
    assert [(r.status, r.attempts) for r in records] == [("sent", 2), ("failed", 3)]
    written = json.dumps([r.to_dict() for r in records])
    assert records[0].target == label(url) == f"http://***@127.0.0.1:{port}/*** #{label(url)[-8:]}"
    assert label(url) != label(down)
    assert "retry 1 of 2" in caplog.text and "failed after 3 attempts" in caplog.text
    for secret in secrets:
        assert secret not in written
        assert secret not in caplog.text


def test_email_goes_through_the_injected_sender_and_a_failing_sender_is_recorded():
    calls = []

    def luigi_like(subject, message, sender, recipients):
        calls.append((subject, message, sender, recipients))

    alerts = [drift("2026-06-01"), promotion()]
    (record,) = deliver(
        alerts,
        AlertSettings(email=True),
        email_sender=luigi_like,
        sender="batch@example.org",
        recipients=["ops@example.org"],
    )
    assert (record.channel, record.status, record.alerts) == (
        "email",
        "sent",
        ("drift_onset/demo/m", "promotion/demo/m/4/2026-06-02"),
    )
    ((subject, message, sender, recipients),) = calls
    assert subject == "[batchml] demo: 2 alerts (drift onset, promotion)"
    assert message.splitlines()[:3] == [
        "Drift onset (demo · 2026-06-01 · m v3): drift in 2 of 9 inputs",
        "  kind: drift_onset",
        "  key: drift_onset/demo/m",
    ]
    assert (sender, recipients) == ("batch@example.org", ["ops@example.org"])
    assert email_message([promotion()])[0] == "[batchml] Promotion (demo · 2026-06-02 · m v4): version 4 promoted"

    def broken(*args):
        raise ConnectionRefusedError("smtp://mailer:mailpass99@smtp.local:25 refused")

    (record,) = deliver(alerts, AlertSettings(email=True), email_sender=broken)
    assert (record.status, record.attempts) == ("failed", 1)
    assert "mailpass99" not in json.dumps(record.to_dict()) and "refused" in record.error


def test_secrets_in_an_alert_are_redacted_before_they_leave():
    leak = Alert(
        "failed_date",
        P,
        "2026-06-01",
        "MLflow unreachable at http://u:pw-leaked9@mlflow:5000",
        details={"cause": "?token=abcd1234"},
    )
    message = json.dumps(payload([leak])) + "".join(email_message([leak])) + json.dumps(leak.to_dict())
    assert "pw-leaked9" not in message and "abcd1234" not in message


def test_every_kind_has_a_title():
    assert set(TITLES) == set(KINDS)
    assert [
        line.split(" (")[0] for line in payload([Alert(k, P, "2026-06-01", "s") for k in KINDS])["text"].splitlines()
    ] == [TITLES[k] for k in KINDS]
