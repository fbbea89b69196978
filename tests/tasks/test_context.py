"""One context per process: storage, registry and contract built once per process and configuration
(batchml/project/context.py)."""

from __future__ import annotations

import os

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser
from luigi.execution_summary import LuigiStatusCode

import pipelines
from batchml.dataset.contract import Contract
from batchml.model.registry import Registry
from batchml.project import context as context_module
from pipelines import startup
from tasks.config import context, load_contract, make_registry, make_storage, project_dir
from tests.conftest import write_cfg


def counted(monkeypatch):
    """Count every storage, registry and contract made in this process from now on."""
    made = {"storage": 0, "registry": 0, "contract": 0}
    open_storage, registry_init, load = context_module.open_storage, Registry.__init__, Contract.load.__func__

    def storage(*args, **kwargs):
        made["storage"] += 1
        return open_storage(*args, **kwargs)

    def registry(self, *args, **kwargs):
        made["registry"] += 1
        registry_init(self, *args, **kwargs)

    def contract(cls, *args, **kwargs):
        made["contract"] += 1
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(context_module, "open_storage", storage)
    monkeypatch.setattr(Registry, "__init__", registry)
    monkeypatch.setattr(Contract, "load", classmethod(contract))
    return made


def test_a_daily_run_builds_its_storage_registry_and_contract_once(pipeline, day, monkeypatch):
    made = counted(monkeypatch)
    result = luigi.build([pipelines.DailyScore(day)], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    assert made == {
        "storage": 1,
        "registry": 1,
        "contract": 1,
    }  # the cold start trains, registers, pins, scores and monitors
    assert (
        make_storage() is make_storage() and make_registry() is make_registry() and load_contract() is load_contract()
    )
    assert made == {"storage": 1, "registry": 1, "contract": 1}


def test_a_change_of_settings_in_the_process_gives_a_new_storage(pipeline, tmp_path):
    first = make_storage()
    assert first.root == tmp_path / "data"
    pipeline({"storage": {"root": str(tmp_path / "other")}})
    assert make_storage().root == tmp_path / "other"
    with CmdlineParser.global_instance(
        ["DailyScore", "--date", "2026-06-10", "--storage-root", str(tmp_path / "given")]
    ):
        assert make_storage().root == tmp_path / "given"  # a setting given on the command line
    assert make_storage().root == tmp_path / "other"
    config = luigi.configuration.get_config()
    config.set("mlflow", "registered_model", "another")  # set as Luigi's config helpers set it, with no reset
    assert make_registry().name == "another"


def test_a_forked_process_builds_its_own(pipeline):
    ours = context()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a `luigi --workers N` task process: never the parent's MLflow client or connections
        os.write(write, b"1" if context() is not ours and context() is context() else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert context() is ours


@pytest.mark.parametrize("named_by", ["LUIGI_CONFIG_PATH", "BATCHML_PROJECT_DIR"])
def test_the_start_up_lock_and_the_storage_agree_on_the_root_from_another_folder(
    pipeline, tmp_path, monkeypatch, named_by
):
    """The project names a relative root (`data`); the command runs from another folder, the project named by a
    variable."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(), elsewhere.mkdir()
    settings = {
        "storage": {"root": "data"},
        "schema": {"path": "contract.yaml"},
        "core": {"lock_pid_dir": str(tmp_path / "locks")},
    }
    config_file = write_cfg(project / "luigi.cfg", settings)
    pipeline(settings)  # Luigi has read the project's file (as at the start of a `luigi` run)
    monkeypatch.setenv(named_by, str(config_file if named_by == "LUIGI_CONFIG_PATH" else project))
    monkeypatch.chdir(elsewhere)

    startup.prepare(["DailyScore", "--date", "2026-06-10"])

    assert project_dir() == project
    assert make_storage().root == project / "data"
    lock = luigi.configuration.get_config().get("core", "lock_pid_dir")
    assert lock == startup.root_lock_dir(str(tmp_path / "locks"), str(project / "data"))
    assert lock != startup.root_lock_dir(str(tmp_path / "locks"), str(elsewhere / "data"))
