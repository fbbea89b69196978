"""The start-of-run checks as plain functions: settings of batchml's sections, the lock folder of a root."""

from __future__ import annotations

import os

import pytest

import pipelines  # noqa: F401  (registers every task and luigi.Config class)
from luigi.task_register import Register
from pipelines.startup import StartupError, batchml_sections, check_settings, luigi_sections, root_lock_dir


def check(tmp_path, text: str) -> None:
    path = tmp_path / "luigi.cfg"
    path.write_text(text)
    check_settings([str(path)], batchml_sections(), luigi_sections(), set(Register._get_reg()))


def test_sections_are_found_by_introspection_not_a_list():
    assert {"storage", "source", "mlflow", "retrain"} <= set(batchml_sections())
    assert "core" not in batchml_sections() and "core" in luigi_sections()


def test_valid_settings_pass_and_other_tools_sections_are_left_alone(tmp_path):
    check(
        tmp_path, "[storage]\nroot = /x\nrows-per-file = 10\n[core]\nwhatever = 1\n[RangeDaily]\ntask_limit = 5\n[DailyScore]\n[my_company_tool]\nsource = y\n"
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[storage]\nrot = /x\n", "[storage] rot: unknown setting; did you mean 'root'?"),
        ("[sorce]\nkind = files\n", "[sorce]: unknown section; did you mean 'source'?"),
        ("[retrain]\nk = three\n", "[retrain] k = 'three': ValueError"),
        ("[storage]\nroot\n", "not a valid configuration file"),
    ],
)
def test_the_first_bad_setting_is_one_line_naming_file_section_and_key(tmp_path, text, line):
    with pytest.raises(StartupError) as err:
        check(tmp_path, text)
    assert str(err.value).startswith(f"{tmp_path / 'luigi.cfg'}: ") and line in str(err.value) and "\n" not in str(err.value)


def test_one_root_one_lock_folder_however_it_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "data", tmp_path / "link")
    same = {root_lock_dir("/locks", r) for r in ("data", "./data/", str(tmp_path / "data"), "link", f"file://{tmp_path}/data")}
    assert len(same) == 1 and same.pop().startswith("/locks/root-")
    assert root_lock_dir("/locks", "s3://bucket/a") == root_lock_dir("/locks", "s3://bucket/a/") != root_lock_dir("/locks", "s3://bucket/b")
