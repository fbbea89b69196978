"""`make test` needs nothing beside the clone: no test or benchmark reads a file outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in ("tests", "bench") for p in (REPO / folder).rglob("*.py"))


def escapes(path: Path) -> list[str]:
    """The places in a file that name a path above the repository: `parents[k]` past its root, `.parent` of the root, `..`."""
    found = []
    depth = len(path.relative_to(REPO).parts)  # parents[depth - 1] is the repository itself
    text = path.read_text()
    for match in re.finditer(r"\.parents\[(\d+)\]", text):
        if int(match.group(1)) >= depth:
            found.append(match.group(0))
    found += re.findall(r"\bREPO\.parent\b", text)
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"(^|/)\.\./shared\b|^shared/data\b", node.value):
            found.append(node.value)
    return found


def test_no_test_reads_outside_the_repository():
    offenders = {str(p.relative_to(REPO)): e for p in SOURCES if p != Path(__file__).resolve() and (e := escapes(p))}
    assert not offenders, f"paths above the repository (copy the fixture into tests/data/): {offenders}"


def test_the_finder_sees_a_path_above_the_repository(tmp_path):
    probe = REPO / "tests" / "unit" / "_probe_escape.py"
    probe.write_text('from pathlib import Path\nX = Path(__file__).resolve().parents[3] / "shared" / "data"\nY = "../shared/data/x.csv"\n')
    try:
        assert escapes(probe) == [".parents[3]", "../shared/data/x.csv"]
    finally:
        probe.unlink()


def test_the_real_samples_ship_in_the_repository():
    samples = sorted((REPO / "tests" / "data" / "tlc").glob("*.csv.gz"))
    assert [p.name for p in samples] == [f"yellow_tripdata_sample_2018-0{m}.csv.gz" for m in (1, 2, 3)]
