"""The `batchml` command: subcommands over functions of the core (`batchml init ...`)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import batchml
from batchml.base.errors import BatchmlError
from batchml.store.layout import DATASETS


def _init(args: argparse.Namespace) -> int:
    from batchml.project.starter import init_project

    written = init_project(args.dir, args.sample, label=args.label, task=args.task, force=args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"next: review {written[0]}, then read {written[-1]}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from batchml.store.storage import open_storage
    from batchml.store.verify import check_scope, project_root, verify_dates

    root = args.root or project_root(Path.cwd())
    check_scope(root, args.start, args.stop)
    datasets = tuple(dict.fromkeys(args.dataset)) if args.dataset else DATASETS
    result = verify_dates(open_storage(root), datasets, args.start, args.stop)
    for line in result.bad:
        print(line, file=sys.stderr)
    print(result.summary(datasets, args.start, args.stop), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


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
    verify.add_argument(
        "root",
        metavar="ROOT",
        nargs="?",
        help="the storage root: a folder or s3://bucket/prefix (default: [storage] root of ./luigi.cfg)",
    )
    verify.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the first date checked (default: the first committed)",
    )
    verify.add_argument(
        "--stop",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the first date not checked, exclusive (default: after the last committed)",
    )
    verify.add_argument(
        "--dataset",
        action="append",
        choices=DATASETS,
        help=f"a dataset to check; repeat for several (default: all of {', '.join(DATASETS)})",
    )
    verify.set_defaults(run=_verify)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BatchmlError as exc:
        print(f"batchml {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
