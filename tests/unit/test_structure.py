"""Dependencies point one way (pipelines -> tasks -> batchml) and no modules import each other in a circle.

Imports are read from the source with ast, so a lazy import inside a function counts too:
a circle hidden in a function body is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("batchml", "tasks")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module name an import statement of the file names (absolute; relative ones resolved)."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *([base] if base else [])])
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)  # `from batchml import layout` names a module
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the modules of batchml/ and tasks/ it imports."""
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in files and m != name} for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One path per import circle found (depth-first search for back edges)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_between_modules_of_batchml_and_tasks():
    assert cycles(graph()) == []


def test_storage_and_objectstore_share_the_manifest_module_instead_of_importing_each_other():
    edges = graph()
    assert "batchml.storage" not in edges["batchml.objectstore"]
    assert {"batchml.manifest", "batchml.layout"} <= edges["batchml.objectstore"] & edges["batchml.storage"]


def test_batchml_imports_neither_luigi_nor_tasks():
    offenders = {
        module_name(path): sorted(m for m in imports_of(path) if m.split(".")[0] in ("luigi", "tasks", "pipelines"))
        for path in (REPO / "batchml").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
