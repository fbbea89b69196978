"""ReextractDate follows the one reference rule (baseline.reference_for): a date of a version that carries
no reference profile is re-scored on its baseline bins, as its first scoring was, and keeps a daily profile.

Before the rule, ReextractDate alone re-scored such a date with no reference: its profile was
dropped with the old predictions, so drift had nothing to compare and the date could not count
towards the version's baseline.
"""

import dataclasses
import datetime as dt
import json

import luigi
import pandas as pd
from luigi.execution_summary import LuigiStatusCode

from pipelines import Backfill, DailyScore
from tasks.config import cache_dir, make_storage
from tasks.targets import PinTarget


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def test_a_re_extracted_date_of_a_version_without_a_reference_is_profiled_on_its_baseline_bins(pipeline, day, tmp_path):
    from taxi_synthetic import trips as generate

    raw = tmp_path / "raw"
    raw.mkdir()

    def write(date, rows, seed):
        pd.concat(generate(date, rows_per_day=rows, seed=seed), ignore_index=True).to_csv(
            raw / f"trips_{date}.csv", index=False
        )

    for i in range(6, -1, -1):
        write(day - dt.timedelta(days=i), 3000, 5)
    pipeline({"source": {"kind": "files", "path": str(raw / "trips_{date}.csv"), "format": "csv"}})
    assert build(DailyScore(day)).status == LuigiStatusCode.SUCCESS
    pin = PinTarget(day).load()
    PinTarget(day).replace(
        dataclasses.replace(pin, reference="")
    )  # the date's version says it carries no reference profile
    (tmp_path / "cache" / pin.name / pin.version / "reference_profile.json").unlink(missing_ok=True)
    assert str(tmp_path / "cache") == cache_dir()
    storage = make_storage()
    bins = f"_baselines/{pin.name}/{pin.version}/bins.json"
    assert storage.read_text(bins) is None
    write(day, 2000, 77)  # the provider re-delivered the date

    assert (
        build(Backfill(start=day, stop=day + dt.timedelta(days=1), reprocess="changed")).status
        == LuigiStatusCode.SUCCESS
    )
    assert storage.verify("predictions", day).rows["in"] == 2000  # re-extracted and re-scored
    made = json.loads(storage.read_text(bins))
    assert made["bins_from"] == day.isoformat()  # made from the date, before it was scored again
    profile = json.loads(storage.read_text(f"predictions/date={day}/_profile.json"))
    assert set(made["columns"]) <= set(profile["columns"])  # counted on the baseline's bins
    assert profile["rows"] == storage.verify("predictions", day).rows["written"]
