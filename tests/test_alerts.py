"""Alerts: real mail to aiosmtpd on loopback (plain, STARTTLS, SSL), real HTTP to a loopback
server (JSON and Slack), the ECS file, noise control on a fake clock, a sink that is down, and
secrets that never show."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from logwatch.alerts import (
    AlertSettings,
    Dispatcher,
    EcsFileSink,
    FileSettings,
    SmtpSettings,
    WebhookSettings,
    send_test,
)
from logwatch.config import Config
from logwatch.errors import ConfigError
from logwatch.records import Anomaly

PASSWORD = "s3cret-Pa55word"
TOKEN = "T0KEN/B0000/xyzzySECRET"


def anomaly(**kw: Any) -> Anomaly:
    values: dict[str, Any] = {
        "stream": "app.log",
        "path": "/var/log/app.log",
        "line": 1234,
        "offset": 56789,
        "timestamp": "2024-05-01T10:00:00+00:00",
        "detected_at": "2024-05-01T10:00:02+00:00",
        "severity": 90,
        "score": 0.42,
        "reasons": ("new template, 0.71 from nearest known line", "level FATAL in INFO stream"),
        "template": "Connection refused to <IP>",
        "text": "Connection refused to 10.0.0.7",
        "level": "FATAL",
        "template_id": 7,
        "host": "web1",
        "process": "sshd",
        "pid": 4242,
        "closest": "Connection [[accepted]] from 10.0.0.7",
    }
    return Anomaly(**(values | kw))


def settings(alerts: dict[str, Any], min_severity: int = 60, **env: str) -> AlertSettings:
    return AlertSettings.from_config(Config(alerts=alerts, alert_min_severity=min_severity), env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- servers


@dataclass
class Mailbox:
    mails: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.mails.append((str(envelope.mail_from), list(envelope.rcpt_tos), msg))
        return "250 OK"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == PASSWORD.encode(), handled=False)


@pytest.fixture
def smtp() -> Iterator[Callable[..., tuple[int, Mailbox]]]:
    controllers: list[Controller] = []

    def start(**kw: Any) -> tuple[int, Mailbox]:
        box, port = Mailbox(), free_port()
        if "tls_context" in kw:
            kw.setdefault("authenticator", box.authenticate)
        controller = Controller(box, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        controllers.append(controller)
        return port, box

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        print("openssl CLI not found: the SSL and STARTTLS tests are skipped")
        pytest.skip("openssl CLI not found: cannot make a self-signed certificate")
    where = tmp_path_factory.mktemp("tls")
    key, crt = where / "key.pem", where / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    return context


@dataclass
class Hits:
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    status: int = 200


def serve_http(port: int = 0) -> tuple[ThreadingHTTPServer, Hits]:
    hits = Hits()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hits.requests.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(hits.status)
            if hits.status in (301, 307):
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


@pytest.fixture
def http() -> Iterator[Callable[..., tuple[ThreadingHTTPServer, Hits]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(port: int = 0) -> tuple[ThreadingHTTPServer, Hits]:
        server, hits = serve_http(port)
        servers.append(server)
        return server, hits

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def webhook(port: int, **kw: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": f"http://127.0.0.1:{port}/hooks/{TOKEN}", **kw}


def smtp_sink(port: int, **kw: Any) -> dict[str, Any]:
    return {
        "type": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
        "from": "logwatch@example.com", "to": ["ops@example.com", "oncall@example.com"], **kw,
    }  # fmt: skip


# ---------------------------------------------------------------- settings


def test_defaults_and_a_full_table(tmp_path: Path) -> None:
    empty = settings({})
    assert (empty.min_severity, empty.cooldown_seconds, empty.max_per_hour_per_stream) == (
        60, 3600.0, 20,
    )  # fmt: skip
    assert empty.sinks == ()
    full = settings(
        {
            "cooldown_seconds": 600,
            "max_per_hour_per_stream": 5,
            "queue_size": 10,
            "sinks": [
                smtp_sink(2525, security="starttls", username="u", password_env="SMTP_PW"),
                webhook(8080, format="slack", headers={"Authorization": "Bearer abc"}),
                {"type": "file", "path": str(tmp_path / "alerts.jsonl")},
                {"type": "webhook", "name": "second", "url": "https://example.com/x"},
            ],
        },
        min_severity=75,
        SMTP_PW=PASSWORD,
    )
    assert (full.min_severity, full.cooldown_seconds, full.max_per_hour_per_stream) == (75, 600, 5)
    mail, hook, ecs, second = full.sinks
    assert isinstance(mail, SmtpSettings) and mail.password == PASSWORD
    assert (mail.name, mail.port, mail.to) == (
        "smtp",
        2525,
        ("ops@example.com", "oncall@example.com"),
    )
    assert isinstance(hook, WebhookSettings) and hook.format == "slack"
    assert hook.target == "http://127.0.0.1:8080/…"
    assert isinstance(ecs, FileSettings) and ecs.name == "file"
    assert second.name == "second"
    # Ports follow the security mode unless given.
    ssl_sink = settings({"sinks": [smtp_sink(25, security="ssl") | {"port": 465}]}).sinks[0]
    assert isinstance(ssl_sink, SmtpSettings) and ssl_sink.port == 465


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"cooldown_seconds": -1}, "alerts.cooldown_seconds = -1 is not valid: 0 or more"),
        ({"queue_size": 0}, "alerts.queue_size = 0 is not valid: 1 or more"),
        ({"max_per_hour_per_stream": True}, "alerts.max_per_hour_per_stream = True is not valid"),
        ({"cooldown": 5}, "alerts.cooldown is not a known setting; valid: cooldown_seconds"),
        ({"sinks": {"type": "smtp"}}, "alerts.sinks must be a list of tables"),
        (
            {"sinks": [{"type": "pager"}]},
            "alerts.sinks[0].type = 'pager' is not valid: one of smtp",
        ),
        (
            {"sinks": [smtp_sink(25, security="tls")]},
            "alerts.sinks[0].security = 'tls' is not valid: starttls, ssl or none",
        ),
        ({"sinks": [smtp_sink(70000)]}, "alerts.sinks[0].port = 70000 is not valid: 1 to 65535"),
        ({"sinks": [smtp_sink(25, to=[])]}, "alerts.sinks[0].to = [] is not valid: a list of"),
        ({"sinks": [smtp_sink(25, to=["nobody"])]}, "alerts.sinks[0].to = 'nobody' is not valid"),
        (
            {"sinks": [smtp_sink(25, password_env="NOPE", username="u")]},
            "alerts.sinks[0].password_env = 'NOPE' is not valid: that environment variable",
        ),
        (
            {"sinks": [smtp_sink(25) | {"host": "mail.example.com", "username": "u"}]},
            "alerts.sinks[0].security = 'none' is not valid: starttls or ssl when a username",
        ),
        ({"sinks": [webhook(1, format="xml")]}, "alerts.sinks[1-1].format"),
        ({"sinks": [webhook(1), webhook(2)]}, "alerts.sinks[1].name = 'webhook' is not valid"),
        ({"sinks": [{"type": "file"}]}, "alerts.sinks[0].path is missing"),
    ],
)
def test_bad_values_name_key_value_and_what_is_valid(alerts: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(alerts)
    text = str(info.value)
    assert text.startswith(message.replace("[1-1]", "[0]")), text
    assert "\n" not in text


def test_secrets_are_hidden_in_errors_and_repr() -> None:
    for bad, key in (
        ({"type": "webhook", "url": f"ftp://hooks.example.com/{TOKEN}"}, "url"),
        (smtp_sink(25, username="u", password=["x", PASSWORD]), "password"),
    ):
        with pytest.raises(ConfigError) as info:
            settings({"sinks": [bad]})
        assert str(info.value).startswith(f"alerts.sinks[0].{key} = (hidden) is not valid")
        assert TOKEN not in str(info.value) and PASSWORD not in str(info.value)
    parsed = settings(
        {
            "sinks": [
                smtp_sink(25, username="u", password=PASSWORD, host="localhost"),
                webhook(9, headers={"Authorization": f"Bearer {PASSWORD}"}),
            ]
        }
    )
    shown = repr(parsed) + repr(Dispatcher(parsed).stats())
    assert PASSWORD not in shown and TOKEN not in shown
    assert "http://127.0.0.1:9/…" in shown


# ---------------------------------------------------------------- noise control


def test_min_severity_cooldown_budget_and_held_back_counts() -> None:
    clock = FakeClock()
    config = {"cooldown_seconds": 600, "max_per_hour_per_stream": 3}
    d = Dispatcher(settings(config, min_severity=60), clock, sinks=[])
    first = d.submit(
        [
            anomaly(severity=59, template_id=1),  # below the alert floor: recorded, not sent
            anomaly(severity=70, template_id=2, line=10),
            anomaly(severity=95, template_id=2, line=11),  # same template, same poll: one alert
            anomaly(severity=80, template_id=3),
            anomaly(stream="auth.log", path="/var/log/auth.log", severity=99, template_id=2),
        ]
    )
    assert first is not None
    assert [g.key for g in first.groups] == ["auth.log", "app.log"]  # most severe group first
    assert [(a.template_id, a.line) for a in first.groups[1].anomalies] == [(2, 11), (3, 1234)]
    # What noise control withheld up to and including this poll rides along at once.
    assert first.held_back == {"app.log": 1}  # template 2's second line
    assert d.held_back == {}

    clock.now += 599  # still cooling down: nothing new to say, the counts wait
    assert d.submit([anomaly(template_id=2), anomaly(template_id=3)]) is None
    assert d.held_back == {"app.log": 2}

    clock.now += 1  # cooldown over for 2 and 3; the budget (3 an hour) has room for one more
    second = d.submit([anomaly(template_id=2), anomaly(template_id=3), anomaly(template_id=4)])
    assert second is not None
    assert [a.template_id for a in second.anomalies] == [2]
    assert second.held_back == {"app.log": 4}  # 2 from the quiet poll, 2 over budget now
    assert "4 held back" in second.summary()
    assert d.held_back == {}

    clock.now += 3600  # a new hour: the budget is back
    third = d.submit([anomaly(template_id=n) for n in range(10, 16)])
    assert third is not None and len(third.anomalies) == 3
    assert third.held_back == {"app.log": 3}


def test_zero_means_off_and_muted_anomalies_are_silent() -> None:
    clock = FakeClock()
    d = Dispatcher(settings({"cooldown_seconds": 0, "max_per_hour_per_stream": 0}), clock, sinks=[])
    many = [anomaly(line=n) for n in range(100)]
    digest = d.submit(many)
    assert digest is not None and len(digest.anomalies) == 100
    d.muted = lambda a: a.template_id == 7
    assert d.submit(many + [anomaly(template_id=8)]) is not None
    assert d.held_back == {}  # muted is a decision, not noise: not counted

    def broken(a: Anomaly) -> bool:
        raise RuntimeError("feedback table gone")

    d.muted = broken  # a broken hook alerts rather than silencing everything
    again = d.submit([anomaly()])
    assert again is not None and len(again.anomalies) == 1


# ---------------------------------------------------------------- SMTP


def test_smtp_plain_delivers_every_field(smtp: Callable[..., tuple[int, Mailbox]]) -> None:
    port, box = smtp()
    config = settings({"sinks": [smtp_sink(port, subject_prefix="[prod]")]})
    with Dispatcher(config, FakeClock()) as d:
        d.submit([anomaly(text="Traceback (most recent call last):\n  File x\nKeyError: 'a'")])
    assert len(box.mails) == 1
    sender, rcpts, msg = box.mails[0]
    assert (sender, rcpts) == ("logwatch@example.com", ["ops@example.com", "oncall@example.com"])
    assert msg["From"] == "logwatch@example.com"
    assert msg["To"] == "ops@example.com, oncall@example.com"
    assert msg["Subject"] == (
        "[prod] 1 anomaly in app.log (severity up to 90): Traceback (most recent call last):"
    )
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Wed, 01 May 2024 10:00:02 +0000"
    body = msg.get_content().replace("\r\n", "\n")
    for expected in (
        "[severity 90] app.log line 1234",
        "  message:   Traceback (most recent call last):\n               File x\n"
        "             KeyError: 'a'",
        "  file:      /var/log/app.log, line 1234 (byte 56789)",
        "  time:      2024-05-01T10:00:00+00:00 (detected 2024-05-01T10:00:02+00:00)",
        "  host:      web1",
        "  process:   sshd, PID 4242",
        "  level:     FATAL",
        "  reasons:   new template, 0.71 from nearest known line; level FATAL in INFO stream",
        "  closest normal line: Connection [[accepted]] from 10.0.0.7",
    ):
        assert expected in body
    assert d.stats() == {"smtp": d.stats()["smtp"]} and d.stats()["smtp"].sent == 1


def test_smtp_starttls_with_credentials_from_env(
    smtp: Callable[..., tuple[int, Mailbox]],
    cert: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port, box = smtp(tls_context=server_context(cert), require_starttls=True)
    sink = smtp_sink(port, security="starttls", username="alice", password_env="LW_SMTP",
                     ca_file=str(cert[0]))  # fmt: skip
    config = settings({"sinks": [sink]}, LW_SMTP=PASSWORD)
    assert send_test(config) == [("smtp", None)]
    assert box.logins == [(b"alice", PASSWORD.encode())]
    assert "logwatch test alert" in box.mails[0][2].get_content()
    # A wrong password: a clear one-line error, and the password appears nowhere.
    wrong = settings({"sinks": [sink]}, LW_SMTP="wrong-" + PASSWORD)
    [(name, error)] = send_test(wrong)
    assert name == "smtp" and error is not None and error.startswith("SMTP 535")
    assert PASSWORD not in error
    with Dispatcher(wrong, FakeClock()) as d:
        d.submit([anomaly()])
    assert d.stats()["smtp"].failed == 1 and d.stats()["smtp"].dropped == 1  # 5xx: not retried
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rejected a digest (SMTP 535" in logged
    assert PASSWORD not in logged and PASSWORD not in caplog.text


def test_starttls_never_falls_back_to_clear_text(
    smtp: Callable[..., tuple[int, Mailbox]], cert: tuple[Path, Path]
) -> None:
    port, box = smtp()  # offers no STARTTLS
    config = settings({"sinks": [smtp_sink(port, security="starttls", ca_file=str(cert[0]))]})
    [(_, error)] = send_test(config)
    assert error is not None and "STARTTLS" in error
    assert box.mails == []


def test_smtp_implicit_ssl_verifies_the_certificate(
    smtp: Callable[..., tuple[int, Mailbox]], cert: tuple[Path, Path]
) -> None:
    port, box = smtp(ssl_context=server_context(cert))
    trusted = settings({"sinks": [smtp_sink(port, security="ssl", ca_file=str(cert[0]))]})
    assert send_test(trusted) == [("smtp", None)]
    assert len(box.mails) == 1
    untrusted = settings({"sinks": [smtp_sink(port, security="ssl")]})  # system CAs only
    [(_, error)] = send_test(untrusted)
    assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
    assert len(box.mails) == 1


def test_subject_header_injection_is_neutralised(smtp: Callable[..., tuple[int, Mailbox]]) -> None:
    port, box = smtp()
    # The subject quotes the event's first line: bare CR, NEL and U+2028 do not end that line.
    evil = "login failed\rBcc: victim@evil.example\rX-Injected: yes\x85\u2028" + "A" * 500
    with Dispatcher(settings({"sinks": [smtp_sink(port)]}), FakeClock()) as d:
        d.submit([anomaly(text=evil + "\nBcc: second@evil.example", stream="app\r\nX-S: 1.log")])
    [(_, rcpts, msg)] = box.mails
    assert rcpts == ["ops@example.com", "oncall@example.com"]
    assert [msg[h] for h in ("Bcc", "Cc", "X-Injected", "X-S")] == [None] * 4
    # Python folds a subject holding "word:" onto the next line; the leading space is that fold.
    subject = str(msg["Subject"]).strip()
    assert subject.startswith(
        "[logwatch] 1 anomaly in app X-S: 1.log (severity up to 90): "
        "login failed Bcc: victim@evil.example X-Injected: yes AAA"
    )
    assert len(subject) == 200 and subject.endswith("A…")
    assert not any(c in subject for c in "\r\n\x85\u2028")
    body = msg.get_content()
    assert "login failed\\x0dBcc: victim@evil.example" in body  # the body shows it, escaped
    assert "== app\\x0d\\x0aX-S: 1.log (1) ==" in body


# ---------------------------------------------------------------- webhook


def test_webhook_json(http: Callable[..., tuple[ThreadingHTTPServer, Hits]]) -> None:
    server, hits = http()
    port = server.server_address[1]
    hook = webhook(port, headers={"Authorization": "Bearer abc", "X-Team": "ops"})
    with Dispatcher(settings({"sinks": [hook]}), FakeClock()) as d:
        d.submit([anomaly(), anomaly(stream="db.log", path="/var/log/db.log", severity=99)])
    [(path, headers, body)] = hits.requests
    assert path == f"/hooks/{TOKEN}"
    assert headers["Authorization"] == "Bearer abc" and headers["X-Team"] == "ops"
    assert headers["Content-Type"] == "application/json"
    assert body["summary"] == "2 anomalies in app.log, db.log (severity up to 99)"
    assert body["anomaly_count"] == 2 and body["held_back"] == {}
    assert [g["key"] for g in body["groups"]] == ["db.log", "app.log"]
    sent = body["groups"][1]["anomalies"][0]
    assert sent == {
        "id": None, "stream": "app.log", "path": "/var/log/app.log", "line": 1234,
        "offset": 56789, "timestamp": "2024-05-01T10:00:00+00:00",
        "detected_at": "2024-05-01T10:00:02+00:00", "severity": 90, "score": 0.42,
        "reasons": list(anomaly().reasons), "template": "Connection refused to <IP>",
        "template_id": 7, "text": "Connection refused to 10.0.0.7", "count": 1, "level": "FATAL",
        "host": "web1", "process": "sshd", "pid": 4242,
        "closest": "Connection [[accepted]] from 10.0.0.7",
    }  # fmt: skip
    assert d.stats()["webhook"].sent == 1


def test_webhook_slack_shape_escapes_mentions(
    http: Callable[..., tuple[ThreadingHTTPServer, Hits]],
) -> None:
    server, hits = http()
    hook = webhook(server.server_address[1], format="slack")
    results = send_test(settings({"sinks": [hook]}))
    assert results == [("webhook", None)]
    with Dispatcher(settings({"sinks": [hook], "max_per_hour_per_stream": 1}), FakeClock()) as d:
        d.submit(
            [
                anomaly(text="<!channel> ```x``` & more\n\x1b[2Jnext", template_id=n)
                for n in (1, 2, 3)
            ]
        )
    body = hits.requests[1][2]
    summary = "1 anomaly in app.log (severity up to 90), 2 held back"
    assert body["text"] == summary
    header, group, item, held = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": summary}}
    assert group["text"]["text"] == "*app.log* (1)"
    text = item["text"]["text"]
    assert item["type"] == "section" and item["text"]["type"] == "mrkdwn"
    assert "```&lt;!channel&gt; '''x''' &amp; more\n\\x1b[2Jnext```" in text
    assert "<" not in text and "*severity 90* `/var/log/app.log:1234` web1 sshd [4242]" in text
    assert held["type"] == "context"
    assert held["elements"][0]["text"].endswith("(cooldown or hourly budget): app.log: 2")


@pytest.mark.parametrize("status", [400, 307])
def test_a_rejected_request_is_dropped_not_retried(
    http: Callable[..., tuple[ThreadingHTTPServer, Hits]], status: int
) -> None:
    server, hits = http()
    hits.status = status
    config = settings({"sinks": [webhook(server.server_address[1])], "retry_initial_seconds": 0.01})
    with Dispatcher(config, FakeClock()) as d:
        d.submit([anomaly()])
        assert wait_for(lambda: d.stats()["webhook"].dropped == 1)
        time.sleep(0.1)
    assert len(hits.requests) == 1  # a redirect is not followed either (it would lose the body)
    stats = d.stats()["webhook"]
    assert (stats.sent, stats.failed, stats.dropped) == (0, 1, 1)


def test_log_sink_escapes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="logwatch.alerts")
    with Dispatcher(settings({"sinks": [{"type": "log"}]}), FakeClock()) as d:
        d.submit([anomaly(text="evil\x1b]0;owned\x07 title\nsecond line")])
    assert d.stats()["log"].sent == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "logwatch.alerts"]
    assert messages[0] == "alert: 1 anomaly in app.log (severity up to 90)"
    assert messages[1].startswith(
        "alert: [90] /var/log/app.log:1234 evil\\x1b]0;owned\\x07 title — new template"
    )


# ---------------------------------------------------------------- a sink that is down


def test_down_sink_is_retried_with_backoff_without_blocking(
    http: Callable[..., tuple[ThreadingHTTPServer, Hits]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens here yet
    config = settings(
        {"sinks": [webhook(port)], "retry_initial_seconds": 0.05, "retry_max_seconds": 0.2}
    )
    d = Dispatcher(config, FakeClock())
    try:
        started = time.perf_counter()
        digest = d.submit([anomaly()])
        took = time.perf_counter() - started
        assert digest is not None and took < 0.1, f"submit took {took * 1000:.0f} ms"
        assert wait_for(lambda: d.stats()["webhook"].failed >= 5)
        delays = [
            cast(float, r.args[3])
            for r in caplog.records
            if "retry" in r.getMessage() and isinstance(r.args, tuple)
        ]
        assert 0.025 <= delays[0] <= 0.05
        assert all(delay <= 0.2 for delay in delays)  # capped
        assert max(delays[3:]) >= 0.1  # and it grew: 0.05 * 2**3 jittered by half at most
        assert all(TOKEN not in r.getMessage() for r in caplog.records)
        _, hits = http(port)  # the server comes up
        assert wait_for(lambda: len(hits.requests) == 1)
        assert hits.requests[0][2]["groups"][0]["anomalies"][0]["line"] == 1234
        assert wait_for(lambda: d.stats()["webhook"].sent == 1)
        assert d.stats()["webhook"].queued == 0 and d.stats()["webhook"].dropped == 0
    finally:
        d.close(1.0)
    assert "webhook is back after" in caplog.text
    assert TOKEN not in caplog.text


def test_full_queue_drops_oldest_and_merges_the_rest_when_the_sink_returns(
    http: Callable[..., tuple[ThreadingHTTPServer, Hits]],
) -> None:
    port = free_port()
    config = settings(
        {"sinks": [webhook(port)], "queue_size": 2, "cooldown_seconds": 0,
         "retry_initial_seconds": 0.05, "retry_max_seconds": 0.1}
    )  # fmt: skip
    with Dispatcher(config, FakeClock()) as d:
        for line in range(1, 6):
            d.submit([anomaly(line=line)])
        assert wait_for(
            lambda: d.stats()["webhook"].dropped == 3 and d.stats()["webhook"].queued == 2
        )
        _, hits = http(port)
        assert wait_for(lambda: d.stats()["webhook"].sent == 2)
    [(_, _, body)] = hits.requests  # one message for both queued digests
    assert [a["line"] for a in body["groups"][0]["anomalies"]] == [4, 5]
    assert d.stats()["webhook"].dropped == 3


def test_hung_sink_neither_blocks_submit_nor_close() -> None:
    with socket.socket() as blackhole:  # accepts connections (backlog), never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        hook = webhook(blackhole.getsockname()[1], timeout=5)
        d = Dispatcher(settings({"sinks": [hook]}), FakeClock())
        started = time.perf_counter()
        for n in range(20):
            d.submit([anomaly(template_id=n)])
        assert time.perf_counter() - started < 0.1
        started = time.perf_counter()
        d.close(0.3)
        assert time.perf_counter() - started < 1.0


def test_a_failing_sink_never_raises_and_delivers_once_it_can(tmp_path: Path) -> None:
    target = tmp_path / "later" / "alerts.jsonl"
    config = settings(
        {"sinks": [{"type": "file", "path": str(target)}], "retry_initial_seconds": 0.02,
         "retry_max_seconds": 0.05}
    )  # fmt: skip
    with Dispatcher(config, FakeClock()) as d:
        assert d.submit([anomaly()]) is not None
        assert wait_for(lambda: d.stats()["file"].failed >= 2)
        target.parent.mkdir()
        assert wait_for(lambda: d.stats()["file"].sent == 1)
    assert len(target.read_text().splitlines()) == 1
    [(name, error)] = send_test(settings({"sinks": [{"type": "file", "path": "/nonexistent/x"}]}))
    assert (name, error) == ("file", "No such file or directory")


# ---------------------------------------------------------------- ECS file


def test_ecs_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"cut short by a full disk"')  # no newline: the next line must stay whole
    config = settings({"sinks": [{"type": "file", "path": str(path)}]})
    with Dispatcher(config, FakeClock()) as d:
        d.submit(
            [
                anomaly(),
                anomaly(stream="db.log", path="/var/log/db.log", severity=70, timestamp=None,
                        host=None, process=None, pid=None, level=None, text="x\x1b[31m\ny"),
            ]
        )  # fmt: skip
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and raw.isascii()
    lines = raw.decode().splitlines()
    assert lines[0] == '{"cut short by a full disk"'
    first, second = (json.loads(line) for line in lines[1:])
    assert first == {
        "@timestamp": "2024-05-01T10:00:00+00:00",
        "message": "Connection refused to 10.0.0.7",
        "ecs": {"version": "8.11.0"},
        "log": {"file": {"path": "/var/log/app.log"}, "offset": 56789, "level": "FATAL"},
        "event": {
            "kind": "alert", "module": "logwatch", "dataset": "logwatch.anomaly", "severity": 90,
            "risk_score": 90.0, "reason": "; ".join(anomaly().reasons),
            "created": "2024-05-01T10:00:02+00:00",
        },
        "logwatch": {
            "stream": "app.log", "line": 1234, "template": "Connection refused to <IP>",
            "template_id": 7, "reasons": list(anomaly().reasons), "group": "app.log",
            "score": 0.42, "count": 1, "anomaly_id": None,
            "timestamp": "2024-05-01T10:00:00+00:00",
            "closest": "Connection [[accepted]] from 10.0.0.7",
        },
        "host": {"name": "web1"},
        "process": {"name": "sshd", "pid": 4242},
    }  # fmt: skip
    assert second["@timestamp"] == "2024-05-01T10:00:02+00:00"  # no log time: detection time
    assert second["message"] == "x\x1b[31m\ny" and "host" not in second
    assert "level" not in second["log"] and second["event"]["severity"] == 70


def test_ecs_naive_log_time_is_not_passed_off_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    digest = Dispatcher(settings({}), sinks=[]).submit([anomaly(timestamp="2024-05-01T12:00:00")])
    assert digest is not None
    EcsFileSink(FileSettings("file", str(path))).send(digest)
    doc = json.loads(path.read_text())
    assert doc["@timestamp"] == "2024-05-01T10:00:02+00:00"
    assert doc["logwatch"]["timestamp"] == "2024-05-01T12:00:00"
