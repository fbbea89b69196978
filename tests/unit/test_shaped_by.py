"""What shapes a date's outputs: recorded in its features manifest, compared part by part by Backfill's plan."""

import dataclasses
import datetime as dt
import json

import pytest

from batchml.base.hooks import load_hook
from batchml.base.provenance import (
    CONTRACT_PART,
    HOOK_CODE_PART,
    TRANSFORM_PART,
    contract_digest,
    hook_code_digest,
    shaped_by,
)
from batchml.dataset.contract import Contract, Label
from batchml.monitor.backfill import plan, reshaped
from batchml.store.manifest import Manifest
from batchml.store.storage import open_storage
from tests.conftest import CONTRACT, make_manifest

DAY = dt.date(2026, 6, 10)
HOOK = "def features(rows):\n    return rows * {factor}\n"


@pytest.fixture
def hooks_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    load_hook.cache_clear()
    yield tmp_path
    load_hook.cache_clear()


def test_the_contract_digest_follows_every_rule_and_the_label_but_not_the_dataset_name_or_file():
    contract = Contract.load(CONTRACT)
    digest = contract_digest(contract)
    assert contract_digest(dataclasses.replace(contract, dataset="renamed", path="/elsewhere/contract.yaml")) == digest
    tighter = dataclasses.replace(contract.columns[4], max=contract.columns[4].max / 2)
    assert (
        contract_digest(dataclasses.replace(contract, columns=(*contract.columns[:4], tighter, *contract.columns[5:])))
        != digest
    )
    assert contract_digest(dataclasses.replace(contract, timezone="UTC")) != digest
    assert contract_digest(dataclasses.replace(contract, label=Label("other"))) != digest


def test_the_hook_code_digest_follows_the_module_content_not_its_path(hooks_dir):
    (hooks_dir / "hooks_a.py").write_text(HOOK.format(factor=1))
    (hooks_dir / "hooks_b.py").write_text(HOOK.format(factor=1))  # the same code at another path (a moved project)
    (hooks_dir / "hooks_c.py").write_text(HOOK.format(factor=2))
    a, b, c = (hook_code_digest(f"hooks_{n}:features") for n in "abc")
    assert a == b != c and len(a) == 16


def test_a_hook_re_exported_from_another_module_counts_both_files(hooks_dir):
    (hooks_dir / "impl_mod.py").write_text(HOOK.format(factor=1))
    (hooks_dir / "facade_mod.py").write_text("from impl_mod import features  # noqa\n")
    before = hook_code_digest("facade_mod:features")
    (hooks_dir / "impl_mod.py").write_text(HOOK.format(factor=3))  # read from disk: the file as it is now
    assert hook_code_digest("facade_mod:features") != before


def test_no_transform_has_no_hook_code():
    contract = Contract.load(CONTRACT)
    assert shaped_by(contract, "") == {CONTRACT_PART: contract_digest(contract), TRANSFORM_PART: "", HOOK_CODE_PART: ""}


def test_reshaped_names_each_part_that_differs_and_ignores_parts_not_recorded():
    now = {CONTRACT_PART: "c2", TRANSFORM_PART: "m:f", HOOK_CODE_PART: "h2"}
    assert reshaped({CONTRACT_PART: "c1", TRANSFORM_PART: "m:f", HOOK_CODE_PART: "h1"}, now) == [
        CONTRACT_PART,
        HOOK_CODE_PART,
    ]
    assert reshaped(now, now) == []
    assert reshaped({CONTRACT_PART: "c2"}, now) == []  # a part added later is unknown, not changed
    assert reshaped({}, now) == []


def test_a_manifest_written_before_shaped_by_reads_as_unknown():
    old = json.loads(make_manifest().to_json())
    del old["shaped_by"]
    assert Manifest.from_json(json.dumps(old)).shaped_by == {}


def _commit_features(storage, date, shaped):
    with storage.writer("features", date) as w:
        with w.open("part-00000.parquet") as fh:
            fh.write(b"not read by the plan")
        w.commit(make_manifest(1, dataset="features", date=date, shaped_by=shaped), {"part-00000.parquet": 1})


def test_the_plan_lists_changed_dates_with_what_changed_and_old_manifests_apart(tmp_path):
    storage = open_storage(str(tmp_path / "data"))
    now = {CONTRACT_PART: "c2", TRANSFORM_PART: "m:f", HOOK_CODE_PART: "h2"}
    days = [DAY + dt.timedelta(days=i) for i in range(4)]
    _commit_features(storage, days[0], now)
    _commit_features(storage, days[1], {**now, HOOK_CODE_PART: "h1"})
    _commit_features(storage, days[2], {})  # extracted by a batchml that did not record it
    todo = plan(storage, days, None, shaped=now)
    assert todo.reshaped == {days[1]: [HOOK_CODE_PART]} and todo.unshaped == [days[2]]
    assert todo.to_reprocess == [days[1]]  # an unknown date is listed, not re-processed
    lines = todo.lines(None)
    assert f"changed in what shapes outputs since extraction (1): {days[1]} (features hook code)" in lines
    assert f"not compared, extracted before manifests recorded what shapes outputs (1): {days[2]}" in lines
