"""Scoring a features partition on Dask, with the runtime the date's pin chose.

`score_piece` is the module-level function each Dask task runs on one piece of a date's
features; `predict_partition` finds the model in a per-process cache keyed by its sha256,
so each worker loads and verifies a model once; tasks carry only a small `ModelSpec`
(where the model is and what it takes).

Runtimes: `onnx` and `converted` (ONNX Runtime: inputs fed by name, one column each, or as
one 2-D tensor in the model's input order) and `pyfunc` (an MLflow model loaded with
`mlflow.pyfunc.load_model` from a verified local copy). Each partition is one fused Dask
task (read -> predict -> write -> profile) running the model on one thread; everything
around the model is kept single-threaded and light so the cores stay on the model
(measurements in bench/score.py). The tasks are plain futures (`Client.submit`), not a
`dask.dataframe`: importing it (and through it `dask.array` and scipy) cost every run
about 0.5 s of CPU for a graph of one task per piece.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from itertools import pairwise

import fsspec
import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batchml.base.errors import IntegrityError
from batchml.base.faults import failpoint
from batchml.base.provenance import sha256_bytes, sha256_tree
from batchml.model.onnx_io import (
    PREDICTION,
    class_codes,
    class_outputs,
    class_values,
    graph_classes,
    named_classes,
    onnx_feed,
    onnx_outputs,
    proba_columns,
    session_classes,
)
from batchml.stats.profile import add_profiles, profile_partition
from batchml.store.manifest import parquet_file

_models: dict[str, object] = {}
_models_lock = threading.Lock()


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to score with a pinned model version."""

    url: str  # the ONNX file, or the folder of an MLflow model (pyfunc)
    sha256: str
    runtime: str  # onnx | converted (an ONNX file made from an sklearn model) | pyfunc
    inputs: tuple[str, ...]
    key: tuple[str, ...]
    name: str
    version: str
    classes: tuple | None = None  # classifiers: the classes the proba_<class> columns are named after, in column order
    input_types: tuple[str, ...] = ()  # pyfunc: the signature's kinds, to give MLflow the types it enforces

    @property
    def output_columns(self) -> list[str]:
        return [PREDICTION, *proba_columns(self.classes)]

    @property
    def who(self) -> str:
        return f"models:/{self.name}/{self.version}"


def onnx_session(model_url: str, sha256: str):
    """The process-wide ONNX Runtime session of a model, created on first use and verified."""

    def load():
        with fsspec.open(model_url, "rb") as fh:
            blob = fh.read()
        if sha256_bytes(blob) != sha256:
            raise IntegrityError(f"{model_url}: sha256 {sha256_bytes(blob)} differs from the pinned {sha256}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from Dask: one partition per thread
        options.inter_op_num_threads = 1
        return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])

    return _cached(sha256, load)


def onnx_classes(spec: ModelSpec, session) -> list | None:
    """The classes of an ONNX model's probability columns, read once per process from the model itself: the
    metadata batchml writes (read by ONNX Runtime), else its classifier node's labels (importing onnx, 0.16 s);
    None when the model does not say."""

    def load():
        found = session_classes(session)
        if found is None:
            with fsspec.open(spec.url, "rb") as fh:
                found = graph_classes(fh.read(), spec.classes)
        return found or []

    return _cached(f"{spec.sha256}:classes", load) or None


def pyfunc_model(model_dir: str, sha256: str):
    """The process-wide MLflow pyfunc model of a verified local folder."""

    def load():
        import mlflow.pyfunc

        actual = sha256_tree(model_dir)
        if actual != sha256:
            raise IntegrityError(f"{model_dir}: artifacts sha256 {actual} differs from the pinned {sha256}")
        try:
            return mlflow.pyfunc.load_model(model_dir)
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"the model in {model_dir} needs the package {exc.name!r}, which this worker's environment lacks"
            ) from exc

    return _cached(sha256, load)


def _cached(sha256: str, load):
    model = _models.get(sha256)
    if model is not None:
        return model
    with _models_lock:
        if sha256 not in _models:
            _models[sha256] = load()
        return _models[sha256]


def pyfunc_outputs(model, frame: pd.DataFrame, n: int, classes, who: str = "the model") -> dict[str, np.ndarray]:
    """`prediction` (and `proba_<class>`) from a pyfunc model, probabilities matched to classes by identity.

    An sklearn estimator's `predict_proba` columns are its `classes_`; a returned DataFrame's
    columns are named by class (or `proba_<class>`); a returned 2-D array's columns are the
    class names of the model's output signature. A classifier whose output does not say
    which column is which class fails naming the model.
    """
    raw = _raw_model(model) if classes else None
    if raw is not None and hasattr(raw, "predict_proba") and hasattr(raw, "classes_"):
        return class_outputs(raw.predict_proba(frame), list(raw.classes_), classes, who)
    out = model.predict(frame)
    if isinstance(out, pd.DataFrame) and not (
        classes and isinstance(out.columns, pd.RangeIndex)
    ):  # 0, 1, ... are positions, not classes
        return _frame_outputs(out, classes, who)
    values = np.asarray(out)
    if not classes:
        values = values.reshape(n)
        return {PREDICTION: values.astype(np.float32) if values.dtype.kind in "fiu" else values}
    names = _output_names(model)
    if values.ndim == 2 and names and len(names) == values.shape[1]:
        return _frame_outputs(pd.DataFrame(values, columns=names), classes, who)
    raise IntegrityError(
        f"{who} returned {'labels' if values.ndim == 1 else f'an array of shape {values.shape}'} with no class names "
        f"(output signature: {names or 'none'}): batchml needs a probability per class, named by class, for "
        f"{list(classes)}"
    )


def _output_names(model) -> list[str]:
    """The column names of a pyfunc model's output signature (empty when it has none)."""
    schema = getattr(getattr(model, "metadata", None), "get_output_schema", lambda: None)()
    return list(schema.input_names()) if schema is not None and schema.has_input_names() else []


def _raw_model(model):
    """The estimator under an MLflow sklearn model (None for any other pyfunc)."""
    try:
        return model.get_raw_model()
    except (AttributeError, NotImplementedError):
        return None


def _frame_outputs(out: pd.DataFrame, classes, who: str = "the model") -> dict[str, np.ndarray]:
    """A pyfunc's DataFrame: its columns kept; for a classifier, the columns named by class (the class, its
    text or proba_<class>) are its probabilities and `prediction` is its own column or the most probable class."""
    cols = {str(c): out[c].to_numpy() for c in out.columns}
    if not classes:
        if PREDICTION not in cols:
            cols[PREDICTION] = cols.pop(str(out.columns[0]))
        return cols
    columns = [c for c in out.columns if str(c) != PREDICTION]
    pairs = [(c, found[0]) for c in columns if (found := named_classes([c], classes))]
    if not pairs:
        raise IntegrityError(
            f"{who} returned columns {[str(c) for c in out.columns]}, none named by a class of {list(classes)}: which "
            "is which class is unknown"
        )
    proba = (
        np.column_stack([np.asarray(out[c], dtype=np.float32) for c, _ in pairs])
        if len(out)
        else np.empty((0, len(pairs)), np.float32)
    )
    outputs = class_outputs(proba, [k for _, k in pairs], classes, who)
    for c, _ in pairs:
        cols.pop(str(c), None)
    if PREDICTION in cols:  # the model's own label, as the contract's class
        codes = class_codes(cols[PREDICTION], classes)
        if (codes < 0).any():
            codes = class_codes(pd.Series(cols[PREDICTION]).astype(str), [str(c) for c in classes])
        if (codes < 0).any():
            bad = pd.Series(cols[PREDICTION])[codes < 0].unique()[:5].tolist()
            raise IntegrityError(f"{who} predicted label(s) {bad}, not among the contract's classes {list(classes)}")
        cols[PREDICTION] = class_values(classes)[codes]
    else:
        cols[PREDICTION] = outputs[PREDICTION]
    cols.update({k: v for k, v in outputs.items() if k != PREDICTION})
    return cols


_PANDAS_TYPES = {"number": "float64", "integer": "int64", "boolean": "bool"}


def signature_frame(part: pd.DataFrame, inputs: tuple[str, ...], kinds: tuple[str, ...]) -> pd.DataFrame:
    """The model's inputs with the widths its signature declares (MLflow refuses int64 into double, int32 into long)."""
    frame = part[list(inputs)]
    casts = {
        c: _PANDAS_TYPES[k]
        for c, k in zip(inputs, kinds, strict=False)  # no kinds without a signature
        if k in _PANDAS_TYPES and str(frame[c].dtype) != _PANDAS_TYPES[k]
    }
    casts = {c: t for c, t in casts.items() if t == "float64" or not frame[c].isna().any()}
    return frame.astype(casts) if casts else frame


def predict_partition(part: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Predictions for one partition of features: the key, the outputs, model name and version."""
    n = len(part)
    if spec.runtime in ("onnx", "converted"):
        session = onnx_session(spec.url, spec.sha256)
        model_classes = onnx_classes(spec, session) if spec.classes else None
        outputs = (
            onnx_outputs(session, onnx_feed(session, part, spec.inputs), n, spec.classes, model_classes, spec.who)
            if n
            else _empty_outputs(spec)
        )
    else:
        model = pyfunc_model(spec.url, spec.sha256)
        frame = signature_frame(part, spec.inputs, spec.input_types)
        outputs = pyfunc_outputs(model, frame, n, spec.classes, spec.who) if n else _empty_outputs(spec)
    columns = {k: part[k].to_numpy() for k in spec.key}
    columns.update(outputs)
    columns["model_name"] = pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[spec.name])
    columns["model_version"] = pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[spec.version])
    return pd.DataFrame(columns)


def _empty_outputs(spec: ModelSpec) -> dict[str, np.ndarray]:
    out = {c: np.empty(0, np.float32) for c in spec.output_columns}
    if spec.classes:
        out[PREDICTION] = class_values(spec.classes)[:0]
    return out


def score_piece(
    piece: tuple[str, int, int],
    number: int,
    columns: list[str],
    out_dir: str,
    spec: ModelSpec,
    profile_specs,
    sha256: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One Dask task: read a piece of the features (`read_rows`; a whole file checked against its sha256 in `sha256`),
    score it, write it as file `number`, profile it."""
    part = read_rows(piece, columns, (sha256 or {}).get(piece[0]))
    return score_partition(part, out_dir, spec, profile_specs, number)


def score_partition(
    part: pd.DataFrame, out_dir: str, spec: ModelSpec, profile_specs: dict | None, number: int = 0
) -> pd.DataFrame:
    """Score one partition, write it as one Parquet file, and profile it, in one task.

    Returns a one-row frame: the file written, its rows, its size and the sha256 of the
    bytes written (the commit need not read the file back for it), and the partition's
    partial profile on the reference bins (None without `specs`).
    """
    name = _file_name(number)
    predictions = predict_partition(part, spec)
    data, sha256 = predictions_file(predictions)
    with fsspec.open(f"{out_dir}/{name}", "wb") as fh:
        fh.write(data)
    failpoint("score.partition")
    partial = None
    if profile_specs:
        partial = profile_partition(
            part, profile_specs, extra={c: predictions[c] for c in spec.output_columns if c in profile_specs}
        )
    written = {"file": [name], "rows": [len(predictions)], "size": [data.size], "sha256": [sha256]}
    return pd.DataFrame({**written, "profile": [partial]})


def predictions_file(predictions: pd.DataFrame) -> tuple[pa.Buffer, str]:
    """A partition's predictions as the bytes of one Parquet file and their sha256 (`parquet_file`): the task writes
    them whole and hands the commit the digest of the bytes it wrote."""
    table = pa.Table.from_pandas(predictions, preserve_index=False)
    return parquet_file(table, use_dictionary=["model_name", "model_version"])


def _combine(*parts) -> dict:
    """Tree-reduction step: merge the files written (name -> rows, size, sha256) and add up the partial profiles.

    A part is a partition's one-row result frame, or an earlier step's dict.
    """
    files, profiles = {}, []
    for part in parts:
        if isinstance(part, pd.DataFrame):
            row = part.iloc[0]
            part = {
                "files": {row["file"]: (int(row["rows"]), int(row["size"]), row["sha256"])},
                "profile": row["profile"],
            }
        files.update(part["files"])
        if part["profile"] is not None:
            profiles.append(part["profile"])
    return {"files": files, "profile": add_profiles(*profiles) if profiles else None}


@dataclass
class ScoreResult:
    rows: int
    file_rows: dict[str, int]
    profile: dict | None = None
    digests: dict[str, tuple[int, str]] = field(default_factory=dict)  # file -> (size, sha256) of the bytes written


def score_files(
    client,
    files: list[str],
    out_dir: str,
    *,
    spec: ModelSpec,
    profile_specs: dict | None = None,
    on_progress=None,
    split_every: int = 8,
    min_partitions: int | None = None,
    threads: int = 0,
    sha256: dict[str, str] | None = None,
) -> ScoreResult:
    """Score a date's features files into Parquet files in `out_dir`, profiling in the same pass.

    Each partition is one task (`score_piece`: read, predict, write, profile); the small
    per-partition results are tree-reduced on the cluster. A partition is a file, or, when
    there are fewer files than `min_partitions` (default: twice the cluster's threads), a
    range of rows of one, cut about equal so that a small date keeps every core busy.
    Partitions read their own rows (`read_rows`: only the row groups and columns they
    need), which also starts the first task sooner than Dask's Parquet reader (0.1 s on a
    2-core machine). `on_progress(done, total)` is called as partitions finish. With no
    `client`, the same pieces are scored on `threads` threads of this process (a small date:
    see compute.threads_here) and give the same files. `sha256` (file -> checksum) checks every
    byte read: a task reading a whole file checks the bytes it read, so a date is read once; a
    file cut into row ranges is read whole here first.
    """
    fs, path = fsspec.core.url_to_fs(out_dir)
    fs.makedirs(path, exist_ok=True)
    if not files:  # every row of the date was quarantined
        return ScoreResult(rows=0, file_rows={})
    columns = list(dict.fromkeys([*spec.key, *spec.inputs]))
    cores = threads if client is None else sum(client.nthreads().values())
    wanted = min_partitions if min_partitions is not None else 2 * cores
    if len(files) < wanted:
        pieces = row_ranges(files, wanted)
        checked = sha256 or {}
        for f in files:
            if f in checked:  # a range reads part of its file: the whole file is checked here
                _check_sha256(f, checked[f], _whole(f))
        sha256 = None
    else:
        pieces = [(f, 0, _ALL_ROWS) for f in files]
    if client is None:
        return _result(
            _combine(*_score_here(pieces, threads, columns, out_dir, spec, profile_specs, on_progress, sha256))
        )
    # One task per piece, reading its own rows: nothing is read ahead of the model or held
    # between tasks, and a piece's features never travel through the scheduler.
    parts = client.map(
        score_piece,
        pieces,
        range(len(pieces)),
        columns=columns,
        out_dir=out_dir,
        spec=spec,
        profile_specs=profile_specs,
        sha256=sha256,
        pure=False,
    )
    total = len(parts)
    if on_progress:
        from distributed import as_completed

        on_progress(0, total)
        for done, _ in enumerate(as_completed(parts), start=1):
            on_progress(done, total)
    level = parts
    while len(level) > 1:
        level = [
            client.submit(_combine, *level[i : i + split_every], pure=False) for i in range(0, len(level), split_every)
        ]
    return _result(_combine(level[0].result()))


def _result(combined: dict) -> ScoreResult:
    files = combined["files"]
    file_rows = {name: rows for name, (rows, _, _) in files.items()}
    digests = {name: (size, sha256) for name, (_, size, sha256) in files.items()}
    return ScoreResult(sum(file_rows.values()), file_rows, combined["profile"], digests)


def _score_here(
    pieces, threads: int, columns, out_dir: str, spec: ModelSpec, profile_specs, on_progress, sha256=None
) -> list:
    """Each piece scored by `score_piece` on a pool of `threads` threads of this process, as the embedded cluster's
    worker threads would; the results in piece order (the first failure raised)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    total = len(pieces)
    if on_progress:
        on_progress(0, total)
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="batchml-score") as pool:
        futures = [
            pool.submit(score_piece, piece, i, columns, out_dir, spec, profile_specs, sha256)
            for i, piece in enumerate(pieces)
        ]
        for done, _ in enumerate(as_completed(futures), start=1):
            if on_progress:
                on_progress(done, total)
        return [future.result() for future in futures]


_ALL_ROWS = 2**62  # a piece that is a whole file


def row_ranges(files: list[str], wanted: int) -> list[tuple[str, int, int]]:
    """(file, first row, end row) slices: each file cut into equal ranges, at least `wanted` in all."""
    rows = []
    for f in files:
        with fsspec.open(f, "rb") as fh:
            rows.append(pq.ParquetFile(fh).metadata.num_rows)
    per_file = -(-wanted // max(1, len(files)))
    out = []
    for f, n in zip(files, rows, strict=True):
        cuts = np.linspace(0, n, min(per_file, max(1, n)) + 1).astype(int)
        out += [(f, int(lo), int(hi)) for lo, hi in pairwise(cuts)]
    return out


def read_rows(piece: tuple[str, int, int], columns: list[str], sha256: str | None = None) -> pd.DataFrame:
    """Rows [lo, hi) of one Parquet file, only `columns`: reads only the row groups that hold them. With `sha256`, the
    whole file is read once, checked against it, and parsed from memory.

    Page checksums are verified as the pages are read (2 ms of a 250k-row partition), so a
    file damaged after its sha256 was checked fails naming the file, never scores garbage.
    """
    path, lo, hi = piece
    try:
        with _readable(path) if sha256 is None else _checked(path, sha256) as fh:
            pf = pq.ParquetFile(fh, pre_buffer=False, page_checksum_verification=True)
            if lo == 0 and hi >= pf.metadata.num_rows:
                return pf.read(columns=columns).to_pandas()
            starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
            groups = [i for i in range(pf.num_row_groups) if starts[i] < hi and starts[i + 1] > lo] if hi > lo else []
            table = (
                pf.read_row_groups(groups, columns=columns) if groups else pf.schema_arrow.empty_table().select(columns)
            )
            first = int(starts[groups[0]]) if groups else 0
            return table.slice(lo - first, hi - lo).to_pandas()
    except (ConnectionError, TimeoutError):
        raise  # the store did not answer: retried like any outage
    except (OSError, pa.ArrowException) as exc:
        raise IntegrityError(f"{path}: cannot be read ({exc})") from exc


def _whole(path: str) -> bytes:
    with fsspec.open(path, "rb") as fh:
        return fh.read()


def _check_sha256(path: str, expected: str, data) -> None:
    actual = sha256_bytes(data)
    if actual != expected:
        raise IntegrityError(f"{path}: sha256 {actual} differs from its manifest's {expected}; nothing scored")


@contextlib.contextmanager
def _checked(path: str, sha256: str):
    """A file read whole, checked against `sha256`, as a reader of its bytes in memory."""
    data = _whole(path)
    _check_sha256(path, sha256, data)
    yield pa.BufferReader(data)


def _readable(path: str):
    """A local file by its path (Arrow reads it natively: 5 ms less per partition than through a
    Python file object, and without holding the GIL), anything else through fsspec."""
    return contextlib.nullcontext(path) if "://" not in path else fsspec.open(path, "rb")


def _file_name(i: int) -> str:
    return f"part-{i:05d}.parquet"
