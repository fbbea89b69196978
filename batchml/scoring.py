"""Scoring a features partition with ONNX Runtime on Dask.

`predict_partition` is the module-level function Dask maps over partitions. It finds
the ONNX session in a per-process cache keyed by the model's sha256, so each worker
loads and verifies the model once; tasks carry only the model's URL and hash.

Each partition is one fused Dask task (read -> predict -> write) running ONNX Runtime on
one thread; everything around the model is kept single-threaded and light so the cores
stay on the model (measurements in bench/score.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import dask.dataframe as dd  # imported here, not per call: the first import takes ~0.7 s
import fsspec
import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batchml.errors import IntegrityError
from batchml.faults import failpoint
from batchml.features import FEATURES, KEY, model_matrix
from batchml.profile import add_profiles, profile_partition
from batchml.provenance import sha256_bytes

PREDICTION = "prediction"
_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()


def onnx_session(model_url: str, sha256: str):
    """The process-wide ONNX Runtime session of a model, created on first use and verified."""
    session = _sessions.get(sha256)
    if session is not None:
        return session
    with _sessions_lock:
        if sha256 not in _sessions:
            with fsspec.open(model_url, "rb") as fh:
                blob = fh.read()
            if sha256_bytes(blob) != sha256:
                raise IntegrityError(f"{model_url}: sha256 {sha256_bytes(blob)} differs from the pinned {sha256}")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # parallelism comes from Dask: one partition per thread
            options.inter_op_num_threads = 1
            _sessions[sha256] = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        return _sessions[sha256]


def predict_partition(part: pd.DataFrame, model_url: str, sha256: str, model_name: str, model_version: str) -> pd.DataFrame:
    """Predictions for one partition of features: key, prediction, model name and version."""
    session = onnx_session(model_url, sha256)
    n = len(part)
    prediction = session.run(None, {session.get_inputs()[0].name: model_matrix(part)})[0].reshape(n) if n else np.empty(0, np.float32)
    return pd.DataFrame(
        {
            KEY: part[KEY].to_numpy(),
            PREDICTION: prediction.astype(np.float32, copy=False),
            "model_name": pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[model_name]),
            "model_version": pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[model_version]),
        }
    )


def score_partition(
    part: pd.DataFrame,
    out_dir: str,
    model_url: str,
    sha256: str,
    model_name: str,
    model_version: str,
    specs: dict | None,
    partition_info: dict | None = None,
) -> pd.DataFrame:
    """Score one partition, write it as one Parquet file, and profile it, in one task.

    Returns a one-row frame: the file written, its rows, and the partition's partial
    profile on the reference bins (None without `specs`).
    """
    name = _file_name(partition_info["number"] if partition_info else 0)
    predictions = predict_partition(part, model_url, sha256, model_name, model_version)
    with fsspec.open(f"{out_dir}/{name}", "wb") as fh:
        pq.write_table(pa.Table.from_pandas(predictions, preserve_index=False), fh, use_dictionary=["model_name", "model_version"])
    failpoint("score.partition")
    partial = None
    if specs:
        partial = profile_partition(part, specs, extra={PREDICTION: predictions[PREDICTION]})
    return pd.DataFrame({"file": [name], "rows": [len(predictions)], "profile": [partial]})


def _combine(*parts) -> dict:
    """Tree-reduction step: merge the files written and add up the partial profiles.

    A part is a partition's one-row result frame, or an earlier step's dict.
    """
    files, profiles = {}, []
    for part in parts:
        if isinstance(part, pd.DataFrame):
            part = {"files": dict(zip(part["file"], part["rows"])), "profile": part["profile"].iloc[0]}
        files.update(part["files"])
        if part["profile"] is not None:
            profiles.append(part["profile"])
    return {"files": files, "profile": add_profiles(*profiles) if profiles else None}


@dataclass
class ScoreResult:
    rows: int
    file_rows: dict[str, int]
    profile: dict | None = None


def score_files(
    client,
    inputs: str | list[str],
    out_dir: str,
    *,
    model_url: str,
    sha256: str,
    model_name: str,
    model_version: str,
    profile_specs: dict | None = None,
    on_progress=None,
    split_every: int = 8,
) -> ScoreResult:
    """Score features (a folder, or a committed date's files) into Parquet files in `out_dir`,
    profiling in the same pass.

    Each partition is one fused task (read, predict, write, profile); the small
    per-partition results are tree-reduced on the cluster. `on_progress(done, total)` is
    called as partitions finish.
    """
    fs, path = fsspec.core.url_to_fs(out_dir)
    fs.makedirs(path, exist_ok=True)
    features = dd.read_parquet(inputs, columns=[KEY, *FEATURES])
    meta = pd.DataFrame({"file": pd.Series([], dtype=object), "rows": pd.Series([], dtype="int64"), "profile": pd.Series([], dtype=object)})
    results = features.map_partitions(score_partition, out_dir, model_url, sha256, model_name, model_version, profile_specs, meta=meta)
    # One fused task per partition: Client.compute does not fuse dask-expr graphs itself
    # (dask/distributed#8833), and unfused partitions are read ahead and held in memory.
    parts = client.compute(results.to_delayed(optimize_graph=True))
    total = len(parts)
    if on_progress:
        from distributed import as_completed

        on_progress(0, total)
        for done, _ in enumerate(as_completed(parts), start=1):
            on_progress(done, total)
    level = parts
    while len(level) > 1:
        level = [client.submit(_combine, *level[i : i + split_every], pure=False) for i in range(0, len(level), split_every)]
    combined = _combine(level[0].result())
    file_rows = {name: int(rows) for name, rows in combined["files"].items()}
    return ScoreResult(rows=sum(file_rows.values()), file_rows=file_rows, profile=combined["profile"])


def _file_name(i: int) -> str:
    return f"part-{i:05d}.parquet"
