"""The daemon's operator side end to end: a real webhook on loopback receives one digest per poll,
a suppression given while the daemon runs mutes the next alert, and Prometheus metrics count what
was read and found; and --once honours a template marked normal."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from logwatch import feedback
from logwatch.alerts import AlertSettings, Dispatcher
from logwatch.config import Config
from logwatch.daemon import run_daemon
from logwatch.metrics import Metrics
from logwatch.pipeline import Pipeline
from logwatch.storage import Store


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def normal_lines(n: int, start: int = 0) -> str:
    return "".join(
        f"2026-03-04 12:{(i // 60) % 60:02d}:{i % 60:02d} INFO worker {i % 4} finished job "
        f"{1000 + i} in {20 + i % 7} ms\n"
        for i in range(start, start + n)
    )


PANIC = "2026-03-04 13:00:00 CRITICAL kernel panic: filesystem corrupted on device sda{n}\n"


def texts(digests: list[dict[str, Any]]) -> list[str]:
    return [a["text"] for d in digests for g in d["groups"] for a in g["anomalies"]]


def test_daemon_alerts_once_per_poll_honours_suppression_and_counts_metrics(
    store: Store, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    app.write_text(normal_lines(300))
    config = Config(
        log_dir=logs,
        db_url=store.url,
        poll_interval=0.2,
        multiline_flush_seconds=0.0,
        train_min_events=50,
        alert_min_severity=40,
        alerts={"cooldown_seconds": 0, "sinks": [{"type": "webhook", "url": url}]},
    )
    metrics = Metrics(process=False)
    dispatcher = Dispatcher(AlertSettings.from_config(config))
    stop = threading.Event()
    daemon = threading.Thread(
        target=run_daemon,
        args=(config, store),
        kwargs={"node": "t", "stop": stop, "metrics": metrics, "dispatcher": dispatcher},
    )
    daemon.start()
    try:
        wait_for(lambda: metrics.value("logwatch_lines_read_total", stream="app.log") == 300)
        assert received == []  # ordinary lines alert nobody
        with app.open("a") as fh:
            fh.write(PANIC.format(n=1))
        wait_for(lambda: len(received) == 1)
        assert texts(received) == [PANIC.format(n=1).rstrip("\n")]
        assert received[0]["groups"][0]["anomalies"][0]["path"] == str(app)
        stored = store.anomalies()
        assert [a.text for a in stored] == texts(received)
        band = metrics.value(
            "logwatch_anomalies_total", stream="app.log", band=_band(stored[0].severity)
        )
        assert band == 1.0
        assert metrics.value("logwatch_models_trained_total", stream="app.log") == 1.0
        assert metrics.value("logwatch_files_tracked") == 1.0

        # Suppressed from the CLI's side while the daemon runs: recorded, not sent.
        template_id = stored[0].template_id
        assert template_id is not None
        feedback.suppress(store, "app.log", str(template_id), None, "known disk", now=None)
        with app.open("a") as fh:
            fh.write(normal_lines(20, start=300) + PANIC.format(n=2))
        wait_for(lambda: len(store.anomalies()) == 2)
        time.sleep(1.0)  # a digest, if one were sent, would arrive well within this
        assert len(received) == 1
    finally:
        stop.set()
        daemon.join(30)
    assert not daemon.is_alive()


def _band(severity: int) -> str:
    from logwatch.metrics import severity_band

    return severity_band(severity)


def test_once_drops_a_template_marked_normal_unless_clearly_more_severe(
    store: Store, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(normal_lines(400) + PANIC.format(n=1))
    config = Config(log_dir=logs, db_url=store.url, once=True)
    Pipeline(config, store).run_once(datetime(2026, 3, 5, tzinfo=UTC))
    (first,) = store.anomalies()
    feedback.mark_normal(store, first.id or 0)
    # The same kind of line in a new file of the same stream: marked normal, so not recorded.
    (logs / "app.log.1").write_text(normal_lines(10) + PANIC.format(n=3))
    pipeline = Pipeline(config, store)
    pipeline.run_once(datetime(2026, 3, 5, tzinfo=UTC))
    assert [a.text for a in store.anomalies()] == [first.text]
    assert pipeline.marked_normal == 1


def test_daemon_process_serves_metrics_over_http(tmp_path: Path) -> None:
    """`logwatch run --metrics-port` in a real process: scraping /metrics on loopback shows the
    lines it read and its files."""
    import socket
    import urllib.request

    from daemon_harness import DaemonProcess
    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(normal_lines(120))
    daemon = DaemonProcess(
        logs,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path / "work",
        extra_args=("--metrics-port", str(port)),
    ).start()
    try:
        daemon.wait_ready()

        def scrape() -> dict[str, float]:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            return {
                f"{s.name}{s.labels.get('stream', '')}": s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }

        def read_all() -> bool:
            try:
                values = scrape()
            except OSError:
                return False
            # Lines are counted as each batch commits, the poll's gauges when the poll ends.
            return (
                values.get("logwatch_lines_read_totalapp.log") == 119.0
                and values.get("logwatch_last_successful_poll_timestamp_seconds", 0.0) > 0
            )

        # 119: the last line is held back while it may still get continuation lines.
        wait_for(read_all)
        values = scrape()
        assert values["logwatch_files_tracked"] == 1.0
        assert values["logwatch_lag_bytes"] == len(normal_lines(120).splitlines()[-1]) + 1
    finally:
        daemon.send(2)
        assert daemon.wait(30) == 0


def test_alert_test_command_sends_real_mail(tmp_path: Path) -> None:
    import socket

    from aiosmtpd.controller import Controller
    from click.testing import CliRunner

    from logwatch.cli import cli

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.original_content or b"")
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = tmp_path / "logwatch.toml"
        config.write_text(
            "[[alerts.sinks]]\n"
            'type = "smtp"\nname = "ops-mail"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\n'
            'from = "logwatch@example.com"\nto = ["ops@example.com"]\n'
            "[[alerts.sinks]]\n"
            'type = "webhook"\nname = "down-hook"\nurl = "http://127.0.0.1:9/hook"\ntimeout = 2\n'
        )
        result = CliRunner().invoke(cli, ["alert", "test", "--config", str(config)])
    finally:
        controller.stop()
    lines = result.output.splitlines()
    assert "ops-mail: ok" in lines
    assert any(line.startswith("down-hook: ") and line != "down-hook: ok" for line in lines)
    assert result.exit_code == 1  # one sink failed
    assert len(received) == 1 and b"ops@example.com" in received[0]
