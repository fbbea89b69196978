"""`make test` needs nothing beside the clone: no test or benchmark reads a file outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in ("tests", "bench") for p in (REPO / folder).rglob("*.py"))


_OPENERS = {"Path", "open", "read_csv", "read_parquet", "read_table", "copy", "copyfile"}


def escapes(text: str, depth: int) -> list[str]:
    """The places in a source at `depth` folders below the repository that name a path above it:
    `parents[k]` past the root, `REPO.parent`, and a relative path string that climbs out (`../x`)."""
    found = [
        m.group(0) for m in re.finditer(r"\.parents\[(\d+)\]", text) if int(m.group(1)) >= depth
    ]  # parents[depth - 1] is the repository
    found += re.findall(r"\bREPO\.parent\b", text)
    for node in ast.walk(ast.parse(text)):  # a string used as a path: joined with `/`, or given to Path() or a reader
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            used = [node.left, node.right]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in _OPENERS:
            used = node.args[:1]
        else:
            continue
        found += [
            n.value
            for n in used
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("../")
        ]
    return found


def escapes_of(path: Path) -> list[str]:
    return escapes(path.read_text(), len(path.relative_to(REPO).parts))


def test_no_test_reads_outside_the_repository():
    offenders = {str(p.relative_to(REPO)): e for p in SOURCES if p != Path(__file__).resolve() and (e := escapes_of(p))}
    assert not offenders, f"paths above the repository (copy the fixture into tests/data/): {offenders}"


def test_the_finder_sees_a_path_above_the_repository():
    above = 3  # tests/unit/x.py: two levels up is the repository, one more the folder above it
    probe = (
        f'from pathlib import Path\nX = Path(__file__).resolve().parents[{above}] / "fixtures"\n'
        'Y = Path(__file__).parents[2] / "tests"\n'
        'Z = open("../fixtures/x.csv")\nW = Path("data") / "../../up"\nhref = "../index.html"\n'
    )
    found = sorted(escapes(probe, depth=3))
    assert found == ["../../up", "../fixtures/x.csv", f".parents[{above}]"]


def test_the_real_samples_ship_in_the_repository():
    samples = sorted((REPO / "tests" / "data" / "tlc").glob("*.csv.gz"))
    assert [p.name for p in samples] == [f"yellow_tripdata_sample_2018-0{m}.csv.gz" for m in (1, 2, 3)]
