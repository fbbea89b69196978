"""The files of committed dates, for readers that must not trust a listing of the prefix.

On an object store a plain listing of `<root>/<dataset>/` can, during a commit, show part
of a new date or the old and new files of a replaced one (see batchml/store/objectstore.py).
The manifests say which files make up each committed date; read those:

    python -m batchml.store.reader s3://bucket/data predictions --start 2026-06-01 --stop 2026-07-01

prints one URL per line, e.g. for DuckDB: `SELECT * FROM read_parquet([...])`.
"""

from __future__ import annotations

import argparse
import datetime as dt

from batchml.store.storage import open_storage


def committed_files(root: str, dataset: str, start: dt.date | None = None, stop: dt.date | None = None) -> list[str]:
    """Every data file of the committed dates in [start, stop), as the manifests list them."""
    storage = open_storage(root)
    dates = sorted(
        d for d in storage.committed_dates(dataset) if (start is None or d >= start) and (stop is None or d < stop)
    )
    return [url for date in dates for url in storage.files(dataset, date)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="the storage root: a folder or s3://bucket/prefix")
    parser.add_argument("dataset", help="features, predictions, quarantine or labels")
    parser.add_argument("--start", type=dt.date.fromisoformat)
    parser.add_argument("--stop", type=dt.date.fromisoformat, help="exclusive")
    args = parser.parse_args(argv)
    print("\n".join(committed_files(args.root, args.dataset, args.start, args.stop)))


if __name__ == "__main__":
    main()
