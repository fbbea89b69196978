"""The project's own hygiene: lint gates the test target, and every import is a declared dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_make_test_lints_before_it_runs_pytest():
    plan = subprocess.run(
        ["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    commands = [line for line in plan if "ruff" in line or "pytest" in line]
    assert [c.split()[1:3] for c in commands[:2]] == [["check", "batchml"], ["format", "--check"]], commands
    assert "pytest" in commands[-1], commands


def test_the_tree_passes_ruff():
    for command in (["check"], ["format", "--check"]):
        run = subprocess.run(
            [str(BIN / "ruff"), *command, "batchml", "tasks", "pipelines", "tests", "bench"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr
