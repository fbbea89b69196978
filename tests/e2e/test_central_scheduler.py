"""The pipeline against luigid: config/luigid.cfg and config/central.cfg as shipped, on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import time
import urllib.request
from collections import Counter
from itertools import pairwise

import pyarrow.dataset as ds
import pytest

from tests.conftest import CONTRACT, distinct_keys, free_port, options_arg
from tests.e2e.central import CentralCli, central_cli, luigid, make_luigid  # noqa: F401  (fixtures)
from tests.e2e.conftest import last_lines
from tests.servers import wait_until

DAY = dt.date(2026, 2, 10)
DAILY = {
    "SourceData", "ExtractFeatures", "ChampionModel", "ResolveModel", "ScorePredictions", "DetectDrift",
    "LabelsArrived", "ExtractLabels", "EstimatePerformance", "Metrics", "CheckMetrics", "RetrainIfDrifted",
    "DailyReport", "DailyScore",
}  # fmt: skip


def manifest(root, dataset: str, date: dt.date) -> dict:
    return json.loads((root / dataset / f"date={date}" / "_MANIFEST.json").read_text())


def task_id(tasks: dict, family: str, date: dt.date) -> str:
    (found,) = [i for i, t in tasks.items() if t["name"] == family and t["params"].get("date") == date.isoformat()]
    return found


def graph_texts(luigid, task_id: str) -> list[str]:
    """The node labels of luigid's dependency graph of `task_id` as headless Chromium renders the visualiser."""
    import re
    import subprocess
    import tempfile

    from tests.e2e.test_report_browser import CHROMIUM, CHROMIUM_FLAGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium is not installed ({CHROMIUM} missing; apt-get install chromium)")
    page = f"{luigid.url}/static/visualiser/index.html#tab=graph&taskId={task_id}"
    with tempfile.TemporaryDirectory() as profile:
        dump = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
             "--dump-dom", page],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    return [
        html.unescape(t) for t in re.findall(r'class="graph-node-a"[^>]*>\s*<text[^>]*>([^<]*)</text>', dump.stdout)
    ]


def started(luigid, family: str) -> Counter:
    """How many times luigid handed out each task of `family` (RUNNING events in its history)."""
    return Counter(task for task, name, event, _ in luigid.events() if name == family and event == "RUNNING")


def test_daily_score_through_luigid_every_task_done_with_progress_messages_and_history(luigid, central_cli):
    run = central_cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert run.returncode == 0, last_lines(run, 40)

    tasks = luigid.api("task_list")
    assert {t["name"] for t in tasks.values()} == DAILY
    assert {t["status"] for t in tasks.values()} == {"DONE"}

    predictions, features = manifest(central_cli.root, "predictions", DAY), manifest(central_cli.root, "features", DAY)
    score, extract = task_id(tasks, "ScorePredictions", DAY), task_id(tasks, "ExtractFeatures", DAY)
    assert luigid.api("get_task_progress_percentage", task_id=score)["progressPercentage"] == 100
    assert luigid.api("get_task_status_message", task_id=score)["statusMessage"] == (
        f"committed {predictions['rows']['written']} predictions with models:/trip_duration/1"
    )
    assert luigid.api("get_task_status_message", task_id=extract)["statusMessage"] == (
        f"{features['rows']['written']} valid, {features['rows']['quarantined']} quarantined of 3000"
    )
    # Every report reached luigid, not only the last: one per scored partition, and the start.
    partitions = len(features["files"])
    assert partitions == 3 and luigid.requests("set_task_progress_percentage") >= partitions + 1
    assert luigid.requests("set_task_status_message") >= partitions + 2

    # The task history (SQLite): each task was handed out once per run of it and finished DONE.
    # The labelled date (D - 2) is extracted, pinned, scored and estimated too, for D's realized metrics;
    # ResolveModel(D) runs twice, as it yields ChampionModel on a cold start and runs again once
    # that is done, and Metrics twice, as it yields the labelled date's scoring and labels.
    events = luigid.events()
    last = {task: event for task, _, event, _ in events}
    assert set(last) == set(tasks) and set(last.values()) == {"DONE"}
    runs = Counter(name for _, name, event, _ in events if event == "RUNNING")
    twice = {"ExtractFeatures": 2, "ScorePredictions": 2, "EstimatePerformance": 2, "Metrics": 2, "ResolveModel": 3}
    assert runs == {name: twice.get(name, 1) for name in DAILY - {"SourceData", "LabelsArrived"}}
    # ... and the UI shows it.
    with urllib.request.urlopen(f"{luigid.url}/history/by_task_id/{score}", timeout=10) as page:
        assert b"DONE" in page.read()


def test_two_projects_score_the_same_date_on_one_luigid_at_the_same_time(luigid, tmp_path):
    # One project names itself in luigi.cfg; the other is known by its contract's dataset name.
    for name in ("east", "west"):
        (tmp_path / name).mkdir()
    contract = tmp_path / "west" / "fleet_contract.yaml"
    contract.write_text(CONTRACT.read_text().replace("dataset: taxi_trips", "dataset: fleet_west"))
    east = CentralCli.at(tmp_path / "east", luigid.port, {"project": {"name": "fleet_east"}})
    west = CentralCli.at(tmp_path / "west", luigid.port, {"schema": {"path": str(contract)}})

    runs = [
        cli.start("DailyScore", "--date", DAY.isoformat()) for cli in (east, west)
    ]  # both at once, then wait for both
    codes = [run.wait(timeout=300) for run in runs]
    assert codes == [0, 0], "\n\n".join(run.output[-3000:] for run in runs)
    for cli in (east, west):
        assert manifest(cli.root, "predictions", DAY)["rows"]["in"] == 3000

    # luigid holds each project's tasks apart, and its task list and graph show project and date.
    tasks = luigid.api("task_list")
    daily = {t["params"]["project"]: (i, t) for i, t in tasks.items() if t["name"] == "DailyScore"}
    assert set(daily) == {"fleet_east", "fleet_west"}
    for project, (task_id, task) in daily.items():
        assert task_id.startswith(f"DailyScore_{DAY:%Y_%m_%d}_{project}_")  # the id's readable part: date, then project
        assert task["display_name"] == f"DailyScore(date={DAY}, project={project})" and task["status"] == "DONE"
        graph = luigid.api("dep_graph", task_id=task_id)
        assert {t["name"].split(" ")[0] for t in graph.values()} == DAILY
        assert {(t["params"]["project"], t["params"]["date"]) for t in graph.values()} >= {(project, DAY.isoformat())}
        assert all(t["params"]["project"] == project for t in graph.values())
        # graph nodes are drawn with their `name`: family, date, project
        assert all(t["name"] == f"{t['name'].split(' ')[0]} {t['params']['date']} · {project}" for t in graph.values())
    # ... as the visualiser draws them, in a browser
    shown = graph_texts(luigid, daily["fleet_east"][0])
    assert f"DailyScore {DAY} · fleet_east" in shown and f"ScorePredictions {DAY} · fleet_east" in shown, shown
    assert sum(t["name"] == "ScorePredictions" for t in tasks.values()) == 4  # D and its labelled date, per project


@pytest.mark.slow
def test_a_date_that_keeps_failing_is_retried_after_a_delay_then_disabled(make_luigid, tmp_path):
    server = make_luigid(retry_delay="1")  # shipped: 300 s; retry_count and the windows as shipped
    cli = CentralCli.at(tmp_path, server.port)
    bad = options_arg(bad_row_share=0.3)  # ExtractFeatures rejects the date (max_reject_share 0.05)

    # A worker that stays alive retries the failed task after retry_delay, until retry_count
    # failures disable it; then the run ends and fails.
    keep_alive = ("--worker-keep-alive", "--worker-wait-interval", "0.2", "--worker-wait-jitter", "0.2")
    run = cli.luigi("DailyScore", "--date", DAY.isoformat(), *bad, *keep_alive)
    assert run.returncode == 30, last_lines(run, 40)
    tasks = server.api("task_list")
    extract = task_id(tasks, "ExtractFeatures", DAY)
    assert tasks[extract]["status"] == "DISABLED" and tasks[extract]["re_enable_able"]
    starts = [
        dt.datetime.fromisoformat(ts)
        for task, _, event, ts in server.events()
        if task == extract and event == "RUNNING"
    ]
    assert len(starts) == 3  # retry_count
    assert all(later - earlier >= dt.timedelta(seconds=1) for earlier, later in pairwise(starts))  # retry_delay

    # While disabled, no run starts it, not even one whose input is now fine; the run fails.
    again = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert again.returncode == 25, last_lines(again, 40)  # [retcode] not_run
    assert "not granted run permission by the scheduler" in again.stderr
    assert started(server, "ExtractFeatures")[extract] == 3
    assert not (cli.root / "features" / f"date={DAY}").exists()

    # Re-enabled (the UI's button calls this), the date runs.
    server.api("re_enable_task", task_id=extract)
    fixed = cli.luigi("DailyScore", "--date", DAY.isoformat())
    assert fixed.returncode == 0, last_lines(fixed, 40)
    assert manifest(cli.root, "predictions", DAY)["rows"]["in"] == 3000


# -- scheduler restart -------------------------------------------------------------------
DATES = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(4)]
RANGE = (
    "RangeDaily",
    "--of",
    "DailyScore",
    "--start",
    DATES[0].isoformat(),
    "--stop",
    (DATES[-1] + dt.timedelta(days=1)).isoformat(),
)


def committed(root) -> dict[str, str]:
    """The run id of every committed date, by dataset/date=D."""
    return {
        f"{dataset}/{p.parent.name}": json.loads(p.read_text())["run_id"]
        for dataset in ("features", "predictions")
        for p in (root / dataset).glob("date=*/_MANIFEST.json")
    }


def mid_run(server, cli: CentralCli, run) -> dict[str, str]:
    """Wait until a date is committed and a task of a date not yet scored runs; the commits so far."""

    def ready() -> bool:
        assert run.proc.poll() is None, "the run ended before luigid went away"
        done = committed(cli.root)
        running = {t["params"].get("date") for t in server.api("task_list", status="RUNNING").values()}
        return any(k.startswith("predictions/") for k in done) and any(
            d and f"predictions/date={d}" not in done for d in running
        )

    wait_until(ready, "a date committed while another one runs", timeout=180)
    return committed(cli.root)


def without_luigid(run) -> None:
    """Wait until the run has noticed that luigid is gone (it retries its calls, see central.cfg)."""
    run.wait_for("Failed connecting to remote scheduler", timeout=30)


# The range, and the two dates before it: scored as the labelled dates of its first two dates.
SCORED = [DATES[0] - dt.timedelta(days=2), DATES[0] - dt.timedelta(days=1), *DATES]


def assert_every_date_committed_once(cli: CentralCli, server, *earlier: dict[str, str]) -> None:
    final = committed(cli.root)
    assert set(final) == {f"{dataset}/date={d}" for dataset in ("features", "predictions") for d in SCORED}
    for snapshot in earlier:  # a date committed before is never committed again
        assert snapshot.items() <= final.items()
    # luigid's history spans its restart: each date was scored once.
    assert sorted(started(server, "ScorePredictions").values()) == [1] * len(SCORED)
    table = ds.dataset(cli.root / "predictions", format="parquet", partitioning="hive").to_table()
    rows = Counter(str(d) for d in table.column("date").to_pylist())
    assert rows == {str(d): manifest(cli.root, "predictions", d)["rows"]["written"] for d in SCORED}
    assert distinct_keys(table) == table.num_rows


@pytest.mark.slow
@pytest.mark.faults
def test_luigid_killed_mid_run_and_restarted_the_next_run_commits_every_date_once(luigid, central_cli):
    first = central_cli.start(*RANGE)
    before = mid_run(luigid, central_cli, first)
    luigid.kill()
    without_luigid(first)
    luigid.start()  # same port, state path and history database
    # Its history was written as things happened and survived the crash.
    scored = {t for t, name, event, _ in luigid.events() if name == "ScorePredictions" and event == "DONE"}
    assert len(scored) >= sum(k.startswith("predictions/") for k in before)
    # luigid saves its task graph only on a clean shutdown: restarted after a crash it does not
    # know the run's remaining tasks. The run reports the task it was running, gets no more
    # work and exits not_run (25), so a CronJob sees it.
    assert first.wait(timeout=180) == 25, first.output[-4000:]
    assert "not granted run permission by the scheduler" in first.output
    after_first = committed(central_cli.root)
    assert before.items() <= after_first.items() and len(after_first) < 2 * len(DATES)

    second = central_cli.luigi(*RANGE)
    assert second.returncode == 0, last_lines(second, 40)
    assert_every_date_committed_once(central_cli, luigid, before, after_first)


@pytest.mark.slow
@pytest.mark.faults
def test_a_run_rides_out_a_luigid_restart_and_luigid_remembers_its_tasks(luigid, central_cli):
    run = central_cli.start(*RANGE)
    before = mid_run(luigid, central_cli, run)
    known = luigid.api("task_list")
    luigid.stop()  # SIGTERM: luigid saves its task graph to state_path
    assert luigid.state_path.stat().st_size > 0
    without_luigid(run)
    luigid.start()
    remembered = luigid.api("task_list")
    assert set(known) <= set(remembered)
    assert all(remembered[i]["status"] == "DONE" for i, t in known.items() if t["status"] == "DONE")
    # The run's calls are retried until luigid answers again, and it goes on to the end.
    assert run.wait(timeout=180) == 0, run.output[-4000:]
    assert_every_date_committed_once(central_cli, luigid, before)


@pytest.mark.slow
@pytest.mark.faults
def test_a_run_against_a_luigid_that_is_down_fails_within_a_minute(tmp_path):
    cli = CentralCli.at(tmp_path, free_port())  # nothing listens there
    start = time.monotonic()
    run = cli.luigi("DailyScore", "--date", DAY.isoformat())
    elapsed = time.monotonic() - start
    assert run.returncode == 40, last_lines(run, 40)  # [retcode] unhandled_exception
    # checked before scheduling (pipelines/startup.py): one line naming the address, no rpc retries
    assert "cannot reach the central scheduler at 127.0.0.1:" in run.stderr.strip().splitlines()[-1], last_lines(run)
    assert "when connecting to remote scheduler" not in run.stderr
    assert elapsed < 60, elapsed
    assert not cli.root.exists()  # nothing ran without a scheduler
