"""What a `luigi --module pipelines ...` run checks and settles before Luigi schedules anything.

- batchml's settings: a key or section of luigi.cfg that batchml does not know, or a value
  its parameter cannot parse, stops the run with one line naming the file, the section and
  the key (and the closest valid name), before anything is written.
- numeric settings: a value outside the range declared with its setting (tasks/config.py)
  is refused the same way, naming the range; so is a bad parameter on the command line.
- URLs and the contract: a tracking URI, source URL or path, or storage root whose scheme
  no installed MLflow store, SQLAlchemy dialect and driver, or fsspec filesystem handles,
  and a dataset contract that cannot be read (a YAML error with its line and column).
- the central scheduler: when the run is to use luigid and nothing answers at its address,
  one line names the address and where it was configured, instead of Luigi's retries.
- the pid lock: Luigi keys it on the command line only; the lock folder is made per storage
  root, so runs of one command against different roots do not block each other. The root is
  the storage's own (tasks.config.context), resolved against the project folder wherever the
  command runs from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import io
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from configparser import ConfigParser
from configparser import Error as ConfigError
from dataclasses import dataclass
from urllib.parse import urlsplit

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.task_register import Register

# Sections Luigi and its contrib modules read directly (not all are luigi.Config classes, and
# contrib modules are not imported): their keys are Luigi's business, never checked here.
LUIGI_SECTIONS = frozenset(
    {
        "core", "worker", "scheduler", "retcode", "email", "smtp", "sendgrid", "batch_email", "batch_notifier",
        "execution_summary", "task_history", "logging", "resources", "cors", "hdfs", "webhdfs", "hadoop",
        "hadoopcli", "hive", "pig", "spark", "pyspark_runner", "elasticsearch", "mysql", "mssql", "postgres",
        "redshift", "redis", "salesforce", "sqlalchemy", "bigquery", "gcs", "s3", "ecs", "batch", "kubernetes",
        "RangeDaily", "RangeDailyBase", "RangeHourly", "RangeHourlyBase", "RangeByMinutes", "RangeByMinutesBase",
    }
)  # fmt: skip
# How alike an unknown section's name must be to one of batchml's to be taken for a typo of it.
SIMILAR = 0.75


class StartupError(Exception):
    """A reason not to start the run, as the one line the run ends with."""


@dataclass(frozen=True)
class Setting:
    file: str
    section: str
    key: str


def batchml_sections() -> dict[str, type]:
    """batchml's luigi.Config classes by section: every one defined in a `tasks` module."""
    return {
        cls.get_task_family(): cls
        for cls in Register._get_reg().values()
        if isinstance(cls, type) and issubclass(cls, luigi.Config) and cls.__module__.split(".")[0] == "tasks"
    }


def luigi_sections() -> set[str]:
    registered = {
        cls.get_task_family()
        for cls in Register._get_reg().values()
        if isinstance(cls, type) and cls.__module__.split(".")[0] == "luigi"
    }
    return set(LUIGI_SECTIONS) | registered


def config_files() -> list[str]:
    """The files Luigi read its configuration from, in the order it read them (later wins)."""
    from tasks.config import config_files

    return config_files()


def _read(path: str) -> ConfigParser:
    parser = ConfigParser(interpolation=None, default_section="\0")  # [DEFAULT] checked as a section of its own
    parser.optionxform = str
    parser.read(path)
    return parser


def _suggestion(name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_settings(
    files: list[str], sections: dict[str, type], known_sections: set[str], task_families: set[str]
) -> None:
    """Raise StartupError for the first unknown or unparsable setting of batchml's sections in `files`."""
    for path in files:
        try:
            parser = _read(path)
        except ConfigError as exc:
            raise StartupError(f"{path}: not a valid configuration file: {str(exc).splitlines()[0]}") from exc
        for section in parser.sections():
            cls = sections.get(section)
            if cls is None:
                if section in known_sections or section in task_families:
                    continue
                close = difflib.get_close_matches(section, list(sections), n=1, cutoff=SIMILAR)
                if close:
                    raise StartupError(f"{path}: [{section}]: unknown section; did you mean '{close[0]}'?")
                continue  # another tool's section
            params = dict(cls.get_params())
            for key, value in parser.items(section):
                name = key.replace("-", "_")
                param = params.get(name)
                if param is None:
                    raise StartupError(f"{path}: [{section}] {key}: unknown setting{_suggestion(name, params)}")
                problem = value_problem(param, value)
                if problem:
                    raise StartupError(f"{path}: [{section}] {key} = {value!r}: {problem}")


def value_problem(param, value: str) -> str:
    """Why `value` is not a value of `param` (its allowed range named, for a numeric setting), or "" when it is."""
    allowed = getattr(param, "allowed", None)
    try:
        parsed = param.parse(value)
    except Exception as exc:  # each Parameter type raises its own kind
        if allowed is not None:
            return f"not {'an integer' if allowed.integer else 'a number'}; allowed: {allowed}"
        return f"{type(exc).__name__}: {exc}"
    if allowed is not None and not allowed.admits(parsed):
        return f"out of range; allowed: {allowed}"
    try:
        param.normalize(parsed)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def where_set(section: str, keys: tuple[str, ...], files: list[str]) -> Setting | None:
    """The last file (the one Luigi takes the value from) that sets any of `keys` in `section`."""
    found = None
    for path in files:
        try:
            parser = _read(path)
        except ConfigError:
            continue
        for key in keys:
            if parser.has_option(section, key):
                found = Setting(path, section, key)
    return found


def root_lock_dir(base: str, root: str) -> str:
    """A pid-lock folder under `base` for one storage root (a local root resolved to its real path)."""
    resolved = (
        root.rstrip("/")
        if "://" in root and not root.startswith("file://")
        else os.path.realpath(os.path.expanduser(root.removeprefix("file://")))
    )
    return os.path.join(base, "root-" + hashlib.sha256(resolved.encode()).hexdigest()[:16])


SCHEDULER_KEYS = {
    "url": ("default_scheduler_url", "default-scheduler-url", "scheduler_url"),
    "host": ("default_scheduler_host", "default-scheduler-host", "scheduler_host"),
    "port": ("default_scheduler_port", "default-scheduler-port", "scheduler_port"),
}


def check_scheduler(core, files: list[str], argv: list[str], timeout: float = 5.0) -> None:
    """Raise StartupError when the run is to use a central scheduler that nothing answers at."""
    if core.local_scheduler or core.assistant:
        return
    url = core.scheduler_url or f"http://{core.scheduler_host}:{core.scheduler_port}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return  # http+unix:// and the like: left to Luigi
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
        return
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
    from_cli = [
        flag
        for flag in ("--scheduler-url", "--scheduler-host", "--scheduler-port")
        if any(a.split("=")[0] == flag for a in argv)
    ]
    if from_cli:
        origin = "from the command line (" + ", ".join(from_cli) + ")"
    else:
        settings = [s for s in (where_set("core", SCHEDULER_KEYS[k], files) for k in ("url", "host", "port")) if s]
        origin = (
            "; ".join(f"[core] {s.key} in {s.file}" for s in settings)
            or "Luigi's default, as no [core] local_scheduler = true is set"
        )
    raise StartupError(
        f"cannot reach the central scheduler at {parts.hostname}:{port} ({origin}): {reason}; start luigid there or "
        "run with --local-scheduler"
    )


def lock_base(config) -> str:
    """The pid-lock folder the user configured, or Luigi's default."""
    return config.get("core", "lock_pid_dir", os.path.join(tempfile.gettempdir(), "luigi"))


def exit_with(message: str, code: int) -> None:
    """End the run with `message` as its last line."""
    sys.stdout.flush()
    print(f"batchml: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code or 1)


def is_luigi_command() -> bool:
    """True in the `luigi` console script or `python -m luigi`, not when pipelines is imported as a library."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    in_package = os.path.basename(os.path.dirname(sys.argv[0])) == "luigi" if sys.argv else False
    return "luigi.cmdline" in sys.modules and (program == "luigi" or (program == "__main__.py" and in_package))


@contextlib.contextmanager
def command_line(argv: list[str]):
    """Luigi's command-line parser for `argv`, made the global one while the block runs. Built once per command line:
    Luigi builds its argparse parser from every task's and setting's parameters, and the start-up checks
    and the per-date table ask for it five times before Luigi parses the line once more for the run."""
    key = tuple(argv)
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = CmdlineParser(argv)
    before, CmdlineParser._instance = CmdlineParser._instance, parser
    try:
        yield parser
    finally:
        CmdlineParser._instance = before


_PARSERS: dict[tuple[str, ...], CmdlineParser] = {}


@contextlib.contextmanager
def command_line_quietly(argv: list[str]):
    """`command_line(argv)`, with what the parser prints (--help, its own errors) swallowed: the start-up checks report
    in their own words."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        command_line(argv) as parser,
    ):
        yield parser


def check_task_parameters(argv: list[str]) -> None:
    """A bad parameter on the command line is one line naming it, not a traceback: the task's own (`--date 2026-13-45`,
    a missing `--date`, `--stop` not after `--start`, `--of` naming no task) and a setting given there
    (`--dask-n-workers 0`)."""
    try:
        with command_line_quietly(argv) as parser:
            task = parser._get_task_cls()
            family, args = task.get_task_family(), parser.known_args
            given = [(name, param, getattr(args, name, None)) for name, param in task.get_params()]
            missing = [name for name, param, value in given if value is None and not _has_value(param, family, name)]
    except (Exception, SystemExit):  # --help, or a command line Luigi rejects with its own message
        return
    parsed = {}
    for name, param, value in given:
        if value is None or value == "":
            continue
        try:
            parsed[name] = param.parse(value)
        except Exception as exc:  # ValueError, or TaskClassNotFoundException for --of
            if isinstance(param, luigi.DateParameter):
                reason = "not a date as " + _date_format(param)
            else:
                lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
                reason = lines[0] + (" " + ", ".join(lines[1:]) if len(lines) > 1 else "")
            raise StartupError(f"{family} --{name.replace('_', '-')} {value}: {reason}") from None
        problem = value_problem(param, value)
        if problem:
            raise StartupError(f"{family} --{name.replace('_', '-')} {value}: {problem}")
    for name in missing:
        param = dict(task.get_params())[name]
        shape = f" ({_date_format(param)})" if isinstance(param, luigi.DateParameter) else ""
        raise StartupError(f"{family} --{name.replace('_', '-')}: required{shape}")
    start, stop = parsed.get("start"), parsed.get("stop")
    names = {name for name, _, _ in given}
    if {"start", "stop"} <= names and start is None and stop is None and not {"start", "stop"} & set(missing):
        unset = False
        with contextlib.suppress(Exception), command_line(argv):  # neither set in the config file either
            unset = all(dict(task.get_params())[n]._get_value(family, n) is None for n in ("start", "stop"))
        if unset:
            raise StartupError(f"{family}: --start or --stop is required (YYYY-MM-DD; --stop is exclusive)")
    if isinstance(start, dt.date) and isinstance(stop, dt.date) and stop <= start:
        raise StartupError(f"{family} --stop {stop} is not after --start {start} (--stop is exclusive): no date to run")
    for section, cls in batchml_sections().items():
        for name, param in cls.get_params():
            value = getattr(args, f"{section}_{name}", None)
            problem = value_problem(param, value) if isinstance(value, str) else ""
            if problem:
                raise StartupError(f"--{section}-{name.replace('_', '-')} {value}: {problem}")


def _has_value(param, family: str, name: str) -> bool:
    try:
        return param.has_task_value(family, name)
    except Exception:  # a value in the config file that does not parse: Luigi names it
        return True


def _date_format(param) -> str:
    return param.date_format.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")


@dataclass(frozen=True)
class UrlSetting:
    section: str
    key: str
    value: str  # as set
    resolved: str  # as batchml opens it
    problem: Callable[[str], str]  # why it cannot be opened, or ""


def url_settings() -> list[UrlSetting]:
    """The settings naming a store, a database or a filesystem by URL, with the check each needs; within Luigi's
    command-line context."""
    from batchml.model.preflight import filesystem_problem, sql_url_problem, tracking_uri_problem
    from tasks.config import mlflow, source, storage, tables, tracking_uri

    found = [UrlSetting("mlflow", "tracking_uri", mlflow().tracking_uri, tracking_uri(), tracking_uri_problem)]
    found.append(UrlSetting("storage", "root", storage().root, storage().root, filesystem_problem))
    catalog = tables().catalog.strip()
    if tables().enabled and catalog and not catalog.startswith("rest+"):  # a SQL catalog: its dialect and driver
        found.append(UrlSetting("tables", "catalog", catalog, catalog, sql_url_problem))
    cfg = source()
    if cfg.kind == "sql":
        found.append(UrlSetting("source", "url", cfg.url, cfg.url, sql_url_problem))
    if cfg.kind == "files":
        found += [
            UrlSetting("source", key, getattr(cfg, key), getattr(cfg, key), filesystem_problem)
            for key in ("path", "labels_path")
        ]
    return found


def check_urls(settings: list[UrlSetting], files: list[str], argv: list[str]) -> None:
    """Raise StartupError for the first URL setting no installed plugin (MLflow store, SQLAlchemy dialect and driver,
    fsspec filesystem) handles."""
    from batchml.model.preflight import without_userinfo

    for setting in settings:
        if not setting.resolved:
            continue
        problem = setting.problem(setting.resolved)
        if problem:
            shown = without_userinfo(setting.value)
            raise StartupError(f"{origin(setting.section, setting.key, files, argv, shown)}: {problem}")


def origin(section: str, key: str, files: list[str], argv: list[str], shown: str) -> str:
    """Where a setting's value came from, as messages name it: `--section-key VALUE`, `FILE: [section] key = 'VALUE'`,
    or its default."""
    flag = f"--{section}-{key.replace('_', '-')}"
    if any(a.split("=")[0] == flag for a in argv):
        return f"{flag} {shown}"
    where = where_set(section, (key, key.replace("_", "-")), files)
    if where:
        return f"{where.file}: [{section}] {where.key} = {shown!r}"
    return f"[{section}] {key} = {shown!r} (the default)"


def unordered_settings() -> list[tuple[tuple[tuple[str, str], object], tuple[tuple[str, str], object]]]:
    """The pairs of tasks.config.ORDERED whose values are the wrong way round, with their values; within Luigi's
    command-line context."""
    from tasks.config import ORDERED

    sections = batchml_sections()
    value = {pair: getattr(sections[pair[0]](), pair[1]) for pairs in ORDERED for pair in pairs}
    return [((low, value[low]), (high, value[high])) for low, high in ORDERED if value[low] > value[high]]


def contract_problem() -> str:
    """Why the dataset contract ([schema] path) cannot be used (unreadable, not YAML with its line and column, a bad
    rule), or ""."""
    from batchml.base.errors import SchemaError
    from tasks.config import load_contract

    try:
        load_contract()
    except SchemaError as exc:
        return str(exc)
    return ""


def prepare(argv: list[str]) -> None:
    """Check the settings and the scheduler and key the pid lock on the storage root; exit on a problem."""

    config = luigi.configuration.get_config()
    files = config_files()
    code = int(config.get("retcode", "scheduling_error", 35))
    try:
        check_settings(files, batchml_sections(), luigi_sections(), set(Register._get_reg()))
        check_task_parameters(argv)
    except StartupError as exc:
        exit_with(str(exc), code)
    try:
        with command_line_quietly(argv):
            from tasks.config import context

            root = (
                context().settings.storage_root
            )  # as the storage opens it: resolved against the project folder, not the current one
            urls = url_settings()
            contract = contract_problem()
            unordered = unordered_settings()
    except (
        Exception,
        SystemExit,
    ):  # --help, a command line Luigi will reject with its own message, or a task not yet imported
        return
    try:
        check_urls(urls, files, argv)
        for (low, low_value), (high, high_value) in unordered:
            shown = origin(*low, files, argv, str(low_value))
            raise StartupError(
                f"{shown}: more than [{high[0]}] {high[1]} = {high_value}; allowed: at most [{high[0]}] {high[1]}"
            )
        if contract:
            raise StartupError(contract)
    except StartupError as exc:
        exit_with(str(exc), code)
    base = lock_base(config)
    os.makedirs(base, exist_ok=True)  # Luigi makes only the last folder of lock_pid_dir
    config.set("core", "lock_pid_dir", root_lock_dir(base, root).replace("%", "%%"))
    Register.clear_instance_cache()
    with command_line(argv):
        core = luigi.interface.core()
    try:
        check_scheduler(core, files, argv, timeout=float(config.get("core", "rpc_connect_timeout", 5)))
    except StartupError as exc:
        exit_with(str(exc), int(config.get("retcode", "unhandled_exception", 40)))
