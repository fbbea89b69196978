"""The shape of the code: dependencies point one way, and batchml's sub-packages stand in one order.

pipelines -> tasks -> batchml; inside batchml, a package imports only packages below it in
LAYERS (and its own modules), no modules import each other in a circle, no private name
crosses a module boundary, and every name is imported from the module that owns it.

Imports are read from the source with ast, so a lazy import inside a function counts too:
a circle hidden in a function body is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("batchml", "tasks")
# batchml's sub-packages, bottom to top: each may import those before it, never those after.
# `cli` is the `batchml` command, batchml/cli.py: on top of everything, imported by nothing.
LAYERS = ("base", "store", "dataset", "model", "stats", "scoring", "monitor", "retrain", "project", "cli")


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
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *([base] if base else [])]
                )
            out.add(base)
            out.update(
                f"{base}.{alias.name}" for alias in node.names
            )  # `from batchml.store import layout` names a module
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


def layer(module: str) -> str | None:
    """The sub-package of a batchml module (`batchml.store.layout` -> `store`); `cli` for batchml.cli."""
    parts = module.split(".")
    return parts[1] if parts[0] == "batchml" and len(parts) > 1 else None


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports from a lower sub-package of batchml to a higher one, as 'a -> b'."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(
        f"{a} -> {b}"
        for a, targets in edges.items()
        if layer(a) in rank
        for b in targets
        if layer(b) in rank and rank[layer(b)] > rank[layer(a)]
    )


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_layer_check_finds_an_upward_import():
    edges = {"batchml.store.layout": {"batchml.monitor.report"}, "batchml.monitor.report": {"batchml.store.layout"}}
    assert upward(edges) == ["batchml.store.layout -> batchml.monitor.report"]


def test_no_import_circles_between_modules_of_batchml_and_tasks():
    assert cycles(graph()) == []


def test_every_module_of_batchml_stands_in_a_sub_package_of_the_order():
    """A new module finds its place in LAYERS; only the package's face and the command stand at the top."""
    misplaced = []
    for path in (REPO / "batchml").rglob("*.py"):
        name = module_name(path)
        if name in ("batchml", "batchml.cli"):
            continue
        if layer(name) not in LAYERS or name.count(".") != 2 and path.name != "__init__.py":
            misplaced.append(name)
    assert sorted(misplaced) == []
    assert sorted(p.name for p in (REPO / "batchml").iterdir() if (p / "__init__.py").exists()) == sorted(LAYERS[:-1])


def test_sub_packages_of_batchml_import_only_those_below_them():
    assert upward(graph()) == []


def test_no_private_name_is_imported_from_another_module():
    """`from batchml.x.y import _name` only inside y itself: what another module needs is public."""
    offenders = []
    for folder in ("batchml", "tasks", "pipelines"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and not node.level
                    and node.module.split(".")[0] in ("batchml", "tasks", "pipelines")
                ):
                    offenders += [
                        f"{module_name(path)}: {node.module}.{a.name}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                    ]
    assert sorted(offenders) == []


def test_names_are_imported_from_the_module_that_owns_them():
    """A module of batchml that only imports a name does not hand it on: importers go to its owner."""
    files = {module_name(p): p for p in (REPO / "batchml").rglob("*.py")}
    handed_on = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for n in tree.body:
            if isinstance(n, (ast.Assign, ast.AnnAssign)):
                for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                    defined.update(
                        e.id for e in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(e, ast.Name)
                    )
        handed_on[name] = {
            a.asname or a.name: n.module
            for n in tree.body
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("batchml.")
            for a in n.names
            if (a.asname or a.name) not in defined
        }
    offenders = []
    for folder in ("batchml", "tasks", "pipelines"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module in handed_on:
                    offenders += [
                        f"{module_name(path)}: {a.name} from {node.module}, owned by {handed_on[node.module][a.name]}"
                        for a in node.names
                        if a.name in handed_on[node.module] and f"{node.module}.{a.name}" not in files
                    ]
    assert sorted(offenders) == []


def test_storage_and_objectstore_share_the_manifest_module_instead_of_importing_each_other():
    edges = graph()
    assert "batchml.store.storage" not in edges["batchml.store.objectstore"]
    assert {"batchml.store.manifest", "batchml.store.layout"} <= edges["batchml.store.objectstore"] & edges[
        "batchml.store.storage"
    ]


def test_batchml_imports_neither_luigi_nor_tasks():
    offenders = {
        module_name(path): sorted(m for m in imports_of(path) if m.split(".")[0] in ("luigi", "tasks", "pipelines"))
        for path in (REPO / "batchml").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
