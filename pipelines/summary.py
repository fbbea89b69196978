"""What the daily job wrote, per date: the table every `DailyScore`, `RangeDaily` and `Backfill` run ends with.

`python -m pipelines.summary --start A --stop B` prints it for any range. A row is a date:
its rows, the model version that scored it, drift, checks and retraining (a promotion or a
rollback names the versions), and, when the date's last run failed, the task and cause.
"""

from __future__ import annotations

import argparse
import datetime as dt

from batchml.monitor.failures import read_failure
from batchml.store.documents import read_document
from batchml.store.layout import FEATURES, INDEX, PREDICTIONS, QUARANTINE, monitoring_file
from tasks.config import make_storage

HEADER = (
    f"{'date':10}  {'rows in':>9}  {'scored':>9}  {'quarantined':>11}  {'model':18}  {'drift':8}  {'checks':6}  "
    "retraining"
)


def retraining(storage, day: dt.date) -> str:
    """The date's retraining decision; a promotion, rejection or rollback with its versions."""
    rollback = read_document(storage, monitoring_file(day, "rollback.json"))
    if rollback:
        return f"rolled back v{rollback['from_version']} -> v{rollback['to_version']}"
    decision = read_document(storage, monitoring_file(day, "retrain.json")) or {}
    verdict = decision.get("decision", "-")
    if verdict in ("promoted", "rejected") and decision.get("challenger_version"):
        return f"{verdict} v{decision['challenger_version']} (champion was v{decision.get('champion_version', '?')})"
    return verdict


def date_line(storage, day: dt.date) -> str:
    m = storage.manifest(PREDICTIONS, day)
    failure = read_failure(storage, day)
    failed = f"failed in {failure.task}: {failure.cause}" if failure else ""
    if m is None:
        return f"{day}  {failed or 'not scored'}"
    model = f"{m.model['name']} v{m.model['version']}"
    drift = (read_document(storage, monitoring_file(day, "drift.json")) or {}).get("verdict", "-")
    checks = (read_document(storage, monitoring_file(day, "metrics.json")) or {}).get("status", "-")
    line = (
        f"{day}  {m.rows['in']:>9,}  {m.rows['written']:>9,}  {m.rows['quarantined']:>11,}  {model:18}  {drift:8}  "
        f"{checks:6}  {retraining(storage, day)}"
    )
    return f"{line}  {failed}" if failed else line


def summary_lines(start: dt.date, stop: dt.date) -> list[str]:
    storage = make_storage()
    lines = [HEADER]
    day = start
    while day < stop:
        lines.append(date_line(storage, day))
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
