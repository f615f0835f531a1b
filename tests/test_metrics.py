"""Metrics: recorded values reach a real scrape over loopback HTTP, in Prometheus text format."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from logwatch.errors import ConfigError
from logwatch.metrics import Metrics, MetricsServer, MetricsSink, NullMetrics, severity_band


def scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every exposed sample: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def server(metrics: Metrics) -> Iterator[MetricsServer]:
    with metrics.serve(0) as srv:
        yield srv


def test_scrape_exposes_what_was_recorded(metrics: Metrics, server: MetricsServer) -> None:
    metrics.observe_stream("app.log", lines=120, events=100)
    metrics.observe_stream("app.log", lines=30, events=25)
    metrics.observe_stream("auth.log", lines=7, events=7)
    for severity in (41, 59, 60, 79, 80, 100):
        metrics.observe_anomaly("app.log", severity)
    metrics.observe_anomaly("auth.log", 95)
    metrics.observe_poll(0.3, lag_bytes=4096, files_tracked=5, at=1_767_225_600.0)
    metrics.observe_poll(1.7, lag_bytes=0, files_tracked=6, at=1_767_225_602.5)
    metrics.model_trained("app.log")
    metrics.sink_error("webhook")
    metrics.sink_error("webhook")
    metrics.sink_error("email")

    got = scrape(server)

    assert got[("logwatch_lines_read_total", (("stream", "app.log"),))] == 150
    assert got[("logwatch_lines_read_total", (("stream", "auth.log"),))] == 7
    assert got[("logwatch_events_total", (("stream", "app.log"),))] == 125
    for band, count in (("40-59", 2), ("60-79", 2), ("80-100", 2)):
        key = ("logwatch_anomalies_total", (("band", band), ("stream", "app.log")))
        assert got[key] == count
    assert got[("logwatch_anomalies_total", (("band", "80-100"), ("stream", "auth.log")))] == 1
    assert got[("logwatch_poll_duration_seconds_count", ())] == 2
    assert got[("logwatch_poll_duration_seconds_sum", ())] == pytest.approx(2.0)
    assert got[("logwatch_poll_duration_seconds_bucket", (("le", "0.5"),))] == 1
    assert got[("logwatch_poll_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    # Gauges hold the last poll, not a sum.
    assert got[("logwatch_lag_bytes", ())] == 0
    assert got[("logwatch_files_tracked", ())] == 6
    assert got[("logwatch_last_successful_poll_timestamp_seconds", ())] == 1_767_225_602.5
    assert got[("logwatch_models_trained_total", (("stream", "app.log"),))] == 1
    assert got[("logwatch_alert_sink_errors_total", (("sink", "webhook"),))] == 2
    assert got[("logwatch_alert_sink_errors_total", (("sink", "email"),))] == 1


def test_fresh_scrape_has_the_unlabelled_series_at_zero(server: MetricsServer) -> None:
    got = scrape(server)
    assert got[("logwatch_lag_bytes", ())] == 0
    assert got[("logwatch_files_tracked", ())] == 0
    assert got[("logwatch_poll_duration_seconds_count", ())] == 0
    # Labelled series appear only once a stream or sink has been seen.
    assert not any(name == "logwatch_lines_read_total" for name, _ in got)


def test_stream_names_are_escaped_in_the_exposition(
    metrics: Metrics, server: MetricsServer
) -> None:
    # A stream name is a file name: it may hold quotes, backslashes or a newline.
    odd = 'we"ird\\name\n.log'
    metrics.observe_stream(odd, lines=3, events=3)
    assert scrape(server)[("logwatch_lines_read_total", (("stream", odd),))] == 3


def test_instances_have_separate_registries() -> None:
    a, b = Metrics(), Metrics()  # would raise "Duplicated timeseries" on a shared registry
    a.observe_stream("x.log", lines=5, events=5)
    with a.serve(0) as sa, b.serve(0) as sb:
        assert sa.port != sb.port
        assert scrape(sa)[("logwatch_lines_read_total", (("stream", "x.log"),))] == 5
        assert not any(name == "logwatch_lines_read_total" for name, _ in scrape(sb))


def test_serve_binds_loopback_by_default_and_close_frees_the_port(metrics: Metrics) -> None:
    srv = metrics.serve(0)
    assert srv.host == "127.0.0.1"
    port = srv.port
    srv.close()
    srv.close()  # idempotent
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


def test_serve_on_ipv6_loopback(metrics: Metrics) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        srv = metrics.serve(0, host="::1")
    except ConfigError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with srv:
        url = f"http://[::1]:{srv.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert b"logwatch_lag_bytes" in resp.read()


def test_port_in_use_is_a_config_error_naming_the_port(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"metrics port {port} on 127.0.0.1 cannot be used"):
            metrics.serve(port)


@pytest.mark.parametrize(
    ("severity", "band"),
    [
        (0, "0-39"),
        (39.9, "0-39"),
        (40, "40-59"),
        (59, "40-59"),
        (60, "60-79"),
        (80, "80-100"),
        (100, "80-100"),
    ],
)
def test_severity_band(severity: float, band: str) -> None:
    assert severity_band(severity) == band


def test_null_metrics_accepts_the_same_calls() -> None:
    sinks: list[MetricsSink] = [NullMetrics(), Metrics(process=False)]
    for sink in sinks:
        sink.observe_stream("a.log", 1, 1)
        sink.observe_anomaly("a.log", 50)
        sink.observe_poll(0.1, 0, 1, at=0.0)
        sink.model_trained("a.log")
        sink.sink_error("log")
