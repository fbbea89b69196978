"""`python -m tasks.luigid ARGS`: Luigi's `luigid`, able to keep its task history in SQLite.

luigi 3.8's DbTaskHistory checks a SQLite history database with a raw SQL string, which
SQLAlchemy 2 refuses (spotify/luigi#3227), so `luigid` with `[task_history] db_connection =
sqlite:///...` dies at start-up. That check only warns about column types of databases made
by old Luigi versions; the databases here are created by this Luigi, so it is skipped.

Its dependency graph labels each node with the date and project it is for
(`DailyScore 2026-07-25 · orders`): Luigi's visualiser draws a node's `name`, which is the bare
family, so every date of a range and every project sharing the scheduler looked alike. Only
the graph's answer is relabelled; the task list keeps families for its filters.

Arguments are luigid's (--address, --port, --state-path, --logdir, --pidfile).
"""

from __future__ import annotations

import sys

from luigi import db_task_history
from luigi.cmdline import luigid
from luigi.scheduler import Scheduler

_upgrade_schema = db_task_history._upgrade_schema
_traverse_graph = Scheduler._traverse_graph


def _upgrade_schema_sqlalchemy2(engine) -> None:
    if engine.dialect.name != "sqlite":
        _upgrade_schema(engine)


def graph_label(node: dict) -> str:
    """A graph node's label: its family, then the date (or range) and the project it is for."""
    params = node.get("params") or {}
    shown = [params[p] for p in ("date", "start", "stop", "project") if params.get(p)]
    return " ".join([node["name"], " · ".join(shown)]) if shown else node["name"]


def _labelled_graph(self, *args, **kwargs) -> dict:
    graph = _traverse_graph(self, *args, **kwargs)
    for node in graph.values():
        node["name"] = graph_label(node)
    return graph


def main(argv: list[str] | None = None) -> None:
    """luigid, with its SQLite task history's old-schema check skipped (SQLAlchemy 2 refuses it) and graph nodes
    labelled by date and project."""
    db_task_history._upgrade_schema = _upgrade_schema_sqlalchemy2
    Scheduler._traverse_graph = _labelled_graph
    luigid(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
