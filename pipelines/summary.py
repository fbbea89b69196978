"""`python -m pipelines.summary --start A --stop B`: what the daily job wrote, per date."""

from __future__ import annotations

import argparse
import datetime as dt

from batchml.layout import FEATURES, INDEX, PREDICTIONS, QUARANTINE, monitoring_file
from batchml.monitoring import read_json
from tasks.config import make_storage


def summary_lines(start: dt.date, stop: dt.date) -> list[str]:
    storage = make_storage()
    lines = [f"{'date':10}  {'rows in':>9}  {'scored':>9}  {'quarantined':>11}  {'model':18}  {'drift':8}  {'checks':6}  retraining"]
    day = start
    while day < stop:
        m = storage.manifest(PREDICTIONS, day)
        if m is None:
            lines.append(f"{day}  not scored")
        else:
            model = f"{m.model['name']} v{m.model['version']}"
            drift = (read_json(storage, monitoring_file(day, "drift.json")) or {}).get("verdict", "-")
            checks = (read_json(storage, monitoring_file(day, "metrics.json")) or {}).get("status", "-")
            retrain = (read_json(storage, monitoring_file(day, "retrain.json")) or {}).get("decision", "-")
            lines.append(f"{day}  {m.rows['in']:>9,}  {m.rows['written']:>9,}  {m.rows['quarantined']:>11,}  {model:18}  {drift:8}  {checks:6}  {retrain}")
        day += dt.timedelta(days=1)
    for dataset in (FEATURES, QUARANTINE, PREDICTIONS):
        lines.append(f"{dataset + '/':13} {storage.url(dataset)}")
    lines.append(f"{'reports':13} {storage.url(INDEX)}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--stop", type=dt.date.fromisoformat, required=True, help="exclusive, as in RangeDaily")
    args = parser.parse_args(argv)
    print("\n".join(summary_lines(args.start, args.stop)))


if __name__ == "__main__":
    main()
