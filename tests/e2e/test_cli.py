"""The real `luigi --module pipelines ...` command against a fresh storage root and tracking store."""

import ast
import datetime as dt
import json
import re

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.conftest import distinct_keys, options_arg
from tests.e2e.conftest import last_lines

DAY = dt.date(2026, 1, 20)  # far more than 100 days before today: RangeDaily must not skip it


def committed_rows(root, dataset):
    return sum(json.loads(p.read_text())["rows"]["written"] for p in (root / dataset).glob("date=*/_MANIFEST.json"))


def test_daily_score_then_a_rerun_that_does_nothing(cli):
    first = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert first.returncode == 0, last_lines(first, 40)
    assert "ScorePredictions(date=2026-01-20)" in first.stderr
    manifest = json.loads((cli.root / "predictions" / f"date={DAY}" / "_MANIFEST.json").read_text())
    assert manifest["rows"]["in"] == manifest["rows"]["written"] + manifest["rows"]["quarantined"] == 3000
    assert manifest["model"]["version"] == "1"

    again = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr + again.stdout


def test_a_cold_start_run_prints_training_and_scoring_progress_with_counts(cli):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    out = run.stderr
    for pattern in (
        r"batchml\.training: training: read 5 of 5 dates \(2026-01-18: \d+ labelled rows\) \(\d+\.\d s\)",
        r"training: fitting taxi_hooks:recipe on \d+ rows of \d+ inputs \(\d+ held out\) \(\d+\.\d s\)",
        r"training: fitted \w+; exporting to ONNX \(\d+\.\d s\)",
        r"training: registering trip_duration with its evidence \(\d+\.\d s\)",
        r"training: registered version 1, trained on .* \(\d+ rows\): holdout mae [\d.]+ \(\d+\.\d s\)",
        rf"scored 0 of (\d+) partitions of {DAY} with models:/trip_duration/1 \(\d+\.\d s\)",
        rf"scored (\d+) of \1 partitions of {DAY} with models:/trip_duration/1 \(\d+\.\d s\)",  # small dates are cut for both cores
    ):
        assert re.search(pattern, out), f"{pattern!r} not in the output:\n{out[-6000:]}"
    assert "\r" not in out  # no bar when stderr is not a terminal


def test_range_daily_backfill_and_readers_see_exactly_the_committed_rows(cli):
    stop = DAY + dt.timedelta(days=3)
    run = cli.luigi("RangeDaily", "--of", "DailyScore", "--start", DAY.isoformat(), "--stop", stop.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    dates = sorted(p.name for p in (cli.root / "predictions").glob("date=*"))
    # The range, and the dates its realized metrics are measured on (D - label_lag_days) scored with it.
    assert dates == [f"date={DAY + dt.timedelta(days=i)}" for i in range(-2, 3)]

    # A crashed run's staging folder must stay invisible to readers of the dataset root.
    orphan = cli.root / "predictions" / "_staging" / f"date={stop}" / "deadbeef"
    orphan.mkdir(parents=True)
    pq.write_table(pq.read_table(next((cli.root / "predictions" / f"date={DAY}").glob("*.parquet"))), orphan / "part-00000.parquet")
    table = ds.dataset(cli.root / "predictions", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == committed_rows(cli.root, "predictions") == 5 * 3000 - committed_rows(cli.root, "quarantine")
    assert distinct_keys(table) == table.num_rows
    assert sorted(set(str(d) for d in table.column("date").to_pylist())) == [str(DAY + dt.timedelta(days=i)) for i in range(-2, 3)]


def test_a_failed_date_exits_non_zero_and_names_the_cause(cli):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat(), *options_arg(bad_row_share=0.3))
    assert run.returncode == 30, last_lines(run, 40)  # [retcode] task_failed
    output = run.stdout + run.stderr
    assert "RejectedShareTooHigh" in output and "broke the schema contract" in output and "Top reasons: " in output
    assert not (cli.root / "features" / f"date={DAY}").exists()


def test_a_date_missing_at_the_source_exits_with_missing_data(cli, tmp_path):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat(), "--source-kind", "files", "--source-path", str(tmp_path / "raw" / "{date}.parquet"))
    assert run.returncode == 20, last_lines(run, 40)  # [retcode] missing_data
    assert "Traceback" not in run.stderr
    assert "SourceData(date=2026-01-20)" in run.stderr + run.stdout


def test_a_metric_breach_exits_non_zero_with_the_cause_in_the_last_lines(cli):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat(), "--checks-max-quarantine-rate", "0.0001")
    assert run.returncode == 30, last_lines(run, 40)
    tail = last_lines(run, 4)
    assert "CheckMetrics" in tail and "MetricBreach" in tail and "quarantine_rate" in tail
    assert (cli.root / "monitoring" / f"date={DAY}" / "report.html").exists()  # the page shows the breach


@pytest.mark.slow
def test_workers_n_score_dates_in_parallel_on_one_cluster_with_one_model_per_worker(cli):
    stop = DAY + dt.timedelta(days=3)
    run = cli.luigi("RangeDaily", "--of", "DailyScore", "--start", DAY.isoformat(), "--stop", stop.isoformat(), "--workers", "2")
    assert run.returncode == 0, last_lines(run, 40)
    assert sorted(p.name for p in (cli.root / "predictions").glob("date=*/")) == [f"date={DAY + dt.timedelta(days=i)}" for i in range(-2, 3)]
    # Every task process of the run connected to one cluster, started once.
    assert run.stderr.count("started the run's shared Dask cluster") == 1, last_lines(run, 40)
    address = re.search(r"started the run's shared Dask cluster at (\S+)", run.stderr).group(1)
    assert run.stderr.count(f"connected to Dask scheduler {address}") == 5  # one ScorePredictions process per date (labelled dates too)
    # When the run ended, each of its Dask workers held exactly one ONNX session: the pinned model.
    sessions = ast.literal_eval(re.search(r"ONNX sessions per worker: (\{.*\})", run.stderr).group(1))
    sha = json.loads((cli.root / "predictions" / f"date={DAY}" / "_MANIFEST.json").read_text())["model"]["sha256"]
    assert list(sessions.values()) == [[sha], [sha]]
