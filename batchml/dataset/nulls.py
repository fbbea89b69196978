"""Null counts of validated rows: what the daily null check compares with the reference."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NullCounts:
    """Nulls of the contract's nullable columns among a set of validated rows, before any features hook.

    Counted by `contract.validate` from masks it makes anyway, added batch by batch, kept in
    the features manifest of each date (`extra["validated_nulls"]`) and in a version's
    reference profile (`reference["validated"]`, its training window): the daily null check
    compares the two.
    """

    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)

    def add(self, rows: int, nulls: dict[str, int]) -> NullCounts:
        self.rows += int(rows)
        for name, n in nulls.items():
            self.nulls[name] = self.nulls.get(name, 0) + int(n)
        return self

    def rate(self, name: str) -> float | None:
        """The null share of `name`, or None when it was not counted (or there are no rows)."""
        return self.nulls[name] / self.rows if self.rows and name in self.nulls else None

    def as_json(self) -> dict:
        return {"rows": self.rows, "nulls": dict(sorted(self.nulls.items()))}

    @classmethod
    def from_json(cls, body: dict | None) -> NullCounts | None:
        return cls(int(body["rows"]), {str(k): int(v) for k, v in body["nulls"].items()}) if body else None
