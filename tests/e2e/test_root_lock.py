"""Luigi's pid lock is per storage root: the same command against another root runs, against the same root it exits 10.

Luigi keys its lock on the command line only, so a run for one team's root blocked another
team's identical command on the same host. A real run is held at a failpoint (a named
pipe, no sleeps) while the others start.
"""

from __future__ import annotations

import datetime as dt

from tests.conftest import pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, last_lines
from tests.e2e.test_concurrency import Barrier

DAY = dt.date(2026, 5, 20)


def cli_for(tmp_path, name: str, locks) -> Cli:
    """A run from its own folder with its own storage root; the lock base is shared, as /tmp/luigi is on a host."""
    folder = tmp_path / name
    folder.mkdir()
    settings = pipeline_settings(folder)
    settings["core"]["lock_pid_dir"] = str(locks)
    return Cli(folder, write_cfg(folder / "luigi.cfg", settings))


def test_runs_of_one_command_block_each_other_only_on_the_same_root(tmp_path):
    locks = tmp_path / "locks"
    first, other_root, same_root = (
        cli_for(tmp_path, "a", locks),
        cli_for(tmp_path, "b", locks),
        cli_for(tmp_path, "c", locks),
    )
    same_root_cfg = write_cfg(
        same_root.config,
        {
            **pipeline_settings(same_root.tmp_path),
            "storage": {"root": str(first.root)},
            "core": {"lock_pid_dir": str(locks)},
        },
    )
    assert same_root_cfg == same_root.config

    gate = Barrier(tmp_path)
    held = first.start("ExtractFeatures", "--date", DAY.isoformat(), env=gate.env("writer.features"))
    try:
        held.wait_for("batchml failpoint writer.features reached")  # holds the lock of root a

        beside = other_root.luigi("ExtractFeatures", "--date", DAY.isoformat())
        assert beside.returncode == 0, last_lines(beside, 40)
        assert (other_root.root / "features" / f"date={DAY}" / "_MANIFEST.json").is_file()

        blocked = same_root.luigi("ExtractFeatures", "--date", DAY.isoformat())
        assert blocked.returncode == 10, last_lines(blocked, 40)  # [retcode] already_running
    finally:
        gate.release()
    assert held.wait() == 0, held.output[-4000:]
    assert (first.root / "features" / f"date={DAY}" / "_MANIFEST.json").is_file()
