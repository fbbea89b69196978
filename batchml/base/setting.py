"""A setting's one home: a field of a policy dataclass holding its default, what it does and the values it may take.

    @dataclass(frozen=True)
    class RetryPolicy:
        attempts: int = count(5, "Tries of a call that fails transiently ...")

The luigi.Config classes in tasks/config.py build their parameters from these fields
(`from_policy`), docs/configuration.md is generated from those classes, and `batchml init`
writes its defaults from the fields themselves; tests/unit/test_defaults.py ties them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Allowed:
    """The values a numeric setting may take: an interval, either end open or unbounded; never NaN or infinite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def admits(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low, high = _shown(self.low), _shown(self.high)
        if self.low is not None and self.high is not None:
            return f"{kind} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {high}"
        return "any finite integer" if self.integer else "any finite number"


def _shown(bound: float | None) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}" if bound is not None else ""


def setting(default: Any, description: str, allowed: Allowed | None = None) -> Any:
    """A dataclass field: its default, with what it does and (numbers) the values it may take in its metadata."""
    return dataclasses.field(default=default, metadata={"description": description, "allowed": allowed})


def choice(default: str, description: str, choices: tuple[str, ...]) -> Any:
    """A text setting that takes one of `choices`."""
    if default not in choices:
        raise ValueError(f"{default!r}: not one of the choices {choices}")
    metadata = {"description": description, "allowed": None, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def count(default: int, description: str, *, least: int = 1, most: int | None = None) -> Any:
    """An integer of at least `least` (1: a count of things, 0: a lag or a number of retries)."""
    return setting(default, description, Allowed(low=least, high=most, integer=True))


def number(
    default: float,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A real number within [low, high] (each end open when said, absent when None)."""
    return setting(default, description, Allowed(low=low, high=high, low_open=low_open, high_open=high_open))


def share(default: float, description: str) -> Any:
    """A share or rate: a number in [0, 1]."""
    return number(default, description, low=0, high=1)


def seconds(default: float, description: str) -> Any:
    """A duration in seconds: a number > 0."""
    return number(default, description, low=0, low_open=True)


def names(
    default: tuple[str, ...],
    description: str,
    choices: tuple[str, ...] | None = None,
    problem: Callable[[str], str] | None = None,
) -> Any:
    """A list of names (written `a, b` or as a JSON list), each one of `choices` when given; `problem(item)` says
    why an item is refused ("" when it is not)."""
    return dataclasses.field(
        default=default,
        metadata={"description": description, "allowed": None, "choices": choices, "problem": problem},
    )


def policy_field(cls: type, name: str) -> dataclasses.Field:
    """The field `name` of the policy dataclass `cls`, which must carry a description."""
    found = {f.name: f for f in dataclasses.fields(cls)}
    if name not in found or "description" not in found[name].metadata:
        raise KeyError(f"{cls.__name__}.{name}: no such setting (a field made with batchml.base.setting)")
    return found[name]
