"""The `batchml` command: subcommands over functions of the core (`batchml init ...`)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import batchml
from batchml.base.errors import BatchmlError, ConfigError
from batchml.store.layout import DATASETS

if TYPE_CHECKING:
    from batchml.store.tables import Tables

CATALOG_HELP = (
    "the Iceberg catalog (default: [tables] catalog of ./luigi.cfg when no ROOT is given, else the embedded one in "
    "ROOT)"
)


def _init(args: argparse.Namespace) -> int:
    from batchml.project.starter import init_project

    written = init_project(args.dir, args.sample, label=args.label, task=args.task, force=args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"next: review {written[0]}, then read {written[-1]}")
    return 0


def _tables(args: argparse.Namespace, root: str) -> Tables:
    """The tables of `root` in the catalog `--catalog` names, else the project's [tables] (./luigi.cfg) when no ROOT
    was given, else the embedded catalog."""
    from dataclasses import replace

    from batchml.store.tables import Tables, TableSettings
    from batchml.store.verify import project_tables

    settings = TableSettings() if args.root else project_tables(Path.cwd())
    if args.catalog is not None:
        settings = replace(settings, catalog=args.catalog)
    return Tables(root, settings)


def _verify(args: argparse.Namespace) -> int:
    from batchml.store.storage import open_storage
    from batchml.store.verify import check_scope, project_root, verify_dates, verify_tables

    root = args.root or project_root(Path.cwd())
    check_scope(root, args.start, args.stop)
    datasets = tuple(dict.fromkeys(args.dataset)) if args.dataset else DATASETS
    storage = open_storage(root)
    result = verify_dates(storage, datasets, args.start, args.stop)
    tables = _tables(args, root)
    if tables.settings.kept_for(root) and (args.repair or tables.catalog_exists()):
        verify_tables(storage, tables, result, datasets, args.start, args.stop, repair=args.repair)
    for line in result.repaired:
        print(line)
    for line in result.bad:
        print(line, file=sys.stderr)
    print(result.summary(datasets, args.start, args.stop), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _history(args: argparse.Namespace) -> int:
    from batchml.store.verify import project_root

    root = args.root or project_root(Path.cwd())
    tables = _tables(args, root)
    entries = tables.history(args.dataset, args.date) if tables.catalog_exists() else []
    if not entries:
        print(f"no snapshot of {args.dataset} {args.date} in the Iceberg catalog of {root}", file=sys.stderr)
        return 1
    rows = [("snapshot", "committed at (UTC)", "model version", "rows", "operation", "readable as of")]
    rows += [
        (
            str(e["snapshot"]),
            e["committed_at"].strftime("%Y-%m-%d %H:%M:%S"),
            e["model_version"] or "-",
            str(e["rows"]),
            e["operation"],
            "no (expired)" if e["expired"] else "yes",
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _expire(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from batchml.store.verify import project_root

    root = args.root or project_root(Path.cwd())
    tables = _tables(args, root)
    if args.keep_days is not None and args.keep_days < 0:
        raise ConfigError(f"--keep-days {args.keep_days}: give a number of days >= 0")
    if args.keep_days is not None:
        tables = type(tables)(root, replace(tables.settings, keep_snapshots_days=args.keep_days))
    if not tables.catalog_exists():
        print(f"no Iceberg catalog for {root}: nothing to expire")
        return 0
    now = dt.datetime.now(dt.UTC)
    dropped = tables.expire(now)
    cutoff = now - dt.timedelta(days=tables.settings.keep_snapshots_days)
    print(f"expired {dropped} snapshots committed before {cutoff:%Y-%m-%d %H:%M:%S} UTC (the current ones kept)")
    orphans = tables.remove_orphans(now)
    if orphans:
        print(f"removed {len(orphans)} table files no snapshot references (left by commits stopped a day ago or more)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="batchml", description="Daily batch inference and retraining with Luigi, MLflow and Dask."
    )
    top.add_argument("--version", action="version", version=f"batchml {batchml.__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init = commands.add_parser(
        "init",
        help="write a starter project (contract, luigi.cfg, hooks, README) inferred from a sample file",
        description=(
            "Write a starter project into DIR, with a dataset contract inferred from a sample Parquet or CSV (gzip "
            "too) file."
        ),
    )
    init.add_argument(
        "dir",
        metavar="DIR",
        help="the project folder to create (refused when it exists and is not empty, unless --force)",
    )
    init.add_argument(
        "--sample", required=True, metavar="FILE", help="a Parquet or CSV file of the table, as the source will give it"
    )
    init.add_argument(
        "--label",
        metavar="COLUMN",
        help="the column the model predicts: a column of the sample, or one your labels transform will derive",
    )
    init.add_argument("--task", choices=["regression", "classification"], help="the label's task (default: regression)")
    init.add_argument(
        "--force",
        action="store_true",
        help="write into DIR even when it is not empty (the starter files are overwritten)",
    )
    init.set_defaults(run=_init)
    verify = commands.add_parser(
        "verify",
        help="check committed dates against their manifests: files present, sizes, sha256, Parquet page checksums",
        description=(
            "Check every committed date of [START, STOP) against its manifest; exit 1 naming each bad file, 0 when all "
            "match. "
            "With no arguments in a project folder: the project's storage root, every committed date."
        ),
    )
    _storage_arguments(verify)
    for flag, what in (
        ("--start", "the first date checked (default: the first committed)"),
        ("--stop", "the first date not checked, exclusive (default: after the last committed)"),
    ):
        verify.add_argument(flag, type=dt.date.fromisoformat, metavar="YYYY-MM-DD", help=what)
    verify.add_argument(
        "--dataset",
        action="append",
        choices=DATASETS,
        help=f"a dataset to check; repeat for several (default: all of {', '.join(DATASETS)})",
    )
    verify.add_argument(
        "--repair",
        action="store_true",
        help="re-commit to its Iceberg table each date whose table files are not its manifest's (a run killed "
        "between the two commits; docs/tables.md)",
    )
    verify.set_defaults(run=_verify)
    history = commands.add_parser(
        "history",
        help="list the Iceberg snapshots that committed a date: snapshot, time, model version, rows, operation",
        description="List every snapshot of a dataset's Iceberg table that committed DATE, oldest first "
        "(docs/tables.md). Exit 1 when there is none.",
    )
    _storage_arguments(history)
    history.add_argument("--date", required=True, type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    history.add_argument("--dataset", default="predictions", choices=DATASETS, help="(default: predictions)")
    history.set_defaults(run=_history)
    expire = commands.add_parser(
        "expire",
        help="drop Iceberg snapshots older than [tables] keep_snapshots_days and the table files only they held",
        description="Expire the snapshots of every table older than the retention (never a table's current one, nor "
        "the commit of a date's current rows) and delete the table files only they referenced; the committed date "
        "folders are not touched. Run it daily.",
    )
    _storage_arguments(expire)
    expire.add_argument(
        "--keep-days",
        type=int,
        metavar="N",
        help="keep N days of snapshots instead of [tables] keep_snapshots_days (0: only the current ones)",
    )
    expire.set_defaults(run=_expire)
    return top


def _storage_arguments(command: argparse.ArgumentParser) -> None:
    """ROOT, the storage root a command reads (the project's by default), and --catalog, its Iceberg catalog."""
    command.add_argument(
        "root",
        metavar="ROOT",
        nargs="?",
        help="the storage root: a folder or s3://bucket/prefix (default: [storage] root of ./luigi.cfg)",
    )
    command.add_argument("--catalog", metavar="URL", help=CATALOG_HELP)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BatchmlError as exc:
        print(f"batchml {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
