"""A date's alerts from its documents (batchml.monitor.notify), [alerts] and where webhook URLs may show."""

from __future__ import annotations

import datetime as dt
import json
import queue

import luigi
import luigi.notifications
import pytest

from batchml.base.redact import forget, redact
from batchml.monitor.alerts import Alert, AlertSettings, Cleared
from batchml.monitor.notify import (
    Delivery,
    breaches_observed,
    decision_observed,
    drift_observed,
    estimated_ratio,
    notify,
)
from batchml.store.storage import Storage
from pipelines.defaults import redact_output, secret_urls
from tests.servers import Webhook

P, M = "demo", "m"
D = dt.date(2026, 6, 1)
HOLDOUT = {("3", "mae"): 4.0, ("3", "roc_auc"): 0.85}


def holdout_of(version: str, metric: str) -> float | None:
    return HOLDOUT.get((version, metric))


def estimate(task: str = "regression", version: str = "3", **metrics) -> dict:
    """An estimated.json as EstimatePerformance writes it (the keys notify reads)."""
    return {"version": version, "status": "fitted on reference", "task": task, "rows": 2000, "metrics": metrics}


def breaches(day=D, metrics=None, estimated=None, max_ratio=1.5):
    return breaches_observed(
        P, M, day, metrics=metrics, estimated=estimated, holdout_of=holdout_of, max_ratio=max_ratio
    )


def test_an_estimated_breach_is_the_estimated_primary_metric_against_the_holdout_by_the_checks_ratio():
    # regression: estimated MAE 6.3 against a holdout MAE of 4.0 is 1.575 x, over the 1.5 allowed
    (alert,) = breaches(estimated=estimate(mae=6.3, rmse=9.0))
    assert isinstance(alert, Alert) and (alert.kind, alert.version, alert.key) == (
        "estimated_breach",
        "3",
        f"estimated_breach/{P}/{M}",
    )
    assert alert.details == {"metric": "mae", "estimated": 6.3, "ratio": pytest.approx(6.3 / 4.0, abs=1e-4)}
    assert alert.summary == "estimated mae 6.3: 1.57 x the holdout value (limit 1.5)"
    # 5.9 / 4.0 = 1.475: within, the condition is observed not to hold
    assert breaches(estimated=estimate(mae=5.9)) == [Cleared.of("estimated_breach", P, D, model=M)]
    # a classifier: ROC AUC, higher is better: 0.85 / 0.55 = 1.545 is worse than 1.5 allows, 0.85 / 0.6 = 1.417 is not
    assert estimated_ratio(estimate("classification", roc_auc=0.55, accuracy=0.7), holdout_of) == pytest.approx(
        0.85 / 0.55
    )
    assert [o.kind for o in breaches(estimated=estimate("classification", roc_auc=0.55))] == ["estimated_breach"]
    assert isinstance(breaches(estimated=estimate("classification", roc_auc=0.6))[0], Cleared)


def test_an_estimate_that_is_absent_or_cannot_be_compared_is_not_evaluated():
    assert breaches(estimated=None) == []
    assert breaches(estimated=estimate(mae=None, rmse=None)) == []  # "not yet available": NaN written as null
    assert breaches(estimated=estimate(version="7", mae=60.0)) == []  # a version without a holdout value
    assert breaches(estimated={**estimate(mae=60.0), "task": None}) == []


def test_a_realized_breach_is_the_realized_error_check_and_pending_labels_say_nothing():
    def metrics(value, ok):
        check = {"name": "realized_error_ratio", "value": value, "bound": "<= 1.5", "ok": ok, "severity": "warn"}
        return {"checks": [check], "primary_metric": "mae", "labelled_date": "2026-05-30", "model": {"version": "3"}}

    (alert,) = breaches(metrics=metrics(1.8, False))
    assert (alert.kind, alert.version, alert.summary) == (
        "realized_breach",
        "3",
        "realized mae 1.8 x the holdout value, outside <= 1.5",
    )
    assert breaches(metrics=metrics(1.2, True)) == [Cleared.of("realized_breach", P, D, model=M)]
    assert breaches(metrics=metrics(None, True)) == []


def test_drift_and_the_gates_decisions_as_observations():
    drift = {"verdict": "drift", "drifted_features": ["a", "b"], "drifted_share": 0.2, "model": {"version": "3"}}
    (alert,) = drift_observed(P, M, D, drift)
    assert (alert.kind, alert.summary, alert.version) == ("drift_onset", "drift in 2 inputs: a, b", "3")
    assert drift_observed(P, M, D, {"verdict": "no drift"}) == [Cleared.of("drift_onset", P, D, model=M)]
    assert drift_observed(P, M, D, {"verdict": "collecting baseline (2 of 7 dates)"}) == []
    decision = {"decision": "promoted", "challenger_version": "4", "champion_version": "3", "reason": "mae 4.1 < 4.5"}
    (promo,) = decision_observed(P, M, D, decision)
    assert (promo.kind, promo.version, promo.summary) == ("promotion", "4", "v4 replaces v3: mae 4.1 < 4.5")
    assert [a.kind for a in decision_observed(P, M, D, {**decision, "decision": "rejected"})] == ["rejection"]
    assert decision_observed(P, M, D, {"decision": "not triggered"}) == []


def test_notify_sends_one_alert_per_onset_and_records_every_delivery_under_its_date(tmp_path):
    storage = Storage(tmp_path)
    observed = {0: 6.3, 1: 6.5, 2: 5.0, 3: 7.0}  # breach, still, ended, breach again
    with Webhook() as hook:
        delivery = Delivery(AlertSettings(webhooks=(hook.url,), timeout_seconds=2, retries=0))
        for i, mae in observed.items():
            day = D + dt.timedelta(days=i)
            notify(storage, day, breaches(day, estimated=estimate(mae=mae)), delivery)
        got = []
        while True:
            try:
                got.append(hook.received.get_nowait())
            except queue.Empty:
                break
    assert [r["json"]["text"].split(":", 1)[0] for r in got] == [
        f"Estimated performance breach ({P} · {D} · {M} v3)",
        f"Estimated performance breach ({P} · {D + dt.timedelta(days=3)} · {M} v3)",
    ]
    first = json.loads(storage.read_text(f"monitoring/date={D}/alerts.json"))
    (entry,) = first["sent"]
    assert [a["kind"] for a in entry["alerts"]] == ["estimated_breach"]
    assert [(d["channel"], d["status"], d["attempts"]) for d in entry["deliveries"]] == [("webhook", "sent", 1)]
    assert storage.read_text(f"monitoring/date={D + dt.timedelta(days=1)}/alerts.json") is None
    state = json.loads(storage.read_text("monitoring/alerts.json"))
    assert state["conditions"][f"estimated_breach/{P}/{M}"]["since"] == (D + dt.timedelta(days=3)).isoformat()


def test_notify_never_raises_and_keeps_nothing_when_alerts_go_nowhere(tmp_path):
    storage = Storage(tmp_path)
    assert notify(storage, D, breaches(estimated=estimate(mae=9.0)), Delivery(AlertSettings())) == []
    assert storage.read_text("monitoring/alerts.json") is None
    storage.write_text("monitoring/alerts.json", '{"version": 99}')  # a state this code cannot read
    delivery = Delivery(AlertSettings(webhooks=("http://127.0.0.1:9/x",), timeout_seconds=1, retries=0))
    assert notify(storage, D, breaches(estimated=estimate(mae=9.0)), delivery) == []


def test_email_goes_through_the_sender_luigi_provides_with_its_email_settings(tmp_path):
    """Unit level: Luigi's send_email with [email] method=smtp needs an SMTP server; the sender is captured here."""
    from tasks.alerts import delivery

    config = luigi.configuration.get_config()
    saved = {s: dict(config.items(s)) if config.has_section(s) else None for s in ("alerts", "email")}
    try:
        for section, values in {
            "alerts": {"email": "true"},
            "email": {"receiver": "ops@example.org", "sender": "b@x.org"},
        }.items():
            if not config.has_section(section):
                config.add_section(section)
            for key, value in values.items():
                config.set(section, key, value)
        chosen = delivery()
    finally:
        for section, values in saved.items():
            config.remove_section(section)
            if values is not None:
                config.add_section(section)
                for key, value in values.items():
                    config.set(section, key, value)
    assert chosen.email_sender is luigi.notifications.send_email
    assert (chosen.sender, chosen.recipients, chosen.enabled) == ("b@x.org", ("ops@example.org",), True)
    calls = []
    captured = Delivery(chosen.settings, lambda *a: calls.append(a), chosen.sender, chosen.recipients)
    (record,) = notify(Storage(tmp_path), D, breaches(estimated=estimate(mae=9.0)), captured)
    assert (record.channel, record.status) == ("email", "sent")
    ((subject, body, sender, recipients),) = calls
    assert subject.startswith("[batchml] Estimated performance breach (demo") and recipients == ["ops@example.org"]


def test_webhook_urls_given_in_a_setting_or_on_the_command_line_are_secrets_of_the_output():
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read_string(
        "[alerts]\nwebhooks = https://hooks.slack.com/services/T0/B0/aaaSECRET,\n  https://chat.example.org/h/bbbSECRET\n"
    )
    argv = ["DailyScore", "--alerts-webhooks", '["https://x.example.org/h/cccSECRET"]']
    assert secret_urls(config, argv) == [
        "https://hooks.slack.com/services/T0/B0/aaaSECRET",
        "https://chat.example.org/h/bbbSECRET",
        "https://x.example.org/h/cccSECRET",
    ]
    try:
        redact_output(config, argv)
        line = "POST https://hooks.slack.com/services/T0/B0/aaaSECRET, path /h/bbbSECRET and /h/cccSECRET"
        assert "SECRET" not in redact(line)
    finally:
        forget()


def test_a_webhook_that_is_not_an_http_url_stops_the_start_shown_by_its_label_only():
    from pipelines.startup import value_problem
    from tasks.config import alerts

    param = dict(alerts.get_params())["webhooks"]
    problem = value_problem(param, "https://hooks.slack.com/services/T0/B0/okSECRET, hooks.example.org/h/badSECRET")
    assert problem.startswith("ValueError: <webhook> #") and problem.endswith(" is not an http(s) URL")
    assert "SECRET" not in problem
    assert value_problem(param, "https://hooks.slack.com/services/T0/B0/okSECRET") == ""
    assert value_problem(dict(alerts.get_params())["events"], "drift_onset, drift") == (
        "ValueError: 'drift' not among failed_date, drift_onset, estimated_breach, realized_breach, promotion, "
        "rejection, rollback"
    )


def _notify_many(root: str, worker: int, n: int) -> None:
    """Tell n onsets of conditions of this worker's own (one subject each), one notify call each."""
    storage = Storage(root)
    delivery = Delivery(AlertSettings(email=True), lambda *a: None, "b@x.org", ("ops@example.org",))
    for i in range(n):
        onset = Alert("realized_breach", P, D.isoformat(), "worse", model=M, subject=f"w{worker}-{i}")
        notify(storage, D, [onset], delivery)


def test_notify_from_processes_at_once_keeps_every_condition_in_the_state(tmp_path):
    """Tasks of other dates (--workers N) notify at the same time: the state's read-decide-write is one at a time."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_notify_many, args=(str(tmp_path), w, 25)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    state = json.loads(Storage(tmp_path).read_text("monitoring/alerts.json"))
    held = {key for key, c in state["conditions"].items() if c["holds"]}
    assert held == {f"realized_breach/{P}/{M}/w{w}-{i}" for w in range(6) for i in range(25)}
