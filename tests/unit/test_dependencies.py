"""Every third-party module that batchml, tasks and pipelines import is declared in setup.cfg install_requires."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("batchml", "tasks", "pipelines")


def imported_top_levels() -> dict[str, str]:
    """Top-level module name -> one file importing it, for absolute imports in PACKAGES."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def declared_list(section: str, key: str) -> list[str]:
    """The distributions one requirement list of setup.cfg names, in order, repeats kept."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = [line.split("#")[0].strip() for line in cfg[section][key].splitlines()]
    return [canonical(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]) for line in lines if line]


def declared_distributions() -> set[str]:
    return set(declared_list("options", "install_requires"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_declared():
    modules = packages_distributions()
    ours = set(PACKAGES)
    declared = declared_distributions()
    undeclared = {}
    for top, where in imported_top_levels().items():
        if top in ours or top in sys.stdlib_module_names or top == "__future__":
            continue
        dists = {canonical(d) for d in modules.get(top, [])}
        assert dists, f"{top} (imported in {where}) belongs to no installed distribution"
        if not dists & declared:
            undeclared[top] = (sorted(dists), where)
    assert not undeclared, f"imported but not in setup.cfg install_requires: {undeclared}"


def test_the_report_templates_dependency_is_declared():
    assert "jinja2" in declared_distributions()


def test_no_requirement_is_declared_twice():
    for section, key in [
        ("options", "install_requires"),
        ("options.extras_require", "s3"),
        ("options.extras_require", "test"),
    ]:
        names = declared_list(section, key)
        assert len(names) == len(set(names)), (
            f"[{section}] {key} repeats {sorted({n for n in names if names.count(n) > 1})}"
        )


def test_the_type_checker_is_pinned_with_the_test_extra():
    from importlib.metadata import requires, version

    assert "mypy" in declared_list("options.extras_require", "test")
    pinned = pins()
    needed = {
        canonical(r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip())
        for r in requires("mypy") or []
        if "extra ==" not in r
    }
    needed = {d for d in needed | {"mypy"} if d != "tomli"}  # tomli: python < 3.11 only
    for dist in needed:
        assert dist in pinned and version(dist) == pinned[dist], (
            f"{dist}: pin it in constraints.txt at the installed version"
        )


def pins() -> dict[str, str]:
    lines = [
        line.strip()
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    return {canonical(line.split("==")[0]): line.split("==")[1] for line in lines}


def test_constraints_pin_every_declared_dependency_at_the_version_installed_here():
    from importlib.metadata import version

    pinned = pins()
    assert "batchml" not in pinned
    for dist in declared_distributions():
        assert dist in pinned, f"{dist} is not in constraints.txt: run make constraints"
        assert version(dist) == pinned[dist], f"{dist} {version(dist)} installed, {pinned[dist]} pinned"


def test_make_venv_the_image_and_ci_install_with_the_constraints():
    assert "pip install --quiet -c constraints.txt -e '.[test]'" in (REPO / "Makefile").read_text()
    assert "--constraint /tmp/constraints.txt" in (REPO / "docker" / "Dockerfile").read_text()
    assert "!constraints.txt" in (REPO / ".dockerignore").read_text().splitlines()
    assert "make test" in (REPO / ".ci" / "run").read_text()  # CI builds its venv through the Makefile


def test_make_test_type_checks_batchml_after_ruff():
    import tomllib

    lint = (REPO / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert lint.index("ruff format --check") < lint.index("$(BIN)/mypy")
    settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert settings["packages"] == ["batchml"] and settings["python_version"] == "3.11"
