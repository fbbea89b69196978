import datetime as dt

from batchml.retrain.policy import DayResult, RetrainPolicy, retrain_decision

D = dt.date(2026, 7, 10)
POLICY = RetrainPolicy(k=3, n=5, error_increase=0.3, cooldown_days=7)


def days(verdicts, mae=None, holdout=100.0):
    out = []
    for i, v in enumerate(verdicts):
        out.append(DayResult(D - dt.timedelta(days=len(verdicts) - 1 - i), v, mae, holdout))
    return out


def decide(results, **kw):
    return retrain_decision(D, results, **{"last_retrain": None, "latest_scored": D, "policy": POLICY, **kw})


def test_k_of_n_drifted_dates_trigger():
    assert decide(days(["no drift", "drift", "no drift", "drift", "drift"]))["decision"] == "triggered"
    assert decide(days(["drift", "drift", "no drift", "no drift", "drift", "no drift"]))["decision"] == "not triggered"


def test_only_the_last_n_dates_count():
    out = decide(days(["drift"] * 3 + ["no drift"] * 5))
    assert out["decision"] == "not triggered" and len(out["dates_considered"]) == 5


def test_realized_error_increase_triggers():
    out = decide(days(["no drift"] * 5, mae=135.0))
    assert out["decision"] == "triggered" and "+35%" in out["reason"]
    assert decide(days(["no drift"] * 5, mae=125.0))["decision"] == "not triggered"


def test_cooldown_blocks_a_retrain():
    out = decide(days(["drift"] * 5), last_retrain=D - dt.timedelta(days=3))
    assert out["decision"] == "not triggered" and out["reason"].startswith("cooldown")
    assert decide(days(["drift"] * 5), last_retrain=D - dt.timedelta(days=7))["decision"] == "triggered"


def test_a_backfilled_date_never_triggers_unless_allowed():
    later = D + dt.timedelta(days=20)
    out = decide(days(["drift"] * 5), latest_scored=later)
    assert out["decision"] == "not triggered" and out["reason"].startswith("backfill")
    allowed = RetrainPolicy(k=3, n=5, allow_in_backfill=True)
    assert decide(days(["drift"] * 5), latest_scored=later, policy=allowed)["decision"] == "triggered"


def test_dates_after_the_decision_date_are_ignored():
    future = [DayResult(D + dt.timedelta(days=i), "drift") for i in range(1, 6)]
    assert decide(days(["no drift"] * 5) + future)["decision"] == "not triggered"


def test_the_window_starts_at_the_drift_onset_and_waits_for_enough_labels():
    from batchml.retrain.policy import drift_onset, training_window

    results = days(["no drift", "no drift", "drift", "drift", "drift"])
    onset = drift_onset(D, results)
    assert onset == D - dt.timedelta(days=2)
    kw = dict(label_lag=2, gate_days=1, window_days=5, min_days=2)
    assert training_window(D, onset=onset, **kw) is None  # window would end before the onset
    later = D + dt.timedelta(days=4)
    assert training_window(later, onset=onset, **kw) == (onset, later - dt.timedelta(days=3))
    assert training_window(D, onset=None, **kw) == (D - dt.timedelta(days=7), D - dt.timedelta(days=3))
