"""Scoring reads a date's features with page checksums verified, and a date without features files scores no rows."""

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
