"""Retry transient failures with bounded exponential backoff; fail at once on anything else.

A transient failure may pass on its own: a tracking server not answering, a connection
dropped, a Dask scheduler or worker lost. Bad data, a schema violation, a sha256
mismatch or a missing model version give the same answer every time, so they are raised
on the first attempt. A retried call gives up after `attempts` tries or once the next
wait would end past `deadline` seconds, whichever comes first, with one line that names
what was called and why it failed.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from batchml.base.errors import BatchmlError
from batchml.base.setting import count, number, seconds

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


class Unavailable(BatchmlError):
    """A dependency kept failing transiently until the retry budget ran out."""


@dataclass(frozen=True)
class RetryPolicy:
    """[retry] settings: bounded, jittered retries of transient failures (the home of their defaults)."""

    attempts: int = count(
        5,
        "Tries of a call that fails transiently (server not answering, Dask scheduler lost). Other failures are not "
        "retried.",
    )
    initial_delay: float = number(
        2.0, "Seconds before the first retry; the wait doubles each time, with jitter.", low=0
    )
    max_delay: float = number(30.0, "Longest wait between two tries (seconds).", low=0)
    deadline: float = seconds(
        120.0,
        "No retry starts once this many seconds have passed since the first try: a call gives up within deadline + one "
        "try.",
    )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based): doubling, capped, jittered."""
        base = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)  # runs that failed together do not retry together

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, retried on transient failures; `what` names it in messages."""
        start = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                elapsed = time.monotonic() - start
                wait = self.delay(attempt)
                if attempt == self.attempts or elapsed + wait > self.deadline:
                    raise Unavailable(
                        f"{what}: {one_line(exc)} (gave up after {attempt} attempt{'s' * (attempt > 1)} in "
                        f"{elapsed:.0f} s)"
                    ) from exc
                log.warning("%s: %s; retry %d of %d in %.1f s", what, one_line(exc), attempt, self.attempts - 1, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` may pass on its own (see the module docstring)."""
    if isinstance(exc, BatchmlError):
        return False  # raised on purpose: bad data, integrity, missing input
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith("requests") and name in {
        "ConnectionError",
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "ChunkedEncodingError",
    }:
        return True
    if module.startswith("distributed") and name in {"CommClosedError", "FutureCancelledError", "CancelledError"}:
        return True  # the scheduler went away; a lost worker's tasks are rescheduled by Dask itself
    if name == "OperationalError" and "locked" in str(exc):
        return True  # SQLite tracking store busy with another writer
    if name in {"MlflowException", "RestException"}:
        message = str(exc)
        if message.startswith("API request to") and (
            "failed with exception" in message or "failed with timeout exception" in message
        ):
            return True  # no HTTP answer at all: refused, reset, timed out
        if name == "RestException":  # the server answered with an MLflow error body
            return cast(Any, exc).get_http_status_code() in _TRANSIENT_HTTP  # matched by name: no mlflow import here
        match = re.search(r"failed with error code (\d{3})", message)  # a non-MLflow answer, e.g. a proxy's 502
        return match is not None and int(match.group(1)) in _TRANSIENT_HTTP
    return isinstance(exc, OSError) and "Timed out trying to connect" in str(exc)  # distributed's connect timeout


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, shortened: what a log line or summary can hold."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Retrying:
    """A proxy that sends every method call of `target` through `policy`."""

    def __init__(self, target: Any, policy: RetryPolicy, what: str) -> None:
        self._target, self._policy, self._what = target, policy, what

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._policy.call(f"{self._what} ({name})", attr, *args, **kwargs)

        return call
