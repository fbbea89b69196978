"""The configuration reference, docs/configuration.md, written from the luigi.Config classes themselves.

    python -m pipelines.settings_doc > docs/configuration.md

A test keeps the file equal to this output, so the reference never lags the code.
"""

from __future__ import annotations

import inspect
import re

import luigi
from luigi.parameter import _no_value

import pipelines  # noqa: F401  (registers every section)
from pipelines.defaults import SAFETY_DEFAULTS
from pipelines.startup import batchml_sections
from tasks.config import ORDERED

HEADER = """# Configuration reference

Every setting batchml reads, by `luigi.cfg` section. This page is generated from the
`luigi.Config` classes in `tasks/` (`python -m pipelines.settings_doc > docs/configuration.md`);
a test fails when it is out of date.

- A project's `luigi.cfg` is found the way Luigi finds it: `./luigi.cfg` in the folder the
  command runs from, or the files named by `LUIGI_CONFIG_PATH` (the last wins). Relative
  paths in settings resolve against **the folder of that file** (the project), never
  against the current directory.
- Any setting can be given on the command line: `--<section>-<key> VALUE`, with `-` for `_`
  (`--storage-root s3://bucket/prefix`, `--source-options '{"rows_per_day": 1000}'`).
- An unknown section or key of batchml's sections stops the run at start with one line
  naming the file, the section, the key and the closest valid name (exit 35); so does a
  value outside its **allowed** range, naming the range, and a URL (tracking URI, source
  URL or path, storage root) whose scheme no installed MLflow store, SQLAlchemy dialect
  and driver, or fsspec filesystem handles. Nothing is written before these checks.
- luigi.cfg interpolates `%`: write a literal `%` as `%%` (`{date:%%Y-%%m}` in a path
  template), or use the `{year}`, `{month}`, `{day}` fields, which need none.
- Secrets (database passwords, object-store keys) come from the environment, never from
  a file in git: `AWS_ACCESS_KEY_ID`, a DSN in `[source] url` read from a secret, and so on.
"""


def render() -> str:
    bounds = ", ".join(f"`[{low[0]}] {low[1]}` <= `[{high[0]}] {high[1]}`" for low, high in ORDERED)
    out = [HEADER + f"- Settings that bound each other are checked at start as well: {bounds}.\n"]
    for section, cls in sorted(batchml_sections().items()):
        out.append(section_table(section, cls))
    out.append("\n## Set by batchml when a project's luigi.cfg does not\n")
    out.append("So that a project's own file cannot lose them by leaving them out (`pipelines/defaults.py`):\n")
    out.append("| section | key | value |\n|---|---|---|")
    for section, values in SAFETY_DEFAULTS.items():
        for key, value in values.items():
            out.append(f"| `[{section}]` | `{key}` | `{value}` |")
    out.append("| `[core]` | `logging_conf_file` | the packaged `batchml/config/logging.cfg` |")
    return "\n".join(out) + "\n"


def section_table(section: str, cls: type) -> str:
    """One section: its title, what it is, where the defaults of its core policies live, and a row per setting."""
    doc = cls.__dict__.get("__doc__")
    out = [f"\n## [{section}]\n"]
    if doc:
        out.append(" ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) + "\n")  # the first paragraph
    policies = list(dict.fromkeys(param.policy[0] for _, param in cls.get_params() if getattr(param, "policy", None)))
    if policies:
        homes = " and ".join(f"`{p.__name__}` in `{p.__module__.replace('.', '/')}.py`" for p in policies)
        others = ", ".join(f"`{name}`" for name, param in cls.get_params() if not getattr(param, "policy", None))
        out.append(f"The defaults live in {homes}{f' (all but {others})' if others else ''}.\n")
    out.append("| key | default | allowed | what it does |\n|---|---|---|---|")
    for name, param in cls.get_params():
        default = param._default
        shown = (
            "*(required)*" if default is _no_value else f"`{_show(default)}`" if _show(default) != "" else "*(empty)*"
        )
        text = re.sub(
            r"Choices: \{(.*)\}",
            lambda m: "Choices: " + ", ".join(sorted(m.group(1).split(", "))),
            param.description or "",
        )
        text = text.replace("|", "\\|")
        out.append(f"| `{name}` | {shown} | {_allowed(param)} | {text} |")
    return "\n".join(out)


def _allowed(param) -> str:
    """The values a setting takes: a numeric setting's declared range, else its kind."""
    allowed = getattr(param, "allowed", None)
    if allowed is not None:
        return str(allowed).replace("any finite ", "a finite ")
    if isinstance(param, luigi.ListParameter) and hasattr(param, "choices"):  # tasks.config.NamesParameter
        listed = f" of {', '.join(param.choices)}" if param.choices else ""
        return f"a list{listed}: `a, b` or a JSON list"
    kinds = [
        (luigi.ChoiceParameter, "one of the choices"),
        (luigi.BoolParameter, "true or false"),
        (luigi.DictParameter, "a JSON object"),
        (luigi.ListParameter, "a JSON list"),
        (luigi.DateParameter, "a date (YYYY-MM-DD)"),
    ]
    return next((kind for cls, kind in kinds if isinstance(param, cls)), "text")


def _show(value) -> str:
    import json

    if isinstance(value, (dict, list, tuple)) or type(value).__name__ == "FrozenOrderedDict":
        return json.dumps(value if not hasattr(value, "get_wrapped") else value.get_wrapped())
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


if __name__ == "__main__":
    print(render(), end="")
