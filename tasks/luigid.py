"""`python -m tasks.luigid ARGS`: Luigi's `luigid`, able to keep its task history in SQLite.

luigi 3.8's DbTaskHistory checks a SQLite history database with a raw SQL string, which
SQLAlchemy 2 refuses (spotify/luigi#3227), so `luigid` with `[task_history] db_connection =
sqlite:///...` dies at start-up. That check only warns about column types of databases made
by old Luigi versions; the databases here are created by this Luigi, so it is skipped.
Arguments are luigid's (--address, --port, --state-path, --logdir, --pidfile).
"""

from __future__ import annotations

import sys

from luigi import db_task_history
from luigi.cmdline import luigid

_upgrade_schema = db_task_history._upgrade_schema


def _upgrade_schema_sqlalchemy2(engine) -> None:
    if engine.dialect.name != "sqlite":
        _upgrade_schema(engine)


def main(argv: list[str] | None = None) -> None:
    db_task_history._upgrade_schema = _upgrade_schema_sqlalchemy2
    luigid(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
