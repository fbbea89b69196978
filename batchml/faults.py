"""Failpoints: named places where a test can hold a real run, to kill it or race it there.

`BATCHML_FAILPOINT=<name>` makes the first arrival of a process at failpoint `<name>`
print `batchml failpoint <name> reached (pid N)` on stderr and then

- with `BATCHML_FAILPOINT_FIFO` unset, stop there until the process is killed;
- with `BATCHML_FAILPOINT_FIFO=<path>` (a named pipe), wait until something opens the
  pipe for writing, which releases every process waiting on it at the same instant.

Unset, a failpoint is one dictionary lookup. The names are listed where they are used:
`writer.<dataset>` (before taking a date's lock), `extract.staged` (a features file
staged), `score.partition` (a predictions file staged), `commit.<dataset>.files` (data
staged, no manifest yet), `commit.<dataset>.manifest` (manifest staged, not published).
"""

from __future__ import annotations

import os
import sys
import threading

_fired: set[str] = set()


def failpoint(name: str) -> None:
    if os.environ.get("BATCHML_FAILPOINT") != name or name in _fired:
        return
    _fired.add(name)
    sys.stderr.write(f"batchml failpoint {name} reached (pid {os.getpid()})\n")
    sys.stderr.flush()
    fifo = os.environ.get("BATCHML_FAILPOINT_FIFO")
    if fifo:
        with open(fifo, "rb") as released:  # blocks until a writer opens the pipe
            released.read()
    else:
        threading.Event().wait()  # until killed (works in worker threads too)
