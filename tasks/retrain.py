"""RetrainIfDrifted, TrainChallenger and Rollback: the champion/challenger life of the model."""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.checks import error_ratio
from batchml.lifecycle import GatePolicy, evaluate, gate, train_and_register
from batchml.metrics import PRIMARY
from batchml.monitoring import monitored_dates, monitoring_file, read_json, write_json
from batchml.policy import DayResult, RetrainPolicy, drift_onset, retrain_decision, training_window
from batchml.predictions import PREDICTIONS
from batchml.training import labelled_frame
from tasks.config import cache_dir, load_contract, make_registry, make_source, make_storage, mlflow, project, source, training
from tasks.monitor import Metrics
from tasks.targets import StorageFileTarget

PREVIOUS = "previous"


class retrain(luigi.Config):
    k = luigi.IntParameter(default=3, description="Retrain when the drift verdict held on at least k ...")
    n = luigi.IntParameter(default=5, description="... of the last n dates with a verdict.")
    error_increase = luigi.FloatParameter(
        default=0.3, description="Or when the realized primary metric is this much worse (relative) than the model's holdout value."
    )
    cooldown_days = luigi.IntParameter(default=7, description="No retrain within this many days of the last one.")
    allow_in_backfill = luigi.BoolParameter(default=False, description="Let dates behind the latest scored date trigger a retrain.")
    gate_days = luigi.IntParameter(default=2, description="Most recent labelled dates held out to compare challenger and champion.")
    metric = luigi.Parameter(
        default="", description="The gate's primary metric (empty: mae for regression, log_loss for classification); its direction is known."
    )
    margin = luigi.FloatParameter(default=0.02, description="The challenger's primary metric must be this much better (relative) to be promoted.")
    guards = luigi.ListParameter(default=[], description="Metrics the challenger must not lose (empty: rmse for regression, roc_auc for classification).")
    guard_tolerance = luigi.FloatParameter(default=0.02, description="How much worse (relative) a guard metric may be.")
    min_train_days = luigi.IntParameter(
        default=7, description="Labelled dates since the drift onset needed before a challenger is trained (a week: every weekday seen)."
    )


def _policy() -> RetrainPolicy:
    cfg = retrain()
    return RetrainPolicy(k=cfg.k, n=cfg.n, error_increase=cfg.error_increase, cooldown_days=cfg.cooldown_days, allow_in_backfill=cfg.allow_in_backfill)


def _gate_dates(date: dt.date) -> list[dt.date]:
    """The held-out dates: the newest `gate_days` labelled dates (labels lag the date)."""
    newest = date - dt.timedelta(days=source().label_lag_days)
    return [newest - dt.timedelta(days=i) for i in range(retrain().gate_days - 1, -1, -1)]


def _results(storage, date: dt.date, days: int) -> list[DayResult]:
    out = []
    for i in range(days):
        d = date - dt.timedelta(days=i)
        drift = read_json(storage, monitoring_file(d, "drift.json"))
        metrics = read_json(storage, monitoring_file(d, "metrics.json"))
        numbers = (metrics or {}).get("numbers", {})
        ratio = error_ratio(numbers.get("realized") or {}, numbers.get("champion_holdout"), (metrics or {}).get("primary_metric", "mae"))
        out.append(DayResult(d, (drift or {}).get("verdict"), ratio, 1.0 if ratio is not None else None))
    return out


def _last_retrain(storage, date: dt.date) -> dt.date | None:
    """The newest date before `date` whose decision trained a challenger."""
    for d in reversed(monitored_dates(storage)):
        if d < date and (read_json(storage, monitoring_file(d, "retrain.json")) or {}).get("challenger_version"):
            return d
    return None


class TrainChallenger(luigi.Task):
    """monitoring/date=D/challenger.json: a new registered version trained on the given window."""

    date = luigi.DateParameter()
    window_start = luigi.DateParameter(significant=False, description="First labelled date trained on.")
    window_end = luigi.DateParameter(significant=False, description="Last labelled date trained on (before the gate dates).")
    reason = luigi.Parameter(default="", significant=False, description="Why it is trained (recorded on the version).")

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "challenger.json"))

    def run(self):
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
        body = {"version": version, "window": [self.window_start.isoformat(), self.window_end.isoformat()], "reason": self.reason}
        write_json(make_storage(), self.output().relative, body)


class RetrainIfDrifted(luigi.Task):
    """monitoring/date=D/retrain.json: the policy's decision, and the gate's when it fired."""

    date = luigi.DateParameter()

    def requires(self):
        return Metrics(self.date)

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "retrain.json"))

    def run(self):
        storage, registry = make_storage(), make_registry()
        policy = _policy()
        scored = storage.committed_dates(PREDICTIONS)
        cfg = retrain()
        results = _results(storage, self.date, policy.n + training().window_days + source().label_lag_days + cfg.gate_days)
        decision = retrain_decision(
            self.date, results, last_retrain=_last_retrain(storage, self.date), latest_scored=max(scored) if scored else None, policy=policy
        )
        window = None
        if decision["decision"] == "triggered" and not training().recipe:
            decision = {
                **decision,
                "decision": "unavailable",
                "trigger_reason": decision["reason"],
                "reason": "retraining unavailable: [training] recipe is not set",
            }
        if decision["decision"] == "triggered":
            onset = drift_onset(self.date, results) if decision["drifted_dates"] and len(decision["drifted_dates"]) >= policy.k else None
            window = training_window(
                self.date,
                onset=onset,
                label_lag=source().label_lag_days,
                gate_days=cfg.gate_days,
                window_days=training().window_days,
                min_days=cfg.min_train_days,
            )
            if window is None:
                decision = {
                    **decision,
                    "decision": "deferred",
                    "reason": f"{decision['reason']}; waiting for {cfg.min_train_days} labelled dates since the drift onset {onset}",
                }
        if window is not None:
            start, end = window
            trained = yield TrainChallenger(self.date, window_start=start, window_end=end, reason=decision["reason"])  # exists only when the policy fires
            outcome = self._gate(registry, read_json(storage, trained.relative)["version"])
            decision = {
                **decision,
                **outcome,
                "trigger_reason": decision["reason"],
                "reason": outcome["gate"]["reason"],
                "window": [start.isoformat(), end.isoformat()],
            }
        write_json(storage, self.output().relative, decision)
        registry.log_daily(self.date.isoformat(), {}, {"retrain_decision": decision["decision"]}, {"retrain.json": decision})
        self.set_status_message(f"retraining: {decision['decision']} ({decision['reason']})")

    def _gate(self, registry, challenger_version: str) -> dict:
        """Evaluate challenger and champion on the same held-out dates; move @champion if it wins."""
        alias = mlflow().alias
        contract, p = load_contract(), project()
        classes = contract.label.classes if contract.label.is_classification else None
        champion = registry.pin(alias, cache_dir(), classes)
        challenger = registry.pin_version(challenger_version, cache_dir(), classes)
        cfg = retrain()
        frame = labelled_frame(
            make_source(), contract, _gate_dates(self.date), features=p.features, labels=p.labels, max_rows=training().max_rows, seed=training().seed
        )
        scores = {pin.version: evaluate(pin, registry.fetch(pin, cache_dir()), frame, contract) for pin in (champion, challenger)}
        primary = cfg.metric or PRIMARY[contract.task]
        guards = tuple(cfg.guards) or (("rmse",) if contract.task == "regression" else ("roc_auc",))
        result = gate(
            scores[challenger.version],
            scores[champion.version],
            GatePolicy(primary=primary, margin=cfg.margin, guards=guards, guard_tolerance=cfg.guard_tolerance),
        )
        tags = {"gate": result["decision"], "gate_reason": result["reason"], "gate_dates": ",".join(d.isoformat() for d in _gate_dates(self.date))}
        for key, value in tags.items():
            registry.client.set_model_version_tag(registry.name, challenger.version, key, value)
        if result["decision"] == "promoted":
            registry.set_alias(PREVIOUS, champion.version)
            registry.set_alias(alias, challenger.version)
        return {
            "decision": result["decision"],
            "gate": result,
            "challenger_version": challenger.version,
            "champion_version": champion.version,
            "evaluated_on": [d.isoformat() for d in _gate_dates(self.date)],
        }


class Rollback(luigi.Task):
    """Move @champion back to @previous (or --to-version) and record why, from --date on."""

    date = luigi.DateParameter(description="The first date the rolled-back model should score.")
    reason = luigi.Parameter(description="Why: recorded in MLflow and monitoring/date=D/rollback.json.")
    to_version = luigi.OptionalParameter(default=None, description="Version to restore (default: the one holding @previous).")

    def output(self) -> StorageFileTarget:
        return StorageFileTarget(monitoring_file(self.date, "rollback.json"))

    def run(self):
        registry = make_registry()
        alias = mlflow().alias
        current = registry.version_by_alias(alias)
        target = self.to_version or getattr(registry.version_by_alias(PREVIOUS), "version", None)
        if current is None or target is None:
            raise ValueError(f"nothing to roll back to: @{alias} is {getattr(current, 'version', None)}, @{PREVIOUS} is not set and no --to-version given")
        target = str(target)
        registry.set_alias(alias, target)
        registry.set_alias(PREVIOUS, current.version)
        registry.client.set_model_version_tag(registry.name, current.version, "rolled_back", f"{self.date}: {self.reason}")
        record = {"decision": "rolled back", "reason": self.reason, "from_version": str(current.version), "to_version": target, "date": self.date.isoformat()}
        write_json(make_storage(), self.output().relative, record)
        registry.log_daily(self.date.isoformat(), {}, {"rollback": f"{current.version} -> {target}"}, {"rollback.json": record})
