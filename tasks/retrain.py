"""RetrainIfDrifted, TrainChallenger and Rollback: the champion/challenger life of the model."""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.model.training import labelled_frame
from batchml.retrain.lifecycle import GatePolicy, train_and_register
from batchml.retrain.policy import RetrainPolicy
from batchml.retrain.retraining import PREVIOUS, RetrainPlan, decide, gate_challenger, gate_dates, roll_back
from batchml.stats.metrics import PRIMARY
from tasks.alerts import holdout_of, tell_decision, tell_rollback
from tasks.config import (
    cache_dir,
    load_contract,
    make_registry,
    make_source,
    make_storage,
    mlflow,
    policy_from,
    project,
    retrain,
    source,
    training,
)
from tasks.identity import InProject
from tasks.monitor import Metrics
from tasks.targets import DocumentTarget, DocumentTask

__all__ = ["PREVIOUS", "RetrainIfDrifted", "Rollback", "TrainChallenger"]


def _plan() -> RetrainPlan:
    cfg = retrain()
    return RetrainPlan(
        policy=policy_from(RetrainPolicy, cfg),
        label_lag=source().label_lag_days,
        gate_days=cfg.gate_days,
        window_days=training().window_days,
        min_train_days=cfg.min_train_days,
        recipe_available=bool(training().recipe),
    )


def _gate_policy(task: str) -> GatePolicy:
    cfg = retrain()
    guards = tuple(cfg.guards) or (("rmse",) if task == "regression" else ("roc_auc",))
    return GatePolicy(
        primary=cfg.metric or PRIMARY[task], margin=cfg.margin, guards=guards, guard_tolerance=cfg.guard_tolerance
    )


class TrainChallenger(InProject, luigi.Task):
    """monitoring/date=D/challenger.json: a new registered version trained on the given window."""

    date = luigi.DateParameter()
    window_start = luigi.DateParameter(significant=False, description="First labelled date trained on.")
    window_end = luigi.DateParameter(
        significant=False, description="Last labelled date trained on (before the gate dates)."
    )
    reason = luigi.Parameter(default="", significant=False, description="Why it is trained (recorded on the version).")

    def output(self) -> DocumentTarget:
        """The challenger's record: its version, window and reason."""
        return DocumentTarget(self.date, "challenger.json")

    def run(self):
        """Train and register a challenger on the window."""
        self.set_status_message(f"training a challenger on {self.window_start}..{self.window_end}")
        cfg = training()
        version = train_and_register(
            make_source(),
            project(),
            make_registry(),
            window_end=self.window_end,
            window_days=(self.window_end - self.window_start).days + 1,
            max_rows=cfg.max_rows,
            seed=cfg.seed,
            reason=f"challenger for {self.date}: {self.reason}",
            run_name=f"challenger {self.date}",
        )
        self.output().dump(
            {
                "version": version,
                "window": [self.window_start.isoformat(), self.window_end.isoformat()],
                "reason": self.reason,
            }
        )


class RetrainIfDrifted(DocumentTask):
    """monitoring/date=D/retrain.json: the policy's decision ([retrain] triggers), and the gate's when it fired."""

    document = "retrain.json"

    def requires(self):
        """The date's metrics (the policy reads the dates' drift and metrics documents)."""
        return Metrics(self.date)

    def run(self):
        """Decide; when the policy fires, train a challenger and gate it against the champion."""
        registry = make_registry()
        decision, window = decide(make_storage(), self.date, _plan(), holdout_of(registry))
        if window is not None:
            trained = yield TrainChallenger(
                self.date, window_start=window[0], window_end=window[1], reason=decision["reason"]
            )  # only when it fires
            decision = with_gate(decision, gate(registry, self.date, trained.load()["version"]), window)
        self.output().dump(decision)
        tell_decision(self.date, decision)
        registry.log_daily(
            self.date.isoformat(), {}, {"retrain_decision": decision["decision"]}, {"retrain.json": decision}
        )
        self.set_status_message(f"retraining: {decision['decision']} ({decision['reason']})")


def gate(registry, date: dt.date, challenger_version: str) -> dict:
    """The challenger against the champion on the newest labelled dates before `date`."""
    contract, p = load_contract(), project()
    dates = gate_dates(date, source().label_lag_days, retrain().gate_days)
    frame = labelled_frame(
        make_source(),
        contract,
        dates,
        features=p.features,
        labels=p.labels,
        max_rows=training().max_rows,
        seed=training().seed,
    )
    return gate_challenger(
        registry,
        contract,
        frame,
        alias=mlflow().alias,
        challenger_version=challenger_version,
        cache_dir=cache_dir(),
        policy=_gate_policy(contract.task),
        dates=dates,
    )


def with_gate(decision: dict, outcome: dict, window: tuple[dt.date, dt.date]) -> dict:
    """The policy's decision with the gate's outcome: the gate's reason first, the trigger's kept, the window trained
    on."""
    start, end = window
    return {
        **decision,
        **outcome,
        "trigger_reason": decision["reason"],
        "reason": outcome["gate"]["reason"],
        "window": [start.isoformat(), end.isoformat()],
    }


class Rollback(InProject, luigi.Task):
    """Move @champion back to @previous (or --to-version) and record why, from --date on."""

    date = luigi.DateParameter(description="The first date the rolled-back model should score.")
    reason = luigi.Parameter(description="Why: recorded in MLflow and monitoring/date=D/rollback.json.")
    to_version = luigi.OptionalParameter(
        default=None, description="Version to restore (default: the one holding @previous)."
    )

    def output(self) -> DocumentTarget:
        """The rollback's record."""
        return DocumentTarget(self.date, "rollback.json")

    def run(self):
        """Move the alias back, and record it on the date and in MLflow."""
        registry = make_registry()
        record = roll_back(
            registry, alias=mlflow().alias, date=self.date, reason=self.reason, to_version=self.to_version
        )
        self.output().dump(record)
        tell_rollback(self.date, record)
        registry.log_daily(
            self.date.isoformat(),
            {},
            {"rollback": f"{record['from_version']} -> {record['to_version']}"},
            {"rollback.json": record},
        )
