"""A user's project with its own minimal luigi.cfg: batchml's safety defaults apply, typos stop the run at start.

Each run is the real `luigi --module pipelines ...` from an empty folder that is not the
repository, with only ./luigi.cfg (no LUIGI_CONFIG_PATH, no [retcode] or [RangeDaily]).
"""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.defaults import packaged_logging_conf
from tests.conftest import CONTRACT as SCHEMA
from tests.conftest import REPO

BIN = Path(sys.executable).parent
DAY = dt.date(2026, 6, 1)
OLD = dt.date.today() - dt.timedelta(days=400)  # far behind Luigi's RangeDaily default of 100 days back


def minimal_cfg(tmp_path: Path, extra: str = "") -> str:
    """A project's luigi.cfg: a files source with no files, everything inside tmp_path."""
    return f"""
[core]
local_scheduler = true

[source]
kind = files
path = {tmp_path}/incoming/{{date}}.parquet
labels_path = {tmp_path}/incoming/labels-{{date}}.parquet

[storage]
root = {tmp_path}/data

[schema]
path = {SCHEMA}

[mlflow]
tracking_uri = sqlite:///{tmp_path}/mlflow.db
artifact_location = {tmp_path}/mlartifacts
cache_dir = {tmp_path}/cache
{extra}"""


def run_project(
    folder: Path, cfg: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`luigi --module pipelines ARGS` from `folder`, whose luigi.cfg is `cfg`."""
    (folder / "luigi.cfg").write_text(cfg)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_", "BATCHML_"))}
    return subprocess.run(
        [str(BIN / "luigi"), "--module", "pipelines", *args],
        cwd=folder,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_line(run: subprocess.CompletedProcess) -> str:
    return (run.stdout + run.stderr).strip().splitlines()[-1]


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    assert folder.resolve() != REPO
    return folder


# -- 1. safety defaults in code -----------------------------------------------------------------
def test_a_date_with_no_input_exits_missing_data_without_a_retcode_section(project, tmp_path):
    run = run_project(project, minimal_cfg(tmp_path), "DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 20, run.stderr[-3000:]
    assert "logging configured via *.conf file" in run.stderr  # the packaged logging.cfg


def test_range_daily_tries_every_old_date_without_a_range_daily_section(project, tmp_path):
    stop = OLD + dt.timedelta(days=3)
    run = run_project(
        project,
        minimal_cfg(tmp_path),
        "RangeDaily",
        "--of",
        "DailyScore",
        "--start",
        OLD.isoformat(),
        "--stop",
        stop.isoformat(),
    )
    assert "Empty range" not in run.stderr + run.stdout
    assert run.returncode == 20, run.stderr[-3000:]
    dates = ",".join((OLD + dt.timedelta(days=i)).isoformat() for i in range(3))
    span = f"{OLD}...{OLD + dt.timedelta(days=2)}"  # Luigi's summary writes consecutive dates as a span
    assert re.search(rf"3 DailyScore\((project=\w+, )?date=({dates}|{re.escape(span)})\)", run.stderr), run.stderr[
        -3000:
    ]


def test_the_packaged_logging_config_is_the_shipped_one():
    assert Path(packaged_logging_conf()).is_file()
    assert filecmp.cmp(packaged_logging_conf(), REPO / "config" / "logging.cfg", shallow=False), (
        "config/logging.cfg and its packaged copy differ"
    )


def test_a_user_setting_is_kept():
    from configparser import ConfigParser

    from pipelines.defaults import apply_defaults

    config = ConfigParser()
    config.read_string("[retcode]\ntask_failed = 3\n[core]\nlogging_conf_file = mine.cfg\n")
    applied = apply_defaults(config)
    assert config["retcode"]["task_failed"] == "3" and config["retcode"]["missing_data"] == "20"
    assert config["core"]["logging_conf_file"] == "mine.cfg" and "core" not in applied


# -- 2. config typos fail at start ------------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[source]", "[sorce]"), "luigi.cfg: [sorce]: unknown section; did you mean 'source'?"),
        (("\nroot =", "\nrot ="), "luigi.cfg: [storage] rot: unknown setting; did you mean 'root'?"),
        (
            ("kind = files", "kind = filez"),
            "luigi.cfg: [source] kind = 'filez': ValueError: filez is not a valid choice",
        ),
        (
            ("[storage]\n", "[storage]\nrows_per_file = many\n"),
            "luigi.cfg: [storage] rows_per_file = 'many': not an integer; allowed: an integer >= 1",
        ),
    ],
)
def test_a_typo_in_a_batchml_section_stops_the_run_with_one_line(project, tmp_path, edit, expected):
    cfg = minimal_cfg(tmp_path)
    assert edit[0] in cfg
    run = run_project(project, cfg.replace(edit[0], edit[1], 1), "DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 35, run.stderr[-3000:]
    assert expected in last_line(run), run.stderr[-3000:]
    assert sorted(p.name for p in project.iterdir()) == ["luigi.cfg"]
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_file_named_is_the_one_with_the_typo_and_luigi_sections_are_not_checked(project, tmp_path):
    other = tmp_path / "other.cfg"
    other.write_text("[core]\nanything_luigi = 1\n[my_tool]\nx = 1\n[DailyScore]\n[training]\nwindow_dayz = 3\n")
    run = run_project(
        project, minimal_cfg(tmp_path), "DailyScore", "--date", DAY.isoformat(), env={"LUIGI_CONFIG_PATH": str(other)}
    )
    assert run.returncode == 35, run.stderr[-3000:]
    assert f"{other}: [training] window_dayz: unknown setting; did you mean 'window_days'?" in last_line(run)


# -- 3. every setting validated before anything is written ---------------------------------------
SECRET = "S3cretPW"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("[core]", "[dask]\nn_workers = -2\n[core]"),
            "[dask] n_workers = '-2': out of range; allowed: an integer >= 1",
        ),
        (("[core]", "[dask]\nn_workers = 0\n[core]"), "[dask] n_workers = '0': out of range; allowed: an integer >= 1"),
        (
            ("[core]", "[dask]\nthreads_per_worker = -1\n[core]"),
            "[dask] threads_per_worker = '-1': out of range; allowed: an integer >= 1",
        ),
        (
            ("[storage]\n", "[storage]\nrows_per_file = -1\n"),
            "[storage] rows_per_file = '-1': out of range; allowed: an integer >= 1",
        ),
        (
            ("[storage]\n", "[storage]\nrows_per_file = 0\n"),
            "[storage] rows_per_file = '0': out of range; allowed: an integer >= 1",
        ),
        (
            ("[core]", "[retry]\nattempts = -1\n[core]"),
            "[retry] attempts = '-1': out of range; allowed: an integer >= 1",
        ),
        (
            ("[schema]\n", "[schema]\nmax_reject_share = -0.5\n"),
            "[schema] max_reject_share = '-0.5': out of range; allowed: a number in [0, 1]",
        ),
        (
            ("[source]\n", "[source]\nlabel_lag_days = -3\n"),
            "[source] label_lag_days = '-3': out of range; allowed: an integer >= 0",
        ),
        (
            ("[core]", "[drift]\nfloor_quantile = 1.5\n[core]"),
            "[drift] floor_quantile = '1.5': out of range; allowed: a number in (0, 1)",
        ),
        (
            ("[core]", "[retrain]\nk = 6\nn = 5\n[core]"),
            "[retrain] k = '6': more than [retrain] n = 5; allowed: at most [retrain] n",
        ),
        (
            ("tracking_uri = sqlite:///", "tracking_uri = foo://bar\n#"),
            "[mlflow] tracking_uri = 'foo://bar': no installed MLflow tracking store handles the scheme 'foo' "
            "(installed: ",
        ),
        (  # pymssql is in no extra of batchml: its driver is surely missing
            ("tracking_uri = sqlite:///", f"tracking_uri = mssql+pymssql://bob:{SECRET}@db.example/mlflow\n#"),
            "[mlflow] tracking_uri = 'mssql+pymssql://db.example/mlflow': the driver of mssql+pymssql is not "
            "installed (No module named 'pymssql')",
        ),
        (  # the Iceberg catalog's database: named at start, not after a date's manifest commit
            ("[core]", f"[tables]\ncatalog = mssql+pymssql://bob:{SECRET}@db.example/iceberg\n[core]"),
            "[tables] catalog = 'mssql+pymssql://db.example/iceberg': the driver of mssql+pymssql is not installed "
            "(No module named 'pymssql')",
        ),
        (
            ("kind = files", f"kind = sql\nurl = foo://bob:{SECRET}@db.example/x\nquery = select 1"),
            "[source] url = 'foo://db.example/x': no installed SQLAlchemy dialect handles the scheme 'foo'",
        ),
        (
            ("\nroot =", "\nroot = foo://bucket/prefix\n#"),
            "[storage] root = 'foo://bucket/prefix': no installed fsspec filesystem handles the protocol 'foo'",
        ),
    ],
)
def test_a_bad_value_stops_the_run_with_one_line_naming_file_section_key_value_and_range(
    project, tmp_path, edit, expected
):
    cfg = minimal_cfg(tmp_path)
    assert edit[0] in cfg
    run = run_project(project, cfg.replace(edit[0], edit[1], 1), "DailyScore", "--date", DAY.isoformat(), timeout=60)
    assert run.returncode == 35, (run.stdout + run.stderr)[-3000:]
    assert last_line(run).startswith(f"batchml: luigi.cfg: {expected}"), run.stderr[
        -3000:
    ]  # as Luigi found it, in the folder run from
    assert SECRET not in run.stdout + run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"] and sorted(p.name for p in project.iterdir()) == [
        "luigi.cfg"
    ]


def test_a_contract_yaml_error_names_its_line_and_column_at_start(project, tmp_path):
    contract = tmp_path / "contract.yaml"
    contract.write_text("dataset: rides\nkey: [ride_id\ncolumns:\n  ride_id: {dtype: int}\n")
    run = run_project(
        project,
        minimal_cfg(tmp_path).replace(f"path = {SCHEMA}", f"path = {contract}"),
        "DailyScore",
        "--date",
        DAY.isoformat(),
        timeout=60,
    )
    assert run.returncode == 35, run.stderr[-3000:]
    assert last_line(run) == (
        f"batchml: {contract}, line 3, column 8: not valid YAML: expected ',' or ']', but got ':'; while parsing a "
        "flow sequence"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contract.yaml", "project"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("DailyScore", "--date", DAY.isoformat(), "--dask-n-workers", "0"),
            "batchml: --dask-n-workers 0: out of range; allowed: an integer >= 1",
        ),
        (("DailyScore",), "batchml: DailyScore --date: required (YYYY-MM-DD)"),
        (
            ("Backfill", "--start", "2026-06-05", "--stop", "2026-06-01"),
            "batchml: Backfill --stop 2026-06-01 is not after --start 2026-06-05 (--stop is exclusive): no date to run",
        ),
    ],
)
def test_a_bad_command_line_parameter_is_one_line_naming_it(project, tmp_path, args, line):
    run = run_project(project, minimal_cfg(tmp_path), *args, timeout=60)
    assert run.returncode == 35, run.stderr[-3000:]
    assert (run.stdout + run.stderr).strip().splitlines() == [line]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_help_is_printed_once(project, tmp_path):
    run = run_project(project, minimal_cfg(tmp_path), "DailyScore", "--help")
    assert run.returncode == 0 and (run.stdout + run.stderr).count("usage: luigi") == 1, run.stdout + run.stderr


def test_a_run_collects_cyclic_garbage_every_5000_allocations_and_a_library_import_keeps_pythons_default(
    project, tmp_path
):
    """The cyclic collector's thresholds of a `luigi --module pipelines` process, as its own hook sees them: 0.6 s of a
    small DailyScore was the collector traversing the imported modules' objects (pipelines/__init__.py)."""
    import gc

    import pipelines

    (project / "probe_hooks.py").write_text(
        "import gc, json\n\n\ndef rows(date, **options):\n"
        "    with open('thresholds.json', 'w') as fh:\n        json.dump(gc.get_threshold(), fh)\n"
        "    raise ValueError('probed')\n"
    )
    cfg = minimal_cfg(tmp_path).replace("kind = files", "kind = python\ngenerator = probe_hooks:rows")
    run = run_project(project, cfg, "ExtractFeatures", "--date", DAY.isoformat())
    assert run.returncode != 0 and "probed" in run.stdout + run.stderr
    assert (project / "thresholds.json").read_text() == json.dumps(list(pipelines.COLLECTOR_THRESHOLDS))
    assert gc.get_threshold()[0] == 700  # this process imported pipelines as a library
