"""The Prometheus registry as OTLP metrics (ticktape.telemetry_metrics): every family ticktape
exports is converted, counters as cumulative monotonic sums named after the family, gauges as
gauges, histograms with de-cumulated bucket counts and no invented min or max."""

from __future__ import annotations

import math

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    MetricExporter,
    MetricExportResult,
    Sum,
)
from prometheus_client import CollectorRegistry, Counter
from prometheus_client import Histogram as PromHistogram

from ticktape import telemetry_metrics as tm
from ticktape.events import OrderCanceled
from ticktape.metrics import HANDLE_BUCKETS, ServiceMetrics, SupervisorMetrics, exported_names


def _by_name(registry: CollectorRegistry) -> dict[str, object]:
    return {m.name: m for m in tm.to_otlp(registry, start_ns=1, now_ns=2)}


def test_counter_is_a_cumulative_monotonic_sum_named_after_its_family_starting_at_its_creation():
    metrics = ServiceMetrics("signal")
    metrics.received(3)
    metrics.rejected("too_large")
    metrics.rejected("too_large")
    out = _by_name(metrics.registry)
    received = out["ticktape_received"]
    assert isinstance(received.data, Sum)
    assert received.data.is_monotonic and received.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    [point] = received.data.data_points
    assert point.value == 3 and dict(point.attributes) == {"service": "signal"}
    created = next(
        s.value for f in metrics.registry.collect() for s in f.samples if s.name == "ticktape_received_created"
    )
    assert point.start_time_unix_nano == int(created * 1e9)  # not the exporter's start (1)
    [rejected] = out["ticktape_rejected"].data.data_points
    assert rejected.value == 2 and dict(rejected.attributes) == {"service": "signal", "reason": "too_large"}


def test_gauge_is_a_gauge_with_its_labels():
    metrics = ServiceMetrics("execution")
    metrics.account("acct-1", equity=1000.0, gross=250.0, net=-50.0)
    out = _by_name(metrics.registry)
    net = out["ticktape_account_net_exposure"]
    assert isinstance(net.data, Gauge)
    [point] = net.data.data_points
    assert point.value == -50.0 and dict(point.attributes) == {"service": "execution", "account": "acct-1"}


def test_histogram_bucket_counts_are_per_bucket_with_the_bounds_but_inf_and_no_min_or_max():
    metrics = ServiceMetrics("signal")
    for seconds in (0.000005, 0.00003, 0.00003, 0.2, 7.0):  # 7 s: above every bound, the +Inf bucket
        metrics.core_handled(seconds)
    hist = _by_name(metrics.registry)["ticktape_core_handle_seconds"]
    assert isinstance(hist.data, Histogram)
    [point] = hist.data.data_points
    assert list(point.explicit_bounds) == list(HANDLE_BUCKETS)
    expected = [0] * (len(HANDLE_BUCKETS) + 1)
    expected[0] = 1  # <= 1e-05
    expected[1] = 2  # <= 5e-05
    expected[HANDLE_BUCKETS.index(0.5)] = 1
    expected[-1] = 1
    assert list(point.bucket_counts) == expected
    assert point.count == 5 and math.isclose(point.sum, 7.200065)
    # encoded as a collector gets it: min and max not sent at all (Prometheus keeps neither)
    request = encode_metrics(tm.metrics_data(tm.resource("signal"), metrics.registry, 1, 2))
    [encoded] = [
        m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == hist.name
    ]
    [dp] = encoded.histogram.data_points
    assert not dp.HasField("min") and not dp.HasField("max")
    assert list(dp.bucket_counts) == expected


def test_labelled_histogram_series_are_separate_points():
    registry = CollectorRegistry()
    h = PromHistogram("lat", "latency", ["hop"], buckets=(1.0, 2.0), registry=registry)
    h.labels("a").observe(0.5)
    h.labels("b").observe(1.5)
    h.labels("b").observe(1.7)
    points = {p.attributes["hop"]: p for p in _by_name(registry)["lat"].data.data_points}
    assert list(points["a"].bucket_counts) == [1, 0, 0]
    assert list(points["b"].bucket_counts) == [0, 2, 0]
    assert points["b"].count == 2


def test_a_family_with_no_series_yet_is_not_sent():
    registry = CollectorRegistry()
    Counter("never", "labelled, never used", ["kind"], registry=registry)
    assert tm.to_otlp(registry, 1, 2) == []


def test_every_family_ticktape_exports_is_converted_under_the_same_name():
    from services.audit.service import AuditMetrics

    metrics = ServiceMetrics("audit")
    audit = AuditMetrics(metrics)
    metrics.error("core")
    metrics.retried("publish")
    metrics.rejected("x")
    metrics.consumer_lag("S", "d", 1, 0)
    metrics.storage_used("stream", "S", 0.5)
    metrics.bar_published("binance_usdm", 1)
    metrics.publish_acked(0.01)
    metrics.hop_latency("md.bar.closed", 0.02)
    metrics.core_handled(0.0001)
    metrics.account("a", 1.0, 0.0, 0.0)
    metrics.halted("a", False)
    metrics.ws_reconnect_counter("binance_usdm", 0)
    metrics.shard_connected("binance_usdm", 0, lambda: True)
    metrics.universe_trimmed("binance_usdm", 2)
    metrics.order_events(
        [
            OrderCanceled(
                event_id="c", ts_event=1, ts_init=1, order_id="o", account="a", venue="v", symbol="s", reason="r"
            )
        ]
    )
    metrics.dead_lettered()
    metrics.delivery_exhausted()
    metrics.dlq_payload_stored()
    metrics.snapshot("taken")
    audit.archived("S", 1)
    audit.skipped("S", 1)
    audit.checkpoint("S")
    audit.gap("S")
    families = {f.name for f in metrics.registry.collect()}
    assert set(_by_name(metrics.registry)) == families
    supervisor = SupervisorMetrics()
    supervisor.started("signal")
    assert set(_by_name(supervisor.registry)) == {f.name for f in supervisor.registry.collect()}
    # a collector's Prometheus exporter adds _total to a monotonic sum: the scraped names again
    converted = {m.name + ("_total" if isinstance(m.data, Sum) else "") for m in tm.to_otlp(metrics.registry, 1, 2)}
    assert converted <= exported_names(metrics.registry)


def test_the_resource_names_the_service_as_the_spans_do():
    data = tm.metrics_data(tm.resource("risk"), ServiceMetrics("risk").registry, 1, 2)
    [rm] = data.resource_metrics
    assert rm.resource.attributes["service.name"] == "ticktape-risk"


def test_metrics_url_appends_the_signal_path_once():
    assert tm.metrics_url("http://collector:4318") == "http://collector:4318/v1/metrics"
    assert tm.metrics_url("http://collector:4318/") == "http://collector:4318/v1/metrics"
    assert tm.metrics_url("http://collector:4318/v1/metrics") == "http://collector:4318/v1/metrics"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 60.0), ("", 60.0), ("1500", 1.5), ("0", 60.0), ("-5", 60.0), ("soon", 60.0), ("nan", 60.0)],
)
def test_the_interval_is_otel_metric_export_interval_in_milliseconds(value, seconds):
    env = {} if value is None else {"OTEL_METRIC_EXPORT_INTERVAL": value}
    assert tm.interval_s(env) == seconds


class _Exporter(MetricExporter):
    """Answers each export with the next of `results`; counts the calls."""

    def __init__(self, *results: MetricExportResult) -> None:
        super().__init__()
        self.results = list(results)
        self.calls = 0
        self.closed = False

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.calls += 1
        return self.results.pop(0)

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self.closed = True


def test_shutdown_sends_once_more_unless_the_last_export_failed():
    ok = _Exporter(MetricExportResult.SUCCESS, MetricExportResult.SUCCESS)
    pusher = tm.MetricsPusher("risk", ServiceMetrics("risk").registry, "http://x", exporter=ok)
    assert pusher.export()
    pusher.shutdown()
    assert ok.calls == 2 and ok.closed
    down = _Exporter(MetricExportResult.FAILURE)
    pusher = tm.MetricsPusher("risk", ServiceMetrics("risk").registry, "http://x", exporter=down)
    assert not pusher.export()
    pusher.shutdown()  # an endpoint that is down would hold up the stop for another deadline
    assert down.calls == 1 and down.closed
