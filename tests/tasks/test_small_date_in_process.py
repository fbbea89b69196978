"""A small date is scored on threads of the run's own process ([dask] in_process_rows), with the same predictions as
on the embedded cluster, which is then never started."""

import shutil

import luigi
import pandas as pd
from luigi.execution_summary import LuigiStatusCode

import batchml.scoring.compute as compute
from tasks.config import make_storage
from tasks.score import ScorePredictions


def score(day) -> dict[str, pd.DataFrame]:
    result = luigi.build([ScorePredictions(day)], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    storage = make_storage()
    return {path.rsplit("/", 1)[-1]: pd.read_parquet(path) for path in storage.files("predictions", day)}


def test_a_small_date_is_scored_in_process_with_the_files_the_cluster_writes(pipeline, day, tmp_path):
    pipeline({"dask": {"in_process_rows": "0"}})  # every date on the cluster, as before
    on_cluster = score(day)
    assert compute._client is not None  # the embedded cluster scored it
    compute.close_client()
    shutil.rmtree(tmp_path / "data" / "predictions" / f"date={day}")  # the same date scored again

    pipeline({"dask": {"in_process_rows": "100000"}})  # the default: 3,000 rows are a small date
    here = score(day)
    assert compute._client is None  # no cluster started
    assert list(here) == list(on_cluster) and len(here) == 6  # 3 features files, each cut in 2 for 2 x 1 threads
    for name, frame in here.items():
        pd.testing.assert_frame_equal(frame, on_cluster[name])
    assert sum(map(len, here.values())) == make_storage().manifest("predictions", day).rows["written"]
