"""Incomplete inputs through the real CLI: an empty date is missing data, a cut file fails naming itself, a 0-byte file
beside good ones is skipped, a full disk is named."""

import datetime as dt

import pandas as pd
import pytest

from batchml.store.storage import Storage
from tests.conftest import pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, last_lines

DAY = dt.date(2026, 3, 10)
WINDOW = [
    DAY - dt.timedelta(days=i) for i in range(6, 0, -1)
]  # the cold start's window and the labelled date before DAY


def day_rows(date: dt.date, rows: int = 3000, seed: int = 5) -> pd.DataFrame:
    from taxi_synthetic import trips

    return pd.concat(trips(date, rows_per_day=rows, seed=seed), ignore_index=True)


def write_day(raw, date, fmt, frame, marker=None):
    path = raw / f"trips_{date}.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    if marker is not None:
        (raw / f"{date}.done").write_text(marker)
    return path


def files_cli(tmp_path, fmt, **source) -> Cli:
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = pipeline_settings(tmp_path)
    settings["source"].update(kind="files", path=str(raw / f"trips_{{date}}.{fmt}"), format=fmt, **source)
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))


def nothing_committed(cli, date, *, pinned: bool = False) -> bool:
    """No dataset holds the date (and, unless it was `pinned` while its extraction failed, no pin either)."""
    datasets = any((cli.root / d / f"date={date}").exists() for d in ("features", "quarantine", "predictions"))
    return not datasets and (pinned or not (cli.root / "pins" / f"date={date}.json").exists())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_empty_file_is_missing_data_and_the_date_runs_when_its_rows_arrive(tmp_path, fmt):
    cli = files_cli(tmp_path, fmt)
    for date in WINDOW:
        write_day(tmp_path / "raw", date, fmt, day_rows(date))
    write_day(tmp_path / "raw", DAY, fmt, day_rows(DAY).iloc[:0])  # a header-only CSV, a Parquet schema with 0 rows

    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 20, last_lines(run, 40)  # [retcode] missing_data, not a failed task
    assert f"SourceData(date={DAY})" in run.stdout + run.stderr and "Traceback" not in run.stderr
    assert nothing_committed(cli, DAY)

    write_day(tmp_path / "raw", DAY, fmt, day_rows(DAY))  # the rows arrive
    again = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert again.returncode == 0, last_lines(again, 40)
    assert (cli.root / "predictions" / f"date={DAY}" / "_MANIFEST.json").exists()


def test_a_marker_gates_a_date_and_a_csv_cut_mid_row_fails_it_with_the_cause_last(tmp_path):
    cli = files_cli(tmp_path, "csv", complete_marker="{date}.done")
    raw = tmp_path / "raw"
    for date in WINDOW:
        write_day(raw, date, "csv", day_rows(date), marker="")
    full = day_rows(DAY, rows=5000)
    path = write_day(raw, DAY, "csv", full)  # written, but its writer has not finished: no marker

    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 20, last_lines(run, 40)
    assert nothing_committed(cli, DAY)

    lines = path.read_text().splitlines(keepends=True)  # a copy interrupted mid-row: 2,500 of 5,000 rows
    path.write_text("".join(lines[:2501]) + lines[2501][:20])
    (raw / f"{DAY}.done").write_text("5000\n")
    cut = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert cut.returncode == 30, last_lines(cut, 40)
    last = last_lines(cut, 1)
    assert f"trips_{DAY}.csv: the last line is cut (" in last and "the file looks incomplete" in last, last_lines(
        cut, 20
    )
    assert nothing_committed(cli, DAY, pinned=True)

    path.write_text("".join(lines[:2501]))  # whole rows, but fewer than the marker states
    short = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert (
        short.returncode == 30
        and f"{DAY}.done: states 5000 rows, but " in last_lines(short, 1)
        and "hold 2500" in last_lines(short, 1)
    )
    assert nothing_committed(cli, DAY, pinned=True)

    path.write_text("".join(lines))
    done = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert done.returncode == 0, last_lines(done, 40)


def test_a_0_byte_file_beside_a_good_one_is_skipped_and_listed_in_the_manifest(tmp_path):
    raw = tmp_path / "raw"
    cli = files_cli(tmp_path, "csv")
    cli.config.write_text(cli.config.read_text().replace(str(raw / "trips_{date}.csv"), str(raw / "date={date}/")))
    folder = raw / f"date={DAY}"
    folder.mkdir()
    (folder / "a.csv").write_bytes(b"")  # a copy that created its file and died
    day_rows(DAY).to_csv(folder / "b.csv", index=False)

    run = cli.luigi("ExtractFeatures", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)
    manifest = Storage(cli.root).verify("features", DAY)
    assert manifest.extra["empty_inputs"] == [f"file://{folder}/a.csv"]
    assert manifest.rows["in"] == 3000 == manifest.rows["written"] + manifest.rows["quarantined"]


def test_a_full_disk_fails_the_run_naming_the_dataset_and_the_path_last(tmp_path, small_disk):
    cli = files_cli(tmp_path, "parquet")
    cli.config.write_text(cli.config.read_text().replace(str(tmp_path / "data"), str(small_disk / "data")))
    write_day(tmp_path / "raw", DAY, "parquet", day_rows(DAY, rows=60_000))
    run = cli.luigi("ExtractFeatures", "--date", DAY.isoformat())
    assert run.returncode != 0, last_lines(run, 40)
    last = last_lines(run, 1)
    assert (
        f"No space left on device writing features of {DAY} to {small_disk}/data/features/_staging/date={DAY}/" in last
    ), last_lines(run, 30)
    assert not Storage(small_disk / "data").committed_dates("features")
