"""The documentation that is generated from code stays equal to it, and names only what a clone has."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_lists_every_setting_as_the_code_defines_it():
    from pipelines.settings_doc import render

    assert (REPO / "docs" / "configuration.md").read_text() == render(), (
        "run: python -m pipelines.settings_doc > docs/configuration.md"
    )


def test_no_name_of_an_example_table_in_the_core():
    """The core knows contracts; the examples know their tables."""
    names = re.compile(
        r"\b(trips?|trip_\w+|taxi\w*|pickup\w*|dropoff\w*|\w+_zone|churn\w*|vendor\w*|fare_\w*|passenger\w*)\b", re.I
    )
    offenders = []
    for folder in ("batchml", "tasks"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".html", ".js", ".css", ".cfg") and path.is_file():
                offenders += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in names.finditer(path.read_text())]
    assert not offenders, offenders


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples").glob("*/README.md"))]
# A repository path in backticks or a link: starts with one of the repository's folders.
_REPO_PATH = r"(?:batchml|tasks|pipelines|tests|bench|config|docker|docs|examples)/[\w./-]*\w"


def named_paths(text: str) -> set[str]:
    """The repository paths a document names, in `code` or as a relative link."""
    return set(re.findall(rf"`({_REPO_PATH})`", text)) | set(re.findall(rf"\]\(({_REPO_PATH})\)", text))


def test_docs_name_only_files_the_repository_has():
    """A new user follows the docs from a clone: every file they name is in it, and nothing they cite lives outside it.

    A path git ignores (as a folder) is what a run writes (`examples/taxi/data`, `bench/out`), not a file to ship.
    """
    missing, outside = [], []
    for doc in DOCS:
        text = doc.read_text()
        for name in named_paths(text):
            written_by_a_run = (
                subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{name}/"], cwd=REPO).returncode == 0
            )
            if not written_by_a_run and not any((base / name).exists() for base in (REPO, doc.parent)):
                missing.append(f"{doc.relative_to(REPO)}: {name}")
        if re.search(r"\bNOTES\b|\.\./shared", text):
            outside.append(str(doc.relative_to(REPO)))
    assert not missing, f"named but not in the repository: {missing}"
    assert not outside, f"cites files outside the repository: {outside}"


def test_the_finder_sees_named_paths():
    assert named_paths("see `bench/score.py` and [the guide](docs/adopting.md), not `luigi.cfg`") == {
        "bench/score.py",
        "docs/adopting.md",
    }


def test_install_instructions_work_from_a_clone():
    """batchml is not on PyPI: a bare `pip install batchml` would not resolve (or install someone else's package)."""
    for doc in DOCS:
        assert not re.search(r"pip install batchml(\s|$|`)", doc.read_text()), (
            f"{doc.relative_to(REPO)}: installs batchml from an index"
        )
