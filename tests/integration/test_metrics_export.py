"""A process's metrics leave it two ways: pushed over OTLP/HTTP (ticktape.telemetry_metrics, with
the OTel SDK's exporter, to an in-test receiver that decodes ExportMetricsServiceRequest as a
collector would), and served for scraping on telemetry.metrics_host."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from tests.support.otlp import OtlpReceiver, Point
from ticktape import telemetry_metrics
from ticktape.metrics import HANDLE_BUCKETS, ServiceMetrics, metrics_url
from ticktape.testing.stack import wait_for


def latest(rec: OtlpReceiver, resource: str, metric: str, **attributes: str) -> Point | None:
    found = [
        p
        for p in rec.points()
        if p.service == resource and p.metric == metric and all(p.attributes.get(k) == v for k, v in attributes.items())
    ]
    return found[-1] if found else None


def test_the_registry_is_pushed_every_interval_with_counters_gauges_and_histograms():
    metrics = ServiceMetrics("signal")
    metrics.received(3)
    metrics.consumer_lag("TICKTAPE", "signal", pending=42, ack_pending=1)
    for seconds in (0.00003, 0.2):
        metrics.core_handled(seconds)
    with OtlpReceiver() as rec:
        pusher = telemetry_metrics.MetricsPusher("signal", metrics.registry, rec.url, interval=0.2).start()
        try:
            received = wait_for(
                lambda: latest(rec, "ticktape-signal", "ticktape_received", service="signal"),
                timeout=10,
                what="ticktape_received over OTLP",
            )
            assert received.kind == "sum" and received.monotonic and received.value == 3
            lag = latest(rec, "ticktape-signal", "ticktape_consumer_lag", durable="signal")
            assert lag is not None and lag.kind == "gauge" and lag.value == 42
            hist = latest(rec, "ticktape-signal", "ticktape_core_handle_seconds")
            assert hist is not None and hist.kind == "histogram"
            assert hist.count == 2 and sum(hist.buckets) == 2 and hist.bounds == HANDLE_BUCKETS
            assert not hist.has_min and not hist.has_max
            metrics.received(2)  # the next export carries the new cumulative value
            wait_for(
                lambda: (p := latest(rec, "ticktape-signal", "ticktape_received")) is not None and p.value == 5,
                timeout=10,
                what="the counter's new value in a later export",
            )
        finally:
            pusher.shutdown()


def test_shutdown_sends_the_last_values():
    metrics = ServiceMetrics("risk")
    with OtlpReceiver() as rec:
        pusher = telemetry_metrics.MetricsPusher("risk", metrics.registry, rec.url, interval=600).start()
        metrics.halted("acct-1", True)
        metrics.received(7)
        assert rec.requests["metrics"] == 0  # the first export is 10 minutes away
        pusher.shutdown()
        assert rec.requests["metrics"] == 1
        halted = latest(rec, "ticktape-risk", "ticktape_account_halted", account="acct-1")
        received = latest(rec, "ticktape-risk", "ticktape_received")
    assert halted is not None and halted.value == 1
    assert received is not None and received.value == 7


def test_setup_pushes_only_with_an_endpoint_and_once_per_process(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert telemetry_metrics.setup("signal", ServiceMetrics("signal").registry, None) is None
    with OtlpReceiver() as rec:
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")
        pusher = telemetry_metrics.setup("execution", ServiceMetrics("execution").registry, rec.url)
        try:
            assert pusher is not None and pusher.interval == 600
            assert telemetry_metrics.setup("other", ServiceMetrics("other").registry, rec.url) is pusher
        finally:
            telemetry_metrics.shutdown()
        assert {p.service for p in rec.points()} == {"ticktape-execution"}


def _port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return b"ticktape_received_total" in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def test_metrics_are_served_on_metrics_host_only():
    """127.0.0.2 is loopback too (nothing leaves the machine) but a different address than
    127.0.0.1: the endpoint answers on the configured host and not on the default one."""
    host = "127.0.0.2"
    port = _port(host)
    ServiceMetrics("archive").serve(port, host)
    assert _answers(metrics_url(host, port))
    assert not _answers(metrics_url("127.0.0.1", port))
