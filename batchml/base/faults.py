"""Failpoints: named places where a test can hold a real run, to kill it or race it there.

`BATCHML_FAILPOINT=<name>` makes the first arrival of a process at failpoint `<name>`
print `batchml failpoint <name> reached (pid N)` on stderr and then

- with `BATCHML_FAILPOINT_FIFO` unset, stop there until the process is killed;
- with `BATCHML_FAILPOINT_FIFO=<path>` (a named pipe the test holds open for writing),
  open the pipe, announce, and wait for its end of file: when the test closes its end,
  every process waiting on the pipe is released at the same instant.

Unset, a failpoint is one dictionary lookup. The names are listed where they are used:
`writer.<dataset>` (before taking a date's lock), `extract.staged` (a features file
staged), `extract.pending` (the date's `_pending` marker written, nothing committed),
`extract.quarantine.committed` (quarantine committed, features not), `extract.features.committed`
(both committed, the marker not yet removed), `score.partition` (a predictions file
staged), `commit.<dataset>.files` (data staged, no manifest yet), `commit.<dataset>.manifest`
(manifest staged, not published), `tables.<dataset>.placed` (a date committed, its table files
linked, no table commit yet), `tables.<dataset>.commit` (the table transaction built, not committed).
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
    fifo = os.environ.get("BATCHML_FAILPOINT_FIFO")
    pipe = open(fifo, "rb") if fifo else None  # noqa: SIM115 -- opened before announcing: no release can be missed
    sys.stderr.write(f"batchml failpoint {name} reached (pid {os.getpid()})\n")
    sys.stderr.flush()
    if pipe is None:
        threading.Event().wait()  # until killed (works in worker threads too)
        return
    with pipe:
        pipe.read()  # end of file once the test closes the write end
