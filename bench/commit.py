"""What a date's Iceberg table commit adds to its manifest commit, and what a year of daily snapshots does to reads.

Usage:
  bench/commit.py [--measure all|date|backfill|reads] [--rows 5000000] [--rows-per-file 250000] [--dates 30]
                  [--small-rows 20000] [--snapshots 365] [--rescore] [--repeats 3] [--root DIR|s3://...] [--catalog URL]
                  [--out bench/out]

Each measurement writes synthetic prediction files (an id, an entity, an event time, a float32 prediction and a
float64 score, seeded) into a fresh storage root through batchml's storage writer, as scoring does, and times, in
the same run and on the same files:

(m) manifest  `writer.commit(manifest)`: today's commit (sha256 of every file, the manifest written last, the date
              published by one rename, or the manifest PUT on S3).
(t) table     `Tables.commit_manifest(...)`: the table transaction that follows it (the files placed under
              the table, their Parquet footers read for statistics, one OVERWRITE snapshot in the catalog).
(w) write     the data files themselves, written into the staging folder: context, what a date costs anyway.

Every root first gets a small date (untimed): the table exists and pyiceberg is imported before the clock runs, as
in a project's second date; the first table commit of a process also pays pyiceberg's import, reported apart.

--measure date      one date of --rows rows in files of --rows-per-file rows, --repeats times (medians):
                    ratio (m + t) / m, and (w + m + t) / (w + m), the whole write of the date with and without its
                    table commit.
--measure backfill  --dates dates of --small-rows rows each, committed one after the other as a backfill does:
                    the same two ratios over the sums.
--measure reads     two roots: one table holding one date, and one holding --snapshots daily dates of 100 rows
                    (one snapshot each). The time to read one date through a fresh `Tables` (catalog, metadata,
                    scan planning, the date's rows: a new process's read), alternating between the two roots (5 each,
                    medians, after one untimed read of each), then again after `Tables.expire` on the large one
                    (retention passed for all but the current snapshot). Ratios: large / one-date, before and after
                    expiry; the metadata files and bytes under the table's metadata/ are printed too (a local root).
                    The target: a year of daily snapshots does not slow reads (ratio <= 1.5 after expiry).
                    The bench commits the year within minutes, so no commit finds a snapshot past retention
                    (30 days): "before expiry" is a year of snapshots kept (keep_snapshots_days = 365), "after" is
                    what a daily run's own commits keep (they expire the snapshots past retention as they go).
                    --rescore commits each date a second time right after the first (a re-score; twice the
                    snapshots).

The catalog is the embedded SQLite one unless --catalog names another (postgresql+psycopg://...); --root is a folder
under --out unless given (s3://bucket/prefix with the environment's endpoint and credentials, and a --catalog).
Printed: each measurement and its ratios, and as the last line one JSON object (with the 1-minute load average before
and after). The machine is shared and noisy: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATASET = "predictions"
START = dt.date(2025, 1, 1)
READ_ROWS = 100  # rows of each date in the reads measurement: it measures metadata, not data
READS = 5
READ_TARGET = 1.5  # read after a year of snapshots, expired / read after one


def frame(rows: int, seed: int):
    """Synthetic predictions: what a scored date's files hold, without any example's column names."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "entity": pa.array(rng.integers(0, 50_000, rows, dtype=np.int64)),
            "event_time": pa.array(
                np.datetime64("2025-01-01T00:00:00", "us") + rng.integers(0, 86_400_000_000, rows).astype("m8[us]")
            ),
            "prediction": pa.array(rng.normal(900, 300, rows).astype(np.float32)),
            "score": pa.array(rng.random(rows)),
        }
    )


def fresh_root(base: str, name: str) -> str:
    """An empty storage root under `base` for one measurement."""
    if "://" in base:
        return f"{base.rstrip('/')}/{name}-{uuid.uuid4().hex[:8]}"
    path = Path(base) / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def warm_up(storage, tables, rows_per_file: int) -> float:
    """Commit a small date before START (the table created, pyiceberg imported); its table commit's seconds."""
    before = START - dt.timedelta(days=1)
    return commit_date(storage, tables, before, frame(READ_ROWS, seed=0), rows_per_file)["table_s"]


def commit_date(storage, tables, date: dt.date, data, rows_per_file: int) -> dict[str, float]:
    """Write `data` as `date` through the storage's writer, commit its manifest, then its table; seconds of each."""
    import pyarrow.parquet as pq

    from batchml.store.manifest import Manifest

    with storage.writer(DATASET, date, replace=storage.is_committed(DATASET, date)) as w:
        start = time.perf_counter()
        for i, offset in enumerate(range(0, data.num_rows, rows_per_file)):
            with w.open(f"part-{i:05d}.parquet") as fh:
                pq.write_table(data.slice(offset, rows_per_file), fh)
        written = time.perf_counter()
        manifest = w.commit(
            Manifest(
                dataset=DATASET,
                date=date.isoformat(),
                rows={"in": data.num_rows, "written": data.num_rows, "quarantined": 0},
                schema_hash="bench",
                input_fingerprint="bench",
                code_version="bench",
                run_id=uuid.uuid4().hex[:12],
                model={"version": "1"},
            )
        )
        manifested = time.perf_counter()
        tables.commit_manifest(storage, DATASET, date, manifest)  # under the date's lock, as the storage's after_commit
        done = time.perf_counter()
    return {"write_s": written - start, "manifest_s": manifested - written, "table_s": done - manifested}


def open_root(root: str, catalog: str):
    from batchml.store.storage import open_storage
    from batchml.store.tables import Tables, TableSettings

    return open_storage(root), Tables(root, TableSettings(catalog=catalog))


def ratios(m: float, t: float, w: float) -> dict[str, float]:
    return {
        "manifest_s": round(m, 3),
        "table_s": round(t, 3),
        "write_s": round(w, 3),
        "commit_ratio": round((m + t) / m, 2),  # manifest + table / manifest (today)
        "whole_ratio": round((w + m + t) / (w + m), 3),  # the date's whole write, with / without its table commit
    }


def measure_date(args) -> dict:
    data = frame(args.rows, seed=1)
    runs, first = [], []
    for i in range(args.repeats):
        storage, tables = open_root(fresh_root(args.root, f"date-{i}"), args.catalog)
        first.append(warm_up(storage, tables, args.rows_per_file))
        runs.append(commit_date(storage, tables, START, data, args.rows_per_file))
    m, t, w = (statistics.median(r[k] for r in runs) for k in ("manifest_s", "table_s", "write_s"))
    out = ratios(m, t, w)
    print(
        f"One date of {args.rows:,} rows ({-(-args.rows // args.rows_per_file)} files), median of {args.repeats}: "
        f"files {w:.2f} s, manifest commit {m:.2f} s, table commit {t:.2f} s; (manifest + table) / manifest "
        f"{out['commit_ratio']}, whole write with / without the table {out['whole_ratio']}; the process's first table "
        f"commit (pyiceberg imported, the table created) {first[0]:.2f} s"
    )
    out["first_table_commit_s"] = round(first[0], 3)
    return {"measure": "date", "rows": args.rows, "repeats": args.repeats, **out}


def measure_backfill(args) -> dict:
    storage, tables = open_root(fresh_root(args.root, "backfill"), args.catalog)
    warm_up(storage, tables, args.rows_per_file)
    runs = [
        commit_date(storage, tables, START + dt.timedelta(days=d), frame(args.small_rows, seed=d), args.rows_per_file)
        for d in range(args.dates)
    ]
    m, t, w = (sum(r[k] for r in runs) for k in ("manifest_s", "table_s", "write_s"))
    out = ratios(m, t, w)
    print(
        f"Backfill of {args.dates} dates x {args.small_rows:,} rows: files {w:.2f} s, manifest commits {m:.2f} s, "
        f"table commits {t:.2f} s; (manifest + table) / manifest {out['commit_ratio']}, whole write with / without "
        f"the tables {out['whole_ratio']}"
    )
    return {"measure": "backfill", "dates": args.dates, "small_rows": args.small_rows, **out}


def read_once(root: str, catalog: str, date: dt.date) -> float:
    """Seconds to read `date` through a fresh Tables (a new process's first read: catalog and metadata loaded)."""
    from batchml.store.tables import Tables, TableSettings

    start = time.perf_counter()
    rows = Tables(root, TableSettings(catalog=catalog)).read_date(DATASET, date).num_rows
    seconds = time.perf_counter() - start
    if rows != READ_ROWS:
        raise AssertionError(f"read {rows} rows of {date} in {root}, committed {READ_ROWS}")
    return seconds


def alternating(roots: list[str], catalog: str, date: dt.date) -> list[float]:
    """Median read seconds of `date` in each root, the roots read in turn (one untimed read of each first)."""
    times: list[list[float]] = [[] for _ in roots]
    for i in range(READS + 1):
        for j, root in enumerate(roots):
            seconds = read_once(root, catalog, date)
            if i:
                times[j].append(seconds)
    return [statistics.median(t) for t in times]


def metadata_size(root: str) -> tuple[int, int]:
    """Files and bytes under the table's metadata/ (0, 0 on an object store: not listed here)."""
    folder = Path(root) / "_tables" / DATASET / "metadata"
    if "://" in root or not folder.is_dir():
        return 0, 0
    files = [p for p in folder.iterdir() if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def measure_reads(args) -> dict:
    data = frame(READ_ROWS, seed=0)
    small, large = fresh_root(args.root, "reads-1"), fresh_root(args.root, "reads-many")
    storage, tables = open_root(small, args.catalog)
    commit_date(storage, tables, START, data, args.rows_per_file)
    storage, tables = open_root(large, args.catalog)
    start = time.perf_counter()
    commits, rescored = 0, frame(READ_ROWS, seed=1)  # other values: an identical commit makes no snapshot
    for d in range(args.snapshots):
        for version in [data, rescored] if args.rescore else [data]:
            commit_date(storage, tables, START + dt.timedelta(days=d), version, args.rows_per_file)
            commits += 1
    commit_s = (time.perf_counter() - start) / commits
    table = tables.table(DATASET)
    assert table is not None
    snapshots, (files, size) = len(table.metadata.snapshots), metadata_size(large)
    one, many = alternating([small, large], args.catalog, START)
    keep = tables.settings.keep_snapshots_days
    dropped = tables.expire(dt.datetime.now(dt.UTC) + dt.timedelta(days=keep + 1))
    files_expired, size_expired = metadata_size(large)
    one_again, expired = alternating([small, large], args.catalog, START)
    out = {
        "measure": "reads",
        "snapshots": snapshots,
        "rescored": args.rescore,
        "expired_snapshots": dropped,
        "read_1_s": round(one, 4),
        "read_many_s": round(many, 4),
        "read_1_again_s": round(one_again, 4),
        "read_expired_s": round(expired, 4),
        "ratio_many": round(many / one, 2),
        "ratio_expired": round(expired / one_again, 2),
        "target_ratio_expired": READ_TARGET,
        "commit_per_date_s": round(commit_s, 3),
        "metadata_files": files,
        "metadata_bytes": size,
        "metadata_files_expired": files_expired,
        "metadata_bytes_expired": size_expired,
    }
    print(
        f"Reading one date of {READ_ROWS} rows: {one * 1000:.0f} ms from a one-date table, {many * 1000:.0f} ms after "
        f"{snapshots} snapshots of {args.snapshots} dates (x{out['ratio_many']}); after expiring {dropped} of them "
        f"{expired * 1000:.0f} ms "
        f"against {one_again * 1000:.0f} (x{out['ratio_expired']}, target <= {READ_TARGET}). A date's commit took "
        f"{commit_s * 1000:.0f} ms on average; the table's metadata/ holds {files} files, {size / 1e6:.1f} MB "
        f"({files_expired} files, {size_expired / 1e6:.1f} MB after expiry)"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", choices=["all", "date", "backfill", "reads"], default="all")
    parser.add_argument("--rows", type=int, default=5_000_000, help="date: rows of the one large date")
    parser.add_argument("--rows-per-file", type=int, default=250_000, help="rows per data file")
    parser.add_argument("--dates", type=int, default=30, help="backfill: dates committed one after the other")
    parser.add_argument("--small-rows", type=int, default=20_000, help="backfill: rows of each date")
    parser.add_argument("--snapshots", type=int, default=365, help="reads: daily dates committed to the table")
    parser.add_argument("--rescore", action="store_true", help="reads: commit each date twice (a re-score)")
    parser.add_argument("--repeats", type=int, default=3, help="date: runs on a fresh root (median)")
    parser.add_argument("--root", help="where the storage roots go (default: --out/commit); s3://... needs --catalog")
    parser.add_argument("--catalog", default="", help='[tables] catalog: "" embedded (a local root), or a URL')
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="working folder (git-ignored)")
    args = parser.parse_args(argv)
    args.root = args.root or str((args.out / "commit").absolute())
    measures = {"date": measure_date, "backfill": measure_backfill, "reads": measure_reads}
    chosen = list(measures) if args.measure == "all" else [args.measure]
    load_before = os.getloadavg()[0]
    results = {name: measures[name](args) for name in chosen}
    print(
        json.dumps(
            {
                **results,
                "rows_per_file": args.rows_per_file,
                "catalog": args.catalog or "embedded",
                "root_kind": "s3" if args.root.startswith("s3://") else "local",
                "load_avg_1min_before": round(load_before, 1),
                "load_avg_1min_after": round(os.getloadavg()[0], 1),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
