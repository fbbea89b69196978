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


def table_row(root, date: dt.date, tail: str = "  no drift  ok      not triggered") -> str:
    """The closing table's row of a scored date, from its manifest (the format of the README's table)."""
    m = json.loads((root / "predictions" / f"date={date}" / "_MANIFEST.json").read_text())
    model = f"{m['model']['name']} v{m['model']['version']}"
    return (
        f"{date}  {m['rows']['in']:>9,}  {m['rows']['written']:>9,}  {m['rows']['quarantined']:>11,}  {model:18}{tail}"
    )


def closing_table(stdout: str) -> list[str]:
    """The per-date table a run ends its standard output with: from its header to the reports line."""
    lines = stdout.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("date          rows in"))
    assert lines[-1].startswith("reports       ") and lines[-1].endswith("/monitoring/index.html"), stdout[-2000:]
    return lines[start:]


def test_daily_score_then_a_rerun_that_does_nothing(cli):
    first = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert first.returncode == 0, last_lines(first, 40)
    assert "ScorePredictions(date=2026-01-20)" in first.stderr
    manifest = json.loads((cli.root / "predictions" / f"date={DAY}" / "_MANIFEST.json").read_text())
    assert manifest["rows"]["in"] == manifest["rows"]["written"] + manifest["rows"]["quarantined"] == 3000
    assert manifest["model"]["version"] == "1"
    assert closing_table(first.stdout)[1:3] == [table_row(cli.root, DAY), f"features/     {cli.root}/features"]

    again = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr + again.stdout
    assert closing_table(again.stdout)[1] == table_row(
        cli.root, DAY
    )  # a run with nothing to do still says what is there


def test_a_cold_start_run_prints_training_and_scoring_progress_with_counts(cli):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    out = run.stderr
    for pattern in (
        r"batchml\.model\.training: training: read 5 of 5 dates \(2026-01-18: \d+ labelled rows\) \(\d+\.\d s\)",
        r"training: fitting taxi_hooks:recipe on \d+ rows of \d+ inputs \(\d+ held out\) \(\d+\.\d s\)",
        r"training: fitted \w+; exporting to ONNX \(\d+\.\d s\)",
        r"training: registering trip_duration with its evidence \(\d+\.\d s\)",
        r"training: registered version 1, trained on .* \(\d+ rows\): holdout mae [\d.]+ \(\d+\.\d s\)",
        rf"scored 0 of (\d+) partitions of {DAY} with models:/trip_duration/1 \(\d+\.\d s\)",
        # small dates are cut for both cores
        rf"scored (\d+) of \1 partitions of {DAY} with models:/trip_duration/1 \(\d+\.\d s\)",
    ):
        assert re.search(pattern, out), f"{pattern!r} not in the output:\n{out[-6000:]}"
    assert "\r" not in out  # no bar when stderr is not a terminal


def test_range_daily_backfill_and_readers_see_exactly_the_committed_rows(cli):
    stop = DAY + dt.timedelta(days=3)
    with open(
        cli.config, "a"
    ) as fh:  # a setting of a task section the task does not take: Luigi warns, to no one's use
        fh.write("\n[DailyScore]\nnote = scheduled by the nightly CronJob\n")
    run = cli.luigi("RangeDaily", "--of", "DailyScore", "--start", DAY.isoformat(), "--stop", stop.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    assert closing_table(run.stdout)[1:4] == [table_row(cli.root, d) for d in days]
    warned = [
        line
        for line in run.stderr.splitlines()
        if "Warning" in line or "is not of type string" in line or "not consumed" in line
    ]
    assert warned == [], warned  # Luigi's RangeDaily param_name and unconsumed-setting warnings mean nothing to a user
    backfill = cli.luigi(
        "Backfill", "--start", DAY.isoformat(), "--stop", stop.isoformat()
    )  # nothing left to do: the same table
    assert backfill.returncode == 0, last_lines(backfill, 40)
    assert closing_table(backfill.stdout)[1:4] == [table_row(cli.root, d) for d in days]
    dates = sorted(p.name for p in (cli.root / "predictions").glob("date=*"))
    # The range, and the dates its realized metrics are measured on (D - label_lag_days) scored with it.
    assert dates == [f"date={DAY + dt.timedelta(days=i)}" for i in range(-2, 3)]

    # A crashed run's staging folder must stay invisible to readers of the dataset root.
    orphan = cli.root / "predictions" / "_staging" / f"date={stop}" / "deadbeef"
    orphan.mkdir(parents=True)
    pq.write_table(
        pq.read_table(next((cli.root / "predictions" / f"date={DAY}").glob("*.parquet"))), orphan / "part-00000.parquet"
    )
    table = ds.dataset(cli.root / "predictions", format="parquet", partitioning="hive").to_table()
    assert (
        table.num_rows == committed_rows(cli.root, "predictions") == 5 * 3000 - committed_rows(cli.root, "quarantine")
    )
    assert distinct_keys(table) == table.num_rows
    assert sorted(set(str(d) for d in table.column("date").to_pylist())) == [
        str(DAY + dt.timedelta(days=i)) for i in range(-2, 3)
    ]


def test_a_failed_date_exits_non_zero_and_names_the_cause(cli):
    run = cli.luigi("DailyScore", "--date", DAY.isoformat(), *options_arg(bad_row_share=0.3))
    assert run.returncode == 30, last_lines(run, 40)  # [retcode] task_failed
    output = run.stdout + run.stderr
    assert "RejectedShareTooHigh" in output and "broke the schema contract" in output and "Top reasons: " in output
    assert not (cli.root / "features" / f"date={DAY}").exists()


def test_a_date_missing_at_the_source_exits_with_missing_data(cli, tmp_path):
    run = cli.luigi(
        "DailyScore",
        "--date",
        DAY.isoformat(),
        "--source-kind",
        "files",
        "--source-path",
        str(tmp_path / "raw" / "{date}.parquet"),
    )
    assert run.returncode == 20, last_lines(run, 40)  # [retcode] missing_data
    assert "Traceback" not in run.stderr
    assert closing_table(run.stdout)[1] == f"{DAY}  not scored"
    # The last line is the cause, naming where the rows were looked for.
    looked = tmp_path / "raw" / f"{DAY}.parquet"
    assert (
        last_lines(run, 1) == f"  SourceData(date=2026-01-20) is missing: no rows of {DAY} at {looked} ([source] path)"
    ), last_lines(run)


@pytest.mark.parametrize(
    "workers", ["1", "2"]
)  # with 2, tasks fail in forked worker processes: their causes still end the run
def test_a_metric_breach_exits_non_zero_with_the_cause_in_the_last_lines(cli, workers):
    args = ("DailyScore", "--date", DAY.isoformat(), "--checks-max-quarantine-rate", "0.0001", "--workers", workers)
    run = cli.start(*args)  # stdout and stderr as a terminal shows them
    assert run.wait() == 30, run.output[-4000:]
    # With --workers N the run's shared Dask cluster, a process of its own, reports its sessions
    # once the run has exited.
    lines = [
        line for line in run.output.splitlines() if not line.startswith("batchml: the run's shared Dask cluster stops")
    ]
    cause = f"  CheckMetrics(date={DAY}) failed: MetricBreach: {DAY}: quarantine_rate = "
    assert lines[-1].startswith(cause) and "outside <= 0.0001" in lines[-1], run.output[
        -3000:
    ]  # named by family and date, not a hashed id
    assert lines[-2] == "batchml: the run failed because:"
    # Before the cause: the per-date table, after Luigi's own summary, with the date failed and why.
    summary_end = max(i for i, line in enumerate(lines) if "===== Luigi Execution Summary =====" in line)
    header = max(i for i, line in enumerate(lines) if line.startswith("date          rows in"))
    assert summary_end < header < len(lines) - 2
    row = table_row(
        cli.root,
        DAY,
        tail=(
            "  no drift  fail    not triggered  failed in CheckMetrics: "
            f"{lines[-1].removeprefix('  CheckMetrics(date=2026-01-20) failed: ')}"
        ),
    )
    assert lines[header + 1] == row
    assert (cli.root / "monitoring" / f"date={DAY}" / "report.html").exists()  # the page shows the breach


@pytest.mark.slow
def test_workers_n_score_dates_in_parallel_on_one_cluster_with_one_model_per_worker(cli):
    stop = DAY + dt.timedelta(days=3)
    run = cli.luigi(
        "RangeDaily", "--of", "DailyScore", "--start", DAY.isoformat(), "--stop", stop.isoformat(), "--workers", "2"
    )
    assert run.returncode == 0, last_lines(run, 40)
    assert sorted(p.name for p in (cli.root / "predictions").glob("date=*/")) == [
        f"date={DAY + dt.timedelta(days=i)}" for i in range(-2, 3)
    ]
    # Every task process of the run connected to one cluster, started once.
    assert run.stderr.count("started the run's shared Dask cluster") == 1, last_lines(run, 40)
    address = re.search(r"started the run's shared Dask cluster at (\S+)", run.stderr).group(1)
    assert (
        run.stderr.count(f"connected to Dask scheduler {address}") == 5
    )  # one ScorePredictions process per date (labelled dates too)
    # When the run ended, each of its Dask workers held exactly one ONNX session: the pinned model.
    sessions = ast.literal_eval(re.search(r"ONNX sessions per worker: (\{.*\})", run.stderr).group(1))
    sha = json.loads((cli.root / "predictions" / f"date={DAY}" / "_MANIFEST.json").read_text())["model"]["sha256"]
    assert list(sessions.values()) == [[sha], [sha]]
