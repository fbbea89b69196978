"""The shape of the Luigi tasks: a task's run() is a few statements around one core call.

Measured in statements, not lines: ruff wraps a call with many arguments one per line, so
lines measure formatting; statements (every `ast.stmt` in the body, nested ones and those of
a local function included) measure what run() does. 12 is the bound issue 20 sets.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MOST = 12


def statements(function: ast.FunctionDef) -> int:
    """Statements in a function's body, at any depth (the def itself not counted)."""
    return sum(1 for node in ast.walk(function) if isinstance(node, ast.stmt)) - 1


def run_lengths() -> dict[str, int]:
    """`module.Class.run` -> its statements, for every class of tasks/ that defines run()."""
    out = {}
    for path in sorted((REPO / "tasks").glob("*.py")):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "run":
                        out[f"{path.stem}.{node.name}.run"] = statements(item)
    return out


def test_the_measure_counts_nested_statements():
    tree = ast.parse("def run(self):\n    a = 1\n    if a:\n        b = 2\n        yield b\n    def f():\n        return 3\n")
    assert statements(tree.body[0]) == 6  # a =, if, b =, yield, def f, return


def test_every_task_run_is_at_most_twelve_statements():
    lengths = run_lengths()
    assert len(lengths) >= 15  # every task with a run() is measured (a rename would otherwise hide them)
    assert {name: n for name, n in lengths.items() if n > MOST} == {}
