"""No secret anywhere: a tracking server that requires a password never sees it printed or stored.

A real `mlflow server` on 127.0.0.1 sits behind an HTTP basic-auth proxy (tests/servers.py)
that refuses requests without the password; the project's luigi.cfg names it as
`tracking_uri = http://batch:<password>@127.0.0.1:<port>`. After a run that succeeds and one
that fails, every byte the run wrote (project folder, storage root, the tracking server's
store and artifacts, where batchml's tags, params and descriptions land) and its whole output
are searched for the password: zero hits, only luigi.cfg itself holds it.
"""

from __future__ import annotations

import base64
import datetime as dt
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, pipeline_settings, write_cfg
from tests.e2e.conftest import Cli, last_lines
from tests.servers import BasicAuthProxy, mlflow_server

PASSWORD = "S3cretPW-7f3a"
USER = "batch"
DAY = dt.date(2026, 6, 3)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` behind the basic-auth proxy; yields (proxy, server home)."""
    home = tmp_path_factory.mktemp("tracking")
    upstream = mlflow_server(home, free_port()).start()
    proxy = BasicAuthProxy(
        f"http://127.0.0.1:{upstream.argv[upstream.argv.index('--port') + 1]}", USER, PASSWORD
    ).start()
    try:
        yield proxy, home
    finally:
        proxy.stop()
        upstream.stop()


def requires_password(proxy: BasicAuthProxy) -> None:
    """The proxy refuses a request without the password and forwards one with it."""
    url = f"http://127.0.0.1:{proxy.port}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with urllib.request.urlopen(
        urllib.request.Request(url, headers={"Authorization": f"Basic {token}"}), timeout=10
    ) as ok:
        assert ok.status == 200


def project(tmp_path: Path, proxy: BasicAuthProxy, **mlflow) -> Cli:
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = pipeline_settings(tmp_path)
    settings["mlflow"].update(
        tracking_uri=f"http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}", artifact_location="", **mlflow
    )
    return Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))


def holding(folder: Path, secret: str) -> list[str]:
    """Every file under `folder` whose bytes hold `secret` (as text, or percent-encoded), by its path."""
    needles = (secret.encode(), secret.encode("utf-16-le"))
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if any(n in data for n in needles):
            found.append(str(path))
    return found


def leaks(cli: Cli, run, home: Path) -> list[str]:
    """Where the password is: output lines, then files (the user's luigi.cfg aside)."""
    output = [f"output: {line}" for line in (run.stdout + run.stderr).splitlines() if PASSWORD in line]
    files = [
        f"file: {path}" for path in holding(cli.tmp_path, PASSWORD) + holding(home, PASSWORD) if path != str(cli.config)
    ]
    return output + files


def test_a_password_in_the_tracking_uri_is_in_no_output_and_no_file_when_the_run_fails(tmp_path, server):
    """No version holds @champion and no cold start: the run fails naming the registry, its URI without the password."""
    proxy, home = server
    requires_password(proxy)
    bad = project(tmp_path, proxy, registered_model="secret_missing", cold_start="false")
    failed = bad.luigi("DailyScore", "--date", DAY.isoformat())
    assert failed.returncode == 30, last_lines(failed, 40)
    assert (bad.root / "monitoring" / f"date={DAY}" / "failure.json").is_file() and (
        bad.root / "monitoring" / "index.html"
    ).is_file()
    assert leaks(bad, failed, home) == []
    assert f"http://***@127.0.0.1:{proxy.port}" in last_lines(failed, 3), last_lines(failed, 40)


@pytest.mark.slow
def test_a_password_in_the_tracking_uri_is_in_no_output_and_no_file_when_the_run_succeeds(tmp_path, server):
    """A cold start trains, registers and logs through the server; MLflow's own "View run ... at:" lines show the URI
    without the password."""
    proxy, home = server
    ok = project(tmp_path, proxy, registered_model="secret_ok")
    succeeded = ok.luigi("DailyScore", "--date", DAY.isoformat())
    assert succeeded.returncode == 0, last_lines(succeeded, 40)
    assert (ok.root / "predictions" / f"date={DAY}").is_dir()  # the run did talk to the server, through the password
    assert leaks(ok, succeeded, home) == []
    views = [line for line in succeeded.stdout.splitlines() if "View run" in line]
    assert views and all(f"http://***@127.0.0.1:{proxy.port}/" in line for line in views), views


def test_a_sql_source_whose_driver_is_missing_is_named_without_its_password(tmp_path):
    """`[source] url = mssql+pymssql://...` where its driver is not installed (pymssql is in no extra of batchml): the
    run fails naming the URL, not its password."""
    settings = pipeline_settings(tmp_path)
    settings["source"] = {
        "kind": "sql",
        "url": f"mssql+pymssql://bob:{PASSWORD}@127.0.0.1:1/trips",
        "query": "select * from trips where day = :date",
    }
    cli = Cli(tmp_path, write_cfg(tmp_path / "luigi.cfg", settings))
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode != 0, last_lines(run, 40)
    last = last_lines(run, 1)
    assert "[source] url" in last and "127.0.0.1:1/trips" in last, last_lines(run, 40)
    assert [line for line in (run.stdout + run.stderr).splitlines() if PASSWORD in line] == []
    assert holding(tmp_path, PASSWORD) == [str(cli.config)]
