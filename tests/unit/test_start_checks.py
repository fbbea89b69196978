"""The start-of-run checks as plain functions: settings of batchml's sections, the lock folder of a root."""

from __future__ import annotations

import os

import luigi
import pytest
from luigi.task_register import Register

import pipelines  # noqa: F401  (registers every task and luigi.Config class)
from pipelines.startup import (
    StartupError,
    batchml_sections,
    check_settings,
    check_task_parameters,
    luigi_sections,
    root_lock_dir,
)
from tasks.config import ORDERED, Allowed


def check(tmp_path, text: str) -> None:
    path = tmp_path / "luigi.cfg"
    path.write_text(text)
    check_settings([str(path)], batchml_sections(), luigi_sections(), set(Register._get_reg()))


def test_sections_are_found_by_introspection_not_a_list():
    assert {"storage", "source", "mlflow", "retrain"} <= set(batchml_sections())
    assert "core" not in batchml_sections() and "core" in luigi_sections()


def test_valid_settings_pass_and_other_tools_sections_are_left_alone(tmp_path):
    check(
        tmp_path,
        "[storage]\nroot = /x\nrows-per-file = 10\n[core]\nwhatever = 1\n[RangeDaily]\ntask_limit = "
        "5\n[DailyScore]\n[my_company_tool]\nsource = y\n",
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[storage]\nrot = /x\n", "[storage] rot: unknown setting; did you mean 'root'?"),
        ("[sorce]\nkind = files\n", "[sorce]: unknown section; did you mean 'source'?"),
        ("[retrain]\nk = three\n", "[retrain] k = 'three': not an integer; allowed: an integer >= 1"),
        ("[storage]\nroot\n", "not a valid configuration file"),
    ],
)
def test_the_first_bad_setting_is_one_line_naming_file_section_and_key(tmp_path, text, line):
    with pytest.raises(StartupError) as err:
        check(tmp_path, text)
    assert (
        str(err.value).startswith(f"{tmp_path / 'luigi.cfg'}: ")
        and line in str(err.value)
        and "\n" not in str(err.value)
    )


def test_one_root_one_lock_folder_however_it_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "data", tmp_path / "link")
    same = {
        root_lock_dir("/locks", r)
        for r in ("data", "./data/", str(tmp_path / "data"), "link", f"file://{tmp_path}/data")
    }
    assert len(same) == 1 and same.pop().startswith("/locks/root-")
    assert (
        root_lock_dir("/locks", "s3://bucket/a")
        == root_lock_dir("/locks", "s3://bucket/a/")
        != root_lock_dir("/locks", "s3://bucket/b")
    )


# -- every numeric setting has a declared range, checked at start -------------------------------
def numeric_settings() -> list[tuple[str, str, object]]:
    """(section, key, parameter) of every int or float setting of every luigi.Config class batchml defines."""
    return [
        (section, name, param)
        for section, cls in sorted(batchml_sections().items())
        for name, param in cls.get_params()
        if isinstance(param, (luigi.IntParameter, luigi.FloatParameter, luigi.NumericalParameter))
    ]


def test_every_numeric_setting_declares_its_range_and_its_default_lies_in_it():
    settings = numeric_settings()
    assert len(settings) >= 45  # retrain's, drift's, checks', ... all found
    assert [f"[{s}] {k}" for s, k, p in settings if not isinstance(getattr(p, "allowed", None), Allowed)] == []
    assert [f"[{s}] {k} = {p._default}" for s, k, p in settings if not p.allowed.admits(p._default)] == []


def test_settings_that_bound_each_other_name_numeric_settings_whose_defaults_are_in_order():
    params = {(s, k): p for s, k, p in numeric_settings()}
    assert ORDERED and all(
        low in params and high in params and params[low]._default <= params[high]._default for low, high in ORDERED
    )


def outside(allowed: Allowed) -> str:
    """A value just outside `allowed` (an infinite one when it has no bound)."""
    if allowed.low is not None:
        return str(allowed.low if allowed.low_open else allowed.low - 1)
    if allowed.high is not None:
        return str(allowed.high if allowed.high_open else allowed.high + 1)
    return "inf"


@pytest.mark.parametrize(("section", "key"), [(s, k) for s, k, _ in numeric_settings()])
def test_a_value_outside_a_settings_range_is_refused_naming_the_range(tmp_path, section, key):
    allowed = dict(batchml_sections()[section].get_params())[key].allowed
    value = outside(allowed)
    with pytest.raises(StartupError) as err:
        check(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert (
        str(err.value) == f"{tmp_path / 'luigi.cfg'}: [{section}] {key} = {value!r}: out of range; allowed: {allowed}"
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[dask]\nn_workers = -2\n", "[dask] n_workers = '-2': out of range; allowed: an integer >= 1"),
        ("[dask]\nn_workers = 0\n", "[dask] n_workers = '0': out of range; allowed: an integer >= 1"),
        (
            "[dask]\nthreads_per_worker = -1\n",
            "[dask] threads_per_worker = '-1': out of range; allowed: an integer >= 1",
        ),
        ("[storage]\nrows_per_file = -1\n", "[storage] rows_per_file = '-1': out of range; allowed: an integer >= 1"),
        ("[storage]\nrows-per-file = 0\n", "[storage] rows-per-file = '0': out of range; allowed: an integer >= 1"),
        (
            "[storage]\nrows_per_file = 1e5\n",
            "[storage] rows_per_file = '1e5': not an integer; allowed: an integer >= 1",
        ),
        ("[retry]\nattempts = -1\n", "[retry] attempts = '-1': out of range; allowed: an integer >= 1"),
        (
            "[schema]\nmax_reject_share = -0.5\n",
            "[schema] max_reject_share = '-0.5': out of range; allowed: a number in [0, 1]",
        ),
        ("[source]\nlabel_lag_days = -3\n", "[source] label_lag_days = '-3': out of range; allowed: an integer >= 0"),
        ("[drift]\nfloor_quantile = 1\n", "[drift] floor_quantile = '1': out of range; allowed: a number in (0, 1)"),
        ("[drift]\npsi = nan\n", "[drift] psi = 'nan': out of range; allowed: a number >= 0"),
        ("[retrain]\nmargin = inf\n", "[retrain] margin = 'inf': out of range; allowed: any finite number"),
        (
            "[training]\nseed = 4294967296\n",
            "[training] seed = '4294967296': out of range; allowed: an integer in [0, 4294967295]",
        ),
    ],
)
def test_the_settings_that_hung_or_crashed_are_refused_at_start(tmp_path, text, line):
    with pytest.raises(StartupError) as err:
        check(tmp_path, text)
    assert str(err.value) == f"{tmp_path / 'luigi.cfg'}: {line}"


def test_edges_of_a_range_are_allowed(tmp_path):
    check(
        tmp_path,
        "[source]\nlabel_lag_days = 0\n[schema]\nmax_reject_share = 1\n[dask]\nn_workers = 1\n[retrain]\nmargin = "
        "-100\nerror_increase = -1\n",
    )


def test_allowed_admits_numbers_only_and_says_itself():
    share = Allowed(low=0, high=1)
    assert (
        share.admits(0)
        and share.admits(1.0)
        and not share.admits(1.0001)
        and not share.admits(float("nan"))
        and not share.admits(True)
    )
    assert not Allowed(low=1, integer=True).admits(1.5) and str(Allowed(low=0, low_open=True)) == "a number > 0"
    assert (
        str(Allowed(low=0, high=1, low_open=True, high_open=True)) == "a number in (0, 1)"
        and str(Allowed(high=2.5)) == "a number <= 2.5"
    )


# -- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["DailyScore", "--date", "2026-01-01", "--dask-n-workers", "0"],
            "--dask-n-workers 0: out of range; allowed: an integer >= 1",
        ),
        (
            ["DailyScore", "--date", "2026-01-01", "--storage-rows-per-file", "x"],
            "--storage-rows-per-file x: not an integer; allowed: an integer >= 1",
        ),
        (
            ["DailyScore", "--date", "2026-01-01/../../"],
            "DailyScore --date 2026-01-01/../../: not a date as YYYY-MM-DD",
        ),
        (["DailyScore"], "DailyScore --date: required (YYYY-MM-DD)"),
        (["Backfill", "--start", "2026-01-01"], "Backfill --stop: required (YYYY-MM-DD)"),
        (
            ["Backfill", "--start", "2026-01-05", "--stop", "2026-01-01"],
            "Backfill --stop 2026-01-01 is not after --start 2026-01-05 (--stop is exclusive): no date to run",
        ),
        (
            ["RangeDaily", "--of", "DailyScore"],
            "RangeDaily: --start or --stop is required (YYYY-MM-DD; --stop is exclusive)",
        ),
        (
            ["RangeDaily", "--of", "DailyScoree", "--start", "2026-01-01"],
            "RangeDaily --of DailyScoree: No task DailyScoree. Did you mean: DailyScore",
        ),
    ],
)
def test_a_bad_command_line_parameter_is_one_line_naming_it(argv, line):
    with pytest.raises(StartupError) as err:
        check_task_parameters(argv)
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


def test_a_good_command_line_passes():
    check_task_parameters(
        ["RangeDaily", "--of", "DailyScore", "--start", "2026-01-01", "--stop", "2026-01-02", "--dask-n-workers", "1"]
    )
    check_task_parameters(["Backfill", "--start", "2026-01-01", "--stop", "2026-01-02", "--reprocess", "stale"])


def test_the_start_up_checks_build_luigis_command_line_parser_once(monkeypatch):
    """Luigi builds its parser from every task's and setting's parameters (20-50 ms): the checks and the per-date table
    share one for the run's command line."""
    from luigi.cmdline_parser import CmdlineParser

    from pipelines import startup

    built = []
    original = CmdlineParser.__init__

    def counted(self, argv):
        built.append(list(argv))
        original(self, argv)

    monkeypatch.setattr(CmdlineParser, "__init__", counted)
    argv = ["Backfill", "--start", "2026-01-01", "--stop", "2026-01-03", "--reprocess", "stale"]
    check_task_parameters(argv)
    for _ in range(3):
        with startup.command_line(argv) as parser:
            assert parser.get_task_obj().stop.isoformat() == "2026-01-03"
    assert built == [argv]
    assert CmdlineParser._instance is None  # the global parser is Luigi's own again after each block
