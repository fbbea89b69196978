"""Scoring a features partition with ONNX Runtime on Dask.

`predict_partition` is the module-level function Dask maps over partitions. It finds
the ONNX session in a per-process cache keyed by the model's sha256, so each worker
loads and verifies the model once; tasks carry only the model's URL and hash.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from batchml.errors import IntegrityError
from batchml.features import FEATURES, KEY, model_matrix
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
            import onnxruntime as ort

            with fsspec.open(model_url, "rb") as fh:
                blob = fh.read()
            if sha256_bytes(blob) != sha256:
                raise IntegrityError(f"{model_url}: sha256 {sha256_bytes(blob)} differs from the pinned {sha256}")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # parallelism comes from Dask: one partition per thread
            options.inter_op_num_threads = 1
            _sessions[sha256] = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        return _sessions[sha256]


def output_meta(model_name: str, model_version: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            KEY: pd.Series([], dtype="int64"),
            PREDICTION: pd.Series([], dtype="float32"),
            "model_name": pd.Categorical([], categories=[model_name]),
            "model_version": pd.Categorical([], categories=[model_version]),
        }
    )


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


@dataclass
class ScoreResult:
    rows: int
    file_rows: dict[str, int]


def score_files(client, features_url: str, out_dir: str, *, model_url: str, sha256: str, model_name: str, model_version: str) -> ScoreResult:
    """Read features, map the predictor over partitions, write Parquet files into `out_dir`."""
    import dask.dataframe as dd

    features = dd.read_parquet(features_url, columns=[KEY, *FEATURES])
    predictions = features.map_partitions(
        predict_partition, model_url, sha256, model_name, model_version, meta=output_meta(model_name, model_version)
    )
    written = predictions.to_parquet(out_dir, write_index=False, compute=False, name_function=lambda i: f"part-{i:05d}.parquet")
    client.compute(written).result()
    file_rows = {p.name: pq.ParquetFile(p).metadata.num_rows for p in sorted(_local(out_dir).glob("part-*.parquet"))}
    return ScoreResult(rows=sum(file_rows.values()), file_rows=file_rows)


def _local(path: str):
    from pathlib import Path

    return Path(path)
