"""End-to-end helpers: the real `luigi` CLI in a subprocess, servers on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import pipeline_settings, write_cfg

BIN = Path(sys.executable).parent


@dataclass
class Cli:
    tmp_path: Path
    config: Path

    @property
    def root(self) -> Path:
        return self.tmp_path / "data"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "MLFLOW_"))}
        env["LUIGI_CONFIG_PATH"] = str(self.config)
        return env

    def luigi(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run `luigi --module pipelines ARGS` from tmp_path as a user would."""
        return subprocess.run(
            [str(BIN / "luigi"), "--module", "pipelines", *args],
            cwd=self.tmp_path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", pipeline_settings(tmp_path)))


def last_lines(proc: subprocess.CompletedProcess, n: int = 15) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-n:])
