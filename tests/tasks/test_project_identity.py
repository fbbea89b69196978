"""Every task carries its project, part of its task id: from --project, [project] name, or the contract's dataset
name."""

import datetime as dt

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser
from luigi.task_register import Register

import pipelines
from tasks.config import load_contract, project_dir

DAY = dt.date(2026, 7, 25)
EVERY_TASK = (
    pipelines.SourceData,
    pipelines.ExtractFeatures,
    pipelines.ChampionModel,
    pipelines.ResolveModel,
    pipelines.ScorePredictions,
    pipelines.ExtractLabels,
    pipelines.DetectDrift,
    pipelines.Metrics,
    pipelines.CheckMetrics,
    pipelines.RetrainIfDrifted,
    pipelines.DailyReport,
    pipelines.DailyScore,
    pipelines.RescoreDate,
    pipelines.ReextractDate,
)


@pytest.fixture
def named(pipeline):
    """Set [project] name for one test."""
    config = luigi.configuration.get_config()

    def name(value: str) -> None:
        if not config.has_section("project"):
            config.add_section("project")
        config.set("project", "name", value)
        Register.clear_instance_cache()

    yield name
    config.remove_section("project")
    Register.clear_instance_cache()


def tasks_of(*types):
    """Each task type made as requires() makes it: date only."""
    return [t(DAY) for t in types]


def test_the_project_is_the_contracts_dataset_name_by_default(pipeline):
    dataset = load_contract().dataset
    assert dataset == "taxi_trips"
    for task in tasks_of(*EVERY_TASK):
        assert task.project == dataset
        assert task.task_id.startswith(f"{task.get_task_family()}_2026_07_25_taxi_trips_")  # date, then project
        assert repr(task).startswith(f"{task.get_task_family()}(date=2026-07-25") and "project" not in repr(task)
    backfill = pipelines.Backfill(start=DAY, stop=DAY + dt.timedelta(days=3))
    assert backfill.project == dataset and "taxi_trips" in backfill.task_id


def test_a_configured_name_wins_and_changes_every_task_id(pipeline, named):
    before = {type(t): t.task_id for t in tasks_of(*EVERY_TASK)}
    named("fleet_east")
    for task in tasks_of(*EVERY_TASK):
        assert task.project == "fleet_east" and "_fleet_east_" in task.task_id
        assert task.task_id != before[type(task)]


def test_project_on_the_command_line_holds_for_every_task_of_the_run(pipeline, named):
    named("fleet_east")
    with CmdlineParser.global_instance(["DailyScore", "--date", DAY.isoformat(), "--project", "override"]) as parser:
        root = parser.get_task_obj()
        assert root.project == "override"
        assert {t.project for t in root.requires()} == {"override"}
        assert {t.project for t in tasks_of(pipelines.ScorePredictions, pipelines.ChampionModel)} == {"override"}
    with CmdlineParser.global_instance(
        ["RangeDaily", "--of", "DailyScore", "--start", "2026-07-25", "--stop", "2026-07-27", "--project", "p2"]
    ) as parser:
        assert {t.project for t in parser.get_task_obj().requires()} == {"p2"}


def test_a_project_with_an_unreadable_contract_is_named_after_its_folder(pipeline, tmp_path):
    pipeline({"schema": {"path": str(tmp_path / "missing.yaml")}})
    task = pipelines.DailyScore(DAY)
    assert task.project == project_dir().name  # the run then fails naming the contract, in the task that reads it


def test_the_settings_are_read_again_only_when_they_changed(pipeline, named, monkeypatch):
    """Every task made resolves its project (a Backfill of 30 dates makes thousands): the settings and the
    project folder were read each time; now once per configuration, and a changed name is seen."""
    import tasks.config

    tasks.config.project_name()
    reads = []
    folder = tasks.config.project_dir
    monkeypatch.setattr(tasks.config, "project_dir", lambda: reads.append(1) or folder())
    for _ in range(3):
        assert {t.project for t in tasks_of(*EVERY_TASK)} == {"taxi_trips"}
    assert reads == []
    named("fleet_east")
    assert {t.project for t in tasks_of(*EVERY_TASK)} == {"fleet_east"}
    assert len(reads) == 1


def test_the_root_tasks_command_line_is_read_once_per_run(pipeline, named, monkeypatch):
    """Every task made asks for the root task's --project: its class and parameters were looked up each time."""
    lookups = []
    get_task_cls = Register.get_task_cls
    monkeypatch.setattr(
        Register, "get_task_cls", classmethod(lambda cls, name: lookups.append(name) or get_task_cls(name))
    )
    with CmdlineParser.global_instance(["DailyScore", "--date", DAY.isoformat(), "--project", "override"]) as parser:
        root = parser.get_task_obj()
        lookups.clear()
        for _ in range(3):
            assert {t.project for t in tasks_of(*EVERY_TASK)} == {"override"}
        assert lookups == ["DailyScore"]
    with CmdlineParser.global_instance(["DailyScore", "--date", DAY.isoformat(), "--project", "p2"]) as parser:
        assert {t.project for t in [parser.get_task_obj(), *tasks_of(*EVERY_TASK)]} == {"p2"}
    assert root.project == "override"
