"""Scoring throughput against its compute limit and against the MLflow CLI, in one run.

Usage: bench/score.py [--rows 5000000] [--workers 2] [--out bench/out] [--rows-per-file 250000] [--storage local]

Setup, with the project's own code: one synthetic date of --rows trips goes through
validation into a committed features partition (`extract_date`, reused when already
committed under --out), and a HistGradientBoostingRegressor is trained on other synthetic
dates and exported to ONNX.

Measured, each as rows/s of the same features:

(a) score   batchml's scoring of the features partition (`run_score_task`: Dask
            read_parquet -> ONNX Runtime per partition -> one Parquet file per partition)
            on the embedded LocalCluster with --workers single-thread workers. It runs in
            a fresh subprocess, so the setup made here does not count in its memory. The
            clock runs from just before the scoring call to the end of writing; importing
            the scoring code and starting the cluster, once per process, are not timed
            but reported (imports_s, cluster_start_s). Peak RSS is the largest sum of RSS
            over the subprocess and all its descendants (RSS polled every 50 ms, the
            process tree listed every second; never below the subprocess's ru_maxrss).
(b) limit   what the cores can do at best: ONNX Runtime with one thread scoring the same
            features held in memory as one float32 matrix, in batches of 262,144 rows,
            times --workers. No I/O, no conversion, no scheduler.
(c) mlflow  `mlflow models predict -t csv --env-manager local` on a model registered in a
            throwaway SQLite store, the whole CLI process timed (its ~6 s start-up counts).
            It is run on 1,000 rows and on a 1,000,000-row subset; the time for all rows is
            extrapolated linearly from those two runs (start-up + rows x per-row cost).
            Whole process against whole process: a/c is also given with (a) timed as its
            whole subprocess (interpreter start, imports, cluster start and stop).

--storage s3 puts the storage root (features, predictions, the model the workers read) on
an S3 server started for the run: moto on 127.0.0.1, in memory, so the features are made
again each run. Everything else (registry, model cache) stays in --out. Moto serves from a
Python process on the same cores as the scoring, so the cost measured is S3's protocol and
a busy server's CPU, not a network's latency.

Printed: each measurement, the ratios a/b and a/c, and as the last line one JSON object.
The machine this runs on is shared and noisy: compare ratios within a run, over several runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATE = dt.date(2026, 6, 1)
MODEL_NAME = "bench_trip_duration"
MODEL_VERSION = "1"
LIMIT_BATCH = 262_144
MLFLOW_SIZES = (1_000, 1_000_000)  # a start-up run and a run long enough to give a stable per-row cost
RSS_POLL_S = 0.05
TREE_LIST_S = 1.0
BUCKET = "bench"


@dataclass
class ScoreJob:
    """What the scoring subprocess needs: all paths, nothing in memory."""

    storage_root: str
    date: str
    model_path: str
    sha256: str
    out_dir: str
    workers: int
    mode: str = "task"  # task: the Luigi ScorePredictions; plain / profiled: score_files without / with the profile
    settings: dict | None = None


# -- setup ------------------------------------------------------------------------------------
@contextlib.contextmanager
def s3_server(home: Path):
    """A moto S3 server on 127.0.0.1 with an empty bucket, this process's environment set to reach it; yields the bucket's URL."""
    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    with open(home / "moto.log", "ab") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{endpoint}/moto-api/"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start (exit {proc.poll()}); see {home / 'moto.log'}")
            time.sleep(0.1)
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def features_partition(root: str, rows: int, rows_per_file: int):
    """The storage at `root`, holding the committed features partition of DATE with `rows` synthetic trips (made if missing)."""
    from batchml.extract import FEATURES, extract_date
    from batchml.schema import Schema
    from batchml.sources import SyntheticSource
    from batchml.storage import open_storage

    storage = open_storage(root)
    if not storage.is_committed(FEATURES, DATE):
        source = SyntheticSource(rows_per_day=rows, seed=1, bad_row_share=0.001)
        schema = Schema.load(REPO / "config" / "schema.yaml")
        extract_date(source, schema, storage, DATE, run_id="bench", max_reject_share=0.05, rows_per_file=rows_per_file)
    return storage


def trained_model():
    """The benchmark model (HGB trained on ten earlier synthetic dates) and its training rows."""
    from batchml.schema import Schema
    from batchml.sources import SyntheticSource
    from batchml.training import labelled_frame, train_model

    source = SyntheticSource(rows_per_day=50_000, seed=1)
    schema = Schema.load(REPO / "config" / "schema.yaml")
    dates = [DATE - dt.timedelta(days=d) for d in range(31, 21, -1)]
    frame = labelled_frame(source, schema, dates, max_rows=500_000, seed=1)
    return train_model(frame, seed=1), frame


def register_for_the_task(model, frame, onnx: bytes, work: Path, storage) -> dict[str, dict[str, str]]:
    """Register the model in the project's registry (once per --out) and pin it for DATE, as ResolveModel does.

    Returns the luigi config sections that point ScorePredictions at this setup.
    """
    from batchml.features import CATEGORICAL, FEATURES
    from batchml.profile import reference_profile
    from batchml.registry import Registry

    settings = {
        "storage": {"root": storage.url()},
        "mlflow": {
            "tracking_uri": f"sqlite:///{work / 'registry.db'}",
            "artifact_location": str(work / "registry-artifacts"),
            "registered_model": MODEL_NAME,
            "alias": "champion",
            "cache_dir": str(work / "cache"),
        },
    }
    pin_file = f"pins/date={DATE.isoformat()}.json"
    if storage.read_text(pin_file) is None:
        registry = Registry(settings["mlflow"]["tracking_uri"], MODEL_NAME, settings["mlflow"]["artifact_location"])
        if registry.version_by_alias("champion") is None:  # an S3 root is new each run; the registry is not
            sample = frame.sample(min(len(frame), 200_000), random_state=0)
            profile = reference_profile(sample[list(FEATURES)], categorical=CATEGORICAL)
            profile["prediction"] = reference_profile(sample.assign(prediction=model.predict(sample[list(FEATURES)]))[["prediction"]])["columns"]["prediction"]
            version = registry.register(
                model, frame, onnx_bytes=onnx, profile=profile, params={}, metrics={}, tags={"reason": "bench"}, feature_names=list(FEATURES)
            )
            registry.set_alias("champion", version)
        storage.write_once(pin_file, registry.pin("champion").to_json())
    return settings


# -- (a) scoring, in a fresh subprocess -------------------------------------------------------
# Imported before the clock starts, like the cluster is started (a per-process cost, reported
# as imports_s).
SCORING_MODULES = ("batchml.scoring", "tasks.score", "pipelines")


def run_score_task(job: ScoreJob, client) -> int:
    """>>> THE SCORING STEP UNDER MEASUREMENT. Returns the number of rows written. <<<

    mode "task": the real Luigi task, `luigi.build([ScorePredictions(date)])`, on the
    committed features and the pinned model: registry look-ups, sha256 check, scoring, the
    daily profile in the same pass, the row-count check and the atomic commit. Its
    `dask_client()` gets the client started before the clock (one client per process).
    modes "plain" / "profiled": `score_files` alone, without / with the profile, to price
    the profile.
    """
    import luigi

    from batchml.extract import FEATURES
    from batchml.storage import open_storage

    date = dt.date.fromisoformat(job.date)
    storage = open_storage(job.storage_root)
    if job.mode == "task":
        from tasks.score import ScorePredictions

        luigi.build([ScorePredictions(date=date)], local_scheduler=True, log_level="WARNING")
        manifest = storage.verify("predictions", date)
        return manifest.rows["written"]

    from batchml.predictions import profile_specs
    from batchml.registry import Registry
    from batchml.scoring import score_files

    cfg = job.settings["mlflow"]
    registry = Registry(cfg["tracking_uri"], cfg["registered_model"])
    reference = registry.reference_profile(registry.pin("champion"), cfg["cache_dir"]) if job.mode == "profiled" else None
    result = score_files(
        client,
        storage.files(FEATURES, date),
        job.out_dir,
        model_url=job.model_path,
        sha256=job.sha256,
        model_name=MODEL_NAME,
        model_version=MODEL_VERSION,
        profile_specs=profile_specs(reference),
    )
    return result.rows


def _apply_settings(settings: dict, workers: int) -> None:
    import luigi

    config = luigi.configuration.get_config()
    for section, values in {**settings, "dask": {"scheduler_address": "", "n_workers": str(workers), "threads_per_worker": "1"}}.items():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in values.items():
            config.set(section, key, value)


def score_child(job: ScoreJob) -> None:
    """Body of the scoring subprocess: import the scoring code and start the client, then time the scoring step."""
    import importlib
    import resource

    start = time.perf_counter()
    for module in SCORING_MODULES:
        importlib.import_module(module)
    imports_s = time.perf_counter() - start

    from batchml.compute import close_client, get_client

    _apply_settings(job.settings, job.workers)
    start = time.perf_counter()
    client = get_client("", n_workers=job.workers, threads_per_worker=1)
    cluster_start_s = time.perf_counter() - start
    if job.mode == "task":  # opening the registry store is a per-process cost too (ResolveModel pays it first)
        from tasks.config import make_registry

        make_registry().version_by_alias("champion")
    start = time.perf_counter()
    rows = run_score_task(job, client)
    seconds = time.perf_counter() - start
    close_client()
    maxrss_mib = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "imports_s": imports_s, "cluster_start_s": cluster_start_s, "maxrss_mib": maxrss_mib}))


def measure_score(job: ScoreJob) -> dict:
    """Run the scoring subprocess, polling the RSS of its whole process tree."""
    import psutil

    import fsspec

    fs, path = fsspec.core.url_to_fs(job.out_dir)
    if fs.exists(path):  # the last run's output: a committed date is never scored again
        fs.rm(path, recursive=True)
    cmd = [sys.executable, __file__, "--score-child", json.dumps(asdict(job))]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak, root, tree, listed = 0, psutil.Process(proc.pid), [], 0.0
    while True:
        if time.perf_counter() - listed > TREE_LIST_S:  # listing descendants scans /proc: ~1 ms of CPU
            try:
                tree, listed = [root, *root.children(recursive=True)], time.perf_counter()
            except psutil.Error:  # the subprocess is exiting
                pass
        rss = 0
        for member in tree:
            try:
                rss += member.memory_info().rss
            except psutil.Error:  # it ended
                pass
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


# -- (b) compute limit ------------------------------------------------------------------------
def compute_limit(storage, model_path: Path, workers: int) -> tuple[int, float]:
    """Rows and rows/s of single-thread ONNX Runtime on the features in memory, times `workers`."""
    import onnxruntime as ort

    from batchml.features import FEATURES, model_matrix

    matrix = model_matrix(storage.read_table("features", DATE, columns=list(FEATURES)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: matrix[:1000]})  # warm-up
    start = time.perf_counter()
    for lo in range(0, len(matrix), LIMIT_BATCH):
        session.run(None, {name: matrix[lo : lo + LIMIT_BATCH]})
    return len(matrix), workers * len(matrix) / (time.perf_counter() - start)


# -- (c) MLflow CLI ---------------------------------------------------------------------------
def register_in_mlflow(model, example, store: Path) -> str:
    """Log and register `model` as version 1 in a SQLite store under `store`; its tracking URI."""
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")  # no missing values here
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("bench", artifact_location=(store / "artifacts").as_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            registered_model_name=MODEL_NAME,
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
        )
    return uri


def mlflow_cli_seconds(tracking_uri: str, rows_csv: Path, out_json: Path) -> float:
    """Wall time of one whole `mlflow models predict` process."""
    cmd = [sys.executable, "-m", "mlflow", "models", "predict", "-m", f"models:/{MODEL_NAME}/{MODEL_VERSION}"]
    cmd += ["-i", str(rows_csv), "-t", "csv", "-o", str(out_json), "--env-manager", "local"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def first_rows(storage, n: int):
    """The first `n` rows of the features partition, reading only the files needed."""
    import pandas as pd

    parts, have = [], 0
    for path in storage.files("features", DATE):
        parts.append(pd.read_parquet(path))
        have += len(parts[-1])
        if have >= n:
            break
    return pd.concat(parts, ignore_index=True).head(n)


def measure_mlflow_cli(model, storage, rows: int, work: Path) -> dict:
    """MLflow CLI time at two subset sizes and its linear extrapolation to `rows` rows."""
    from batchml.features import FEATURES

    largest = min(rows, MLFLOW_SIZES[1])
    subset = first_rows(storage, largest)[list(FEATURES)]
    with tempfile.TemporaryDirectory(dir=work, prefix="mlflow-") as tmp:
        store = Path(tmp)
        uri = register_in_mlflow(model, subset.head(5), store)
        seconds = {}
        for n in sorted({min(MLFLOW_SIZES[0], largest), largest}):
            csv = store / f"rows-{n}.csv"
            subset.head(n).to_csv(csv, index=False)
            seconds[n] = mlflow_cli_seconds(uri, csv, store / f"out-{n}.json")
            predicted = len(json.loads((store / f"out-{n}.json").read_text())["predictions"])
            if predicted != n:
                raise RuntimeError(f"mlflow models predict returned {predicted} predictions for {n} rows")
    (small, t_small), (large, t_large) = sorted(seconds.items())[0], sorted(seconds.items())[-1]
    per_row = (t_large - t_small) / (large - small) if large > small else 0.0
    startup = t_small - small * per_row
    estimated = startup + rows * per_row if rows > large else t_large
    return {"seconds": seconds, "startup_s": startup, "estimated_s": estimated, "extrapolated": rows > large, "rows_per_s": rows / estimated}


# -- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="synthetic trips in the scored date")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (one thread each); the limit is multiplied by it")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="working folder (git-ignored)")
    parser.add_argument("--rows-per-file", type=int, default=250_000, help="rows per features file, i.e. per Dask partition")
    parser.add_argument("--storage", choices=["local", "s3"], default="local", help="storage root: under --out, or on a moto S3 server started for the run")
    parser.add_argument("--score-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score_child:
        score_child(ScoreJob(**json.loads(args.score_child)))
        return

    work = (args.out / f"rows-{args.rows}-per-file-{args.rows_per_file}{'-s3' * (args.storage == 's3')}").absolute()
    work.mkdir(parents=True, exist_ok=True)
    if args.storage == "local":
        measure(args, work, str(work / "data"), str(work))
        return
    with s3_server(work) as bucket:
        measure(args, work, f"{bucket}/data", bucket)


def measure(args, work: Path, root: str, scratch: str) -> None:
    """Set up under `work` and `root`, measure, and print; scoring outputs other than the task's go under `scratch`."""
    from batchml.provenance import sha256_bytes
    from batchml.training import to_onnx_bytes

    start = time.perf_counter()
    storage = features_partition(root, args.rows, args.rows_per_file)
    model, frame = trained_model()
    onnx = to_onnx_bytes(model)
    model_path = work / "model.onnx"
    model_path.write_bytes(onnx)
    settings = register_for_the_task(model, frame, onnx, work, storage)
    print(f"setup: {time.perf_counter() - start:.1f} s (features in {storage.partition_url('features', DATE)})", flush=True)

    common = dict(storage_root=root, date=DATE.isoformat(), model_path=str(model_path), sha256=sha256_bytes(onnx), workers=args.workers, settings=settings)
    score = measure_score(ScoreJob(out_dir=storage.partition_url("predictions", DATE), mode="task", **common))
    plain = measure_score(ScoreJob(out_dir=f"{scratch}/scored-plain", mode="plain", **common))
    profiled = measure_score(ScoreJob(out_dir=f"{scratch}/scored-profiled", mode="profiled", **common))
    profile_overhead = profiled["seconds"] / plain["seconds"] - 1
    score_rate = score["rows"] / score["seconds"]
    print(
        f"(a) score:  {score['rows']:,} rows in {score['seconds']:.2f} s = {score_rate:,.0f} rows/s; "
        f"peak RSS {score['peak_rss_mib']:.0f} MiB; not timed: imports {score['imports_s']:.2f} s, cluster start {score['cluster_start_s']:.2f} s",
        flush=True,
    )

    limit_rows, limit_rate = compute_limit(storage, model_path, args.workers)
    if limit_rows != score["rows"]:
        raise RuntimeError(f"scored {score['rows']} rows but the features hold {limit_rows}")
    print(
        f"profile: score_files {plain['seconds']:.2f} s without the daily profile, {profiled['seconds']:.2f} s with it: overhead {profile_overhead:+.1%}",
        flush=True,
    )
    print(f"(b) limit:  {limit_rate:,.0f} rows/s (ONNX Runtime, 1 thread, in memory, x {args.workers} workers)", flush=True)

    cli = measure_mlflow_cli(model, storage, score["rows"], work)
    measured = ", ".join(f"{n:,} rows {s:.1f} s" for n, s in cli["seconds"].items())
    how = f"extrapolated to {score['rows']:,} rows: {cli['estimated_s']:.1f} s" if cli["extrapolated"] else "measured on all rows"
    print(
        f"(c) mlflow models predict: {measured}; start-up {cli['startup_s']:.1f} s; {how} "
        f"= {cli['rows_per_s']:,.0f} rows/s ({'EXTRAPOLATED' if cli['extrapolated'] else 'measured'})",
        flush=True,
    )

    process_rate = score["rows"] / score["process_s"]
    print(
        f"a/b = {score_rate / limit_rate:.3f} of the compute limit; a/c = {score_rate / cli['rows_per_s']:.1f} x the MLflow CLI "
        f"({process_rate / cli['rows_per_s']:.1f} x with (a) as its whole process, {score['process_s']:.1f} s)"
    )
    print(
        json.dumps(
            {
                "rows": score["rows"],
                "score_rows_per_s": round(score_rate),
                "limit_rows_per_s": round(limit_rate),
                "ratio_to_limit": round(score_rate / limit_rate, 3),
                "mlflow_cli_rows_per_s": round(cli["rows_per_s"]),
                "mlflow_cli_extrapolated": cli["extrapolated"],
                "ratio_to_mlflow_cli": round(score_rate / cli["rows_per_s"], 2),
                "score_process_rows_per_s": round(process_rate),
                "profile_overhead": round(profile_overhead, 3),
                "ratio_to_mlflow_cli_whole_process": round(process_rate / cli["rows_per_s"], 2),
                "peak_rss_mib": round(score["peak_rss_mib"]),
                "score_s": round(score["seconds"], 2),
                "cluster_start_s": round(score["cluster_start_s"], 2),
                "imports_s": round(score["imports_s"], 2),
                "workers": args.workers,
                "rows_per_file": args.rows_per_file,
                "storage": args.storage,
            }
        )
    )


if __name__ == "__main__":
    main()
