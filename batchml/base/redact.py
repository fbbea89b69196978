"""Credentials out of everything batchml prints, logs or writes: the one redaction of the package.

`redact(text)` removes, from any text:
- a URL's user and password: `scheme://user:password@host` -> `scheme://***@host` (tracking URI,
  SQLAlchemy source URL, object store or webhook URL alike);
- the value of a secret-named parameter: `?password=`, `&token=`, `;secret=`, `key=`,
  `X-Amz-Signature=` ..., and `password=...` in a libpq-style DSN;
- an `Authorization: Basic|Bearer ...` credential;
- every literal secret known to the process: the passwords and secret parameters of the URL
  settings, collected once at start (`remember`), with their percent-decoded and basic-auth
  (base64 of user:password) forms, and the value of any environment variable whose name looks
  secret (`AWS_SECRET_ACCESS_KEY`, `MLFLOW_TRACKING_PASSWORD`, `..._TOKEN`).

It is applied where text leaves the process: `RedactFilter` on log records (loggers and the
handlers of batchml/config/logging.cfg), `RedactingStream` around sys.stdout and sys.stderr of
a `luigi --module pipelines` run (MLflow prints its "View run ... at: <tracking URI>" lines
with sys.stdout.write, and its logger writes to sys.stderr), and the causes batchml records
in documents, pages and MLflow tags (batchml.monitor.failures, `redacted` in documents.write_document and
the registry's tags, params, descriptions and logged documents).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import IO, Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
# Shorter values are not taken as secrets: replacing them everywhere would garble the output.
MIN_SECRET = 4
# Environment variables whose value is a secret (PWD is the working directory: not matched).
SECRET_NAMES = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|ACCESS_KEY|API_KEY|PRIVATE_KEY|AUTH_KEY", re.IGNORECASE
)
# Query (or DSN) parameters whose value is a secret.
# A name ending in password, secret, token, key, signature, credential(s) (api_key, sslkey, X-Amz-Signature), or
# whose last part is pass, pwd, sig or auth (db.pass, sig): not monkeys, key_column.
_SECRET_PARAM = (
    r"(?:[\w.-]*(?:password|passwd|secret|token|key|signature|credentials?)|(?:[\w.-]*[_.-])?(?:pass|pwd|sig|auth))"
)
_URL_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@")
_QUERY_SECRET = re.compile(rf"(?P<head>[?&;](?i:{_SECRET_PARAM})=)(?P<value>[^&;#\s'\"]+)")
# `password=...` of a libpq DSN or keyword arguments, and the like, wherever they are.
_DSN_PASSWORD = re.compile(
    r"(?P<head>\b(?i:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token)\s*=\s*['\"]?)"
    r"(?P<value>[^\s&;'\",#]+)"
)
_AUTH_HEADER = re.compile(
    r"(?P<head>(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:basic|bearer|token)\s+)(?P<value>[A-Za-z0-9+/=._~-]+)"
)
# A setting's whole value as one URL: the password runs to the first @ (as SQLAlchemy reads it), '/' included.
_SETTING_USERINFO = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?P<user>[^:/@]*):(?P<password>[^@]*)@")

_known: set[str] = set()


def redact(text: str, environ: dict[str, str] | None = None) -> str:
    """`text` with every credential replaced by ***: URL passwords, secret parameters, known secrets (see the
    module)."""
    if not text:
        return text
    for secret in _secrets() if environ is None else sorted(_known | env_secrets(environ), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    # Each pattern needs its separator: most texts (names, numbers, messages) skip the regular expressions.
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: m["head"] + MASK + "@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m["head"] + MASK, text)
        text = _DSN_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    if ":" in text or "=" in text:
        text = _AUTH_HEADER.sub(lambda m: m["head"] + MASK, text)
    return text


# What redact looked for last: (the environment it was computed from, the remembered secrets,
# the secrets longest first).
_cache: tuple = (None, None, ())


def _secrets() -> tuple[str, ...]:
    """The remembered and environment secrets, longest first; computed again only when the environment or the remembered
    secrets changed (redact runs on every log line, output write and document string: scanning the environment each time
    was most of a date's redaction cost)."""
    global _cache
    raw = getattr(
        os.environ, "_data", None
    )  # os.environ's own dict: compared and copied in C, so no thread changes it midway
    env_seen, known_seen, ordered = _cache
    if raw is not None and raw == env_seen and _known == known_seen:
        return ordered
    seen = (
        dict(raw) if raw is not None else None
    )  # before reading the values: a change meanwhile is seen on the next call
    ordered = tuple(sorted(_known | env_secrets(), key=len, reverse=True))
    _cache = (seen, frozenset(_known), ordered)
    return ordered


def redacted(value: Any) -> Any:
    """A JSON-like document (dicts, lists, strings) with every string in it redacted; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redacted(k): redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted(v) for v in value]
    return value


def env_secrets(environ: dict[str, str] | None = None) -> set[str]:
    """The values of secret-named environment variables, and the secrets of URLs held in any variable."""
    env = _environment() if environ is None else environ
    found = {value for name, value in env.items() if SECRET_NAMES.search(name) and len(value) >= MIN_SECRET}
    for value in env.values():
        if "://" in value and "@" in value:
            found |= secrets_of(value)
    return found


def _environment() -> dict[str, str]:
    """A copy of os.environ. Copying reads each key after listing them, so a variable another thread
    removes meanwhile (MLflow's telemetry thread unsets its own) raises KeyError: copy again."""
    for _ in range(5):
        try:
            return dict(os.environ)
        except KeyError:
            continue
    return {}


def secrets_of(value: str) -> set[str]:
    """The secrets a setting's value holds: a URL's password and secret query values, in the forms they are printed
    in."""
    found: set[str] = set()
    value = value.strip()
    userinfo = _SETTING_USERINFO.match(value)
    if userinfo:
        password = userinfo["password"]
        found |= {password, unquote(password)}
        found.add(
            base64.b64encode(f"{unquote(userinfo['user'])}:{unquote(password)}".encode()).decode()
        )  # an Authorization: Basic header
    try:
        query = urlsplit(value).query if "://" in value else ""
    except ValueError:
        query = ""
    for name, item in parse_qsl(query, keep_blank_values=False):
        if re.fullmatch(_SECRET_PARAM, name, re.IGNORECASE):
            found |= {item, unquote(item)}
    for m in _DSN_PASSWORD.finditer(value):
        found.add(m["value"])
    return {s for s in found if len(s) >= MIN_SECRET}


def remember(*values: str) -> set[str]:
    """Redact the secrets of these setting values everywhere from now on; returns the new ones."""
    new = set()
    for value in values:
        if isinstance(value, str):
            new |= secrets_of(value) - _known
    _known.update(new)
    return new


def remember_literal(*values: str) -> set[str]:
    """Redact these values themselves everywhere from now on, as no pattern can recognise them (a Slack webhook URL,
    whose path is its secret): each value whole, and a URL's path and query on their own; returns the new ones."""
    new = set()
    for value in values:
        value = value.strip() if isinstance(value, str) else ""
        found = {value, *secrets_of(value)}
        if "://" in value:
            try:
                parts = urlsplit(value)
                found |= {parts.path + (f"?{parts.query}" if parts.query else ""), parts.path}
            except ValueError:
                pass
        new |= {s for s in found if len(s) >= MIN_SECRET and s.strip("/")} - _known
    _known.update(new)
    return new


def forget() -> None:
    """Drop the remembered secrets (tests)."""
    _known.clear()


class RedactFilter(logging.Filter):
    """Redacts a log record's message, its exception's traceback and stack; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: logging reports it itself
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingStreamHandler(logging.StreamHandler):
    """A StreamHandler whose records are redacted (logging.cfg's fileConfig cannot attach filters)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self.addFilter(RedactFilter())


class RedactingStream:
    """A text stream (sys.stdout, sys.stderr) whose writes are redacted; everything else is the stream's own."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# The loggers a run's records go through: batchml's, Luigi's, MLflow's and the root.
LOGGERS = ("", "batchml", "luigi", "luigi-interface", "mlflow")


def install(values: list[str] | tuple[str, ...] = ()) -> None:
    """Redact this process's output: remember the secrets of `values` (setting values, command-line
    arguments), wrap sys.stdout and sys.stderr, and filter the records of LOGGERS and their handlers."""
    remember(*values)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactFilter) for f in target.filters):
                target.addFilter(RedactFilter())
