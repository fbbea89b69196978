"""One luigi.Config class per luigi.cfg section, and the factories that turn them into batchml objects."""

from __future__ import annotations

import datetime
import functools
import os

import luigi
from luigi.parameter import OptionalParameterMixin

from batchml.preflight import check_sqlite_store, check_tracking_uri
from batchml.registry import Registry, configure_http
from batchml.retry import RetryPolicy
from batchml.schema import Schema
from batchml.sources import FileSource, Source, SqlSource, SyntheticSource
from batchml.storage import open_storage


class OptionalDateParameter(OptionalParameterMixin, luigi.DateParameter):
    """A date that may be left empty in luigi.cfg."""

    expected_type = datetime.date


class storage(luigi.Config):
    root = luigi.Parameter(
        default="./data",
        description="Storage root: a local folder, or s3://bucket/prefix (endpoint and credentials from the environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).",
    )
    lease_seconds = luigi.FloatParameter(default=60.0, description="Object stores: a date's write lease; a crashed writer's lease expires after this long.")
    rows_per_file = luigi.IntParameter(default=250_000, description="Rows per Parquet file of features; one Dask partition each.")


class source(luigi.Config):
    kind = luigi.ChoiceParameter(choices=["synthetic", "files", "sql"], default="synthetic", description="Where raw trips come from.")
    rows_per_day = luigi.IntParameter(default=20_000, description="synthetic: trips per date.")
    seed = luigi.IntParameter(default=42, description="synthetic: seed; each date is deterministic per (seed, date).")
    drift_start = OptionalDateParameter(default=None, description="synthetic: first date of the drift scenario (empty: no drift).")
    bad_row_share = luigi.FloatParameter(default=0.001, description="synthetic: share of rows corrupted to exercise quarantine.")
    label_lag_days = luigi.IntParameter(default=2, description="Labels (true durations) of date D arrive on D + label_lag_days.")
    path = luigi.Parameter(default="", description="files: fsspec path with {date}, a folder of files or one file.")
    labels_path = luigi.Parameter(default="", description="files: fsspec path with {date} of the labels (trip_id, trip_duration_s).")
    format = luigi.ChoiceParameter(choices=["parquet", "csv"], default="parquet", description="files: file format.")
    url = luigi.Parameter(default="", description="sql: SQLAlchemy URL (put credentials in the environment, e.g. a DSN).")
    query = luigi.Parameter(default="", description="sql: query returning one date of trips; binds :date (YYYY-MM-DD).")
    labels_query = luigi.Parameter(default="", description="sql: query returning trip_id, trip_duration_s of one date; binds :date.")


class schema(luigi.Config):
    path = luigi.Parameter(default="config/schema.yaml", description="The input schema contract (YAML).")
    max_reject_share = luigi.FloatParameter(default=0.05, description="A date with a larger share of rejected rows fails.")


class mlflow(luigi.Config):
    tracking_uri = luigi.Parameter(default="sqlite:///mlflow.db", description="MLflow tracking and registry URI.")
    registered_model = luigi.Parameter(default="trip_duration", description="Registered model name.")
    alias = luigi.Parameter(default="champion", description="The alias a date resolves and pins.")
    artifact_location = luigi.Parameter(default="", description="Artifact root of the experiment when batchml creates it (empty: MLflow's default).")
    cache_dir = luigi.Parameter(default=".cache/batchml/models", description="Local cache of model artifacts, sha256 verified.")
    http_request_max_retries = luigi.IntParameter(default=2, description="MLflow's own quick HTTP retries inside one attempt of [retry].")
    http_request_timeout = luigi.IntParameter(default=10, description="Seconds per MLflow HTTP request.")


class retry(luigi.Config):
    attempts = luigi.IntParameter(
        default=5, description="Tries of a call that fails transiently (server not answering, Dask scheduler lost). Other failures are not retried."
    )
    initial_delay = luigi.FloatParameter(default=2.0, description="Seconds before the first retry; the wait doubles each time, with jitter.")
    max_delay = luigi.FloatParameter(default=30.0, description="Longest wait between two tries.")
    deadline = luigi.FloatParameter(
        default=120.0, description="No retry starts once this many seconds have passed since the first try: a call gives up within deadline + one try."
    )


class training(luigi.Config):
    window_days = luigi.IntParameter(default=14, description="Days of labelled history a model trains on.")
    max_rows = luigi.IntParameter(default=500_000, description="Rows sampled from that window at most.")
    max_iter = luigi.IntParameter(default=200, description="Boosting iterations.")
    seed = luigi.IntParameter(default=7, description="Seed of sampling and training.")


class dask(luigi.Config):
    scheduler_address = luigi.Parameter(default="", description="Existing Dask scheduler (tcp://host:8786); empty starts a LocalCluster.")
    n_workers = luigi.IntParameter(default=2, description="LocalCluster workers.")
    threads_per_worker = luigi.IntParameter(default=1, description="LocalCluster threads per worker.")
    processes = luigi.BoolParameter(default=False, description="LocalCluster workers as processes instead of threads.")


class drift(luigi.Config):
    psi = luigi.FloatParameter(default=0.2, description="PSI at or above which a column drifted.")
    js = luigi.FloatParameter(default=0.1, description="Jensen-Shannon distance (base 2) at or above which a column drifted.")
    wasserstein = luigi.FloatParameter(default=0.1, description="Wasserstein distance / reference std at or above which a column drifted.")
    drift_share = luigi.FloatParameter(default=0.5, description="Share of drifted features at which the date's verdict is drift.")
    numeric_methods = luigi.ListParameter(default=["psi", "wasserstein"], description="Methods that decide for numeric features (any crossing).")
    categorical_methods = luigi.ListParameter(default=["psi", "js"], description="Methods that decide for categorical features (any crossing).")
    exclude = luigi.ListParameter(
        default=["pickup_weekday", "is_weekend"], description="Features not judged: constant within a date, so always 'drifted' against a multi-day reference."
    )


class checks(luigi.Config):
    trailing_days = luigi.IntParameter(default=7, description="Dates whose median row count a date is compared with.")
    min_row_ratio = luigi.FloatParameter(default=0.5, description="Rows in / trailing median below this fails.")
    max_row_ratio = luigi.FloatParameter(default=2.0, description="Rows in / trailing median above this fails.")
    max_null_rate = luigi.FloatParameter(default=0.01, description="Null rate of any scored feature or the prediction above this fails.")
    max_quarantine_rate = luigi.FloatParameter(default=0.02, description="Quarantined / rows in above this fails.")
    max_prediction_mean_shift = luigi.FloatParameter(default=0.5, description="|mean prediction / reference mean - 1| above this breaches.")
    max_mae_ratio = luigi.FloatParameter(default=1.5, description="Realized MAE / the model's holdout MAE above this breaches.")
    min_label_coverage = luigi.FloatParameter(default=0.9, description="Labelled share of the scored rows of D - label_lag below this breaches.")
    warn_only = luigi.ListParameter(
        default=["realized_mae_ratio", "label_coverage", "prediction_mean_shift"], description="Checks that only warn; all others fail the date."
    )


class report(luigi.Config):
    trend_days = luigi.IntParameter(default=30, description="Dates shown in the report's trend charts.")


def drift_thresholds():
    from batchml.drift import DriftThresholds

    cfg = drift()
    return DriftThresholds(
        psi=cfg.psi,
        js=cfg.js,
        wasserstein=cfg.wasserstein,
        drift_share=cfg.drift_share,
        numeric_methods=tuple(cfg.numeric_methods),
        categorical_methods=tuple(cfg.categorical_methods),
        exclude=tuple(cfg.exclude),
    )


def check_thresholds():
    from batchml.checks import CheckThresholds

    cfg = checks()
    return CheckThresholds(**{k: (tuple(v) if k == "warn_only" else v) for k, v in cfg.param_kwargs.items()})


def make_storage():
    return open_storage(storage().root, lease_seconds=storage().lease_seconds)


def make_source() -> Source:
    cfg = source()
    if cfg.kind == "synthetic":
        return SyntheticSource(
            rows_per_day=cfg.rows_per_day, seed=cfg.seed, drift_start=cfg.drift_start, bad_row_share=cfg.bad_row_share, chunk_rows=storage().rows_per_file
        )
    if cfg.kind == "files":
        return FileSource(path=cfg.path, labels_path=cfg.labels_path, fmt=cfg.format)
    return SqlSource(url=cfg.url, query=cfg.query, labels_query=cfg.labels_query, chunk_rows=storage().rows_per_file)


@functools.cache
def _schema(path: str) -> Schema:
    return Schema.load(path)


def load_schema() -> Schema:
    return _schema(schema().path)


def retry_policy() -> RetryPolicy:
    cfg = retry()
    return RetryPolicy(attempts=cfg.attempts, initial_delay=cfg.initial_delay, max_delay=cfg.max_delay, deadline=cfg.deadline)


def make_registry() -> Registry:
    cfg = mlflow()
    check_tracking_uri(cfg.tracking_uri)  # named errors before MLflow's own
    check_sqlite_store(cfg.tracking_uri)
    configure_http(cfg.http_request_max_retries, cfg.http_request_timeout)
    location = cfg.artifact_location
    if location and "://" not in location:
        location = os.path.abspath(location)  # MLflow stores it as given; pin it to this folder
    return Registry(cfg.tracking_uri, cfg.registered_model, location, retry=retry_policy())


def dask_client():
    """The run's Dask client; with `--workers N`, every task process shares one cluster."""
    import multiprocessing

    from batchml.compute import get_client, shared_cluster
    from luigi.worker import TaskProcess

    cfg = dask()
    address = cfg.scheduler_address
    if not address and isinstance(multiprocessing.current_process(), TaskProcess):  # forked by a luigi --workers N run
        address = shared_cluster(os.getppid(), n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker)
    return get_client(address, n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker, processes=cfg.processes)
