"""Progress lines: counts and seconds in the log, a bar only on a terminal."""

import io
import logging

from batchml.base.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_lines_are_logged_about_every_tenth_and_the_bar_draws_only_on_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="batchml")
    log, pipe = logging.getLogger("batchml.test"), io.StringIO()
    progress = Progress(log, stream=pipe)
    for done in range(0, 41):
        progress.update(done, 40, f"scored {done} of 40 partitions")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("scored 0 of 40 partitions (") and lines[-1].startswith("scored 40 of 40 partitions (")
    assert 10 <= len(lines) <= 12 and all(line.endswith(" s)") for line in lines)
    assert pipe.getvalue() == ""  # not a terminal: no bar

    terminal = Terminal()
    progress = Progress(log, stream=terminal)
    progress.update(3, 30, "backfill: date 3 of 30: 2026-06-03 done")
    assert "\r[##......................] 3/30 backfill: date 3 of 30" in terminal.getvalue()
    progress.update(30, 30, "backfill: date 30 of 30: 2026-06-30 done")
    assert terminal.getvalue().endswith("\r\033[K")  # the bar is erased at the end; the last line says it all
