"""Prometheus metrics: what the daemon did, exposed on ``--metrics-port`` for scraping.

Every ``Metrics`` owns its registry rather than using prometheus_client's global one, so two
pipelines in one process (tests, or a future multi-root daemon) never collide or double-register.
The methods take plain values (stream names, counts, seconds), so this module knows nothing of the
pipeline's records; ``NullMetrics`` has the same methods and does nothing, for when metrics are off.
"""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    make_wsgi_app,
)

from logwatch.errors import ConfigError

# Severity bands rather than raw severities: a label per value would give 101 series per stream.
# The edges match the defaults: min_severity 40 (recorded) and alert_min_severity 60 (alerted).
SEVERITY_BANDS: tuple[tuple[int, str], ...] = ((80, "80-100"), (60, "60-79"), (40, "40-59"))
BELOW_BANDS = "0-39"  # only seen when min_severity is lowered below 40

# Polls take milliseconds when nothing changed and seconds when a large batch lands or the
# database is slow; the default buckets stop at 10 s, which a first poll of a big log root can pass.
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def severity_band(severity: float) -> str:
    """The ``band`` label of a severity (0-100): ``"40-59"``, ``"60-79"``, ``"80-100"``."""
    for floor, band in SEVERITY_BANDS:
        if severity >= floor:
            return band
    return BELOW_BANDS


class MetricsSink(Protocol):
    """What the pipeline and daemon call; ``Metrics`` and ``NullMetrics`` both provide it."""

    def observe_stream(self, stream: str, lines: int, events: int) -> None: ...

    def observe_anomaly(self, stream: str, severity: float) -> None: ...

    def observe_poll(
        self, seconds: float, lag_bytes: int, files_tracked: int, *, at: float
    ) -> None: ...

    def model_trained(self, stream: str) -> None: ...

    def sink_error(self, sink: str) -> None: ...


# How often the serving thread checks for close(): the default 0.5 s would make every stop wait.
_SHUTDOWN_POLL_SECONDS = 0.05


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A slow or stuck scraper must never hold up the daemon's exit.
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):  # for an IPv6 host such as ::1
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not worth a line on stderr (journald)


class MetricsServer:
    """A running /metrics endpoint; ``port`` is the bound one (useful when asked for port 0)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])

    def close(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()  # waits for serve_forever to return
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Metrics:
    """The daemon's counters, gauges and poll-duration histogram, in a registry of its own.

    Examples
    --------
    >>> m = Metrics()
    >>> m.observe_stream("app.log", lines=10, events=8)
    >>> m.observe_anomaly("app.log", severity=72)
    >>> m.value("logwatch_anomalies_total", stream="app.log", band="60-79")
    1.0
    """

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.lines = Counter(
            "logwatch_lines_read", "Complete log lines read.", ["stream"], registry=r
        )
        self.events = Counter(
            "logwatch_events", "Events parsed (a stack trace is one event).", ["stream"], registry=r
        )
        self.anomalies = Counter(
            "logwatch_anomalies",
            "Anomalies recorded, by stream and severity band.",
            ["stream", "band"],
            registry=r,
        )
        self.poll_duration = Histogram(
            "logwatch_poll_duration_seconds",
            "Wall time of one successful poll.",
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.lag_bytes = Gauge(
            "logwatch_lag_bytes",
            "Bytes of tracked files not read yet (size minus offset) after the last poll.",
            registry=r,
        )
        self.files_tracked = Gauge(
            "logwatch_files_tracked", "Files being followed after the last poll.", registry=r
        )
        self.models = Counter(
            "logwatch_models_trained", "Stream models trained.", ["stream"], registry=r
        )
        self.sink_errors = Counter(
            "logwatch_alert_sink_errors",
            "Failed attempts to deliver alerts, by sink.",
            ["sink"],
            registry=r,
        )
        self.last_poll = Gauge(
            "logwatch_last_successful_poll_timestamp_seconds",
            "Unix time at which the last successful poll ended; alert on time() minus this.",
            registry=r,
        )
        if process:
            # Memory, CPU and open descriptors of this process: how the bounded-memory and
            # max_open_files promises look from outside. Linux-only data; empty elsewhere.
            ProcessCollector(registry=r)

    # ------------------------------------------------------------------ recording

    def observe_stream(self, stream: str, lines: int, events: int) -> None:
        """Count a committed batch of ``lines`` lines and ``events`` events of ``stream``."""
        self.lines.labels(stream=stream).inc(lines)
        self.events.labels(stream=stream).inc(events)

    def observe_anomaly(self, stream: str, severity: float) -> None:
        """Count one recorded anomaly."""
        self.anomalies.labels(stream=stream, band=severity_band(severity)).inc()

    def observe_poll(
        self, seconds: float, lag_bytes: int, files_tracked: int, *, at: float
    ) -> None:
        """Record a successful poll that took ``seconds`` and ended at Unix time ``at``.

        ``at`` is passed in because only the daemon reads the wall clock (DESIGN.md).
        """
        self.poll_duration.observe(seconds)
        self.lag_bytes.set(lag_bytes)
        self.files_tracked.set(files_tracked)
        self.last_poll.set(at)

    def model_trained(self, stream: str) -> None:
        self.models.labels(stream=stream).inc()

    def sink_error(self, sink: str) -> None:
        self.sink_errors.labels(sink=sink).inc()

    # ------------------------------------------------------------------ reading and serving

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (``name`` as exposed, e.g. with ``_total``)."""
        return self.registry.get_sample_value(name, labels)

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; port 0 picks a free port.

        Loopback by default: the metrics name streams (log file names), which is not something to
        publish on every interface without the operator asking for it.
        """
        # Our own server rather than prometheus_client.start_http_server: close() must return
        # promptly (see _SHUTDOWN_POLL_SECONDS) and access logs must stay off.
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        try:
            server = make_server(
                host,
                port,
                make_wsgi_app(self.registry),
                server_class=server_class,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            raise ConfigError(
                f"metrics port {port} on {host} cannot be used: {exc.strerror or exc}"
            ) from None
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="logwatch-metrics",
            daemon=True,
        )
        thread.start()
        return MetricsServer(server, thread)


class NullMetrics:
    """Metrics switched off (``metrics_port = 0``): same methods, nothing recorded."""

    def observe_stream(self, stream: str, lines: int, events: int) -> None:
        pass

    def observe_anomaly(self, stream: str, severity: float) -> None:
        pass

    def observe_poll(
        self, seconds: float, lag_bytes: int, files_tracked: int, *, at: float
    ) -> None:
        pass

    def model_trained(self, stream: str) -> None:
        pass

    def sink_error(self, sink: str) -> None:
        pass
