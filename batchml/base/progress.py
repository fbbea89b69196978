"""Progress of long steps: INFO lines on the batchml loggers, and a one-line bar when stderr is a terminal.

Lines are throttled to about one per tenth of the way (every step of short jobs), so a
log file stays readable; the bar redraws on every step and is erased before each line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO

BAR_WIDTH = 24


class Progress:
    """Steps of one job, reported with counts and the seconds since it started."""

    def __init__(self, logger: logging.Logger, stream: IO[str] | None = None) -> None:
        self.log, self.stream = logger, stream
        self.start = time.monotonic()
        self._tenth = -1
        self._drawn = False

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _terminal(self) -> IO[str] | None:
        stream = self.stream or sys.stderr
        try:
            return stream if stream.isatty() else None
        except (AttributeError, ValueError):  # a replaced or closed stream
            return None

    def update(self, done: int, total: int, line: str) -> None:
        """Step `done` of `total`, described by `line`; the elapsed seconds are appended."""
        text = f"{line} ({self.elapsed():.1f} s)"
        tenth = 10 * done // max(total, 1)
        terminal = self._terminal()
        if total <= 20 or done >= total or tenth > self._tenth:
            self._tenth = tenth
            if terminal and self._drawn:
                terminal.write("\r\033[K")  # the bar gives way to the line
                self._drawn = False
            self.log.info("%s", text)
        if terminal:
            if done >= total:
                if self._drawn:
                    terminal.write("\r\033[K")
                self._drawn = False
            else:
                filled = BAR_WIDTH * done // max(total, 1)
                terminal.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} {text}"[:160] + "\033[K")
                self._drawn = True
            terminal.flush()

    def note(self, line: str) -> None:
        """One step of a job that is not counted (fitting, exporting): a line with the elapsed seconds."""
        self.log.info("%s (%.1f s)", line, self.elapsed())
