"""The Luigi settings batchml is unsafe without, set in code wherever the user's luigi.cfg is silent.

A project's own luigi.cfg does not repeat batchml's: without `[retcode]` a failed run exits 0,
without `[RangeDaily]` a backfill looks back only 100 days and stops at 50 tasks, and
without `check_complete_on_run` a task that wrote nothing is DONE. This is the one place
those values live; a value the user set (in any file Luigi read) is kept.

It also settles what a run's output may show: `redact_output` collects the secrets of every
setting and command-line argument once, before anything is scheduled, and has batchml.base.redact
remove them (and any URL's credentials) from all the process prints and logs.
"""

from __future__ import annotations

import re
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


def setting_values(config) -> list[str]:
    """Every value of every section Luigi read (interpolated, else raw): where URL settings and their credentials
    are."""
    values = []
    for section in config.sections():
        for key in config.options(section):
            for raw in (False, True):
                try:
                    values.append(config.get(section, key, raw=raw))
                    break
                except Exception:  # an interpolation that fails: its raw text
                    continue
    return values


# Settings whose URLs are secrets whole (a Slack webhook's path is its secret): no pattern recognises them.
SECRET_URL_SETTINGS = (("alerts", "webhooks"),)


def secret_urls(config, argv: list[str]) -> list[str]:
    """The URLs of SECRET_URL_SETTINGS, in any file Luigi read or on the command line (`--alerts-webhooks URL`)."""
    texts = []
    for section, key in SECRET_URL_SETTINGS:
        for name in dict.fromkeys((key, key.replace("_", "-"))):
            if config.has_option(section, name):
                texts.append(config.get(section, name))
        flag = f"--{section}-{key}".replace("_", "-")
        texts += [a.split("=", 1)[1] for a in argv if a.startswith(flag + "=")]
        texts += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]
    return [item for text in texts for item in re.split(r"[\s,\[\]\"']+", text) if "://" in item]


def redact_output(config, argv: list[str]) -> None:
    """Redact the secrets of every setting and argument (`--mlflow-tracking-uri http://u:p@h`) from the process's
    output, and the webhook URLs whole."""
    from batchml.base.redact import install, remember_literal

    install([*setting_values(config), *argv])
    remember_literal(*secret_urls(config, argv))


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
