"""One luigi.Config class per luigi.cfg section, and the factories that turn them into batchml objects."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import luigi
from luigi.parameter import OptionalParameterMixin

from batchml.base import setting
from batchml.base.errors import ConfigError
from batchml.base.hooks import add_project_path
from batchml.base.redact import remember_literal
from batchml.base.retry import RetryPolicy
from batchml.base.setting import Allowed, policy_field
from batchml.dataset.contract import Contract
from batchml.dataset.extract import SchemaSettings
from batchml.dataset.sources import FileSource, GeneratorSource, Source, SourceSettings, SqlSource
from batchml.model.registry import Registry, RegistrySettings
from batchml.model.runtimes import RuntimeChoice
from batchml.model.training import TrainingPolicy
from batchml.monitor.alerts import AlertSettings
from batchml.monitor.baseline import BaselinePolicy
from batchml.monitor.checks import CheckThresholds
from batchml.monitor.estimated import EstimationPolicy
from batchml.monitor.monitoring import ReportSettings
from batchml.project.context import Context, Settings, build_context, current_context, in_folder
from batchml.retrain.lifecycle import GatePolicy
from batchml.retrain.policy import RetrainPolicy
from batchml.scoring.compute import ClusterSettings
from batchml.stats.drift import DriftThresholds
from batchml.store.storage import StorageSettings
from batchml.store.tables import TableSettings

P = TypeVar("P")


class OptionalDateParameter(OptionalParameterMixin, luigi.DateParameter):
    """A date that may be left empty in luigi.cfg."""

    expected_type = datetime.date


class OutOfRange(ValueError):
    """A numeric setting's value outside its allowed range."""


class _Ranged:
    """A numeric parameter carrying its allowed range (`allowed`), checked on every value it takes."""

    allowed: Allowed

    def normalize(self, x):
        value = super().normalize(x)
        if value is not None and not self.allowed.admits(value):
            raise OutOfRange(f"{value!r} is outside the allowed range: {self.allowed}")
        return value


class RangedIntParameter(_Ranged, luigi.IntParameter):
    """An integer setting refused, naming its range, when luigi.cfg or the command line sets it outside `allowed`."""

    def __init__(self, default, *, allowed: Allowed, **kwargs):
        self.allowed = allowed
        super().__init__(default=default, **kwargs)


class RangedFloatParameter(_Ranged, luigi.FloatParameter):
    """A number setting refused, naming its range, when luigi.cfg or the command line sets it outside `allowed`."""

    def __init__(self, default, *, allowed: Allowed, **kwargs):
        self.allowed = allowed
        super().__init__(default=default, **kwargs)


def from_field(spec: dataclasses.Field) -> luigi.Parameter:
    """The Luigi parameter of a setting's field: its default, description and allowed values, its kind from the
    default."""
    default, description, allowed = spec.default, spec.metadata["description"], spec.metadata.get("allowed")
    if isinstance(default, str) and spec.metadata.get("choices"):
        return luigi.ChoiceParameter(choices=list(spec.metadata["choices"]), default=default, description=description)
    if isinstance(default, bool):
        return luigi.BoolParameter(default=default, description=description)
    if isinstance(default, (int, float)):
        if allowed is None:
            raise TypeError(f"{spec.name}: a numeric setting declares its allowed values")
        ranged = RangedIntParameter if allowed.integer else RangedFloatParameter
        return ranged(default, allowed=allowed, description=description)
    if isinstance(default, tuple):
        return NamesParameter(
            default, choices=spec.metadata.get("choices"), problem=spec.metadata.get("problem"), description=description
        )
    return luigi.Parameter(default=default, description=description)


class NamesParameter(luigi.ListParameter):
    """A list setting written as a JSON list or as items separated by commas or new lines (`drift, realized`); each
    one of `choices` when given, else refused naming them."""

    def __init__(self, default, *, choices=None, problem=None, **kwargs):
        self.choices = tuple(choices) if choices else None
        self.problem = problem  # item -> why it is refused, or ""
        super().__init__(default=list(default), **kwargs)

    def parse(self, x):
        """A JSON list as Luigi reads it, else the items between commas and new lines."""
        text = x.strip()
        if text.startswith("["):
            return super().parse(text)
        return [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]

    def normalize(self, x):
        """The items as a tuple; an item not among `choices` refused, naming them."""
        value = super().normalize(x)
        unknown = [item for item in value or () if self.choices and item not in self.choices]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} not among {', '.join(self.choices or ())}")
        problems = [self.problem(item) for item in value or ()] if self.problem else []
        if any(problems):
            raise ValueError("; ".join(p for p in problems if p))
        return value


def from_policy(cls: type, name: str) -> luigi.Parameter:
    """The parameter of a setting whose home is a field of a core policy dataclass (`policy` names it)."""
    param = from_field(policy_field(cls, name))
    param.policy = (cls, name)
    return param


def policy_from(cls: type[P], section: luigi.Config) -> P:
    """The policy dataclass `cls` as `section` (a Config class built with from_policy) sets it: every parameter whose
    home is a field of `cls`, lists as tuples; the section's other settings are not the policy's."""
    values = {
        name: getattr(section, name)
        for name, param in section.get_params()
        if getattr(param, "policy", (None,))[0] is cls
    }
    return cls(**{name: tuple(v) if isinstance(v, (list, tuple)) else v for name, v in values.items()})


def count(default: int, description: str, *, least: int = 1, most: int | None = None) -> luigi.IntParameter:
    """An integer setting of at least `least` (1: a count of things, 0: a lag or a number of retries)."""
    return from_field(setting.count(default, description, least=least, most=most))


# Settings that bound each other, (section, key) <= (section, key): checked at start with the ranges.
ORDERED = (
    (("retrain", "k"), ("retrain", "n")),
    (("retry", "initial_delay"), ("retry", "max_delay")),
    (("checks", "min_row_ratio"), ("checks", "max_row_ratio")),
    (("estimation", "k"), ("estimation", "n")),
)


def config_files() -> list[str]:
    """The configuration files Luigi reads, in its order (a later one wins), that exist: /etc/luigi/client.cfg,
    /etc/luigi/luigi.cfg, ./client.cfg, ./luigi.cfg, then $LUIGI_CONFIG_PATH, as Luigi's documentation lists them."""
    paths = [
        "/etc/luigi/client.cfg",
        "/etc/luigi/luigi.cfg",
        "client.cfg",
        "luigi.cfg",
        os.environ.get("LUIGI_CONFIG_PATH", ""),
    ]
    return [path for path in paths if path and os.path.isfile(path)]


def find_project_dir() -> Path:
    """The user's project folder; relative paths in settings resolve against it, and its hooks import from it.

    In order: $BATCHML_PROJECT_DIR (an image's project, whatever config files layer over
    it); the folder of the most specific config file Luigi reads that names the dataset
    contract (`[schema] path`), so a scheduler config layered on top (config/central.cfg)
    does not move the project; the folder of the last config file read; the current folder.
    """
    named = os.environ.get("BATCHML_PROJECT_DIR")
    if named:
        return Path(named).resolve()
    read = config_files()
    naming = [p for p in read if _names_contract(p)]
    chosen = (naming or read)[-1] if read else None
    return Path(chosen).resolve().parent if chosen else Path.cwd()


def project_dir() -> Path:
    """The project folder of the process's context (find_project_dir), importable."""
    folder = context().project_dir
    add_project_path(folder)
    return folder


@functools.cache
def _names_contract(path: str) -> bool:
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path)
    except configparser.Error:
        return False
    return parser.has_option("schema", "path")


def in_project(path: str) -> str:
    """A path setting resolved against the project folder (URLs and absolute paths as given)."""
    return in_folder(project_dir(), path)


class project_settings(luigi.Config):
    """Who the project is: its name is part of every task id, keeping it apart from other projects on one luigid."""

    name = luigi.Parameter(
        default="",
        description=(
            "The project's name, shown with the date on luigid's task list and graph (empty: the contract's dataset "
            "name). "
            "Projects sharing a central scheduler need different names."
        ),
    )

    @classmethod
    def get_task_family(cls) -> str:
        """The luigi.cfg section this class reads, `[project]`: the class is named otherwise."""
        return "project"  # the section's name; project() below is what training needs of the project


class storage(luigi.Config):
    """Where datasets live: a folder or an object-store URL, one partition per date."""

    root = from_policy(StorageSettings, "root")
    lease_seconds = from_policy(StorageSettings, "lease_seconds")
    rows_per_file = from_policy(StorageSettings, "rows_per_file")


class tables(luigi.Config):
    """Apache Iceberg tables of the committed dates: every date's commit is also a snapshot (docs/tables.md)."""

    catalog = from_policy(TableSettings, "catalog")
    namespace = from_policy(TableSettings, "namespace")
    enabled = from_policy(TableSettings, "enabled")
    datasets = from_policy(TableSettings, "datasets")
    keep_snapshots_days = from_policy(TableSettings, "keep_snapshots_days")


def table_settings() -> TableSettings:
    """[tables] as the core's settings; a SQLite catalog path relative to the project folder resolved against it."""
    cfg = tables()
    uri = cfg.catalog
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + in_folder(find_project_dir(), uri.removeprefix("sqlite:///"))
    return TableSettings(
        catalog=uri,
        namespace=cfg.namespace,
        enabled=cfg.enabled,
        datasets=tuple(cfg.datasets),
        keep_snapshots_days=cfg.keep_snapshots_days,
    )


class source(luigi.Config):
    """Where a date's rows come from, and when its labels are complete."""

    kind = from_policy(SourceSettings, "kind")
    label_lag_days = from_policy(SourceSettings, "label_lag_days")
    path = from_policy(SourceSettings, "path")
    labels_path = from_policy(SourceSettings, "labels_path")
    format = from_policy(SourceSettings, "format")
    encoding = from_policy(SourceSettings, "encoding")
    complete_marker = from_policy(SourceSettings, "complete_marker")
    url = from_policy(SourceSettings, "url")
    query = from_policy(SourceSettings, "query")
    labels_query = from_policy(SourceSettings, "labels_query")
    generator = from_policy(SourceSettings, "generator")
    options = luigi.DictParameter(default={}, description="python: keyword arguments of the generator (JSON).")


class schema(luigi.Config):
    """The dataset contract and how many broken rows a date may have."""

    path = from_policy(SchemaSettings, "path")
    max_reject_share = from_policy(SchemaSettings, "max_reject_share")


class features(luigi.Config):
    """The project's features transform (validated rows -> model inputs)."""

    transform = luigi.Parameter(
        default="",
        description=(
            "module:function: a date's validated rows -> the model's input columns (batchml keeps the key beside "
            "them). Empty: the contract's columns as they are."
        ),
    )


class labels(luigi.Config):
    """How the labels of a date are derived from its rows (or read from a labels feed)."""

    transform = luigi.Parameter(
        default="",
        description=(
            "module:function: a date's validated rows -> its labels (a Series, or a frame with the label column). "
            "Empty: the source's labels feed."
        ),
    )


class mlflow(luigi.Config):
    """The registry: tracking URI, registered model, the alias a date pins, the local artifact cache."""

    tracking_uri = from_policy(RegistrySettings, "tracking_uri")
    registered_model = from_policy(RegistrySettings, "registered_model")
    alias = from_policy(RegistrySettings, "alias")
    cold_start = from_policy(RegistrySettings, "cold_start")
    artifact_location = from_policy(RegistrySettings, "artifact_location")
    cache_dir = from_policy(RegistrySettings, "cache_dir")
    http_request_max_retries = from_policy(RegistrySettings, "http_request_max_retries")
    http_request_timeout = from_policy(RegistrySettings, "http_request_timeout")


class runtime(luigi.Config):
    """How a registered version is scored: converted to ONNX when its outputs agree with the model's, else through
    MLflow's pyfunc."""

    convert_sklearn = from_policy(RuntimeChoice, "convert_sklearn")
    parity_rows = from_policy(RuntimeChoice, "parity_rows")
    parity_rtol = from_policy(RuntimeChoice, "parity_rtol")
    parity_atol = from_policy(RuntimeChoice, "parity_atol")


class retry(luigi.Config):
    """Bounded, jittered retries of transient failures (a tracking server or Dask scheduler not answering)."""

    attempts = from_policy(RetryPolicy, "attempts")
    initial_delay = from_policy(RetryPolicy, "initial_delay")
    max_delay = from_policy(RetryPolicy, "max_delay")
    deadline = from_policy(RetryPolicy, "deadline")


class training(luigi.Config):
    """Retraining: the project's recipe, its parameters, the labelled window and sampling."""

    recipe = from_policy(TrainingPolicy, "recipe")
    params = luigi.DictParameter(
        default={}, description="The recipe's own parameters (JSON), given to it as settings.params."
    )
    window_days = from_policy(TrainingPolicy, "window_days")
    max_rows = from_policy(TrainingPolicy, "max_rows")
    seed = from_policy(TrainingPolicy, "seed")


class dask(luigi.Config):
    """Where scoring runs: an embedded LocalCluster or an existing Dask scheduler."""

    scheduler_address = from_policy(ClusterSettings, "scheduler_address")
    n_workers = from_policy(ClusterSettings, "n_workers")
    threads_per_worker = from_policy(ClusterSettings, "threads_per_worker")
    processes = from_policy(ClusterSettings, "processes")
    in_process_rows = from_policy(ClusterSettings, "in_process_rows")


class drift(luigi.Config):
    """Drift statistics, their thresholds and noise floors, and the window a verdict uses."""

    psi = from_policy(DriftThresholds, "psi")
    js = from_policy(DriftThresholds, "js")
    wasserstein = from_policy(DriftThresholds, "wasserstein")
    drift_share = from_policy(DriftThresholds, "drift_share")
    numeric_methods = from_policy(DriftThresholds, "numeric_methods")
    categorical_methods = from_policy(DriftThresholds, "categorical_methods")
    exclude = from_policy(DriftThresholds, "exclude")
    window_days = from_policy(DriftThresholds, "window_days")
    floor_quantile = from_policy(DriftThresholds, "floor_quantile")
    floor_draws = from_policy(DriftThresholds, "floor_draws")
    baseline_days = from_policy(BaselinePolicy, "baseline_days")
    match_weekdays = from_policy(DriftThresholds, "match_weekdays")


class checks(luigi.Config):
    """Daily checks of data quality, outputs and realized error; which only warn."""

    trailing_days = from_policy(CheckThresholds, "trailing_days")
    min_row_ratio = from_policy(CheckThresholds, "min_row_ratio")
    max_row_ratio = from_policy(CheckThresholds, "max_row_ratio")
    max_null_rate = from_policy(CheckThresholds, "max_null_rate")
    null_rate_factor = from_policy(CheckThresholds, "null_rate_factor")
    max_quarantine_rate = from_policy(CheckThresholds, "max_quarantine_rate")
    max_prediction_mean_shift = from_policy(CheckThresholds, "max_prediction_mean_shift")
    max_class_share_shift = from_policy(CheckThresholds, "max_class_share_shift")
    max_error_ratio = from_policy(CheckThresholds, "max_error_ratio")
    min_label_coverage = from_policy(CheckThresholds, "min_label_coverage")
    warn_only = from_policy(CheckThresholds, "warn_only")


class retrain(luigi.Config):
    """When drift or error triggers a challenger, and the gate it must pass to be promoted."""

    triggers = from_policy(RetrainPolicy, "triggers")
    k = from_policy(RetrainPolicy, "k")
    n = from_policy(RetrainPolicy, "n")
    error_increase = from_policy(RetrainPolicy, "error_increase")
    estimated_increase = from_policy(RetrainPolicy, "estimated_increase")
    cooldown_days = from_policy(RetrainPolicy, "cooldown_days")
    allow_in_backfill = from_policy(RetrainPolicy, "allow_in_backfill")
    gate_days = count(2, "Most recent labelled dates held out to compare challenger and champion.")
    metric = luigi.Parameter(
        default="",
        description=(
            "The gate's primary metric (empty: mae for regression, log_loss for classification); its direction is "
            "known."
        ),
    )
    margin = from_policy(GatePolicy, "margin")
    guards = luigi.ListParameter(
        default=[],
        description="Metrics the challenger must not lose (empty: rmse for regression, roc_auc for classification).",
    )
    guard_tolerance = from_policy(GatePolicy, "guard_tolerance")
    min_train_days = count(
        7, "Labelled dates since the drift onset needed before a challenger is trained (a week: every weekday seen)."
    )


class alerts(luigi.Config):
    """Who is told about a failed date, a drift onset, an estimated or realized breach, a promotion, a rejection or
    a rollback: webhooks (Slack-compatible JSON) and Luigi's own email settings. One alert per onset."""

    webhooks = from_policy(AlertSettings, "webhooks")
    email = from_policy(AlertSettings, "email")
    timeout_seconds = from_policy(AlertSettings, "timeout_seconds")
    retries = from_policy(AlertSettings, "retries")
    backoff_seconds = from_policy(AlertSettings, "backoff_seconds")
    events = from_policy(AlertSettings, "events")


def alert_settings() -> AlertSettings:
    """`[alerts]` as the core's AlertSettings; its webhook URLs are remembered as secrets, never to be shown."""
    settings = policy_from(AlertSettings, alerts())
    remember_literal(*settings.webhooks)
    return settings


class estimation(luigi.Config):
    """Performance estimated before the labels arrive, and the check of the estimate once they do."""

    enabled = from_policy(EstimationPolicy, "enabled")
    margin = from_policy(EstimationPolicy, "margin")
    relative_margin = from_policy(EstimationPolicy, "relative_margin")
    band = from_policy(EstimationPolicy, "band")
    k = from_policy(EstimationPolicy, "k")
    n = from_policy(EstimationPolicy, "n")


def estimation_policy() -> EstimationPolicy:
    """The estimation settings as `[estimation]` sets them."""
    return policy_from(EstimationPolicy, estimation())


class report(luigi.Config):
    """The monitoring pages."""

    trend_days = from_policy(ReportSettings, "trend_days")


def project():
    """What training needs of the project: contract, recipe, transforms and the recipe's parameters."""
    from batchml.retrain.lifecycle import Project

    h = hooks()
    return Project(
        contract=load_contract(),
        recipe=h["recipe"],
        features=h["features"],
        labels=h["labels"],
        params=dict(training().params),
    )


def drift_thresholds() -> DriftThresholds:
    """The drift policy as `[drift]` sets it, for the core's drift report."""
    return policy_from(DriftThresholds, drift())


def check_thresholds() -> CheckThresholds:
    """The data and model checks' limits as `[checks]` sets them, for the core's checks."""
    return policy_from(CheckThresholds, checks())


# -- the process's context (batchml/project/context.py): storage, registry, contract, hooks --------
def context_configs() -> tuple[type[luigi.Config], ...]:
    """The sections the context is read from: read_settings reads these, and a change to any of them gives a new
    context."""
    return (storage, schema, features, labels, training, mlflow, retry, tables)


def context_key() -> tuple:
    """What the context is built from, cheap to compare: the context's sections as Luigi holds them in memory, their
    values on the command line, and the folder and variables that locate the project (a dict lookup or two per
    section, where reading the settings through their luigi.Config classes costs about 100 times more)."""
    from luigi.cmdline_parser import CmdlineParser

    config = luigi.configuration.get_config()
    sections, flags = _context_names()
    parser = CmdlineParser.get_instance()
    given = tuple(str(getattr(parser.known_args, flag, None)) for flag in flags) if parser is not None else ()
    in_memory = tuple(
        tuple(config.items(section, raw=True)) if config.has_section(section) else () for section in sections
    )
    return os.getcwd(), os.environ.get("BATCHML_PROJECT_DIR"), os.environ.get("LUIGI_CONFIG_PATH"), in_memory, given


@functools.cache
def _context_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The context's sections, and the names Luigi's command-line parser gives their settings (--storage-root:
    storage_root)."""
    sections = tuple(cls.get_task_family() for cls in context_configs())
    return sections, tuple(
        f"{cls.get_task_family()}_{name}" for cls in context_configs() for name, _ in cls.get_params()
    )


def read_settings() -> Settings:
    """The context's settings, read through their luigi.Config classes; paths resolved against the project folder."""
    folder = find_project_dir()
    cfg = mlflow()
    uri = cfg.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + in_folder(folder, uri.removeprefix("sqlite:///"))
    return Settings(
        project_dir=folder,
        storage_setting=storage().root,
        storage_root=in_folder(folder, storage().root) if "://" not in storage().root else storage().root,
        lease_seconds=storage().lease_seconds,
        contract_path=in_folder(folder, schema().path),
        tracking_uri=uri,
        registered_model=cfg.registered_model,
        artifact_location=in_folder(folder, cfg.artifact_location)
        if cfg.artifact_location
        else "",  # MLflow stores it as given
        http_request_max_retries=cfg.http_request_max_retries,
        http_request_timeout=cfg.http_request_timeout,
        retry=retry_policy(),
        hooks=MappingProxyType(
            {"features": features().transform, "labels": labels().transform, "recipe": training().recipe}
        ),
        tables=table_settings(),
    )


def context() -> Context:
    """The process's context: built once per process and configuration (see batchml/project/context.py)."""
    return current_context(context_key(), lambda: build_context(read_settings()))


def make_storage():
    """The process's storage (context().storage)."""
    return context().storage


def make_source() -> Source:
    """The source `[source]` names: a Python generator or files under a path template, paths in the project folder."""
    cfg = source()
    if cfg.kind == "python":
        if not cfg.generator:
            raise ConfigError("[source] kind = python needs [source] generator = module:function")
        project_dir()
        return GeneratorSource(generator=cfg.generator, options=dict(cfg.options))
    if cfg.kind == "files":
        if not cfg.path:
            raise ConfigError("[source] kind = files needs [source] path (a path template with {date})")
        marker = in_project(cfg.complete_marker) if "/" in cfg.complete_marker else cfg.complete_marker
        return FileSource(
            path=in_project(cfg.path),
            labels_path=in_project(cfg.labels_path),
            contract=load_contract(),
            fmt=cfg.format,
            encoding=cfg.encoding,
            complete_marker=marker,
        )
    return SqlSource(
        url=cfg.url,
        query=cfg.query,
        labels_query=cfg.labels_query,
        contract=load_contract(),
        chunk_rows=storage().rows_per_file,
    )


def load_contract() -> Contract:
    """The dataset contract ([schema] path), read once per context."""
    return context().contract


def hooks() -> Mapping[str, str]:
    """The project's hooks by role, with the project folder importable."""
    project_dir()
    return context().hooks


def project_name() -> str:
    """[project] name, else the contract's dataset name (else the project folder's name, when the contract cannot be
    read:
    the run then fails naming it, in the task that reads it). Resolved once per configuration."""
    state = _configuration_state()
    if (
        _project_memo.get("state") != state
    ):  # every task made resolves its project: reading the settings each time cost ~0.15 ms
        _project_memo.update(
            state=state, name=_project_name(project_settings().name, schema().path, str(project_dir()))
        )
    return _project_memo["name"]


_project_memo: dict = {}


def _configuration_state() -> tuple:
    """What project_name depends on, cheap to read: the config files read and their [project] name and [schema] path,
    the command line's --project-name, $BATCHML_PROJECT_DIR and the working folder."""
    from luigi.cmdline_parser import CmdlineParser

    config = luigi.configuration.get_config()
    parser = CmdlineParser.get_instance()
    return (
        id(config),
        tuple(type(config)._config_paths),
        config.get("project", "name", None),
        config.get("schema", "path", None),
        getattr(parser.known_args, "project_name", None) if parser else None,
        os.environ.get("BATCHML_PROJECT_DIR"),
        os.getcwd(),
    )


@functools.cache
def _project_name(name: str, contract_path: str, folder: str) -> str:
    if name:
        return name
    try:
        return load_contract().dataset
    except Exception:  # a missing or invalid contract is named by the task that reads it, not while tasks are made
        return Path(folder).name


def model_name() -> str:
    """The registered model's name: `[mlflow] registered_model`, else the contract's dataset name."""
    return mlflow().registered_model or load_contract().dataset


def tracking_uri() -> str:
    """The tracking URI, a relative SQLite file resolved in the project folder."""
    return context().settings.tracking_uri


def cache_dir() -> str:
    """The local cache of model artifacts (`[mlflow] cache_dir`), resolved in the project folder."""
    return in_project(mlflow().cache_dir)


def retry_policy() -> RetryPolicy:
    """How transient failures are retried (bounded, jittered), as `[retry]` sets it."""
    return policy_from(RetryPolicy, retry())


def make_registry() -> Registry:
    """The process's registry (context().registry)."""
    return context().registry


def dask_client():
    """The run's Dask client; with `--workers N`, every task process shares one cluster."""
    import multiprocessing

    from luigi.worker import TaskProcess

    from batchml.scoring.compute import get_client, shared_cluster

    cfg = dask()
    address = cfg.scheduler_address
    if not address and isinstance(multiprocessing.current_process(), TaskProcess):  # forked by a luigi --workers N run
        address = shared_cluster(os.getppid(), n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker)
    return get_client(
        address, n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker, processes=cfg.processes
    )


def scoring_here() -> tuple[int, int]:
    """(rows, threads): a date of at most `rows` rows is scored on `threads` threads of this process, without a
    cluster; (0, 0) when every date goes to the run's cluster ([dask] in_process_rows)."""
    import multiprocessing

    from luigi.worker import TaskProcess

    from batchml.scoring.compute import threads_here

    cfg = policy_from(ClusterSettings, dask())
    threads = threads_here(cfg, forked=isinstance(multiprocessing.current_process(), TaskProcess))
    return (cfg.in_process_rows, threads) if threads else (0, 0)
