"""The documentation that is generated from code stays equal to it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_lists_every_setting_as_the_code_defines_it():
    from pipelines.settings_doc import render

    assert (REPO / "docs" / "configuration.md").read_text() == render(), "run: python -m pipelines.settings_doc > docs/configuration.md"


def test_no_name_of_an_example_table_in_the_core():
    """The core knows contracts; the examples know their tables."""
    import re

    names = re.compile(r"\b(trips?|trip_\w+|taxi\w*|pickup\w*|dropoff\w*|\w+_zone|churn\w*|vendor\w*|fare_\w*|passenger\w*)\b", re.I)
    offenders = []
    for folder in ("batchml", "tasks"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".html", ".js", ".css", ".cfg") and path.is_file():
                offenders += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in names.finditer(path.read_text())]
    assert not offenders, offenders
