"""The project a task belongs to: a significant parameter of every task, so projects sharing one luigid never share a
task id.

Two teams' `DailyScore(date=2026-07-25)` would otherwise be one task on a central scheduler,
and the second run would get no permission to run it. The value is the project's own name
(`[project] name`, else its contract's dataset name), resolved from the configuration when
the command line does not give it: users keep typing `DailyScore --date D`. A `--project`
given to the root task holds for every task of the process, so a run never mixes identities.
"""

from __future__ import annotations

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.parameter import _no_value
from luigi.task_register import Register, TaskClassException

from batchml.base.redact import redact
from tasks.config import project_name


class ProjectParameter(luigi.Parameter):
    """A task's project: --project, [Task] project, the root task's --project, then the project's configured name."""

    def _value_iterator(self, task_name, param_name):
        yield from super()._value_iterator(task_name, param_name)
        yield (_root_task_value(param_name), None)
        yield (project_name(), None)


def _root_task_value(param_name: str):
    """The root task's command-line value of `param_name`, or no value; read once per command line (every task made
    asks)."""
    parser = CmdlineParser.get_instance()
    seen = _root_values.get(param_name)
    if (
        seen is None or seen[0] is not parser
    ):  # the parser itself is kept: a new command line is never taken for an old one
        seen = _root_values[param_name] = (parser, _read_root_value(parser, param_name))
    return seen[1]


_root_values: dict[str, tuple] = {}  # param_name -> (the command line's parser, its root task's value)


def _read_root_value(parser, param_name: str):
    root = getattr(parser.known_args, "root_task", None) if parser else None
    if not root:
        return _no_value
    try:
        root_params = dict(Register.get_task_cls(root).get_params())
    except TaskClassException:
        return _no_value
    if param_name not in root_params:
        return _no_value
    found = getattr(parser.known_args, param_name, None)  # the root task's own flag, --project
    return _no_value if found is None else root_params[param_name].parse(found)


class InProject:
    """Mixin of every batchml task: the `project` parameter, left out of the task's printed name.

    luigid shows it (its task list and graph list every public parameter); the run's own
    output names tasks as `CheckMetrics(date=2026-06-12)`, as its project is the run's.
    """

    project = ProjectParameter(
        positional=False,
        description=(
            "The project the task belongs to (default: [project] name, else the contract's dataset name); part of its "
            "task id."
        ),
    )

    def on_failure(self, exception) -> str:
        """The traceback Luigi sends to the scheduler (luigid keeps and shows it), without credentials."""
        return redact(super().on_failure(exception))

    def __repr__(self) -> str:
        params = dict(self.get_params())
        shown = [
            f"{name}={params[name].serialize(value)}"
            for name, value in self.param_kwargs.items()
            if params[name].significant and name != "project"
        ]
        return f"{self.get_task_family()}({', '.join(shown)})"
