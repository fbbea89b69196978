"""Alerts: what to tell someone about a date, said once per onset, and delivered without ever failing the date.

Kinds: conditions, which hold over a run of dates (`failed_date`, `drift_onset`, `estimated_breach`,
`realized_breach`), and events, which happen once (`promotion`, `rejection`, `rollback`).

Onsets (`decide`, pure): a condition alerts on the date it starts holding, not on every date while it
lasts. Its state, one entry per condition key in the JSON document `AlertState` (the caller keeps it
under monitoring/, e.g. monitoring/alerts.json), says whether it holds, since when and the last date
observed. For a date D observed about a condition:
- D at or after the last date observed: holds and was not holding (or held for another model
  version) -> one alert, the episode starts at D; holds and was holding -> nothing (a rerun of D
  included); does not hold and was holding -> the episode ends at D, nothing sent; a later onset
  alerts again. A date not observed (not run, or the condition not evaluated) changes nothing: only
  an observation that the condition does not hold ends it.
- D before the last date observed (a backfill run out of order): nothing sent and nothing changed.
  An older date never re-opens, ends or restarts what a newer date decided.
An event alerts once per key (its kind, project, model, version and date): a rerun sends nothing new.

Delivery (`deliver`): every webhook gets one POST per call with all the alerts of the call, in
Slack-compatible JSON (`{"text": ..., "blocks": [...]}`), over urllib, each attempt bounded by
`timeout_seconds`, at most `retries` more attempts on a connection error, a timeout, a 429 or a 5xx,
waiting `backoff_seconds` doubled each time. A user and password in a webhook URL are sent as HTTP basic
auth. Email goes through an injected sender with the signature of `luigi.notifications.send_email`
(subject, message, sender, recipients), so Luigi's own [email] settings apply and this module imports
no Luigi. Nothing raises to the caller: each webhook and the email give a `DeliveryRecord` (target,
status, attempts, error) for the date's monitoring.

Secrets: a webhook URL is shown only as `label(url)` (scheme, host and port, its path masked, and a
short fingerprint to tell webhooks apart): a Slack webhook's path is its secret, which no pattern of
batchml.base.redact can recognise. Errors, records, logs and the payload are passed through batchml.base.redact.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from batchml.base.redact import redact, redacted
from batchml.base.setting import count, names, number, seconds, setting

log = logging.getLogger(__name__)

CONDITIONS = ("failed_date", "drift_onset", "estimated_breach", "realized_breach")
EVENTS = ("promotion", "rejection", "rollback")
KINDS = CONDITIONS + EVENTS
TITLES = {
    "failed_date": "Date failed",
    "drift_onset": "Drift onset",
    "estimated_breach": "Estimated performance breach",
    "realized_breach": "Realized performance breach",
    "promotion": "Promotion",
    "rejection": "Candidate rejected",
    "rollback": "Rollback",
}
STATE_VERSION = 1
_RETRY_HTTP = {408, 429, 500, 502, 503, 504}
_MAX_BLOCKS = 40  # Slack accepts at most 50 blocks in a message
_MAX_SECTION = 2900  # and at most 3,000 characters in a section's text


class AlertError(ValueError):
    """An alert, alert state or alert setting that breaks a rule; the message names it."""


def _iso(value: str | dt.date, what: str) -> str:
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise AlertError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None
    return text


def condition_key(kind: str, project: str, model: str = "", subject: str = "") -> str:
    """The key of a condition in the state: one per kind, project, model and subject (e.g. a metric)."""
    return "/".join(p for p in (kind, project, model, subject) if p)


@dataclass(frozen=True)
class Alert:
    """One thing to tell: a condition's onset or an event. `key` de-duplicates it (see the module)."""

    kind: str
    project: str
    date: str
    summary: str
    model: str = ""
    version: str | None = None
    details: dict = field(default_factory=dict)
    subject: str = ""  # what, within the kind, the condition is about: a metric, a check
    key: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise AlertError(f"alert kind {self.kind!r} is not one of {', '.join(KINDS)}")
        object.__setattr__(self, "date", _iso(self.date, f"{self.kind} alert date"))
        if "\n" in self.summary:
            raise AlertError(f"{self.kind} alert summary must be one line: {self.summary!r}")
        if self.version is not None:
            object.__setattr__(self, "version", str(self.version))
        if not self.key:
            if self.kind in CONDITIONS:
                key = condition_key(self.kind, self.project, self.model, self.subject)
            else:
                key = "/".join(p for p in (self.kind, self.project, self.model, self.version or "", self.date) if p)
            object.__setattr__(self, "key", key)

    @property
    def is_condition(self) -> bool:
        return self.kind in CONDITIONS

    def to_dict(self) -> dict:
        return redacted(asdict(self))


@dataclass(frozen=True)
class Cleared:
    """A condition evaluated on `date` and found not to hold (its key as `condition_key` makes it)."""

    key: str
    date: str

    def __post_init__(self):
        object.__setattr__(self, "date", _iso(self.date, f"cleared condition {self.key} date"))

    @classmethod
    def of(cls, kind: str, project: str, date: str | dt.date, model: str = "", subject: str = "") -> Cleared:
        if kind not in CONDITIONS:
            raise AlertError(f"only a condition can be cleared: {kind!r} is not one of {', '.join(CONDITIONS)}")
        key = condition_key(kind, project, model, subject)
        return cls(key, _iso(date, f"cleared condition {key} date"))


@dataclass(frozen=True)
class ConditionState:
    """A condition as last observed: whether it holds, since when (the date it alerted), the last date observed."""

    holds: bool
    last: str
    since: str | None = None
    ended: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class AlertState:
    """The alert state document: conditions by key, and the keys of the events already sent (with their date)."""

    conditions: dict[str, ConditionState] = field(default_factory=dict)
    sent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping | None, where: str = "alert state") -> AlertState:
        """The state read from its JSON document; None (no document yet) is the empty state."""
        if not doc:
            return cls()
        if doc.get("version") != STATE_VERSION:
            raise AlertError(f"{where}: version {doc.get('version')!r} is not {STATE_VERSION}")
        try:
            conditions = {key: ConditionState(**value) for key, value in doc.get("conditions", {}).items()}
        except TypeError as exc:
            raise AlertError(
                f"{where}: a condition does not have the fields holds, last, since, ended, version ({exc})"
            ) from None
        return cls(conditions, dict(doc.get("sent", {})))

    def to_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "conditions": {key: asdict(value) for key, value in sorted(self.conditions.items())},
            "sent": dict(sorted(self.sent.items())),
        }


def decide(state: AlertState, observed: Iterable[Alert | Cleared]) -> tuple[list[Alert], AlertState]:
    """The alerts to send for what was observed, and the new state (rules in the module docstring).

    `observed`: an Alert of a condition kind means it holds on the alert's date, a `Cleared` that it does
    not, an Alert of an event kind that it happened. Observations are taken in date order.
    """
    conditions, sent = dict(state.conditions), dict(state.sent)
    out: list[Alert] = []
    for item in sorted(observed, key=lambda o: o.date):
        if isinstance(item, Alert) and not item.is_condition:
            if item.key not in sent:
                sent[item.key] = item.date
                out.append(item)
            continue
        before = conditions.get(item.key)
        if before is not None and item.date < before.last:
            log.debug(
                "alert condition %s on %s: older than its last observation %s, left as it is",
                item.key,
                item.date,
                before.last,
            )
            continue
        if isinstance(item, Cleared):
            if before is not None and before.holds:
                conditions[item.key] = replace(before, holds=False, last=item.date, ended=item.date)
            else:
                conditions[item.key] = ConditionState(
                    holds=False, last=item.date, version=before.version if before else None
                )
            continue
        if before is not None and before.holds and before.version == item.version:
            conditions[item.key] = replace(before, last=item.date)
            continue
        conditions[item.key] = ConditionState(holds=True, last=item.date, since=item.date, version=item.version)
        out.append(item)
    return out, AlertState(conditions, sent)


# Delivery


@dataclass(frozen=True)
class AlertSettings:
    """What [alerts] sets: where alerts go, how long a delivery may take, which kinds are sent."""

    webhooks: tuple[str, ...] = names(
        (),
        "Webhook URLs (Slack-compatible JSON), separated by commas or new lines. Secrets: give them from the "
        "environment (`webhooks = ${ALERTS_WEBHOOK}`); they are never printed, logged or written.",
        problem=lambda url: webhook_problem(url),
    )
    email: bool = setting(
        False, "Also send alerts by email, through Luigi's own [email] settings (method, sender, receiver)."
    )
    timeout_seconds: float = seconds(5.0, "Each attempt of a delivery gives up after this long.")
    retries: int = count(2, "More attempts after a timeout, a refused connection, a 429 or a 5xx.", least=0)
    backoff_seconds: float = number(1.0, "Wait before the first retry, doubled before each next one.", low=0)
    events: tuple[str, ...] = names(
        KINDS, "The kinds of alert sent (the others are still decided and recorded in monitoring/alerts.json).", KINDS
    )

    def __post_init__(self):
        object.__setattr__(self, "webhooks", tuple(u.strip() for u in self.webhooks if u and u.strip()))
        object.__setattr__(self, "events", tuple(self.events))
        for url in self.webhooks:
            if webhook_problem(url):
                raise AlertError(f"[alerts] webhooks: {webhook_problem(url)}")
        if not self.timeout_seconds > 0:
            raise AlertError(f"[alerts] timeout_seconds must be > 0, got {self.timeout_seconds}")
        if self.retries < 0:
            raise AlertError(f"[alerts] retries must be >= 0, got {self.retries}")
        if self.backoff_seconds < 0:
            raise AlertError(f"[alerts] backoff_seconds must be >= 0, got {self.backoff_seconds}")
        unknown = [e for e in self.events if e not in KINDS]
        if unknown:
            raise AlertError(f"[alerts] events: {', '.join(map(repr, unknown))} not among {', '.join(KINDS)}")

    def longest_seconds(self) -> float:
        """The most one webhook's delivery waits: every attempt timing out, plus the backoff between them."""
        return (self.retries + 1) * self.timeout_seconds + sum(self.backoff_seconds * 2**i for i in range(self.retries))


@dataclass(frozen=True)
class DeliveryRecord:
    """How one delivery went, for the date's monitoring: target redacted, never the secret."""

    channel: str  # webhook | email
    target: str
    status: str  # sent | failed
    attempts: int
    alerts: tuple[str, ...]
    http_status: int | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return redacted({**asdict(self), "alerts": list(self.alerts)})


def webhook_problem(url: str) -> str:
    """Why `url` cannot be a webhook (shown by its label only), or ""."""
    try:
        ok = urlsplit(url.strip()).scheme in ("http", "https") and bool(urlsplit(url.strip()).hostname)
    except ValueError:
        ok = False
    return "" if ok else f"{label(url)} is not an http(s) URL"


def label(url: str) -> str:
    """A webhook URL as it may be shown: scheme, host and port, the path masked, and a fingerprint.

    `https://hooks.example.com/services/T0/B0/XXXX` -> `https://hooks.example.com/*** #1a2b3c4d`.
    """
    fingerprint = hashlib.sha256(url.encode()).hexdigest()[:8]
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"<webhook> #{fingerprint}"
    if not parts.scheme or not host:  # not a URL: nothing of it can be shown
        return f"<webhook> #{fingerprint}"
    user = "***@" if parts.username or parts.password else ""
    path = "/***" if parts.path.strip("/") or parts.query else ""
    return redact(f"{parts.scheme}://{user}{host}{port}{path} #{fingerprint}")


def payload(alerts: Sequence[Alert]) -> dict:
    """The Slack-compatible message for these alerts: a plain-text fallback and one section per alert."""
    lines = [_line(a) for a in alerts]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _section(a)[:_MAX_SECTION]}}
        for a in alerts[:_MAX_BLOCKS]
    ]
    if len(alerts) > _MAX_BLOCKS:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {len(alerts) - _MAX_BLOCKS} more"}]}
        )
    return redacted({"text": "\n".join(lines), "blocks": blocks})


def _who(a: Alert) -> str:
    model = f"{a.model} v{a.version}" if a.model and a.version else a.model
    return " · ".join(p for p in (a.project, a.date, model) if p)


def _line(a: Alert) -> str:
    return f"{TITLES[a.kind]} ({_who(a)}): {a.summary}"


def _section(a: Alert) -> str:
    details = "\n".join(f"• {k}: {v}" for k, v in a.details.items())
    return f"*{TITLES[a.kind]}* — {_who(a)}\n{a.summary}" + (f"\n{details}" if details else "")


def email_message(alerts: Sequence[Alert]) -> tuple[str, str]:
    """The subject and plain-text body of the email for these alerts."""
    if len(alerts) == 1:
        subject = f"[batchml] {_line(alerts[0])}"
    else:
        projects = ", ".join(dict.fromkeys(a.project for a in alerts))
        subject = (
            f"[batchml] {projects}: {len(alerts)} alerts "
            f"({', '.join(dict.fromkeys(TITLES[a.kind].lower() for a in alerts))})"
        )
    parts = []
    for a in alerts:
        details = "".join(f"\n  {k}: {v}" for k, v in a.details.items())
        parts.append(f"{_line(a)}\n  kind: {a.kind}\n  key: {a.key}{details}")
    return redact(subject), redact("\n\n".join(parts) + "\n")


def _request(url: str, body: bytes) -> urllib.request.Request:
    """A POST of `body` to `url`, a user and password in the URL sent as basic auth instead."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": "batchml-alerts"}
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def _error(exc: BaseException, url: str) -> str:
    text = " ".join(f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}".split())
    return redact(text.replace(url, label(url)))


def post_webhook(url: str, alerts: Sequence[Alert], settings: AlertSettings) -> DeliveryRecord:
    """POST the alerts to one webhook with bounded timeout and retries; never raises (a failure is recorded)."""
    target, keys = label(url), tuple(a.key for a in alerts)
    start = time.monotonic()
    status, error, attempts = None, None, 0
    try:
        request = _request(url, json.dumps(payload(alerts)).encode())
    except (ValueError, TypeError) as exc:  # a URL urllib cannot parse
        return DeliveryRecord("webhook", target, "failed", 0, keys, error=_error(exc, url))
    for attempt in range(1, settings.retries + 2):
        attempts = attempt
        retry = False
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as response:
                status, error = response.status, None
                response.read(1024)
            break
        except urllib.error.HTTPError as exc:
            status, error, retry = exc.code, _error(exc, url), exc.code in _RETRY_HTTP
            exc.close()
        except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out, reset
            status, error, retry = None, _error(exc, url), True
        except Exception as exc:  # noqa: BLE001 - a webhook never fails the date
            status, error, retry = None, _error(exc, url), False
        if not retry or attempt > settings.retries:
            break
        wait = settings.backoff_seconds * 2 ** (attempt - 1)
        log.info("alert webhook %s: %s; retry %d of %d in %.1f s", target, error, attempt, settings.retries, wait)
        time.sleep(wait)
    seconds = round(time.monotonic() - start, 3)
    if error is None:
        log.info("alert webhook %s: %d alert%s sent (HTTP %s)", target, len(alerts), "s" * (len(alerts) != 1), status)
        return DeliveryRecord("webhook", target, "sent", attempts, keys, http_status=status, seconds=seconds)
    log.warning("alert webhook %s failed after %d attempt%s: %s", target, attempts, "s" * (attempts != 1), error)
    return DeliveryRecord("webhook", target, "failed", attempts, keys, http_status=status, error=error, seconds=seconds)


EmailSender = Callable[[str, str, str, Sequence[str]], object]


def send_email(alerts: Sequence[Alert], send: EmailSender, sender: str, recipients: Sequence[str]) -> DeliveryRecord:
    """Hand the alerts' email to `send` (luigi.notifications.send_email in a run); never raises.

    Luigi itself decides whether to send (no receiver, a terminal, debug mode) and how ([email] method).
    """
    subject, body = email_message(alerts)
    keys = tuple(a.key for a in alerts)
    start = time.monotonic()
    try:
        send(subject, body, sender, list(recipients))
    except Exception as exc:  # noqa: BLE001 - an email that cannot be sent never fails the date
        error = redact(" ".join(f"{type(exc).__name__}: {exc}".split()))
        log.warning("alert email failed: %s", error)
        return DeliveryRecord(
            "email", "email", "failed", 1, keys, error=error, seconds=round(time.monotonic() - start, 3)
        )
    return DeliveryRecord("email", "email", "sent", 1, keys, seconds=round(time.monotonic() - start, 3))


def deliver(
    alerts: Sequence[Alert],
    settings: AlertSettings,
    *,
    email_sender: EmailSender | None = None,
    sender: str = "",
    recipients: Sequence[str] = (),
) -> list[DeliveryRecord]:
    """Send the alerts of the kinds `settings.events` lists to every webhook and, if set, by email.

    One record per webhook and one for email; none when no alert is left to send. Never raises.
    """
    chosen = [a for a in alerts if a.kind in settings.events]
    if not chosen:
        return []
    records = [post_webhook(url, chosen, settings) for url in settings.webhooks]
    if settings.email and email_sender is not None:
        records.append(send_email(chosen, email_sender, sender, recipients))
    return records
