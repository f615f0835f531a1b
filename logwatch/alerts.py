"""Alerts: one digest per poll, noise control, and the sinks that deliver it.

The daemon calls ``Dispatcher.submit`` once per poll. The dispatcher keeps what deserves attention
(alert severity floor, suppressions, a per (stream, template) cooldown and a per-stream hourly
budget), builds one ``Digest`` and hands it to one background worker per sink. The caller never
waits on the network: each worker has a bounded queue (the oldest digest is dropped and counted
when it is full) and retries a sink that is down with capped exponential back-off.

Log text is untrusted: it is escaped in e-mail and Slack, and never reaches a mail header raw.
Secrets (SMTP passwords, webhook URLs and headers) stay out of repr, logs and error messages.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import smtplib
import ssl
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from http.client import HTTPMessage
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from logwatch.config import Config
from logwatch.errors import ConfigError
from logwatch.records import Anomaly

log = logging.getLogger(__name__)

BUDGET_WINDOW = 3600.0  # seconds: max_per_hour_per_stream counts alerts in a sliding hour
SUBJECT_MAX = 200  # characters; long subjects are folded or cut by mail clients anyway
TEXT_MAX = 4000  # characters of one log event shown in a message
ECS_VERSION = "8.11.0"


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class SmtpSettings:
    name: str
    host: str
    port: int
    security: str  # starttls | ssl | none
    sender: str  # the TOML key is "from", a Python keyword
    to: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    subject_prefix: str = "[logwatch]"
    timeout: float = 10.0
    ca_file: str | None = None  # PEM bundle to trust instead of the system's (private CAs)


@dataclass(frozen=True)
class WebhookSettings:
    name: str
    target: str  # scheme://host/… : the URL without path or query, which may hold a token
    url: str = field(repr=False)
    format: str = "json"  # json | slack
    timeout: float = 10.0
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold a token


@dataclass(frozen=True)
class FileSettings:
    name: str
    path: str


@dataclass(frozen=True)
class LogSettings:
    name: str


SinkSettings = SmtpSettings | WebhookSettings | FileSettings | LogSettings


@dataclass(frozen=True)
class AlertSettings:
    """What ``[alerts]`` and ``alert_min_severity`` say; ``from_config`` validates them."""

    min_severity: int = 60
    cooldown_seconds: float = 3600.0  # per (stream, template); 0 = off
    max_per_hour_per_stream: int = 20  # 0 = no budget
    queue_size: int = 100  # digests waiting per sink
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    sinks: tuple[SinkSettings, ...] = ()

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str] | None = None) -> AlertSettings:
        """Parse ``config.alerts``; ``env`` (default ``os.environ``) resolves ``password_env``."""
        table = config.alerts
        _check_keys(table, "alerts.", _TOP_KEYS)
        raw_sinks = table.get("sinks", [])
        if not isinstance(raw_sinks, list) or not all(isinstance(s, dict) for s in raw_sinks):
            raise ConfigError("alerts.sinks must be a list of tables: write [[alerts.sinks]]")
        env = os.environ if env is None else env
        sinks: list[SinkSettings] = []
        for i, raw in enumerate(raw_sinks):
            sink = _parse_sink(raw, f"alerts.sinks[{i}].", env)
            if sink.name in {s.name for s in sinks}:
                raise ConfigError(
                    f"alerts.sinks[{i}].name = {sink.name!r} is not valid: "
                    "two sinks have that name; give each sink a distinct name"
                )
            sinks.append(sink)
        return cls(
            min_severity=config.alert_min_severity,
            cooldown_seconds=_number(table, "alerts.", "cooldown_seconds", 3600.0, 0, "0 or more"),
            max_per_hour_per_stream=int(
                _number(
                    table,
                    "alerts.",
                    "max_per_hour_per_stream",
                    20,
                    0,
                    "0 (no budget) or more",
                    integer=True,
                )
            ),
            queue_size=int(
                _number(table, "alerts.", "queue_size", 100, 1, "1 or more", integer=True)
            ),
            retry_initial_seconds=_number(
                table, "alerts.", "retry_initial_seconds", 1.0, 0.001, "a number of seconds > 0"
            ),
            retry_max_seconds=_number(
                table, "alerts.", "retry_max_seconds", 300.0, 0.001, "a number of seconds > 0"
            ),
            sinks=tuple(sinks),
        )


_TOP_KEYS = (
    "cooldown_seconds",
    "max_per_hour_per_stream",
    "queue_size",
    "retry_initial_seconds",
    "retry_max_seconds",
    "sinks",
)
_SINK_KEYS = {
    "smtp": (
        "type",
        "name",
        "host",
        "port",
        "security",
        "username",
        "password",
        "password_env",
        "from",
        "to",
        "subject_prefix",
        "timeout",
        "ca_file",
    ),
    "webhook": ("type", "name", "url", "format", "timeout", "headers"),
    "file": ("type", "name", "path"),
    "log": ("type", "name"),
}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110)


def _bad(where: str, key: str, value: Any, valid: str, secret: bool = False) -> ConfigError:
    shown = "(hidden)" if secret else repr(value)
    return ConfigError(f"{where}{key} = {shown} is not valid: {valid}")


def _check_keys(table: Mapping[str, Any], where: str, allowed: Sequence[str]) -> None:
    for key in sorted(table):
        if key not in allowed:
            raise ConfigError(
                f"{where}{key} is not a known setting; valid: {', '.join(sorted(allowed))}"
            )


def _text(
    table: Mapping[str, Any],
    where: str,
    key: str,
    default: str | None = None,
    required: bool = False,
    secret: bool = False,
) -> str | None:
    if key not in table:
        if required:
            raise ConfigError(f"{where}{key} is missing; this sink needs it")
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip() or _has_control(value):
        raise _bad(where, key, value, "a non-empty string without control characters", secret)
    return value


def _number(
    table: Mapping[str, Any],
    where: str,
    key: str,
    default: float,
    minimum: float,
    valid: str,
    maximum: float = math.inf,
    integer: bool = False,
) -> float:
    value = table.get(key, default)
    if (
        isinstance(value, bool)  # TOML true is not a number, whatever Python thinks
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
        or (integer and not float(value).is_integer())
    ):
        raise _bad(where, key, value, valid)
    return float(value)


def _address(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or _has_control(value) or "@" not in value:
        raise _bad(where, key, value, "an e-mail address such as 'ops@example.com'")
    return value


def _parse_sink(raw: Mapping[str, Any], where: str, env: Mapping[str, str]) -> SinkSettings:
    kind = raw.get("type")
    if kind not in _SINK_KEYS:
        raise _bad(where, "type", kind, "one of " + ", ".join(_SINK_KEYS))
    _check_keys(raw, where, _SINK_KEYS[kind])
    name = _text(raw, where, "name", kind) or kind
    if kind == "smtp":
        return _parse_smtp(raw, where, name, env)
    if kind == "webhook":
        url = _text(raw, where, "url", required=True, secret=True) or ""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad(where, "url", url, "an http:// or https:// URL", secret=True)
        fmt = _text(raw, where, "format", "json")
        if fmt not in ("json", "slack"):
            raise _bad(where, "format", fmt, "json or slack")
        headers = raw.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str)
            and _HEADER_NAME.fullmatch(k)
            and isinstance(v, str)
            and not _has_control(v)
            for k, v in headers.items()
        ):
            raise ConfigError(
                f"{where}headers is not valid: a table of header names to string values "
                "without control characters"
            )
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            raise _bad(where, "url", url, "an http:// or https:// URL", secret=True) from None
        return WebhookSettings(
            name=name,
            target=f"{parts.scheme}://{parts.hostname}{port}/…",
            url=url,
            format=fmt or "json",
            timeout=_number(raw, where, "timeout", 10.0, 0.001, "a number of seconds > 0"),
            headers=tuple(headers.items()),
        )
    if kind == "file":
        return FileSettings(name=name, path=_text(raw, where, "path", required=True) or "")
    return LogSettings(name=name)


def _parse_smtp(
    raw: Mapping[str, Any], where: str, name: str, env: Mapping[str, str]
) -> SmtpSettings:
    host = _text(raw, where, "host", required=True) or ""
    security = _text(raw, where, "security", "starttls")
    if security not in ("starttls", "ssl", "none"):
        raise _bad(where, "security", security, "starttls, ssl or none")
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    port = int(_number(raw, where, "port", default_port, 1, "1 to 65535", 65535, integer=True))
    username = _text(raw, where, "username")
    password = _text(raw, where, "password", secret=True)
    password_env = _text(raw, where, "password_env")
    if password is not None and password_env is not None:
        raise ConfigError(f"{where}password and {where}password_env are both set; keep one")
    if password_env is not None:
        password = env.get(password_env)
        if not password:
            raise ConfigError(
                f"{where}password_env = {password_env!r} is not valid: "
                "that environment variable is not set"
            )
    if password is not None and username is None:
        raise ConfigError(f"{where}username is missing; a password needs a username")
    if (
        username is not None
        and security == "none"
        and host not in ("localhost", "127.0.0.1", "::1")
    ):
        # Credentials would cross the network in clear text.
        raise _bad(
            where,
            "security",
            security,
            "starttls or ssl when a username is set "
            "(none is only allowed with credentials for localhost)",
        )
    to = raw.get("to")
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not to:
        raise _bad(where, "to", raw.get("to"), "a list of e-mail addresses")
    ca_file = _text(raw, where, "ca_file")
    if ca_file is not None and not os.path.isfile(ca_file):
        raise _bad(where, "ca_file", ca_file, "the path of a PEM file of trusted certificates")
    if "from" not in raw:
        raise ConfigError(f"{where}from is missing; this sink needs it")
    return SmtpSettings(
        name=name,
        host=host,
        port=port,
        security=security or "starttls",
        sender=_address(where, "from", raw["from"]),
        to=tuple(_address(where, "to", a) for a in to),
        username=username,
        password=password,
        subject_prefix=_text(raw, where, "subject_prefix", "[logwatch]") or "[logwatch]",
        timeout=_number(raw, where, "timeout", 10.0, 0.001, "a number of seconds > 0"),
        ca_file=ca_file,
    )


# ---------------------------------------------------------------- digests


@dataclass(frozen=True)
class AlertGroup:
    """Anomalies that belong in one place of a message: one stream now, one incident later."""

    key: str  # what merges groups of queued digests (stream name; later an incident id)
    title: str
    anomalies: tuple[Anomaly, ...]


@dataclass(frozen=True)
class Digest:
    """One message: what one poll found worth attention, and what noise control held back."""

    groups: tuple[AlertGroup, ...]
    held_back: Mapping[str, int] = field(default_factory=dict)  # stream -> anomalies withheld

    @property
    def anomalies(self) -> list[Anomaly]:
        return [a for g in self.groups for a in g.anomalies]

    @property
    def detected_at(self) -> str | None:
        return max((a.detected_at for a in self.anomalies), default=None)

    def summary(self) -> str:
        found = self.anomalies
        n, streams = len(found), sorted({a.stream for a in found})
        text = f"{n} {'anomaly' if n == 1 else 'anomalies'} in {', '.join(streams)}"
        if found:
            text += f" (severity up to {max(a.severity for a in found)})"
        held = sum(self.held_back.values())
        return text + (f", {held} held back" if held else "")


def merge_digests(digests: Sequence[Digest]) -> Digest:
    """One digest for several queued ones: after an outage the operator gets one message."""
    if len(digests) == 1:
        return digests[0]
    groups: dict[str, AlertGroup] = {}
    held: Counter[str] = Counter()
    for digest in digests:
        held.update(digest.held_back)
        for g in digest.groups:
            old = groups.get(g.key)
            groups[g.key] = (
                g if old is None else AlertGroup(old.key, old.title, old.anomalies + g.anomalies)
            )
    return Digest(tuple(groups.values()), dict(held))


# ---------------------------------------------------------------- rendering


# Controls (newline too: callers split multi-line text first), line separators and the bidi
# overrides that can make a line read differently from what it says.
_ESCAPE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c)[0] == "C" for c in text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def _printable(text: str, limit: int = TEXT_MAX) -> str:
    """Log text as it may be shown on one line: control characters (ANSI escapes, CR, LF)
    made visible."""
    return _ESCAPE.sub(_escaped, _clip(text, limit))


def _printable_lines(text: str, limit: int = TEXT_MAX) -> str:
    """Multi-line log text (a stack trace) kept on its lines, each made printable."""
    return "\n".join(_ESCAPE.sub(_escaped, line) for line in _clip(text, limit).split("\n"))


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def header_text(text: str, limit: int = SUBJECT_MAX) -> str:
    """Untrusted text made safe for one mail header line: every control or format character
    (CR, LF, NEL, U+2028, bidi overrides) becomes a space, and the length is bounded."""
    clean = " ".join("".join(" " if unicodedata.category(c)[0] == "C" else c for c in text).split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _describe(anomaly: Anomaly) -> list[str]:
    a = anomaly
    lines = a.text.split("\n") or [""]
    out = [
        f"[severity {a.severity}] {_printable(a.stream)} line {a.line}"
        + (f" ({a.count} identical events)" if a.count > 1 else "")
    ]
    out.append(f"  message:   {_printable(lines[0])}")
    out += [f"             {_printable(line)}" for line in lines[1:50]]
    if len(lines) > 50:
        out.append(f"             … {len(lines) - 50} more lines")
    out.append(f"  file:      {_printable(a.path)}, line {a.line} (byte {a.offset})")
    out.append(f"  time:      {a.timestamp or 'not in the log'} (detected {a.detected_at})")
    out.append(f"  host:      {_printable(a.host or '-')}")
    out.append(f"  process:   {_printable(a.process or '-')}, PID {a.pid or '-'}")
    out.append(f"  level:     {a.level or '-'}")
    out.append("  reasons:   " + "; ".join(_printable(r) for r in a.reasons))
    if a.closest:
        out.append(f"  closest normal line: {_printable(a.closest)}")
    out.append(f"  template:  {_printable(a.template)}")
    return out


def _held_line(digest: Digest) -> str | None:
    if not digest.held_back:
        return None
    parts = ", ".join(f"{_printable(s)}: {n}" for s, n in sorted(digest.held_back.items()))
    return f"Held back since the last message (cooldown or hourly budget): {parts}"


def render_text(digest: Digest) -> str:
    out = [f"logwatch: {_printable(digest.summary())}", ""]
    for g in digest.groups:
        out += [f"== {_printable(g.title)} ({len(g.anomalies)}) ==", ""]
        for a in g.anomalies:
            out += _describe(a) + [""]
    held = _held_line(digest)
    return "\n".join(out + ([held] if held else []) + [""])


def anomaly_json(a: Anomaly) -> dict[str, Any]:
    """The fields of ``logwatch anomalies --format jsonl``, and the header fields."""
    return {
        "id": a.id,
        "stream": a.stream,
        "path": a.path,
        "line": a.line,
        "offset": a.offset,
        "timestamp": a.timestamp,
        "detected_at": a.detected_at,
        "severity": a.severity,
        "score": a.score if math.isfinite(a.score) else None,
        "reasons": list(a.reasons),
        "template": a.template,
        "template_id": a.template_id,
        "text": a.text,
        "count": a.count,
        "level": a.level,
        "host": a.host,
        "process": a.process,
        "pid": a.pid,
        "closest": a.closest,
    }


def ecs_document(a: Anomaly, group: AlertGroup) -> dict[str, Any]:
    """One anomaly in Elastic Common Schema names. The log file's line number has no ECS field
    (log.origin.file.line is the *source code* line that emitted a log), so it is logwatch.line;
    the byte offset goes to log.offset, where Filebeat puts it."""
    stamp = a.detected_at
    if a.timestamp:
        try:  # a zone-less log time would be read as UTC by Elasticsearch: keep it aside then
            if datetime.fromisoformat(a.timestamp).tzinfo is not None:
                stamp = a.timestamp
        except ValueError:
            pass
    doc: dict[str, Any] = {
        "@timestamp": stamp,
        "message": a.text,
        "ecs": {"version": ECS_VERSION},
        "log": {"file": {"path": a.path}, "offset": a.offset},
        "event": {
            "kind": "alert",
            "module": "logwatch",
            "dataset": "logwatch.anomaly",
            "severity": a.severity,
            "risk_score": float(a.severity),
            "reason": "; ".join(a.reasons),
            "created": a.detected_at,
        },
        "logwatch": {
            "stream": a.stream,
            "line": a.line,
            "template": a.template,
            "template_id": a.template_id,
            "reasons": list(a.reasons),
            "group": group.title,
            "score": a.score if math.isfinite(a.score) else None,
            "count": a.count,
            "anomaly_id": a.id,
            "timestamp": a.timestamp,
            "closest": a.closest,
        },
    }
    if a.level:
        doc["log"]["level"] = a.level
    if a.host:
        doc["host"] = {"name": a.host}
    if a.process or a.pid is not None:
        doc["process"] = {k: v for k, v in (("name", a.process), ("pid", a.pid)) if v is not None}
    return doc


def _slack_escape(text: str) -> str:
    # Slack requires these three escaped; '<' would otherwise open a link or an @channel mention.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(digest: Digest) -> dict[str, Any]:
    """Slack's incoming-webhook shape, within its limits (50 blocks, 3000 characters a section)."""
    summary = _printable(digest.summary())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header_text(summary, 150)}}
    ]
    items: list[str] = []
    for g in digest.groups:
        items.append(f"*{_slack_escape(_printable(g.title))}* ({len(g.anomalies)})")
        for a in g.anomalies:
            where = f"{a.path}:{a.line}"
            who = " ".join(x for x in (a.host, a.process, f"[{a.pid}]" if a.pid else None) if x)
            code = _printable_lines(a.text, 1500).replace(
                "```", "'''"
            )  # a fence would end the block
            text = (
                f"*severity {a.severity}* `{_printable(where)}` {_printable(who)}"
                f" {a.timestamp or a.detected_at}\n```{code}```\n"
                + "; ".join(_printable(r) for r in a.reasons)
            )
            items.append(_slack_escape(text)[:3000])
    held = _held_line(digest)
    room = 50 - 1 - (1 if held else 0)
    if len(items) > room:
        items = items[: room - 1] + [f"… and {len(items) - room + 1} more"]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": t}} for t in items]
    if held:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(held)}]}
        )
    return {"text": _slack_escape(summary), "blocks": blocks}


# ---------------------------------------------------------------- sinks


class AlertSink(Protocol):
    """Delivers a digest somewhere; raises on failure (the dispatcher retries)."""

    name: str

    def send(self, digest: Digest) -> None: ...


class SmtpSink:
    def __init__(self, settings: SmtpSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.secrets = tuple(s for s in (settings.password,) if s)

    def __repr__(self) -> str:
        return f"SmtpSink({self.settings!r})"

    def message(self, digest: Digest) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = s.sender
        msg["To"] = ", ".join(s.to)
        first = digest.anomalies[0].text.split("\n")[0] if digest.anomalies else ""
        msg["Subject"] = header_text(f"{s.subject_prefix} {digest.summary()}: {first}")
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a daemon
        msg["Message-ID"] = make_msgid("logwatch", domain=s.sender.rpartition("@")[2] or None)
        if digest.detected_at:
            try:
                msg["Date"] = format_datetime(datetime.fromisoformat(digest.detected_at))
            except ValueError:
                pass  # the relay adds one
        msg.set_content(render_text(digest))
        return msg

    def send(self, digest: Digest) -> None:
        s = self.settings
        context = None if s.security == "none" else ssl.create_default_context(cafile=s.ca_file)
        client = (
            smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            if s.security == "ssl"
            else smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        )
        with client:
            if s.security == "starttls":
                # Raises when the server does not offer it: never fall back to clear text.
                client.starttls(context=context)
            if s.username is not None:
                client.login(s.username, s.password or "")
            client.send_message(self.message(digest))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without the body: the alert would vanish
    # while looking delivered. A redirect is an error here (fix the URL).
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class WebhookSink:
    def __init__(self, settings: WebhookSettings) -> None:
        self.name = settings.name
        self.settings = settings
        parts = urlsplit(settings.url)
        self.secrets = tuple(
            s
            for s in (
                settings.url,
                parts.path,
                parts.query,
                parts.password,
                *(v for _, v in settings.headers),
            )
            if s and len(s) > 1
        )
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"WebhookSink({self.settings!r})"

    def payload(self, digest: Digest) -> dict[str, Any]:
        if self.settings.format == "slack":
            return slack_payload(digest)
        return {
            "source": "logwatch",
            "summary": digest.summary(),
            "anomaly_count": len(digest.anomalies),
            "held_back": dict(digest.held_back),
            "groups": [
                {
                    "key": g.key,
                    "title": g.title,
                    "anomalies": [anomaly_json(a) for a in g.anomalies],
                }
                for g in digest.groups
            ],
        }

    def send(self, digest: Digest) -> None:
        body = json.dumps(self.payload(digest), ensure_ascii=True).encode("ascii")
        headers = {"Content-Type": "application/json", "User-Agent": "logwatch"}
        request = urllib.request.Request(
            self.settings.url,
            data=body,
            method="POST",
            headers=headers | dict(self.settings.headers),
        )
        with self._opener.open(request, timeout=self.settings.timeout) as response:
            response.read(1 << 16)


class EcsFileSink:
    """Appends one ECS JSON line per anomaly. Filebeat may read the file at any moment, so each
    digest goes out in one O_APPEND write of whole lines, synced before ``send`` returns."""

    def __init__(self, settings: FileSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"EcsFileSink({self.settings!r})"

    def send(self, digest: Digest) -> None:
        data = "".join(
            json.dumps(ecs_document(a, g), ensure_ascii=True, separators=(",", ":")) + "\n"
            for g in digest.groups
            for a in g.anomalies
        ).encode("ascii")
        if not data:
            return
        fd = os.open(self.settings.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # An earlier write was cut short (disk full): end that fragment so this
                # digest's lines stay whole for the reader.
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


class LogSink:
    """Alerts as WARNING log records (the journal, under systemd)."""

    def __init__(self, settings: LogSettings) -> None:
        self.name = settings.name
        self.secrets: tuple[str, ...] = ()

    def send(self, digest: Digest) -> None:
        log.warning("alert: %s", _printable(digest.summary()))
        for a in digest.anomalies:
            log.warning(
                "alert: [%d] %s:%d %s — %s",
                a.severity,
                _printable(a.path),
                a.line,
                _printable(a.text.split("\n")[0], 500),
                "; ".join(_printable(r) for r in a.reasons),
            )
        held = _held_line(digest)
        if held:
            log.warning("alert: %s", held)


def build_sinks(settings: AlertSettings) -> list[AlertSink]:
    sinks: list[AlertSink] = []
    for s in settings.sinks:
        if isinstance(s, SmtpSettings):
            sinks.append(SmtpSink(s))
        elif isinstance(s, WebhookSettings):
            sinks.append(WebhookSink(s))
        elif isinstance(s, FileSettings):
            sinks.append(EcsFileSink(s))
        else:
            sinks.append(LogSink(s))
    return sinks


def describe_error(exc: BaseException, sink: AlertSink) -> str:
    """One line for a sink failure, with the sink's secrets blanked out."""
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        said = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        text = f"SMTP {exc.smtp_code} {said}"
    elif isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc}"
    for secret in sorted(getattr(sink, "secrets", ()), key=len, reverse=True):
        text = text.replace(secret, "***")
    return header_text(text, 300)


def _permanent(exc: BaseException) -> bool:
    """Will retrying the same digest fail the same way? (Rejected, not unreachable.)"""
    if isinstance(exc, urllib.error.HTTPError):
        return 300 <= exc.code < 500 and exc.code not in (408, 425, 429)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return False


# ---------------------------------------------------------------- dispatch


@dataclass(frozen=True)
class SinkStats:
    sent: int  # digests delivered (queued digests merged into one message count each)
    failed: int  # attempts that raised
    dropped: int  # digests never delivered: queue full, rejected, or unsent at close
    queued: int


class _Worker:
    """One sink's thread and bounded queue."""

    def __init__(self, sink: AlertSink, settings: AlertSettings) -> None:
        self.sink = sink
        self._size = settings.queue_size
        self._initial = settings.retry_initial_seconds
        self._cap = settings.retry_max_seconds
        self._queue: deque[Digest] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = math.inf
        self._rng = random.Random()
        self.sent = self.failed = self.dropped = 0
        self.thread = threading.Thread(
            target=self._run, name=f"logwatch-alert-{sink.name}", daemon=True
        )
        self.thread.start()

    def put(self, digest: Digest) -> None:
        with self._cond:
            if self._closing:
                self.dropped += 1
                return
            self._queue.append(digest)
            self._trim()
            self._cond.notify()

    def _trim(self) -> None:
        while len(self._queue) > self._size:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:  # 1, 2, 4, 8 ...: few lines in an outage
                log.warning(
                    "alert sink %s is behind: %d digests dropped so far (oldest first)",
                    self.sink.name,
                    self.dropped,
                )

    def close(self, deadline: float) -> None:
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify()

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(self.sent, self.failed, self.dropped, len(self._queue))

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                if self._closing and time.monotonic() >= self._deadline:
                    self._give_up()
                    return
                batch = list(self._queue)
                self._queue.clear()
            try:
                self.sink.send(merge_digests(batch))
            except Exception as exc:  # noqa: BLE001 - a sink's failure must never reach the daemon
                reason = describe_error(exc, self.sink)
                with self._cond:
                    self.failed += 1
                    if _permanent(exc):
                        self.dropped += len(batch)
                        log.error(
                            "alert sink %s rejected a digest (%s); not retrying it",
                            self.sink.name,
                            reason,
                        )
                        continue
                    self._queue.extendleft(reversed(batch))
                    self._trim()
                    if self._closing:
                        log.warning("alert sink %s failed at shutdown (%s)", self.sink.name, reason)
                        self._give_up()
                        return
                    failures += 1
                    # Jitter keeps daemons that share a relay from retrying in lockstep.
                    delay = min(self._cap, self._initial * 2 ** min(failures - 1, 60))
                    delay *= self._rng.uniform(0.5, 1.0)
                    log.warning(
                        "alert sink %s failed (%s); retry %d in %.1f s",
                        self.sink.name,
                        reason,
                        failures,
                        delay,
                    )
                    until = time.monotonic() + delay
                    # New digests do not cut the back-off short; closing does (one last try).
                    while not self._closing and (left := until - time.monotonic()) > 0:
                        self._cond.wait(left)
                continue
            with self._cond:
                self.sent += len(batch)
            if failures:
                log.warning(
                    "alert sink %s is back after %d failed attempts", self.sink.name, failures
                )
            failures = 0

    def _give_up(self) -> None:
        if self._queue:
            log.warning(
                "alert sink %s: %d digests not sent before shutdown",
                self.sink.name,
                len(self._queue),
            )
        self.dropped += len(self._queue)
        self._queue.clear()


class Dispatcher:
    """Noise control, then one digest per poll to every sink, in the background.

    ``clock`` (seconds, monotonic) drives cooldowns and budgets; tests pass a fake one.
    ``muted`` lets the feedback layer silence anomalies (suppressions); they are not counted
    as held back, since someone chose not to hear of them.
    """

    def __init__(
        self,
        settings: AlertSettings,
        clock: Callable[[], float] = time.monotonic,
        *,
        sinks: Sequence[AlertSink] | None = None,
        muted: Callable[[Anomaly], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.muted = muted
        self._clock = clock
        self._last_sent: dict[tuple[str, str], float] = {}
        self._prune_at = 4096
        self._recent: dict[str, deque[float]] = {}
        self._held: Counter[str] = Counter()
        built = build_sinks(settings) if sinks is None else list(sinks)
        self._workers = [_Worker(s, settings) for s in built]

    def submit(
        self,
        anomalies: Sequence[Anomaly],
        group_of: Callable[[Anomaly], tuple[str, str] | None] | None = None,
    ) -> Digest | None:
        """Queue one digest of what deserves attention; None when nothing does. Never blocks
        on a sink and never raises because of one.

        ``group_of`` gives an anomaly's (key, title) group — its incident — so an alert is one
        section per incident; without it (or when it returns None) anomalies group by stream."""
        now = self._clock()
        self._forget(now)
        cooldown, budget = self.settings.cooldown_seconds, self.settings.max_per_hour_per_stream
        chosen: dict[str, list[Anomaly]] = {}
        titles: dict[str, str] = {}
        # Most severe first, so that the budget and cooldown keep the ones that matter most.
        for a in sorted(anomalies, key=lambda a: -a.severity):
            if a.severity < self.settings.min_severity or self._is_muted(a):
                continue
            key = (a.stream, str(a.template_id) if a.template_id is not None else a.template)
            last = self._last_sent.get(key)
            recent = self._recent.setdefault(a.stream, deque())
            if (last is not None and now - last < cooldown) or (budget and len(recent) >= budget):
                self._held[a.stream] += 1
                continue
            if cooldown > 0:
                self._last_sent[key] = now
            recent.append(now)
            group = group_of(a) if group_of is not None else None
            group_key, title = group if group is not None else (a.stream, a.stream)
            titles.setdefault(group_key, title)
            chosen.setdefault(group_key, []).append(a)
        if not chosen:
            return None
        order = sorted(chosen, key=lambda s: (-chosen[s][0].severity, s))
        digest = Digest(
            tuple(AlertGroup(s, titles[s], tuple(chosen[s])) for s in order), dict(self._held)
        )
        self._held.clear()
        for worker in self._workers:
            worker.put(digest)
        return digest

    def _is_muted(self, anomaly: Anomaly) -> bool:
        if self.muted is None:
            return False
        try:
            return bool(self.muted(anomaly))
        except Exception as exc:  # noqa: BLE001 - a broken mute rule must not stop alerting
            log.warning(
                "alert mute check failed (%s: %s); alerting anyway", type(exc).__name__, exc
            )
            return False

    def _forget(self, now: float) -> None:
        for recent in self._recent.values():
            while recent and now - recent[0] >= BUDGET_WINDOW:
                recent.popleft()
        if len(self._last_sent) > self._prune_at:  # bounded memory with many templates
            cooldown = self.settings.cooldown_seconds
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < cooldown}
            self._prune_at = max(4096, 2 * len(self._last_sent))

    @property
    def held_back(self) -> dict[str, int]:
        """Withheld since the last digest; goes out with the next one."""
        return dict(self._held)

    def stats(self) -> dict[str, SinkStats]:
        return {w.sink.name: w.stats() for w in self._workers}

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (one attempt per sink, back-off cut short) within ``timeout``."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.close(deadline)
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                log.warning(
                    "alert sink %s still sending after %.1f s; not waiting for it",
                    worker.sink.name,
                    timeout,
                )

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sample_digest(now: datetime) -> Digest:
    anomaly = Anomaly(
        stream="logwatch-test",
        path="(logwatch alert test)",
        line=1,
        offset=0,
        timestamp=now.isoformat(),
        detected_at=now.isoformat(),
        severity=100,
        score=1.0,
        reasons=("test alert sent by 'logwatch alert test'",),
        template="logwatch test alert",
        text="logwatch test alert: if you can read this, this sink works",
        level="INFO",
    )
    return Digest((AlertGroup("logwatch-test", "logwatch-test", (anomaly,)),), {})


def send_test(settings: AlertSettings, now: datetime | None = None) -> list[tuple[str, str | None]]:
    """Send one synthetic digest to each sink, now; (sink name, error or None) for each."""
    digest = sample_digest(now or datetime.now(UTC))
    results: list[tuple[str, str | None]] = []
    for sink in build_sinks(settings):
        try:
            sink.send(digest)
        except Exception as exc:  # noqa: BLE001 - reported per sink to the operator
            results.append((sink.name, describe_error(exc, sink)))
        else:
            results.append((sink.name, None))
    return results
