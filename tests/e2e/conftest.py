"""End-to-end helpers: the real `luigi` CLI in a subprocess, servers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import pipeline_settings, storage_settings, write_cfg

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

    def luigi(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run `luigi --module pipelines ARGS` from tmp_path as a user would."""
        return subprocess.run(
            [str(BIN / "luigi"), "--module", "pipelines", *args],
            cwd=self.tmp_path,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> Running:
        """Start `luigi --module pipelines ARGS` in the background, in its own process group."""
        proc = subprocess.Popen(
            [str(BIN / "luigi"), "--module", "pipelines", *args],
            cwd=self.tmp_path,
            env={**self.env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        return Running(proc)


class Running:
    """A run in the background whose output is read line by line as it comes."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        self.proc.wait()
        with self._changed:
            self._changed.notify_all()  # wake waiters: the run ended

    def wait_for(self, text: str, timeout: float = 120) -> str:
        """The first output line containing `text`; fails if the run ends or times out first."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in l for l in self.lines) or self.proc.poll() is not None, timeout
            )
            match = next((l for l in self.lines if text in l), None)
        if match is None:
            raise AssertionError(
                f"{text!r} never appeared "
                f"({'exit ' + str(self.proc.poll()) if found else 'timeout'}):\n{self.output[-4000:]}"
            )
        return match

    def kill(self) -> None:
        """kill -9 the run's whole process group, as the kernel's OOM killer or a node loss would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)  # every line read
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", pipeline_settings(tmp_path)))


def last_lines(proc: subprocess.CompletedProcess, n: int = 15) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-n:])


def registry_settings(home: Path) -> dict[str, str]:
    """[mlflow] settings of a SQLite registry in `home`, for the tests of a module to share."""
    return {
        "tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
        "artifact_location": str(home / "mlartifacts"),
        "cache_dir": str(home / "cache"),
    }


def make_cli(tmp_path: Path, registry: dict[str, str], root: str | None = None) -> Cli:
    """A Cli on tmp_path that uses a shared registry, and optionally another storage root."""
    settings = pipeline_settings(tmp_path)
    settings["mlflow"].update(registry)
    if root:
        settings["storage"].update(storage_settings(root))
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))
