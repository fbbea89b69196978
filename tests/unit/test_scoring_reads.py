"""Scoring reads a date's features with page checksums verified, and a date without features files scores no rows."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchml.base.errors import IntegrityError
from batchml.scoring.scoring import read_rows


def test_scoring_reads_fail_on_a_damaged_page_naming_the_file(tmp_path):
    """A byte changed after the sha256 check (here: any time) fails the read with the file's name; it never decodes."""
    path = tmp_path / "part-00000.parquet"
    pq.write_table(
        pa.table({"x": np.arange(100_000, dtype="float64")}),
        path,
        compression="none",
        use_dictionary=False,
        write_page_checksum=True,
    )
    damaged = bytearray(path.read_bytes())
    damaged[5000] ^= 0xFF  # inside the first data page of plain doubles: decodes silently without the checksum
    path.write_bytes(bytes(damaged))
    assert len(pq.ParquetFile(path).read()) == 100_000  # a reader that skips checksums gets wrong numbers and no error
    with pytest.raises(IntegrityError, match=f"{path}: cannot be read.*CRC checksum"):
        read_rows((str(path), 0, 2**62), ["x"])
    with pytest.raises(IntegrityError, match="CRC checksum"):
        read_rows((str(path), 10, 20), ["x"])


def test_a_date_whose_rows_were_all_quarantined_scores_no_rows(tmp_path):
    from batchml.scoring.scoring import ModelSpec, score_files

    spec = ModelSpec(str(tmp_path / "model.onnx"), "0" * 64, "onnx", ("x",), ("k",), "m", "1")
    result = score_files(
        None, [], str(tmp_path / "out"), spec=spec
    )  # no features file: nothing to read, no cluster needed
    assert (result.rows, result.file_rows, result.profile) == (0, {}, None)


@pytest.mark.parametrize("files", [1, 6])  # fewer files than pieces: cut into row ranges; more: one task a file
def test_a_features_file_whose_bytes_are_not_its_manifests_fails_scoring_naming_it(tmp_path, files):
    """Scoring checks the sha256 of every byte it reads, in the task that reads a whole file (the date is read once),
    or before cutting a file into row ranges; a file changed since its manifest fails the date naming it."""
    import hashlib

    from onnx import TensorProto, helper

    from batchml.base.provenance import sha256_bytes
    from batchml.scoring.scoring import ModelSpec, score_files

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "same",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    blob = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()
    (tmp_path / "model.onnx").write_bytes(blob)
    spec = ModelSpec(str(tmp_path / "model.onnx"), sha256_bytes(blob), "onnx", ("x",), ("k",), "m", "1")
    paths = []
    for i in range(files):
        path = tmp_path / f"part-{i:05d}.parquet"
        pq.write_table(pa.table({"k": np.arange(50) + 100 * i, "x": np.arange(50, dtype="float32")}), path)
        paths.append(str(path))
    sums = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}
    good = score_files(None, paths, str(tmp_path / "good"), spec=spec, threads=2, sha256=sums)
    assert good.rows == 50 * files

    sums[paths[-1]] = "0" * 64  # the manifest's word against the bytes on disk
    with pytest.raises(IntegrityError, match=f"{paths[-1]}: sha256 [0-9a-f]{{64}} differs from its manifest's 0{{64}}"):
        score_files(None, paths, str(tmp_path / "bad"), spec=spec, threads=2, sha256=sums)
