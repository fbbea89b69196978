"""The Luigi settings batchml is unsafe without, set in code wherever the user's luigi.cfg is silent.

A project's own luigi.cfg does not repeat batchml's: without `[retcode]` a failed run exits 0,
without `[RangeDaily]` a backfill looks back only 100 days and stops at 50 tasks, and
without `check_complete_on_run` a task that wrote nothing is DONE. This is the one place
those values live; a value the user set (in any file Luigi read) is kept.
"""

from __future__ import annotations

from importlib import resources

SAFETY_DEFAULTS: dict[str, dict[str, str]] = {
    "retcode": {
        "already_running": "10",
        "missing_data": "20",
        "not_run": "25",
        "task_failed": "30",
        "scheduling_error": "35",
        "unhandled_exception": "40",
    },
    "RangeDaily": {"task_limit": "100000", "days_back": "36500"},
    "worker": {"check_complete_on_run": "true"},
}


def packaged_logging_conf() -> str:
    """The logging configuration shipped inside the installed package (batchml/config/logging.cfg)."""
    return str(resources.files("batchml") / "config" / "logging.cfg")


def defaults() -> dict[str, dict[str, str]]:
    return {**SAFETY_DEFAULTS, "core": {"logging_conf_file": packaged_logging_conf()}}


def _is_set(config, section: str, key: str) -> bool:
    """Luigi reads `a_b` and `a-b` alike, so either spelling counts as set."""
    return any(config.has_option(section, name) for name in (key, key.replace("_", "-")))


def apply_defaults(config) -> dict[str, dict[str, str]]:
    """Set every default the Luigi configuration `config` lacks; returns what was set."""
    applied: dict[str, dict[str, str]] = {}
    for section, values in defaults().items():
        for key, value in values.items():
            if config.has_section(section) and _is_set(config, section, key):
                continue
            if not config.has_section(section):
                config.add_section(section)
            config.set(section, key, value.replace("%", "%%"))
            applied.setdefault(section, {})[key] = value
    return applied
