"""A process's Prometheus registry (ticktape.metrics) pushed as OTLP metrics, so that
telemetry.otlp_endpoint (`ticktape up --otlp URL`) carries metrics as well as traces.

Every OTEL_METRIC_EXPORT_INTERVAL milliseconds (the OpenTelemetry SDK's variable; default 60000)
a daemon thread reads the registry, exactly what a scrape would return, and sends it with the
OTel SDK's OTLP/HTTP metric exporter to <endpoint>/v1/metrics, as the resource
service.name=ticktape-<service> (the same as the spans); shutdown() sends it once more. The
exporter honours the OTEL_EXPORTER_OTLP_* header, compression, certificate and timeout variables
(5 s per export, retries included, when no timeout is set).

Each Prometheus family becomes the OTLP metric a collector's Prometheus exporter turns back into
the same series: a counter (`ticktape_received`, samples `ticktape_received_total`) a cumulative
monotonic sum named after the family; a gauge a gauge; a histogram a cumulative explicit-bucket
histogram, its bounds the buckets' `le` (but +Inf) and its counts de-cumulated, without min or
max (Prometheus keeps neither). Labels become attributes. A cumulative series starts at its
`_created` sample, or when this exporter started if it has none. Summaries, infos and state sets
have no OTLP counterpart here: ticktape exports none, and they are not sent."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric as PromMetric

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter

DEFAULT_INTERVAL_S = 60.0
# One export's deadline, retries included, unless OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT sets one:
# the last export runs while the service stops, within the supervisor's grace after the spans'.
DEFAULT_TIMEOUT_S = 5.0
_TIMEOUT_VARS = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")
_log = logging.getLogger(__name__)
_pusher: MetricsPusher | None = None

Labels = tuple[tuple[str, str], ...]


def metrics_url(endpoint: str) -> str:
    """The OTLP/HTTP metrics URL for a base endpoint (http://host:4318 -> http://host:4318/v1/metrics);
    a URL already ending in /v1/metrics is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/metrics") else f"{endpoint}/v1/metrics"


def interval_s(env: Mapping[str, str] | None = None) -> float:
    """OTEL_METRIC_EXPORT_INTERVAL in seconds (it is in milliseconds); the default when
    unset, and (as the SDK does) with a warning when it is not a positive number."""
    raw = (os.environ if env is None else env).get("OTEL_METRIC_EXPORT_INTERVAL")
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not math.isfinite(ms) or ms <= 0:
        _log.warning("OTEL_METRIC_EXPORT_INTERVAL=%r is not a positive number of milliseconds; using 60000", raw)
        return DEFAULT_INTERVAL_S
    return ms / 1000


def to_otlp(registry: CollectorRegistry, start_ns: int, now_ns: int) -> list[Metric]:
    """Every counter, gauge and histogram of the registry as OTLP metrics at now_ns."""
    out: list[Metric] = []
    for family in registry.collect():
        if family.type == "counter":
            sums = _counter_points(family, start_ns, now_ns)
            data: Sum | Gauge | Histogram = Sum(
                data_points=sums, aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True
            )
        elif family.type == "gauge":
            data = Gauge(data_points=_gauge_points(family, now_ns))
        elif family.type == "histogram":
            data = Histogram(
                data_points=_histogram_points(family, start_ns, now_ns),
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
            )
        else:
            continue
        if not data.data_points:  # a labelled family none of whose series exists yet
            continue
        out.append(Metric(name=family.name, description=family.documentation, unit=None, data=data))
    return out


def resource(service: str) -> Resource:
    """The OTel resource of a ticktape process: service.name=ticktape-<service>, as its spans."""
    return Resource.create({"service.name": f"ticktape-{service}"})


def metrics_data(res: Resource, registry: CollectorRegistry, start_ns: int, now_ns: int) -> MetricsData:
    """What one export sends: the registry's metrics (to_otlp) under the process's resource."""
    scope = InstrumentationScope("ticktape.metrics")
    metrics = to_otlp(registry, start_ns, now_ns)
    scoped = [ScopeMetrics(scope=scope, metrics=metrics, schema_url="")]
    return MetricsData(resource_metrics=[ResourceMetrics(resource=res, scope_metrics=scoped, schema_url="")])


def _key(labels: dict[str, str], drop: str | None = None) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def _start(created: dict[Labels, float], key: Labels, default_ns: int) -> int:
    seconds = created.get(key)
    return int(seconds * 1e9) if seconds is not None else default_ns


def _counter_points(family: PromMetric, start_ns: int, now_ns: int) -> list[NumberDataPoint]:
    totals: dict[Labels, float] = {}
    created: dict[Labels, float] = {}
    for sample in family.samples:
        if sample.name == f"{family.name}_total":
            totals[_key(sample.labels)] = sample.value
        elif sample.name == f"{family.name}_created":
            created[_key(sample.labels)] = sample.value
    return [
        NumberDataPoint(
            attributes=dict(key),
            start_time_unix_nano=_start(created, key, start_ns),
            time_unix_nano=now_ns,
            value=value,
        )
        for key, value in totals.items()
    ]


def _gauge_points(family: PromMetric, now_ns: int) -> list[NumberDataPoint]:
    return [
        NumberDataPoint(
            attributes=dict(_key(s.labels)), start_time_unix_nano=now_ns, time_unix_nano=now_ns, value=s.value
        )
        for s in family.samples
        if s.name == family.name
    ]


def _histogram_points(family: PromMetric, start_ns: int, now_ns: int) -> list[HistogramDataPoint]:
    buckets: dict[Labels, list[tuple[float, float]]] = {}
    counts: dict[Labels, float] = {}
    sums: dict[Labels, float] = {}
    created: dict[Labels, float] = {}
    for sample in family.samples:
        if sample.name == f"{family.name}_bucket":
            buckets.setdefault(_key(sample.labels, drop="le"), []).append((float(sample.labels["le"]), sample.value))
        elif sample.name == f"{family.name}_count":
            counts[_key(sample.labels)] = sample.value
        elif sample.name == f"{family.name}_sum":
            sums[_key(sample.labels)] = sample.value
        elif sample.name == f"{family.name}_created":
            created[_key(sample.labels)] = sample.value
    points = []
    for key, cumulative in buckets.items():
        cumulative.sort()
        bounds = [le for le, _ in cumulative if le != math.inf]
        totals = [c for _, c in cumulative]  # observations at or below each bound
        per_bucket = [int(c - below) for c, below in zip(totals, [0.0, *totals[:-1]], strict=True)]
        points.append(
            HistogramDataPoint(
                attributes=dict(key),
                start_time_unix_nano=_start(created, key, start_ns),
                time_unix_nano=now_ns,
                count=int(counts.get(key, totals[-1])),
                sum=sums.get(key, 0.0),
                bucket_counts=per_bucket,
                explicit_bounds=bounds,
                # Prometheus keeps no min or max: None leaves the optional OTLP fields unset
                min=cast(float, None),
                max=cast(float, None),
            )
        )
    return points


class MetricsPusher:
    """Sends one registry to one OTLP endpoint every `interval` seconds, and at shutdown."""

    def __init__(
        self,
        service: str,
        registry: CollectorRegistry,
        endpoint: str,
        interval: float = DEFAULT_INTERVAL_S,
        exporter: MetricExporter | None = None,
    ) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            timeout = None if any(os.environ.get(v) for v in _TIMEOUT_VARS) else DEFAULT_TIMEOUT_S
            exporter = OTLPMetricExporter(endpoint=metrics_url(endpoint), timeout=timeout)
        self.registry = registry
        self.interval = interval
        self._exporter = exporter
        self._resource = resource(service)
        self._started_ns = time.time_ns()
        self._stop = threading.Event()
        self._delivered = True  # the last export's outcome
        self._thread = threading.Thread(target=self._run, name="ticktape-otlp-metrics", daemon=True)

    def start(self) -> MetricsPusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.export()

    def export(self) -> bool:
        """Send the registry now; False when it was not delivered (the exporter logged why)."""
        try:
            data = metrics_data(self._resource, self.registry, self._started_ns, time.time_ns())
            self._delivered = self._exporter.export(data) is MetricExportResult.SUCCESS
        except Exception:  # noqa: BLE001 - a failing gauge callback must not end the thread: next time
            _log.exception("reading the metrics registry for OTLP failed")
            self._delivered = False
        return self._delivered

    def shutdown(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Stop the thread, send the registry one last time, close the exporter. The last export
        is skipped when the one before failed (an endpoint that is down would hold up the stop for
        another export deadline) or is still running after `timeout`."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive() and self._delivered:
            self.export()
        self._exporter.shutdown()


def setup(service: str, registry: CollectorRegistry, endpoint: str | None = None) -> MetricsPusher | None:
    """Start pushing this process's registry (once per process) when there is an OTLP endpoint:
    `endpoint` is telemetry.otlp_endpoint, which wins over OTEL_EXPORTER_OTLP_ENDPOINT."""
    global _pusher
    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if _pusher is None and endpoint:
        _pusher = MetricsPusher(service, registry, endpoint, interval_s()).start()
    return _pusher


def shutdown() -> None:
    """Send the last values and stop (the service's exit path calls it)."""
    global _pusher
    if _pusher is not None:
        _pusher.shutdown()
        _pusher = None
