"""batchml as a team installs it: the wheel in a fresh virtualenv, a project in an empty folder, no clone.

The wheel is built from this tree and installed without its dependencies into a new
virtualenv, which borrows the test environment's site-packages for them (a .pth file: the
dependencies' versions are not what is tested here, the package's contents and its
independence from the clone are).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv with batchml installed from its wheel; returns its python."""
    base = tmp_path_factory.mktemp("installed")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(base / "wheels"), str(REPO)]
    )
    assert built.returncode == 0, built.stderr[-3000:]
    _run([sys.executable, "-m", "venv", str(base / "venv")]).check_returncode()
    python = base / "venv" / "bin" / "python"
    wheel = next((base / "wheels").glob("batchml-*.whl"))
    done = _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], cwd=base)
    assert done.returncode == 0, done.stderr[-3000:]
    own = _run([str(python), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    Path(own, "batchml-test-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    return python


def luigi(python: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_", "BATCHML_", "PYTHONPATH"))}
    return _run([str(python), "-m", "luigi", "--module", "pipelines", *args], cwd=folder, env=env)


def test_the_wheel_carries_the_package_data_and_nothing_of_the_clone(installed, tmp_path):
    probe = (
        "import batchml, pipelines, tasks, pathlib; p = pathlib.Path(batchml.__file__).parent; print(p); "
        "print(sorted(x.name for x in (p / 'templates').iterdir()))"
    )
    out = _run([str(installed), "-c", probe], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    where, templates = out.stdout.splitlines()
    assert not where.startswith(str(REPO)) and "dashboard.html" in templates


def test_the_classifier_example_runs_from_an_empty_folder_and_a_failure_exits_non_zero(installed, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("luigi.cfg", "contract.yaml", "churn_hooks.py", "churn_synthetic.py"):
        shutil.copy(REPO / "examples" / "churn" / name, project / name)
    run = luigi(installed, project, "DailyScore", "--date", "2026-06-01")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (project / "data" / "predictions" / "date=2026-06-01" / "_MANIFEST.json").exists()
    assert (project / "data" / "monitoring" / "index.html").exists()

    failed = luigi(installed, project, "DailyScore", "--date", "2026-06-02", "--schema-max-reject-share", "0")
    assert failed.returncode == 30, failed.stderr[-3000:]  # no [retcode] in the project: batchml's defaults
    assert "RejectedShareTooHigh" in (failed.stdout + failed.stderr).strip().splitlines()[-1]
