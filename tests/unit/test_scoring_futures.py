"""A date's pieces are scored as one Dask future each, without importing dask.dataframe: that import (and dask.array
and scipy's fft through it) cost every run about 0.5 s of CPU (docs/performance.md, where the fixed cost goes)."""

import json
import subprocess
import sys

from tests.conftest import REPO

# A fresh interpreter: the test process has imported everything by now.
PROBE = """
import json, sys
import numpy as np, pandas as pd, pyarrow.parquet as pq
from onnx import TensorProto, helper

import pipelines  # every task module, as `luigi --module pipelines` loads them
from batchml.base.provenance import sha256_bytes
from batchml.scoring.compute import close_client, get_client
from batchml.scoring.scoring import ModelSpec, score_files

tmp = sys.argv[1]
graph = helper.make_graph(  # prediction = a + 2 b
    [helper.make_node("Mul", ["b", "two"], ["b2"]), helper.make_node("Add", ["a", "b2"], ["variable"])],
    "sum",
    [helper.make_tensor_value_info(c, TensorProto.FLOAT, [None, 1]) for c in ("a", "b")],
    [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
    [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
)
blob = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()
with open(f"{tmp}/model.onnx", "wb") as fh:
    fh.write(blob)
files = []
for i, n in enumerate((7, 5)):  # two files, fewer than the pieces wanted: cut into row ranges
    frame = pd.DataFrame({"k": np.arange(n) + 100 * i, "a": np.arange(n) * 0.5, "b": np.arange(n) + 10.0 * i})
    frame.to_parquet(f"{tmp}/f{i}.parquet", row_group_size=2)
    files.append(f"{tmp}/f{i}.parquet")
spec = ModelSpec(f"{tmp}/model.onnx", sha256_bytes(blob), "onnx", ("a", "b"), ("k",), "m", "3")
if sys.argv[2] == "cluster":
    result = score_files(get_client("", n_workers=2, threads_per_worker=1), files, f"{tmp}/out", spec=spec)
    close_client()
else:  # a small date on 2 threads of this process, no cluster
    result = score_files(None, files, f"{tmp}/out", spec=spec, threads=2)
scored = pd.concat([pd.read_parquet(f"{tmp}/out/{name}") for name in sorted(result.file_rows)], ignore_index=True)
print(json.dumps({
    "rows": result.rows,
    "files": result.file_rows,
    "k": scored["k"].tolist(),
    "prediction": scored["prediction"].tolist(),
    "version": scored["model_version"].astype(str).unique().tolist(),
    "dask.dataframe": "dask.dataframe" in sys.modules,
    "distributed": "distributed" in sys.modules,
    "digests": {  # what each task took of the bytes it wrote, against the files on disk
        name: [size == len(data), sha == sha256_bytes(data)]
        for name, (size, sha) in result.digests.items()
        for data in [open(f"{tmp}/out/{name}", "rb").read()]
    },
}))
"""


def scored(tmp_path, where: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path), where], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_date_is_scored_one_future_per_piece_without_dask_dataframe(tmp_path):
    got = scored(tmp_path, "cluster")
    keys = list(range(7)) + list(range(100, 105))
    # 2 workers x 1 thread: 4 pieces wanted, 2 per file; each piece its own file, numbered in piece order
    want = {"part-00000.parquet": 3, "part-00001.parquet": 4, "part-00002.parquet": 2, "part-00003.parquet": 3}
    assert got["files"] == want
    assert got["rows"] == 12 and got["k"] == keys and got["version"] == ["3"]
    a = [k % 100 * 0.5 for k in keys]
    b = [k % 100 + 10.0 * (k >= 100) for k in keys]
    assert got["prediction"] == [x + 2 * y for x, y in zip(a, b, strict=True)]
    assert got["dask.dataframe"] is False
    assert got["digests"] == {name: [True, True] for name in want}  # the commit takes them instead of reading back


def test_a_small_date_scored_on_threads_of_the_process_gives_the_same_files_without_distributed(tmp_path):
    """No client: the same pieces on a pool of threads, as the embedded cluster's worker threads; `distributed` (0.27 s
    of CPU to import) is never imported."""
    (tmp_path / "cluster").mkdir()
    (tmp_path / "here").mkdir()
    on_cluster, here = scored(tmp_path / "cluster", "cluster"), scored(tmp_path / "here", "here")
    assert on_cluster["distributed"] is True and here["distributed"] is False
    assert {k: v for k, v in here.items() if k != "distributed"} == {
        k: v for k, v in on_cluster.items() if k != "distributed"
    }
