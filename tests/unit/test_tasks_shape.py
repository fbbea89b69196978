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
    tree = ast.parse(
        "def run(self):\n    a = 1\n    if a:\n        b = 2\n        yield b\n    def f():\n        return 3\n"
    )
    assert statements(tree.body[0]) == 6  # a =, if, b =, yield, def f, return


def test_every_task_run_is_at_most_twelve_statements():
    lengths = run_lengths()
    assert len(lengths) >= 15  # every task with a run() is measured (a rename would otherwise hide them)
    assert {name: n for name, n in lengths.items() if n > MOST} == {}


def undocumented() -> list[str]:
    """`path:line name` of every public function, class and method of tasks/ without a docstring."""
    out = []

    def walk(path: Path, body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith(
                "_"
            ):
                if ast.get_docstring(node) is None:
                    out.append(f"{path.relative_to(REPO)}:{node.lineno} {prefix}{node.name}")
                if isinstance(node, ast.ClassDef):
                    walk(path, node.body, f"{prefix}{node.name}.")

    for path in sorted((REPO / "tasks").rglob("*.py")):
        walk(path, ast.parse(path.read_text(), str(path)).body, "")
    return out


def test_every_public_function_class_and_method_of_tasks_says_what_it_is_for():
    assert not undocumented(), "add a short docstring (what and why) to: " + ", ".join(undocumented())
