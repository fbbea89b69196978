"""Scoring throughput of each runtime against what all its workers give at once, and a whole DailyScore's fixed and
per-row cost.

Usage:
  bench/score.py --runtime onnx|converted|pyfunc [--rows 5000000] [--workers 2] [--out bench/out] [--rows-per-file
  250000] [--single-thread]
  bench/score.py --measure daily    [--runtime onnx] [--rows 2000000] [--fixed-rows 1000] [--source files|generator]
                                    [--in-process-rows N]
  bench/score.py --measure backfill [--runtime onnx] [--dates 30] [--rows 200000] [--big-rows 6000000]

Setup, with the taxi example project (examples/taxi: contract, `taxi_hooks:features`,
`taxi_synthetic.trips`) copied into --out with a generated luigi.cfg: a
HistGradientBoostingRegressor (HGB) is trained on other synthetic dates and logged the way a
data scientist would, with MLflow's own APIs, in a SQLite registry under --out: as an `onnx`
model (`mlflow.onnx.log_model` of its skl2onnx conversion) and as an `sklearn` model
(`mlflow.sklearn.log_model`). The runtime under test picks the version: onnx -> the onnx
one; converted -> the sklearn one, converted by batchml at pin time; pyfunc -> the sklearn
one with `[runtime] convert_sklearn = false`. `luigi ... ResolveModel` extracts the date's
features (--rows trips) and pins it; the features stay in --out for the next runs.

--measure score (the default), each as rows/s of the same features:
(a) score   `luigi.build([ScorePredictions(date)])` in a fresh subprocess: the pin and the
            cached model read, sha256 checks, scoring on the embedded LocalCluster (--workers single-thread
            workers), the daily profile in the same pass, the row check and the commit. The
            clock runs around the build; imports and the cluster start are reported, not timed.
(b') limit  what all the workers give at once, in the same run, with nothing around the model:
            --workers threads start together, each with its own ONNX Runtime session (onnx,
            converted: one thread per session, as batchml's workers) or its own loaded
            `mlflow.pyfunc` model (pyfunc), and take batches of 262,144 rows of the same
            features, already in memory in the model's input format, until none is left.
            pyfunc runs twice, with each thread's native (OpenMP/BLAS) pools as batchml's
            workers leave them and held to one thread; the faster is the limit. Every ratio
            is against b'. `--single-thread` also prints the old figure, one thread alone
            times --workers, as context: it assumes the cores do not slow each other down
            (shared memory bandwidth and caches, the GIL between pyfunc calls, other load).
(a'') whole (onnx only) `luigi --module pipelines ScorePredictions --date D`, the whole CLI
            process a user runs, scoring the pinned date again (its features and pin kept).
(c) mlflow  (onnx only) `mlflow models predict -t csv --env-manager local` of the sklearn
            version, the whole CLI process timed on 1,000 rows and on 1,000,000 rows, and
            extrapolated linearly to all rows. Compared with (a''), whole process against whole process.
--measure daily: the whole `luigi --module pipelines DailyScore --date D` process (CLI, all
            tasks: extraction of --rows trips, pin, scoring, checks, drift, report). The trips are
            the example generator's, written before the clock as one Parquet file per date and read
            by `[source] kind = files`, as a team's export is (--source generator makes them inside
            the run instead, and its 0.4 us of CPU per row then counts as the pipeline's). Split
            into its fixed cost, the same command on a fresh date of --fixed-rows trips (mean
            of one run just before and one just after the large date, after a warm-up run),
            and its per-row part, the large date's time beyond the fixed cost, compared with
            the time the limit (b') needs for those rows. Each task's own duration is printed
            for both sizes, and what the process spends outside its tasks. Then the fixed cost of
            a steady day: --fixed-rows dates after the version's [drift] baseline_days dates, whose
            runs compute drift against its baseline (mean of two).
--measure backfill: `luigi --module pipelines Backfill` of --dates dates of --rows trips in
            one invocation, against one DailyScore of a --big-rows date, rows/s of each
            whole process. Labels are left out of these runs ([labels] transform empty), so
            each run scores exactly its own dates.

Printed: each measurement, the ratios, and as the last line one JSON object (with the 1-minute
load average before and after: the limits assume --workers idle cores). The machine is shared
and noisy: compare ratios within a run, over several runs, on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAXI = REPO / "examples" / "taxi"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(TAXI))

DATE = dt.date(2026, 6, 1)
LIMIT_BATCH = 262_144
MLFLOW_SIZES = (1_000, 1_000_000)
RSS_POLL_S = 0.05
TREE_LIST_S = 1.0
SKOPS = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "numpy.dtype"]
MODELS = {"onnx": "bench_onnx", "converted": "bench_sklearn", "pyfunc": "bench_sklearn"}
BIN = Path(sys.executable).parent
TARGETS = {"onnx": 0.9, "converted": 0.9, "pyfunc": 0.85}  # score / limit (b')
DAILY_FIXED_TARGET_S = 3.0  # a whole DailyScore process's fixed cost
DAILY_PER_ROW_TARGET = 1.5  # its per-row part / the limit's time for the same rows


# -- the project ---------------------------------------------------------------------------------
def shared(work: Path) -> Path:
    """The registry (SQLite store, artifacts, batchml's model cache) every measurement under one --out shares: trained
    and logged once."""
    path = work.parent / "registry"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_project(
    folder: Path,
    work: Path,
    *,
    root: Path,
    rows: int,
    rows_per_file: int,
    runtime: str,
    workers: int,
    processes: bool = False,
    source: Path | None = None,
    in_process_rows: int | None = None,
) -> Path:
    """The taxi example's files and a luigi.cfg pointing at --out; returns the luigi.cfg.

    The rows come from the example's generator, or with `source` from the Parquet files of
    export_source (`[source] kind = files`), as a team's system publishes them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("contract.yaml", "taxi_hooks.py", "taxi_synthetic.py"):
        shutil.copy(TAXI / name, folder / name)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(TAXI / "luigi.cfg")
    settings = {
        "core": {"local_scheduler": "true", "log_level": "WARNING"},
        "storage": {"root": str(root), "rows_per_file": str(rows_per_file)},
        "source": (
            {"kind": "files", "path": f"{source}/{{date}}.parquet", "options": "{}"}
            if source
            else {"kind": "python", "options": json.dumps(synthetic_options(rows))}
        ),
        "labels": {"transform": ""},  # each run scores exactly its own dates (no date - lag scored for its labels)
        "training": {"recipe": ""},
        "mlflow": {
            "tracking_uri": f"sqlite:///{shared(work) / 'registry.db'}",
            "registered_model": MODELS[runtime],
            "cold_start": "false",
            "artifact_location": str(shared(work) / "mlartifacts"),
            "cache_dir": str(shared(work) / "cache"),
        },
        "runtime": {"convert_sklearn": str(runtime != "pyfunc").lower()},
        "dask": {
            "scheduler_address": "",
            "n_workers": str(workers),
            "threads_per_worker": "1",
            "processes": str(processes).lower(),
            **({"in_process_rows": str(in_process_rows)} if in_process_rows is not None else {}),
        },
    }
    for section, values in settings.items():
        if not cfg.has_section(section):
            cfg.add_section(section)
        for key, value in values.items():
            cfg[section][key] = value
    path = folder / "luigi.cfg"
    with open(path, "w") as fh:
        cfg.write(fh)
    return path


def synthetic_options(rows: int) -> dict:
    return {"rows_per_day": rows, "seed": 1, "drift_start": "", "bad_row_share": 0.001}


def export_source(folder: Path, date: dt.date, rows: int) -> float:
    """The example generator's rows of `date` written to `folder`/<date>.parquet, one row group per batch it yields, as
    a team's export; returns the seconds the generator alone took (context: a real source reads files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from taxi_synthetic import trips

    folder.mkdir(parents=True, exist_ok=True)
    generating, writer = 0.0, None
    batches = trips(date, **synthetic_options(rows))
    try:
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            generating += time.perf_counter() - start
            if batch is None:
                break
            table = pa.Table.from_pandas(batch, preserve_index=False)
            writer = writer or pq.ParquetWriter(folder / f"{date}.parquet.tmp", table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    os.replace(folder / f"{date}.parquet.tmp", folder / f"{date}.parquet")
    return generating


def child_env() -> dict[str, str]:
    """The environment of every process measured (batchml's and MLflow's CLI alike): Python's default of caching
    bytecode on first import. An environment with PYTHONDONTWRITEBYTECODE set (this project's build machine) compiles
    the modules imported from the clone (batchml, tasks, pipelines, the project's hooks) in every run: 0.09 s of a
    DailyScore that an installed wheel, or any second run on a default Python, does not pay."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def luigi_cli(cfg: Path, *args: str) -> float:
    """Run `luigi --module pipelines ARGS` from the project folder; its whole wall time."""
    env = {k: v for k, v in child_env().items() if not k.startswith(("LUIGI_", "MLFLOW_"))}
    env["LUIGI_CONFIG_PATH"] = str(cfg)
    start = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "luigi"), "--module", "pipelines", *args], cwd=cfg.parent, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"luigi {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def register_models(work: Path) -> None:
    """HGB trained on ten other synthetic dates, logged with MLflow's own APIs as an onnx and an sklearn version (once
    per --out)."""
    import mlflow
    import onnx
    from mlflow.models import infer_signature
    from taxi_hooks import recipe

    from batchml.dataset.contract import Contract
    from batchml.dataset.sources import GeneratorSource
    from batchml.model.training import TrainingSettings, labelled_frame, to_onnx_bytes

    uri = f"sqlite:///{shared(work) / 'registry.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.search_registered_models(filter_string=f"name = '{MODELS['onnx']}'"):
        return
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    contract = Contract.load(TAXI / "contract.yaml")
    source = GeneratorSource(generator="taxi_hooks:trips", options={"rows_per_day": 50_000, "seed": 1})
    dates = [DATE - dt.timedelta(days=d) for d in range(31, 21, -1)]
    frame = labelled_frame(
        source, contract, dates, features="taxi_hooks:features", labels="taxi_hooks:duration", max_rows=500_000, seed=1
    )
    inputs = [c for c in frame.columns if c not in (*contract.key, contract.label.column, "date")]
    model = recipe(
        frame, TrainingSettings(inputs=tuple(inputs), label=contract.label.column, task="regression", seed=1)
    )
    example = frame[inputs].head(5)
    blob, note = to_onnx_bytes(model, frame[inputs].head(2000))
    if blob is None:
        raise RuntimeError(f"the benchmark model does not convert to ONNX: {note}")
    experiment = client.create_experiment("bench", artifact_location=str(shared(work) / "mlartifacts"))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    signature = infer_signature(example, model.predict(example))
    with mlflow.start_run(experiment_id=experiment, run_name="onnx"):
        mlflow.onnx.log_model(
            onnx.load_from_string(blob), name="model", signature=signature, registered_model_name=MODELS["onnx"]
        )
    with mlflow.start_run(experiment_id=experiment, run_name="sklearn"):
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=MODELS["pyfunc"],
            skops_trusted_types=SKOPS,
        )
    for name in set(MODELS.values()):
        client.set_registered_model_alias(name, "champion", "1")


def fresh_date(root: Path, date: dt.date) -> None:
    """Forget the date's pin, predictions, monitoring and baselines, keeping its features."""
    forget_predictions(root, date)
    shutil.rmtree(root / "_baselines", ignore_errors=True)
    (root / "pins" / f"date={date}.json").unlink(missing_ok=True)


def forget_predictions(root: Path, date: dt.date) -> None:
    """Forget the date's predictions and monitoring, keeping its features and pin: the date scores again."""
    shutil.rmtree(root / "predictions" / f"date={date}", ignore_errors=True)
    shutil.rmtree(root / "monitoring" / f"date={date}", ignore_errors=True)


# -- (a) ScorePredictions in a subprocess ----------------------------------------------------------
@dataclass
class ScoreJob:
    cfg: str
    date: str
    workers: int


def score_child(job: ScoreJob) -> None:
    """Body of the scoring subprocess: imports and the client not timed, then the task timed."""
    import importlib
    import resource

    os.environ["LUIGI_CONFIG_PATH"] = job.cfg
    os.chdir(Path(job.cfg).parent)
    start = time.perf_counter()
    # The task's modules, and the Iceberg catalog its reads and commit open (in a DailyScore, ExtractFeatures imported
    # it before: 0.3-0.5 s that are a process's, not scoring's).
    for module in ("batchml.scoring.scoring", "tasks.score", "pipelines", "pyiceberg.catalog.sql"):
        importlib.import_module(module)
    imports_s = time.perf_counter() - start
    import gc

    gc.set_threshold(*importlib.import_module("pipelines").COLLECTOR_THRESHOLDS)  # as a `luigi` process sets them
    import luigi

    from batchml.scoring.compute import close_client
    from tasks.config import dask_client, make_storage
    from tasks.score import ScorePredictions

    start = time.perf_counter()
    dask_client()  # the project's [dask]: --workers single-thread workers, threads or (--processes) processes
    cluster_start_s = time.perf_counter() - start
    date = dt.date.fromisoformat(job.date)
    start = time.perf_counter()
    loaded = load_pinned_model(date)
    model_load_s = time.perf_counter() - start
    start = time.perf_counter()
    ok = luigi.build([ScorePredictions(date=date)], local_scheduler=True, log_level="WARNING")
    seconds = time.perf_counter() - start
    if not ok:
        raise SystemExit("ScorePredictions failed")
    manifest = make_storage().verify("predictions", date)
    close_client()
    maxrss_mib = (
        max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    )
    out = {
        "rows": manifest.rows["written"],
        "seconds": seconds,
        "imports_s": imports_s,
        "cluster_start_s": cluster_start_s,
        "model_load_s": model_load_s if loaded else 0.0,
        "maxrss_mib": maxrss_mib,
    }
    print(json.dumps({**out, "runtime": manifest.model["runtime"]}))


def load_pinned_model(date: dt.date) -> bool:
    """The date's pinned model loaded into the process-wide cache the workers score with, as the limit (b') loads its
    models before its clock: a once-per-process cost (a pyfunc's imports, MLflow's requirements check and
    deserialisation, about 3 s for a scikit-learn model; an ONNX session, milliseconds), counted in a DailyScore's
    fixed cost, not in rows/s. False when the workers are processes of their own, which load it inside the clock."""
    from batchml.scoring.scoring import onnx_session, pyfunc_model
    from tasks.config import dask, make_registry
    from tasks.model import model_path, read_pin

    if dask().processes or dask().scheduler_address:
        return False
    pin = read_pin(date)
    local = model_path(make_registry(), pin, date)
    if pin.runtime == "pyfunc":
        pyfunc_model(str(local), pin.scored_sha256)
    else:
        onnx_session(str(local), pin.scored_sha256)
    return True


def measure_score(job: ScoreJob) -> dict:
    """Run the scoring subprocess, polling the RSS of its whole process tree."""
    import psutil

    cmd = [sys.executable, __file__, "--score-child", json.dumps(asdict(job))]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env())
    peak, root, tree, listed = 0, psutil.Process(proc.pid), [], 0.0
    while True:
        if time.perf_counter() - listed > TREE_LIST_S:
            with contextlib.suppress(psutil.Error):
                tree, listed = [root, *root.children(recursive=True)], time.perf_counter()
        rss = 0
        for member in tree:
            with contextlib.suppress(psutil.Error):
                rss += member.memory_info().rss
        peak = max(peak, rss)
        try:
            proc.wait(timeout=RSS_POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
    process_s = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"scoring subprocess failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.read().strip().splitlines()[-1])
    result["peak_rss_mib"] = max(peak / 2**20, result["maxrss_mib"])
    result["process_s"] = process_s
    return result


# -- (b) the limit: what all the workers give at once --------------------------------------------
def features_frame(root: Path, date: dt.date):
    from batchml.store.layout import FEATURES
    from batchml.store.storage import open_storage

    return open_storage(root).read_table(FEATURES, date)


def _inputs(pin, frame) -> list[str]:
    return list(pin.inputs) or [c for c in frame.columns if c not in ("vendor_id", "pickup_datetime")]


def _onnx_session(model_path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as batchml's workers: parallelism comes from the workers
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def _scorers(pin, model_path: Path, frame, n: int) -> list:
    """`n` independent callables `score(lo, hi)` over the in-memory features in the model's input format (made before
    any clock)."""
    inputs = _inputs(pin, frame)
    if pin.runtime == "pyfunc":
        import mlflow.pyfunc

        from batchml.scoring.scoring import signature_frame

        x = signature_frame(frame, tuple(inputs), pin.input_types)
        models = [mlflow.pyfunc.load_model(str(model_path)) for _ in range(n)]
        return [lambda lo, hi, m=m: m.predict(x.iloc[lo:hi]) for m in models]
    from batchml.model.onnx_io import onnx_feed

    sessions = [_onnx_session(model_path) for _ in range(n)]
    feed = onnx_feed(sessions[0], frame, tuple(inputs))
    return [lambda lo, hi, s=s: s.run(None, {k: v[lo:hi] for k, v in feed.items()}) for s in sessions]


def concurrent_limit(scorers: list, rows: int, native_threads: int | None = None) -> float:
    """Rows/s of one thread per scorer, all scoring the in-memory rows at the same time.

    Each thread has its own session (or loaded model), warms it up, waits for the others,
    then takes batches of LIMIT_BATCH rows from one shared list until none is left, as
    Dask's workers take partitions; the clock runs from the moment all are ready until
    the last batch is done. `native_threads` holds each thread's OpenMP/BLAS pools to that
    many threads (pyfunc; None leaves them as batchml's workers leave them).
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    batches = iter([(lo, min(lo + LIMIT_BATCH, rows)) for lo in range(0, rows, LIMIT_BATCH)])
    lock, ready = threading.Lock(), threading.Barrier(len(scorers) + 1)

    def work(score) -> None:
        with threadpool_limits(native_threads) if native_threads else contextlib.nullcontext():
            try:
                score(0, min(1000, rows))
                ready.wait()
            except BaseException:
                ready.abort()
                raise
            while True:
                with lock:
                    batch = next(batches, None)
                if batch is None:
                    return
                score(*batch)

    with ThreadPoolExecutor(len(scorers)) as pool:
        futures = [pool.submit(work, score) for score in scorers]
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # the worker's own exception
            raise
        start = time.perf_counter()
        for future in futures:
            future.result()
        return rows / (time.perf_counter() - start)


def partition_steps(root: Path, pin, model_path: Path, reps: int = 3) -> dict:
    """(d) The first features file's partition on one thread, each step of a scoring task timed alone with batchml's
    own functions (best of `reps`): the model, and what the task must also do for those rows. The work besides the
    model, as a share of the model's time, bounds a/b' with every other cost (Dask, checksums, commits) at zero."""
    import pyarrow.parquet as pq

    from batchml.monitor.baseline import baseline_bins
    from batchml.scoring.predictions import profile_specs
    from batchml.scoring.scoring import (
        ModelSpec,
        onnx_feed,
        onnx_session,
        predict_partition,
        predictions_file,
        read_rows,
    )
    from batchml.stats.profile import profile_partition
    from batchml.store.layout import FEATURES
    from batchml.store.storage import open_storage
    from tasks.config import load_contract

    storage = open_storage(root)
    key = tuple(load_contract().key)
    piece = (storage.files(FEATURES, DATE)[0], 0, 2**62)
    sha256 = storage.manifest(FEATURES, DATE).files[0]["sha256"]  # files() lists them in the manifest's order
    part = read_rows(piece, pq.read_schema(piece[0]).names)
    inputs = tuple(_inputs(pin, part))
    spec = ModelSpec(str(model_path), pin.scored_sha256, pin.runtime, inputs, key, pin.name, pin.version, pin.classes)
    columns = list(dict.fromkeys([*key, *inputs]))
    specs = profile_specs(baseline_bins(storage, pin, lambda: None))
    session = onnx_session(spec.url, spec.sha256)
    feed = onnx_feed(session, part, inputs)
    predictions = predict_partition(part, spec)

    def best(step) -> float:
        return min(_timed(step) for _ in range(reps))

    model = best(lambda: session.run(None, feed))
    steps = {  # as score_piece does each: the whole file read and checked, the file made in memory and hashed
        "read": best(lambda: read_rows(piece, columns, sha256)),
        "inputs and outputs": max(0.0, best(lambda: predict_partition(part, spec)) - model),
        "write": best(lambda: predictions_file(predictions)),
        "profile": best(lambda: profile_partition(part, specs, extra={"prediction": predictions["prediction"]})),
    }
    return {"rows": len(part), "model_s": model, "steps_s": steps, "besides_share": sum(steps.values()) / model}


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def describe_limit(limit: dict, runtime: str, workers: int) -> str:
    what = "ONNX Runtime sessions" if runtime != "pyfunc" else "loaded pyfunc models' predict"
    text = f"{workers} {what} at once, one per worker thread, on the rows in memory"
    if runtime == "pyfunc":
        text += (
            f" (native pools as the workers leave them {limit['native_default_rows_per_s']:,.0f}, "
            f"held to 1 thread each {limit['native_1_rows_per_s']:,.0f}; the faster counts)"
        )
    return text


def measure_limit(pin, model_path: Path, frame, workers: int, *, single_thread: bool = False) -> dict:
    """The limit (b'): `workers` threads at once, each with its own session or model, on the same rows in memory.

    pyfunc is measured twice, with each thread's native pools left alone (as batchml's
    workers run it) and held to one thread; the faster is the limit. With `single_thread`
    also the old figure, one thread alone times `workers` (context only: it assumes the
    cores do not slow each other down).
    """
    rows = len(frame)
    scorers = _scorers(pin, model_path, frame, workers)
    out = {"rows": rows}
    if pin.runtime == "pyfunc":
        out["native_default_rows_per_s"] = concurrent_limit(scorers, rows)
        out["native_1_rows_per_s"] = concurrent_limit(scorers, rows, native_threads=1)
        out["rows_per_s"] = max(out["native_default_rows_per_s"], out["native_1_rows_per_s"])
    else:
        out["rows_per_s"] = concurrent_limit(scorers, rows)
    if single_thread:
        one = concurrent_limit(scorers[:1], rows, native_threads=1 if pin.runtime == "pyfunc" else None)
        out["single_thread_x_workers_rows_per_s"] = one * workers
    return out


def pinned(cfg: Path, date: dt.date):
    """The date's pin and the verified local model it scores with (read with the project's settings)."""
    import luigi

    os.environ["LUIGI_CONFIG_PATH"] = str(
        cfg
    )  # names the project, whose relative paths (the contract) resolve against its folder
    luigi.configuration.add_config_path(str(cfg))
    from tasks.config import make_registry
    from tasks.model import model_path, read_pin

    pin = read_pin(date)
    return pin, model_path(make_registry(), pin, date)


# -- (c) the MLflow CLI --------------------------------------------------------------------------
def measure_mlflow_cli(work: Path, frame, rows: int) -> dict:
    """`mlflow models predict` of the sklearn version: whole process at two sizes, extrapolated to `rows`."""
    uri = f"sqlite:///{shared(work) / 'registry.db'}"
    largest = min(rows, MLFLOW_SIZES[1])
    inputs = [
        c
        for c in frame.columns
        if c not in ("vendor_id", "pickup_datetime", "dropoff_datetime", "pickup_location_id", "dropoff_location_id")
    ]
    seconds = {}
    with tempfile.TemporaryDirectory(dir=work, prefix="mlflow-") as tmp:
        for n in sorted({min(MLFLOW_SIZES[0], largest), largest}):
            csv, out = Path(tmp, f"rows-{n}.csv"), Path(tmp, f"out-{n}.json")
            frame[inputs].head(n).to_csv(csv, index=False)
            cmd = [sys.executable, "-m", "mlflow", "models", "predict", "-m", f"models:/{MODELS['pyfunc']}/1"]
            cmd += ["-i", str(csv), "-t", "csv", "-o", str(out), "--env-manager", "local"]
            env = {**child_env(), "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds[n] = time.perf_counter() - start
            if len(json.loads(out.read_text())["predictions"]) != n:
                raise RuntimeError(f"mlflow models predict returned a wrong number of predictions for {n} rows")
    (small, t_small), (large, t_large) = sorted(seconds.items())[0], sorted(seconds.items())[-1]
    per_row = (t_large - t_small) / (large - small) if large > small else 0.0
    estimated = (t_small - small * per_row) + rows * per_row if rows > large else t_large
    return {
        "seconds": seconds,
        "startup_s": t_small - small * per_row,
        "estimated_s": estimated,
        "extrapolated": rows > large,
        "rows_per_s": rows / estimated,
    }


# -- the measurements ----------------------------------------------------------------------------
def measure_score_runtime(args, work: Path) -> dict:
    root = work / "data"
    cfg = write_project(
        work / f"project-{args.runtime}",
        work,
        root=root,
        rows=args.rows,
        rows_per_file=args.rows_per_file,
        runtime=args.runtime,
        workers=args.workers,
        processes=args.processes,
        in_process_rows=args.in_process_rows,
    )
    start = time.perf_counter()
    register_models(work)
    fresh_date(root, DATE)
    setup_s = luigi_cli(
        cfg, "ResolveModel", "--date", DATE.isoformat()
    )  # extracts the features (once per --out) and pins
    pin, model_path = pinned(cfg, DATE)
    print(
        f"setup: {time.perf_counter() - start:.1f} s (ResolveModel {setup_s:.1f} s); pinned "
        f"models:/{pin.name}/{pin.version} runtime {pin.runtime}",
        flush=True,
    )
    if pin.runtime != args.runtime:
        raise RuntimeError(f"asked for runtime {args.runtime}, the pin says {pin.runtime}: {pin.note}")
    score = measure_score(ScoreJob(cfg=str(cfg), date=DATE.isoformat(), workers=args.workers))
    rate = score["rows"] / score["seconds"]
    print(
        f"(a) score:  {score['rows']:,} rows in {score['seconds']:.2f} s = {rate:,.0f} rows/s ({score['runtime']}); "
        f"peak RSS {score['peak_rss_mib']:.0f} MiB; "
        f"not timed: imports {score['imports_s']:.2f} s, cluster start {score['cluster_start_s']:.2f} s, the model's "
        f"load {score['model_load_s']:.2f} s; whole process {score['process_s']:.1f} s",
        flush=True,
    )
    frame = features_frame(root, DATE)
    if len(frame) != score["rows"]:
        raise RuntimeError(f"scored {score['rows']} rows but the features hold {len(frame)}")
    limit = measure_limit(pin, model_path, frame, args.workers, single_thread=args.single_thread)
    limit_rate, target = limit["rows_per_s"], TARGETS[args.runtime]
    print(f"(b') limit: {limit_rate:,.0f} rows/s = {describe_limit(limit, args.runtime, args.workers)}", flush=True)
    if "single_thread_x_workers_rows_per_s" in limit:
        single = limit["single_thread_x_workers_rows_per_s"]
        print(
            f"     context, not the limit: 1 thread alone x {args.workers} = {single:,.0f} rows/s (b' is "
            f"{limit_rate / single:.2f} of it)",
            flush=True,
        )
    with_load = score["rows"] / (score["seconds"] + score["model_load_s"])
    print(
        f"a/b' = {rate / limit_rate:.3f} of the limit (target >= {target}); with the model's load in the clock "
        f"{with_load / limit_rate:.3f}",
        flush=True,
    )
    result = {
        "measure": "score",
        "runtime": args.runtime,
        "rows": score["rows"],
        "score_rows_per_s": round(rate),
        "limit_rows_per_s": round(limit_rate),
        "limit": "concurrent",
        "ratio_to_limit": round(rate / limit_rate, 3),
        "target_ratio_to_limit": target,
        **{f"limit_{k}": round(v) for k, v in limit.items() if k not in ("rows", "rows_per_s")},
        "score_s": round(score["seconds"], 2),
        "score_process_s": round(score["process_s"], 2),
        "peak_rss_mib": round(score["peak_rss_mib"]),
        "imports_s": round(score["imports_s"], 2),
        "cluster_start_s": round(score["cluster_start_s"], 2),
        "model_load_s": round(score["model_load_s"], 2),
        "ratio_to_limit_with_model_load": round(with_load / limit_rate, 3),
    }
    if args.runtime != "pyfunc":
        steps = partition_steps(root, pin, model_path)
        listed = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps["steps_s"].items())
        share = steps["besides_share"]
        print(
            f"(d) one partition of {steps['rows']:,} rows on one thread, each step alone: the model "
            f"{steps['model_s'] * 1000:.0f} ms; besides it {listed}: {share:.1%} of the model's time, so at most "
            f"{1 / (1 + share):.3f} of b' with nothing else around the model",
            flush=True,
        )
        result |= {"partition_besides_model_share": round(share, 3), "bound_from_partition": round(1 / (1 + share), 3)}
    if args.runtime == "onnx":
        forget_predictions(root, DATE)
        process_s = luigi_cli(
            cfg, "ScorePredictions", "--date", DATE.isoformat()
        )  # the pinned date scored again, as a user runs it
        print(f"(a'') `luigi --module pipelines ScorePredictions`, whole process: {process_s:.1f} s", flush=True)
        cli = measure_mlflow_cli(work, frame, score["rows"])
        process_rate = score["rows"] / process_s
        print(
            f"(c) mlflow models predict: {', '.join(f'{n:,} rows {s:.1f} s' for n, s in cli['seconds'].items())}; "
            f"start-up {cli['startup_s']:.1f} s; "
            f"{'extrapolated' if cli['extrapolated'] else 'measured'} {cli['estimated_s']:.1f} s = "
            f"{cli['rows_per_s']:,.0f} rows/s",
            flush=True,
        )
        print(
            f"whole process: {process_rate:,.0f} rows/s = {process_rate / cli['rows_per_s']:.2f} x the MLflow CLI's "
            "whole process (target >= 2.5)"
        )
        result |= {
            "mlflow_cli_rows_per_s": round(cli["rows_per_s"]),
            "mlflow_cli_extrapolated": cli["extrapolated"],
            "score_cli_process_s": round(process_s, 2),
            "score_process_rows_per_s": round(process_rate),
            "ratio_to_mlflow_cli_whole_process": round(process_rate / cli["rows_per_s"], 2),
        }
    return result


def measure_daily(args, work: Path) -> dict:
    """A whole DailyScore process of a fresh --rows date, split into its fixed cost and its per-row part.

    Fixed cost: the same command, same registry and settings, on a fresh date of
    --fixed-rows rows (interpreter, imports, config and pin resolution through the registry,
    the cluster's start, nine tasks scheduled, manifests and monitoring logs; its rows are
    a rounding error). A first small run is a warm-up, not counted (it fills the model cache
    and the OS's file cache as the large date's run finds them); then small, large, small,
    and the fixed cost is the mean of the two small runs around the large one, so a drift
    in the machine's load weighs on both sides. Per-row part: the large date's time beyond
    the fixed cost, against the limit's (b') time for the rows beyond the small date's,
    measured on the large date's features in the same run.
    Each task's own duration (monitoring/date=D/durations) of both runs says where it went.
    """
    from batchml.monitor.monitoring import read_durations
    from batchml.store.storage import open_storage

    register_models(work)
    runs = {}
    for name, rows in (
        ("warm-up", args.fixed_rows),
        ("fixed-before", args.fixed_rows),
        ("large", args.rows),
        ("fixed-after", args.fixed_rows),
    ):
        cfg, root, generating = daily_project(args, work, name, rows, [DATE])
        seconds = luigi_cli(cfg, "DailyScore", "--date", DATE.isoformat())
        storage = open_storage(root)
        runs[name] = {
            "cfg": cfg,
            "seconds": seconds,
            "generating": generating,
            "rows": storage.manifest("predictions", DATE).rows["written"],
            "tasks": read_durations(storage, DATE),
        }
        print(f"DailyScore of {runs[name]['rows']:,} rows ({name}): {seconds:.2f} s whole process", flush=True)
    large, before, after = runs["large"], runs["fixed-before"], runs["fixed-after"]
    fixed = {
        "seconds": (before["seconds"] + after["seconds"]) / 2,
        "rows": after["rows"],
        "tasks": {
            t: (before["tasks"].get(t, 0.0) + after["tasks"].get(t, 0.0)) / 2
            for t in set(before["tasks"]) | set(after["tasks"])
        },
    }
    pin, model_path = pinned(large["cfg"], DATE)
    limit = measure_limit(pin, model_path, features_frame(work / "daily-large-data", DATE), args.workers)
    per_row_s = large["seconds"] - fixed["seconds"]
    limit_s = (large["rows"] - fixed["rows"]) / limit["rows_per_s"]
    print(f"{'task':<18} {'large s':>8} {'fixed s':>8} {'per-row s':>9}")
    for task in sorted(set(large["tasks"]) | set(fixed["tasks"]), key=lambda t: -large["tasks"].get(t, 0)):
        big, small = large["tasks"].get(task, 0.0), fixed["tasks"].get(task, 0.0)
        print(f"{task:<18} {big:>8.2f} {small:>8.2f} {big - small:>9.2f}")
    outside = {name: run["seconds"] - sum(run["tasks"].values()) for name, run in (("large", large), ("fixed", fixed))}
    print(
        f"{'outside tasks':<18} {outside['large']:>8.2f} {outside['fixed']:>8.2f} "
        f"{outside['large'] - outside['fixed']:>9.2f}  (interpreter, imports, scheduling)"
    )
    print(
        f"fixed cost: {fixed['seconds']:.2f} s (DailyScore of {fixed['rows']:,} rows, mean of the runs just before and "
        "after the large date: "
        f"{before['seconds']:.2f} and {after['seconds']:.2f} s; the warm-up took {runs['warm-up']['seconds']:.2f} s) "
        f"(target <= {DAILY_FIXED_TARGET_S:.0f} s)"
    )
    print(
        f"per-row part: {per_row_s:.2f} s for {large['rows'] - fixed['rows']:,} rows; the limit (b', "
        f"{limit['rows_per_s']:,.0f} rows/s) "
        f"needs {limit_s:.2f} s; ratio {per_row_s / limit_s:.2f} (target <= {DAILY_PER_ROW_TARGET})"
    )
    steady = steady_fixed_cost(args, work)
    print(
        f"fixed cost on a steady day: {steady['seconds']:.2f} s ({', '.join(f'{s:.2f}' for s in steady['runs'])} s: "
        f"{args.fixed_rows:,}-row dates after the version's {steady['baseline_days']}-date baseline, drift computed; "
        f"DetectDrift {steady['tasks'].get('DetectDrift', 0.0):.2f} s) (target <= {DAILY_FIXED_TARGET_S:.0f} s)"
    )
    print(f"whole process: {large['seconds']:.2f} s = {large['seconds'] / limit_s:.2f} x the limit's time (context)")
    if large["generating"] is not None:
        print(
            f"source: Parquet files written before the clock; making the large date's rows took the example's "
            f"generator {large['generating']:.2f} s (not counted: --source generator counts it)"
        )
    return {
        "measure": "daily",
        "runtime": pin.runtime,
        "source": args.source,
        "rows": large["rows"],
        "daily_s": round(large["seconds"], 2),
        "fixed_rows": fixed["rows"],
        "fixed_s": round(fixed["seconds"], 2),
        "fixed_before_s": round(before["seconds"], 2),
        "fixed_after_s": round(after["seconds"], 2),
        "warm_up_s": round(runs["warm-up"]["seconds"], 2),
        "fixed_steady_s": round(steady["seconds"], 2),
        "fixed_steady_runs_s": [round(s, 2) for s in steady["runs"]],
        "target_fixed_s": DAILY_FIXED_TARGET_S,
        "per_row_s": round(per_row_s, 2),
        "limit_rows_per_s": round(limit["rows_per_s"]),
        "limit_s": round(limit_s, 2),
        "per_row_ratio_to_limit_time": round(per_row_s / limit_s, 2),
        "target_per_row_ratio": DAILY_PER_ROW_TARGET,
        "whole_ratio_to_limit_time": round(large["seconds"] / limit_s, 2),
        "tasks_s": {"large": large["tasks"], "fixed": {t: round(s, 3) for t, s in fixed["tasks"].items()}},
    }


def daily_project(args, work: Path, name: str, rows: int, dates: list[dt.date]) -> tuple[Path, Path, float | None]:
    """A project of --runtime on a fresh storage root, with `rows` trips a date; with --source files, the dates' rows
    exported first. (Its luigi.cfg, its root, the seconds the generator took to make the exported rows.)"""
    root, source, generating = work / f"daily-{name}-data", None, None
    shutil.rmtree(root, ignore_errors=True)
    if args.source == "files":
        source = work / f"daily-{name}-source"
        shutil.rmtree(source, ignore_errors=True)
        generating = sum(export_source(source, date, rows) for date in dates)
        os.sync()  # the export on disk before the clock, as a team's file is long before the run reads it
    cfg = write_project(
        work / f"project-daily-{name}",
        work,
        root=root,
        rows=rows,
        rows_per_file=args.rows_per_file,
        runtime=args.runtime,
        workers=args.workers,
        source=source,
        in_process_rows=args.in_process_rows,
    )
    return cfg, root, generating


def steady_fixed_cost(args, work: Path, timed: int = 2) -> dict:
    """A 1,000-row DailyScore on a day like most: the version's baseline of `[drift] baseline_days` dates collected, so
    the run computes drift against it (the first date of a fresh root, the fixed cost above, has nothing to compare
    with). The project scores its first baseline_days dates untimed, then `timed` dates one run each; their mean."""
    from batchml.monitor.baseline import BaselinePolicy
    from batchml.monitor.monitoring import read_durations
    from batchml.store.storage import open_storage

    days = BaselinePolicy().baseline_days
    dates = [DATE + dt.timedelta(days=i) for i in range(days + timed)]
    cfg, root, _ = daily_project(args, work, "steady", args.fixed_rows, dates)
    seconds, tasks = [], []
    for date in dates:
        took = luigi_cli(cfg, "DailyScore", "--date", date.isoformat())
        if date in dates[days:]:
            drift = json.loads((root / "monitoring" / f"date={date}" / "drift.json").read_text())
            if not drift.get("features"):
                raise RuntimeError(f"{date}: no drift computed; the steady day is not what it claims ({drift})")
            seconds.append(took)
            tasks.append(read_durations(open_storage(root), date))
    names = set().union(*tasks)
    return {
        "seconds": sum(seconds) / len(seconds),
        "runs": seconds,
        "baseline_days": days,
        "tasks": {t: sum(run.get(t, 0.0) for run in tasks) / len(tasks) for t in names},
    }


def measure_backfill(args, work: Path) -> dict:
    """One Backfill invocation of --dates small dates against one DailyScore of a --big-rows date, rows/s of each whole
    process."""
    register_models(work)
    small_root, big_root = work / "backfill-data", work / "big-data"
    for root in (small_root, big_root):
        shutil.rmtree(root, ignore_errors=True)
    small = write_project(
        work / "project-backfill",
        work,
        root=small_root,
        rows=args.rows,
        rows_per_file=args.rows_per_file,
        runtime=args.runtime,
        workers=args.workers,
        in_process_rows=args.in_process_rows,
    )
    big = write_project(
        work / "project-big",
        work,
        root=big_root,
        rows=args.big_rows,
        rows_per_file=args.rows_per_file,
        runtime=args.runtime,
        workers=args.workers,
        in_process_rows=args.in_process_rows,
    )
    stop = DATE + dt.timedelta(days=args.dates)
    small_s = luigi_cli(
        small,
        "Backfill",
        "--start",
        DATE.isoformat(),
        "--stop",
        stop.isoformat(),
        *(["--workers", str(args.luigi_workers)] if args.luigi_workers > 1 else []),
    )
    big_s = luigi_cli(big, "DailyScore", "--date", DATE.isoformat())
    from batchml.store.storage import open_storage

    small_rows = sum(
        open_storage(small_root).manifest("predictions", DATE + dt.timedelta(days=i)).rows["written"]
        for i in range(args.dates)
    )
    big_rows = open_storage(big_root).manifest("predictions", DATE).rows["written"]
    ratio = (small_rows / small_s) / (big_rows / big_s)
    print(
        f"Backfill of {args.dates} dates, {small_rows:,} rows: {small_s:.1f} s = {small_rows / small_s:,.0f} rows/s; "
        f"one date of {big_rows:,} rows: {big_s:.1f} s = {big_rows / big_s:,.0f} rows/s; ratio {ratio:.2f} (target >= "
        "0.8)"
    )
    return {
        "measure": "backfill",
        "runtime": args.runtime,
        "dates": args.dates,
        "backfill_rows": small_rows,
        "backfill_s": round(small_s, 2),
        "big_rows": big_rows,
        "big_s": round(big_s, 2),
        "ratio_rows_per_s": round(ratio, 2),
        "luigi_workers": args.luigi_workers,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", choices=["score", "daily", "backfill"], default="score")
    parser.add_argument(
        "--runtime",
        choices=["onnx", "converted", "pyfunc"],
        default="onnx",
        help="which version scores: see the module's docstring",
    )
    parser.add_argument(
        "--rows",
        type=int,
        help="trips in the scored date (default: 5,000,000 score, 2,000,000 daily, 200,000 per backfill date)",
    )
    parser.add_argument(
        "--big-rows", type=int, default=6_000_000, help="backfill: trips in the one large date it is compared with"
    )
    parser.add_argument("--dates", type=int, default=30, help="backfill: dates in the one invocation")
    parser.add_argument("--luigi-workers", type=int, default=1, help="backfill: luigi --workers of the invocation")
    parser.add_argument(
        "--workers", type=int, default=2, help="Dask workers (one thread each); the limit runs as many threads at once"
    )
    parser.add_argument(
        "--fixed-rows", type=int, default=1_000, help="daily: trips in the small date whose whole run is the fixed cost"
    )
    parser.add_argument(
        "--source",
        choices=["files", "generator"],
        default="files",
        help="daily: the date's rows as Parquet files exported before the clock ([source] kind = files), or made by "
        "the example's generator inside the run (its CPU time then counts as the pipeline's)",
    )
    parser.add_argument(
        "--single-thread",
        action="store_true",
        help="score: also print one thread alone x --workers (the old limit; context only)",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="score: the embedded cluster's workers as processes ([dask] processes = true)",
    )
    parser.add_argument(
        "--in-process-rows",
        type=int,
        help="[dask] in_process_rows of the measured project (default: batchml's, 100,000): a date of at most this "
        "many rows is scored on threads of the run's process, the embedded cluster not started",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="working folder (git-ignored)")
    parser.add_argument("--rows-per-file", type=int, default=250_000, help="rows per features file")
    parser.add_argument("--score-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score_child:
        score_child(ScoreJob(**json.loads(args.score_child)))
        return
    args.rows = args.rows or {"score": 5_000_000, "daily": 2_000_000, "backfill": 200_000}[args.measure]
    work = (args.out / f"{args.measure}-rows-{args.rows}-per-file-{args.rows_per_file}").absolute()
    work.mkdir(parents=True, exist_ok=True)
    measure = {"score": measure_score_runtime, "daily": measure_daily, "backfill": measure_backfill}[args.measure]
    load_before = os.getloadavg()[0]
    result = measure(args, work)
    load = {
        "load_avg_1min_before": round(load_before, 1),
        "load_avg_1min_after": round(os.getloadavg()[0], 1),
        "cores": os.cpu_count(),
    }
    print(
        json.dumps(
            {
                **result,
                "workers": args.workers,
                "processes": args.processes,
                "rows_per_file": args.rows_per_file,
                **load,
            }
        )
    )


if __name__ == "__main__":
    main()
