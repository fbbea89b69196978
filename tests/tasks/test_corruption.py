"""A byte flipped in a committed predictions file after the date finished (issue 13 item 6):
a rerun of the date and `Backfill --dry-run` name the file instead of reporting the date as fine.
Every kind of damage healed by `Backfill --reprocess corrupt` (issue 19 item 3)."""

import datetime as dt
import shutil

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode

import pipelines
from batchml.cli import main
from batchml.monitor.backfill import heal_command
from pipelines import Backfill, DailyScore
from tasks.config import make_storage
from tests.unit.test_verify import flip_bytes


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_a_rerun_and_a_dry_run_name_a_corrupt_predictions_file(pipeline, day, capsys):
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS  # a clean finished date: nothing to do
    storage = make_storage()
    name = storage.manifest("predictions", day).files[0]["path"]
    flip_bytes(storage, day, name)

    rerun = build(DailyScore(day))
    assert rerun.status != LuigiStatusCode.SUCCESS, rerun.summary_text
    causes = " ".join(str(c) for c in pipelines._failures)
    assert (
        f"predictions/date={day}" in causes
        and name in causes
        and "checksum differs from _MANIFEST.json (sha256)" in causes
    ), causes

    capsys.readouterr()
    assert build(Backfill(start=day, stop=day + dt.timedelta(days=1), dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert (
        f"corrupt: damaged, missing or half-committed (1): {day} (predictions/{name}: checksum)"
        in capsys.readouterr().out
    )


# Issue 19 item 3: every damaged date is listed naming its file, DailyScore fails naming the
# file and the command that heals it, and that command heals it to what a clean run wrote.

DATASETS = ("features", "quarantine", "predictions")


def first_file(storage, dataset, day) -> str:
    return storage.manifest(dataset, day).files[0]["path"]


def flip(dataset):
    def damage(storage, day):
        name = first_file(storage, dataset, day)
        flip_bytes(storage, day, name, dataset)
        return (
            f"{dataset}/date={day}/{name}",
            f"{dataset}/{name}: checksum",
            "checksum differs from _MANIFEST.json (sha256)",
        )

    return damage


def delete_predictions_file(storage, day):
    name = first_file(storage, "predictions", day)
    (storage.partition_path("predictions", day) / name).unlink()
    return f"predictions/date={day}/{name}", f"predictions/{name}: missing", "missing (listed in _MANIFEST.json)"


def delete_predictions_dir(storage, day):
    shutil.rmtree(storage.partition_path("predictions", day))
    what = f"not committed, though monitoring/date={day}/drift.json was derived from it"
    return f"predictions/date={day}", f"predictions/date={day}: {what}", what


def truncate_features_manifest(storage, day):
    path = storage.manifest_path("features", day)
    path.write_text(path.read_text()[:200])
    return (
        f"features/date={day}/_MANIFEST.json",
        "features/_MANIFEST.json: unreadable manifest: ",
        "unreadable manifest: ",
    )


SCENARIOS = {
    "features flipped": flip("features"),
    "predictions flipped": flip("predictions"),
    "quarantine flipped": flip("quarantine"),
    "predictions file deleted": delete_predictions_file,
    "predictions folder deleted": delete_predictions_dir,
    "features manifest truncated": truncate_features_manifest,
}


def tables(storage, day) -> dict:
    """The date's datasets as frames in one order (a heal may write files in another)."""
    out = {}
    for dataset in DATASETS:
        frame = storage.read_table(dataset, day)
        out[dataset] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_damaged_date_is_listed_named_by_daily_score_and_healed_by_one_command(pipeline, day, capsys, scenario):
    one_day, two_days = (
        dict(start=day, stop=day + dt.timedelta(days=1)),
        dict(start=day, stop=day + dt.timedelta(days=2)),
    )
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    storage = make_storage()
    clean = tables(storage, day)
    path, listed, what = SCENARIOS[scenario](storage, day)

    capsys.readouterr()
    assert build(Backfill(**two_days, dry_run=True)).status == LuigiStatusCode.SUCCESS
    out = capsys.readouterr().out
    assert f"corrupt: damaged, missing or half-committed (1): {day} ({listed}" in out, out
    assert f"missing (1): {day + dt.timedelta(days=1)}" in out  # the other dates are still listed

    rerun = build(DailyScore(day))
    if (
        scenario == "predictions folder deleted"
    ):  # a missing output is just a missing output: scored again with the date's pin
        assert rerun.status == LuigiStatusCode.SUCCESS, rerun.summary_text
        assert tables(storage, day)["predictions"].equals(clean["predictions"])
        SCENARIOS[scenario](storage, day)  # and once more, for the healing command
    else:
        assert rerun.status != LuigiStatusCode.SUCCESS, rerun.summary_text
        causes = " ".join(str(c) for c in pipelines._failures)
        assert f"{storage.url(path)}: {what}" in causes, causes
        assert f"Heal it with: {heal_command(day)}" in causes, causes
        assert heal_command(day) == (
            f"luigi --module pipelines Backfill --start {day} --stop {day + dt.timedelta(days=1)} --reprocess corrupt"
        )
    pipelines._failures.clear()

    healed = build(Backfill(**one_day, reprocess="corrupt"))
    assert healed.status == LuigiStatusCode.SUCCESS, (healed.summary_text, list(pipelines._failures))
    assert main(["verify", storage.url()]) == 0
    after = tables(storage, day)
    for dataset in DATASETS:
        assert after[dataset].equals(clean[dataset]), dataset
    assert storage.read_text(f"monitoring/date={day}/report.html") is not None
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS  # whole again: nothing to do, nothing to name
    capsys.readouterr()
    assert build(Backfill(**one_day, dry_run=True)).status == LuigiStatusCode.SUCCESS
    assert "corrupt: damaged, missing or half-committed (0): none" in capsys.readouterr().out
