"""luigid, the central scheduler, on 127.0.0.1, and the `luigi` CLI that runs against it.

Both use the shipped files: luigid reads config/luigid.cfg (its paths moved under tmp_path),
and each run reads ./luigi.cfg (the small test pipeline) with config/central.cfg layered on
it through LUIGI_CONFIG_PATH, as in production.
"""

from __future__ import annotations

import configparser
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, Running
from tests.servers import Server

CONFIG = REPO / "config"


class Luigid:
    """`python -m tasks.luigid` with config/luigid.cfg; its state, history and logs under `home`.

    `overrides` replace values of the shipped [scheduler] section (to shorten a delay).
    Restarts keep the port, the state path and the history database.
    """

    def __init__(self, home: Path, port: int, overrides: dict[str, str] | None = None):
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.state_path = home / "state.pkl"
        self.history_db = home / "task-history.db"
        self.access_log = home / "luigi-server.log"  # luigid's own log under --logdir, with tornado's access lines
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_")}
        env["LUIGI_CONFIG_PATH"] = str(self._config(overrides or {}))
        argv = [sys.executable, "-m", "tasks.luigid", "--address", "127.0.0.1", "--port", str(port)]
        argv += ["--state-path", str(self.state_path), "--logdir", str(home)]
        self.server = Server("luigid", argv, cwd=home, health=f"{self.url}/api/task_list", env=env)

    def _config(self, overrides: dict[str, str]) -> Path:
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(CONFIG / "luigid.cfg")
        cfg["scheduler"].update({"state_path": str(self.state_path), **overrides})
        cfg["task_history"]["db_connection"] = f"sqlite:///{self.history_db}"
        path = self.home / "luigid.cfg"
        with open(path, "w") as fh:
            cfg.write(fh)
        return path

    def start(self) -> Luigid:
        self.server.start(timeout=60)
        return self

    def stop(self) -> None:
        """SIGTERM: luigid saves its task graph to state_path and exits."""
        self.server.stop(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, a crash: nothing is saved."""
        self.server.stop(signal.SIGKILL)

    def api(self, method: str, **data):
        """One call of luigid's HTTP API (/api/<method>?data=<json>), as its visualiser makes it."""
        query = urllib.parse.urlencode({"data": json.dumps(data)})
        with urllib.request.urlopen(f"{self.url}/api/{method}?{query}", timeout=10) as resp:
            return json.load(resp)["response"]

    def events(self) -> list[tuple[str, str, str, str]]:
        """(task_id, task family, event, timestamp) in order, from the task history database."""
        with closing(sqlite3.connect(self.history_db)) as db:
            return db.execute(
                "SELECT t.task_id, t.name, e.event_name, e.ts FROM task_events e JOIN tasks t ON t.id = e.task_id "
                "ORDER BY e.ts, e.id"
            ).fetchall()

    def requests(self, method: str) -> int:
        """How many calls of /api/<method> luigid answered, from its access log."""
        return self.access_log.read_text().count(f"/api/{method} ")


@pytest.fixture
def make_luigid(tmp_path):
    """Start luigids, each with its own home under tmp_path; stop them all at teardown."""
    servers: list[Luigid] = []

    def make(**overrides: str) -> Luigid:
        server = Luigid(tmp_path / f"luigid-{len(servers)}", free_port(), overrides)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def luigid(make_luigid) -> Luigid:
    return make_luigid()


@dataclass
class CentralCli(Cli):
    """The CLI as it runs against luigid: ./luigi.cfg, with config/central.cfg layered on it."""

    port: int = 8082

    @classmethod
    def at(cls, tmp_path: Path, port: int, changes: dict[str, dict[str, str]] | None = None) -> CentralCli:
        """A CLI on tmp_path (./luigi.cfg: the small pipeline, with `changes` by section) whose runs go to luigid on
        `port`."""
        settings = pipeline_settings(tmp_path)
        for section, values in (changes or {}).items():
            settings.setdefault(section, {}).update(values)
        write_cfg(tmp_path / "luigi.cfg", settings)
        return cls(tmp_path, CONFIG / "central.cfg", port)

    def _scheduler(self) -> list[str]:
        return ["--scheduler-host", "127.0.0.1", "--scheduler-port", str(self.port)]

    def luigi(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return super().luigi(*args, *self._scheduler(), timeout=timeout, env=env)

    def start(self, *args: str, env: dict[str, str] | None = None) -> Running:
        return super().start(*args, *self._scheduler(), env=env)


@pytest.fixture
def central_cli(tmp_path, luigid) -> CentralCli:
    return CentralCli.at(tmp_path, luigid.port)
