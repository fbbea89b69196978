"""Every default has one home: the core's policy dataclasses, which the luigi.Config classes, the docs and `batchml
init` follow."""

from __future__ import annotations

import configparser
import dataclasses

import luigi
import pandas as pd
import pytest

import pipelines  # noqa: F401  (registers every section)
from batchml.base.retry import RetryPolicy
from batchml.base.setting import policy_field
from batchml.dataset.extract import SchemaSettings
from batchml.dataset.sources import SourceSettings
from batchml.model.registry import RegistrySettings
from batchml.model.runtimes import RuntimeChoice
from batchml.model.training import TrainingPolicy
from batchml.monitor.alerts import AlertSettings
from batchml.monitor.baseline import BaselinePolicy
from batchml.monitor.checks import CheckThresholds
from batchml.monitor.estimated import EstimationPolicy
from batchml.monitor.monitoring import ReportSettings
from batchml.project.starter import init_project
from batchml.retrain.lifecycle import GatePolicy
from batchml.retrain.policy import RetrainPolicy
from batchml.scoring.compute import ClusterSettings
from batchml.stats.drift import DriftThresholds
from batchml.store.storage import StorageSettings
from pipelines.settings_doc import render, section_table
from pipelines.startup import batchml_sections
from tasks.config import (
    alert_settings,
    check_thresholds,
    drift,
    drift_thresholds,
    estimation_policy,
    from_policy,
    policy_from,
    retrain,
    retry_policy,
)

# The sections whose settings the core reads as a policy dataclass, and those dataclasses.
POLICIES = {
    "drift": (DriftThresholds, BaselinePolicy),
    "checks": (CheckThresholds,),
    "retry": (RetryPolicy,),
    "retrain": (RetrainPolicy, GatePolicy),
    "storage": (StorageSettings,),
    "source": (SourceSettings,),
    "schema": (SchemaSettings,),
    "mlflow": (RegistrySettings,),
    "runtime": (RuntimeChoice,),
    "training": (TrainingPolicy,),
    "dask": (ClusterSettings,),
    "report": (ReportSettings,),
    "alerts": (AlertSettings,),
    "estimation": (EstimationPolicy,),
}
# Settings of those sections that no policy holds, and why.
NOT_IN_A_POLICY = {
    ("retrain", "gate_days"): "RetrainPlan's, built per run with the label lag and the training window",
    ("retrain", "min_train_days"): "RetrainPlan's, as gate_days",
    ("retrain", "metric"): "empty means the task's own metric; GatePolicy.primary is always a metric",
    ("retrain", "guards"): "empty means the task's own guards; GatePolicy.guards are always metrics",
    ("source", "options"): "a dict of the generator's keyword arguments; a frozen dataclass holds no dict default",
    ("training", "params"): "a dict of the recipe's own parameters, as source options",
}


def described(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if "description" in f.metadata]


def same(param, spec: dataclasses.Field) -> bool:
    """A Luigi parameter's default, description and allowed values equal to the field's."""
    default = tuple(param._default) if isinstance(param._default, list) else param._default
    description = param.description
    if isinstance(param, luigi.ChoiceParameter):  # Luigi appends the choices, which the field holds apart
        assert set(param._choices) == set(spec.metadata["choices"])
        description = description.removesuffix(" Choices: {" + ", ".join(str(c) for c in param._choices) + "}")
    return (default, description, getattr(param, "allowed", None)) == (
        spec.default,
        spec.metadata["description"],
        spec.metadata["allowed"],
    )


def test_every_setting_of_a_policy_section_is_a_field_of_its_policy_with_the_same_default_description_and_range():
    sections = batchml_sections()
    twins, mismatched, unclaimed = 0, [], []
    for section, policies in POLICIES.items():
        fields = {name: policy_field(cls, name) for cls in policies for name in described(cls)}
        for name, param in sections[section].get_params():
            if name not in fields:
                unclaimed.append((section, name))
                continue
            twins += 1
            if getattr(param, "policy", None) is None or not same(param, fields[name]):
                mismatched.append(f"[{section}] {name}")
        assert set(fields) <= {name for name, _ in sections[section].get_params()}, (
            f"a {section} policy field no setting reads"
        )
    assert mismatched == []
    assert sorted(unclaimed) == sorted(NOT_IN_A_POLICY)
    assert twins == 12 + 11 + 4 + 7 + 2 + 3 + 11 + 2 + 8 + 4 + 4 + 4 + 1 + 6 + 6 + 1  # + [dask] in_process_rows


def test_the_policies_built_from_an_empty_configuration_equal_the_dataclasses_own_defaults():
    assert drift_thresholds() == DriftThresholds()
    assert check_thresholds() == CheckThresholds()
    assert retry_policy() == RetryPolicy()
    assert alert_settings() == AlertSettings()
    assert estimation_policy() == EstimationPolicy()


def test_a_policy_is_read_from_its_section_field_by_field_and_only_its_own_fields():
    section = drift(psi=0.4, exclude=["amount", "hour"], match_weekdays=False, baseline_days=3)
    assert policy_from(DriftThresholds, section) == DriftThresholds(
        psi=0.4, exclude=("amount", "hour"), match_weekdays=False
    )  # baseline_days is the section's, not the thresholds'
    section = retrain(k=2, n=4, margin=0.05)
    assert policy_from(RetrainPolicy, section) == RetrainPolicy(k=2, n=4)  # margin is GatePolicy's


def test_every_config_class_lives_in_tasks_config():
    assert {
        section: cls.__module__ for section, cls in batchml_sections().items() if cls.__module__ != "tasks.config"
    } == {}


def test_a_changed_default_in_a_policy_shows_in_the_config_class_and_the_docs(monkeypatch):
    spec = policy_field(DriftThresholds, "psi")
    monkeypatch.setattr(spec, "default", 0.35)
    monkeypatch.setattr(spec, "metadata", {**spec.metadata, "description": "A changed description."})

    class drift_probe_c20(luigi.Config):  # a section built as tasks/config.py builds [drift]
        psi = from_policy(DriftThresholds, "psi")

    assert drift_probe_c20().psi == 0.35
    table = section_table("drift_probe_c20", drift_probe_c20)
    assert "| `psi` | `0.35` | a number >= 0 | A changed description. |" in table
    assert "`DriftThresholds` in `batchml/stats/drift.py`" in table


def test_the_docs_name_the_home_of_each_policy_sections_defaults():
    text = render()
    for section, policies in POLICIES.items():
        start = text.index(f"## [{section}]")
        body = text[start : text.index("\n## ", start + 1)]
        assert all(f"`{p.__name__}` in `{p.__module__.replace('.', '/')}.py`" in body for p in policies), section


def test_a_policy_field_without_a_description_is_no_setting():
    with pytest.raises(KeyError, match="GatePolicy.primary: no such setting"):
        policy_field(GatePolicy, "primary")


# Keys `batchml init` writes with a value chosen for the project, not the setting's default.
CHOSEN = {
    ("source", "path"): "the template of the sample's files",
    ("source", "format"): "the sample's format",
    ("features", "transform"): "the hooks module written beside it",
    ("labels", "transform"): "the hooks module written beside it",
    ("training", "recipe"): "the hooks module written beside it",
    ("mlflow", "registered_model"): "the dataset's name",
    ("mlflow", "artifact_location"): "artifacts beside mlflow.db, not in MLflow's ./mlruns",
}


def test_every_value_batchml_init_writes_is_the_settings_default_unless_chosen_for_the_project(tmp_path):
    sample = tmp_path / "orders_2026-06-01.csv"
    pd.DataFrame(
        {
            "order_id": range(1, 21),
            "created_at": pd.date_range("2026-06-01", periods=20, freq="h"),
            "amount": [1.5 * i for i in range(20)],
        }
    ).to_csv(sample, index=False)
    init_project(tmp_path / "shop", sample, label="amount", task="regression")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tmp_path / "shop" / "luigi.cfg")
    sections = batchml_sections()
    compared, differ = [], []
    for section in parser.sections():
        if section not in sections:
            continue  # [core]: Luigi's own
        params = dict(sections[section].get_params())
        for key, text in parser.items(section):
            if (section, key) in CHOSEN:
                continue
            compared.append((section, key))
            if params[key].normalize(params[key].parse(text)) != params[key].normalize(params[key]._default):
                differ.append(f"[{section}] {key} = {text}, default {params[key]._default!r}")
    assert differ == []
    assert len(compared) >= 15
    assert set(CHOSEN) <= {(s, k) for s in parser.sections() for k in parser.options(s)}


def _init_cfg(tmp_path) -> configparser.ConfigParser:
    """The luigi.cfg `batchml init` writes for a small sample with a label."""
    sample = tmp_path / "orders_2026-06-01.csv"
    pd.DataFrame(
        {
            "order_id": range(1, 21),
            "created_at": pd.date_range("2026-06-01", periods=20, freq="h"),
            "amount": [1.5 * i for i in range(20)],
        }
    ).to_csv(sample, index=False)
    init_project(tmp_path / "shop", sample, label="amount", task="regression")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tmp_path / "shop" / "luigi.cfg")
    return parser


# Keys `batchml init` writes as a default that no policy dataclass holds (Luigi's own [core], and the dicts).
NOT_FROM_A_POLICY = {("core", "local_scheduler"), ("training", "params")}


def test_every_default_batchml_init_writes_equals_its_policy_dataclass_field(tmp_path):
    parser = _init_cfg(tmp_path)
    sections = batchml_sections()
    from_policies, differ, homeless = 0, [], []
    for section in parser.sections():
        for key, text in parser.items(section):
            if (section, key) in CHOSEN or (section, key) in NOT_FROM_A_POLICY:
                continue
            param = dict(sections[section].get_params())[key]
            if getattr(param, "policy", None) is None:
                homeless.append(f"[{section}] {key}")
                continue
            from_policies += 1
            cls, name = param.policy
            # parsed as the setting parses it, compared with the dataclass field's own default
            value = param.normalize(param.parse(text))
            expected = policy_field(cls, name).default
            if (tuple(value) if isinstance(value, (list, tuple)) else value) != expected:
                differ.append(f"[{section}] {key} = {text}, {cls.__name__}.{name} = {expected!r}")
    assert homeless == []
    assert differ == []
    assert from_policies == 15  # storage 1, source 2, schema 2, training 3, mlflow 4, dask 3


@pytest.mark.parametrize(
    ("cls", "name", "changed", "line"),
    [
        (SourceSettings, "label_lag_days", 5, "label_lag_days = 5"),
        (RegistrySettings, "cold_start", True, "cold_start = true"),
        (ClusterSettings, "n_workers", 3, "n_workers = 3"),
        (StorageSettings, "root", "store", "root = store"),
        (SchemaSettings, "max_reject_share", 0.1, "max_reject_share = 0.1"),
    ],
)
def test_a_changed_default_in_a_policy_shows_in_the_luigi_cfg_batchml_init_writes(
    tmp_path, monkeypatch, cls, name, changed, line
):
    monkeypatch.setattr(policy_field(cls, name), "default", changed)
    parser = _init_cfg(tmp_path)
    text = (tmp_path / "shop" / "luigi.cfg").read_text().splitlines()
    assert line in text
    section = next(s for s in parser.sections() if parser.has_option(s, name))
    assert parser.get(section, name) == line.split(" = ")[1]


def test_the_readme_batchml_init_writes_names_the_default_alias_registry_and_storage_root(tmp_path, monkeypatch):
    monkeypatch.setattr(policy_field(RegistrySettings, "alias"), "default", "live")
    monkeypatch.setattr(policy_field(RegistrySettings, "tracking_uri"), "default", "sqlite:///models.db")
    monkeypatch.setattr(policy_field(StorageSettings, "root"), "default", "store")
    _init_cfg(tmp_path)
    readme = (tmp_path / "shop" / "README.md").read_text()
    assert "the alias `live`" in readme and "`champion`" not in readme
    assert "the registry is `models.db` here" in readme and "mlflow.db" not in readme
    assert "`store/predictions/`" in readme and "`data/" not in readme
