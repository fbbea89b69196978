"""Retraining triggers as a list: drift, estimated, realized; each with its threshold, the decision naming the one
that fired."""

import datetime as dt

import pytest

from batchml.retrain.policy import DayResult, RetrainPolicy, retrain_decision

D = dt.date(2026, 7, 10)


def day(i: int, verdict="no drift", realized=None, estimated=None) -> DayResult:
    """Date D - i, with its drift verdict, realized-error ratio and estimated ratio (metric / holdout, >1 worse)."""
    return DayResult(D - dt.timedelta(days=i), verdict, realized, 1.0 if realized is not None else None, estimated)


def decide(results, **policy):
    return retrain_decision(D, results, last_retrain=None, latest_scored=D, policy=RetrainPolicy(**policy))


def test_the_default_triggers_are_drift_and_realized_and_an_estimate_alone_does_not_fire():
    assert RetrainPolicy().triggers == ("drift", "realized")
    out = decide([day(i, estimated=2.0) for i in range(5)])
    assert out["decision"] == "not triggered" and out["trigger"] is None
    # the numbers are still recorded: five dates with an estimate, every one degraded
    assert len(out["estimated_degraded_dates"]) == 5


def test_estimated_fires_on_k_of_the_last_n_dates_with_an_estimate():
    # ratios by age: today 1.35, 1.1, 1.4, (no estimate), 1.31, 1.2, 1.5 (older than the last n=5 with one)
    ratios = {0: 1.35, 1: 1.1, 2: 1.4, 3: None, 4: 1.31, 5: 1.2, 6: 1.5}
    results = [day(i, estimated=r) for i, r in ratios.items()]
    out = decide(results, triggers=("estimated",), k=3, n=5, estimated_increase=0.3)
    # last 5 with an estimate: ages 0,1,2,4,5; degraded (ratio - 1 >= 0.3): ages 0, 2, 4 -> 3 of 5
    assert out["decision"] == "triggered" and out["trigger"] == "estimated"
    assert out["estimated_dates_considered"] == [(D - dt.timedelta(days=a)).isoformat() for a in (5, 4, 2, 1, 0)]
    assert out["estimated_degraded_dates"] == [(D - dt.timedelta(days=a)).isoformat() for a in (4, 2, 0)]
    assert out["estimated_increase"][D.isoformat()] == pytest.approx(0.35)
    assert "3 of the last 5 dates with an estimate" in out["reason"] and "+40%" in out["reason"]
    # one degraded date fewer: age 4 at 1.29 is under +30%
    results = [day(i, estimated=1.29 if i == 4 else r) for i, r in ratios.items()]
    out = decide(results, triggers=("estimated",), k=3, n=5, estimated_increase=0.3)
    assert out["decision"] == "not triggered" and "2 of the last 5" in out["reason"]


def test_a_higher_is_better_metric_is_compared_through_its_ratio():
    # roc_auc 0.70 against a holdout of 0.84: ratio holdout / value = 1.2 (worse), as checks.error_ratio orients it
    ratio = 0.84 / 0.70
    out = decide([day(i, estimated=ratio) for i in range(3)], triggers=("estimated",), k=3, estimated_increase=0.15)
    assert out["trigger"] == "estimated"
    out = decide([day(i, estimated=ratio) for i in range(3)], triggers=("estimated",), k=3, estimated_increase=0.25)
    assert out["decision"] == "not triggered"


def test_each_trigger_fires_only_when_listed_and_the_decision_names_which():
    drifted = [day(i, "drift") for i in range(5)]
    assert decide(drifted)["trigger"] == "drift"
    assert decide(drifted, triggers=("realized", "estimated"))["decision"] == "not triggered"
    late = [day(0, realized=1.4)] + [day(i) for i in range(1, 5)]
    assert decide(late)["trigger"] == "realized"
    assert decide(late, triggers=("drift",))["decision"] == "not triggered"
    both = [day(i, "drift", estimated=1.5) for i in range(5)]
    assert decide(both, triggers=("drift", "estimated"))["trigger"] == "drift"  # looked at in that order
    assert decide(both, triggers=("estimated",))["trigger"] == "estimated"
    out = decide(both, triggers=())
    assert out["decision"] == "not triggered" and "[retrain] triggers is empty" in out["reason"]


def test_an_unknown_trigger_is_refused_naming_the_setting_and_the_choices():
    with pytest.raises(ValueError, match=r"\[retrain\] triggers: 'labels' not among drift, estimated, realized"):
        RetrainPolicy(triggers=("drift", "labels"))


def test_estimates_after_the_decision_date_are_ignored():
    future = [DayResult(D + dt.timedelta(days=i), estimated_ratio=3.0) for i in range(1, 6)]
    assert decide(future, triggers=("estimated",))["estimated_dates_considered"] == []


def test_triggers_are_read_from_luigi_cfg_as_a_comma_list_or_json_and_an_unknown_one_stops_the_start():
    import luigi

    from pipelines.startup import value_problem
    from tasks.config import retrain
    from tasks.retrain import _plan

    param = dict(retrain.get_params())["triggers"]
    assert param.normalize(param.parse("drift, estimated\n realized")) == ("drift", "estimated", "realized")
    assert param.normalize(param.parse('["estimated"]')) == ("estimated",)
    assert value_problem(param, "drift, labels") == "ValueError: 'labels' not among drift, estimated, realized"
    config = luigi.configuration.get_config()
    saved = dict(config.items("retrain")) if config.has_section("retrain") else None
    try:
        if not config.has_section("retrain"):
            config.add_section("retrain")
        config.set("retrain", "triggers", "estimated, realized")
        config.set("retrain", "estimated_increase", "0.25")
        policy = _plan().policy
    finally:
        config.remove_section("retrain")
        if saved is not None:
            config.add_section("retrain")
            for key, value in saved.items():
                config.set("retrain", key, value)
    assert (policy.triggers, policy.estimated_increase) == (("estimated", "realized"), 0.25)


def test_the_retrain_decision_reads_the_estimates_of_the_window_from_estimated_json(tmp_path):
    from batchml.retrain.retraining import RetrainPlan, day_results
    from batchml.retrain.retraining import decide as decide_for
    from batchml.store.documents import write_document
    from batchml.store.storage import Storage

    storage = Storage(tmp_path)
    holdout = {("3", "mae"): 4.0}
    maes = {0: 5.6, 1: 5.0, 2: 5.4, 3: None, 4: 5.3}  # by age; None: a date without an estimate (not run)
    for age, mae in maes.items():
        if mae is not None:
            doc = {"version": "3", "status": "fitted on reference", "task": "regression", "metrics": {"mae": mae}}
            write_document(storage, f"monitoring/date={D - dt.timedelta(days=age)}/estimated.json", doc)
    results = day_results(storage, D, 6, lambda version, metric: holdout.get((version, metric)))
    # newest first: 5.6 / 4.0 = 1.4, 1.25, 1.35, none, 1.325, none (no file)
    assert [r.estimated_ratio for r in results] == [
        pytest.approx(x) if x else None for x in (1.4, 1.25, 1.35, None, 1.325, None)
    ]
    assert [r.estimated_ratio for r in day_results(storage, D, 6)] == [None] * 6  # without holdout_of: not read

    plan = RetrainPlan(
        RetrainPolicy(triggers=("estimated",), k=3, n=5, estimated_increase=0.3),
        label_lag=2,
        gate_days=2,
        window_days=14,
        min_train_days=7,
        recipe_available=False,
    )
    decision, window = decide_for(storage, D, plan, lambda version, metric: holdout.get((version, metric)))
    # degraded (ratio - 1 >= 0.3): ages 0, 2, 4 -> 3 of the 4 dates with an estimate
    assert (decision["trigger"], decision["decision"], window) == ("estimated", "unavailable", None)
    assert "3 of the last 4 dates with an estimate" in decision["trigger_reason"]
    decision, _ = decide_for(storage, D, plan, lambda version, metric: None)  # a version without a holdout value
    assert decision["decision"] == "not triggered" and decision["estimated_dates_considered"] == []
