"""Per-service metrics in one registry per process, exported in Prometheus text format when
telemetry.metrics_port is set (`ticktape up` gives each service its own port: service_ports), on
telemetry.metrics_host (loopback by default), and pushed over OTLP with an OTLP endpoint
(ticktape.telemetry_metrics).

Counters: received, published, rejected, dead-lettered, errors, retries, inputs that exhausted
their deliveries, dead-letter payloads kept out of band. Gauges: the storage fraction
(ticktape.storage), each durable's lag, the age of each venue's last bar, each account's equity,
peak equity, exposure and halt. Histograms: publish-to-ack latency, tick-to-output latency per
hop, the core's handling time (the strategies' evaluation time in signal). WebSocket reconnects
per shard, closed bars published per venue, order events per account (approvals, risk rejections
by reason, orders, cancels, fills). `SupervisorMetrics` is what `ticktape up` serves itself:
restarts per service. deploy/prometheus/alerts.yml and the Grafana dashboards of deploy/ query
these names (tests check they use only names exported here).

Exemplars: an observation of a latency histogram made while the current span's trace is sampled
(spans are recorded and exported: an OTLP endpoint is set, ticktape.telemetry) carries the
exemplar {trace_id: <its 32-hex trace id>}, so Grafana links a latency point to its trace in
Tempo. Exemplars exist only in the OpenMetrics format, which prometheus_client's HTTP server
answers when the scraper asks for it (`Accept: application/openmetrics-text`, as Prometheus
does); the plain text format leaves them out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ticktape.events import Event

# latency buckets in seconds: sub-millisecond publish acks up to minutes of backlog
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# a core's handling of one input: microseconds normally
HANDLE_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1)
# the order events counted per account (ticktape_order_events), labelled with their `reason` when
# they have one: a stable code (a rejection's, a cancel's, a reduce-only approval's or order's:
# events/risk.py, events/execution.py), never free text. Position and account updates are gauges.
ORDER_EVENTS = frozenset(
    {"risk.order.approved", "risk.order.rejected", "exec.order.submitted", "exec.order.canceled", "exec.order.filled"}
)


def trace_exemplar() -> dict[str, str] | None:
    """{"trace_id": <32 hex>} of the current span when its trace is sampled, else None.

    Sampled means recorded and exported here: telemetry.setup samples only with an OTLP endpoint
    (else every span is minted unsampled), so an exemplar never names a trace Tempo cannot have.
    The flag, not Span.is_recording(), decides: an ack callback runs in the context of the publish
    that sent it, after that span has ended (ticktape.bus.pipeline)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid and ctx.trace_flags.sampled:
        return {"trace_id": format(ctx.trace_id, "032x")}
    return None


class ServiceMetrics:
    """Counters for one service; each process owns its own registry (tests read them directly)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        labels = ["service"]
        self._received = Counter("ticktape_received", "Messages received", labels, registry=self.registry)
        self._published = Counter("ticktape_published", "Events published", labels, registry=self.registry)
        self._rejected = Counter(
            "ticktape_rejected", "Inputs rejected as invalid", labels + ["reason"], registry=self.registry
        )
        self._dead = Counter(
            "ticktape_dead_lettered", "Inputs sent to the dead-letter subject", labels, registry=self.registry
        )
        self._errors = Counter("ticktape_errors", "Processing errors", labels + ["kind"], registry=self.registry)
        self._retries = Counter(
            "ticktape_retries",
            "Failed attempts at an input that is tried again",
            labels + ["kind"],
            registry=self.registry,
        )
        self._exhausted = Counter(
            "ticktape_delivery_exhausted",
            "Inputs that failed max_deliver times: dead-lettered and terminated",
            labels,
            registry=self.registry,
        )
        self._dlq_stored = Counter(
            "ticktape_dlq_payloads_stored",
            "Dead-letter payloads too large to inline, kept whole in the object store",
            labels,
            registry=self.registry,
        )
        self._snapshots = Counter(
            "ticktape_snapshots",
            "State snapshots by outcome: taken, failed, restored, not_restored, unreadable, disabled",
            labels + ["outcome"],
            registry=self.registry,
        )
        self._storage = Gauge(
            "ticktape_storage_used_fraction",
            "Bytes used / limit of a store: a stream against its max_bytes, a disk against its size",
            labels + ["resource", "store"],
            registry=self.registry,
        )
        self._lag = Gauge(
            "ticktape_consumer_lag",
            "Messages of a durable's filter not yet delivered to it (consumer num_pending)",
            labels + ["stream", "durable"],
            registry=self.registry,
        )
        self._ack_pending = Gauge(
            "ticktape_consumer_ack_pending",
            "Messages delivered to a durable and not yet acked (consumer num_ack_pending)",
            labels + ["stream", "durable"],
            registry=self.registry,
        )
        self._bar_close = Gauge(
            "ticktape_last_bar_close_time_seconds",
            "Close time (epoch seconds) of the last closed bar published for a venue",
            labels + ["venue"],
            registry=self.registry,
        )
        self._bar_age = Gauge(
            "ticktape_bar_age_seconds",
            "Seconds from the close time of a venue's last published bar to now (computed at scrape)",
            labels + ["venue"],
            registry=self.registry,
        )
        self._publish_ack = Histogram(
            "ticktape_publish_ack_seconds",
            "Time from publishing a batch of events to JetStream's acks for all of them",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._hop = Histogram(
            "ticktape_tick_to_output_seconds",
            "Time from the tick that started a chain (the input's ts_init, set by market data when it "
            "received the frame) to this hop's outputs being acked",
            labels + ["input"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._handle = Histogram(
            "ticktape_core_handle_seconds",
            "Time the pure core took to handle one input (in signal: the strategies' evaluation)",
            labels,
            buckets=HANDLE_BUCKETS,
            registry=self.registry,
        )
        self._equity = Gauge(
            "ticktape_account_equity",
            "A sub-account's equity (quote currency)",
            labels + ["account"],
            registry=self.registry,
        )
        self._equity_peak = Gauge(
            "ticktape_account_equity_peak",
            "Highest equity of a sub-account seen by this process (its rebuild replays the history)",
            labels + ["account"],
            registry=self.registry,
        )
        self._gross = Gauge(
            "ticktape_account_gross_exposure",
            "A sub-account's gross exposure (sum of |position notional|)",
            labels + ["account"],
            registry=self.registry,
        )
        self._net = Gauge(
            "ticktape_account_net_exposure",
            "A sub-account's net exposure",
            labels + ["account"],
            registry=self.registry,
        )
        self._halted = Gauge(
            "ticktape_account_halted",
            "1 while an emergency stop halts the account ('*': every account), 0 once resumed",
            labels + ["account"],
            registry=self.registry,
        )
        self._bars = Counter(
            "ticktape_bars_published",
            "Closed bars published for a venue (backfilled ones included)",
            labels + ["venue"],
            registry=self.registry,
        )
        self._order_events = Counter(
            "ticktape_order_events",
            "Order events published for a sub-account: risk approvals and rejections, orders "
            "submitted, canceled and filled (type: the event type; reason: its reason code, e.g. "
            "a rejection's or a stop loss's, else empty)",
            labels + ["account", "type", "reason"],
            registry=self.registry,
        )
        self._ws_reconnects = Counter(
            "ticktape_ws_reconnects",
            "WebSocket reconnects of a market-data shard",
            labels + ["venue", "shard"],
            registry=self.registry,
        )
        self._shard_connected = Gauge(
            "ticktape_ws_shard_connected",
            "1 while a market-data shard's WebSocket is connected, else 0 (read at scrape)",
            labels + ["venue", "shard"],
            registry=self.registry,
        )
        self._trimmed = Counter(
            "ticktape_universe_trimmed",
            "Universes cut to a venue's per-IP budget (UniverseTrimmed events published)",
            labels + ["venue"],
            registry=self.registry,
        )
        self._dropped = Gauge(
            "ticktape_universe_dropped_symbols",
            "Symbols of the venue's universe the service does not follow, from its last trim (0: none)",
            labels + ["venue"],
            registry=self.registry,
        )
        # label children looked up once: received/published are on every message's path
        self._received_one = self._received.labels(service)
        self._published_one = self._published.labels(service)
        self._publish_ack_one = self._publish_ack.labels(service)
        self._handle_one = self._handle.labels(service)
        self._last_close: dict[str, int] = {}
        self._peaks: dict[str, float] = {}

    def received(self, n: int = 1) -> None:
        self._received_one.inc(n)

    def published(self, n: int = 1) -> None:
        self._published_one.inc(n)

    def rejected(self, reason: str) -> None:
        self._rejected.labels(self.service, reason).inc()

    def dead_lettered(self) -> None:
        self._dead.labels(self.service).inc()

    def error(self, kind: str) -> None:
        self._errors.labels(self.service, kind).inc()

    def retried(self, kind: str) -> None:
        self._retries.labels(self.service, kind).inc()

    def snapshot(self, outcome: str) -> None:
        self._snapshots.labels(self.service, outcome).inc()

    def delivery_exhausted(self) -> None:
        self._exhausted.labels(self.service).inc()

    def dlq_payload_stored(self) -> None:
        self._dlq_stored.labels(self.service).inc()

    def storage_used(self, resource: str, name: str, fraction: float) -> None:
        self._storage.labels(self.service, resource, name).set(fraction)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a counter or gauge, e.g. value("ticktape_rejected", reason="unknown_type")."""
        total = 0.0
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name in (name, f"{name}_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def consumer_lag(self, stream: str, durable: str, pending: int, ack_pending: int) -> None:
        self._lag.labels(self.service, stream, durable).set(pending)
        self._ack_pending.labels(self.service, stream, durable).set(ack_pending)

    def bar_published(self, venue: str, close_time_ns: int) -> None:
        """A closed bar of `venue` was published: counted, and its age is measured from
        close_time_ns at scrape."""
        last = self._last_close.get(venue)
        if last is None:
            self._bar_age.labels(self.service, venue).set_function(lambda: self._age(venue))
        self._bars.labels(self.service, venue).inc()
        if last is None or close_time_ns > last:
            self._last_close[venue] = close_time_ns
            self._bar_close.labels(self.service, venue).set(close_time_ns / 1e9)

    def _age(self, venue: str) -> float:
        return (time.time_ns() - self._last_close[venue]) / 1e9

    def publish_acked(self, seconds: float) -> None:
        self._publish_ack_one.observe(seconds, trace_exemplar())

    def hop_latency(self, input_type: str, seconds: float) -> None:
        self._hop.labels(self.service, input_type).observe(seconds, trace_exemplar())

    def core_handled(self, seconds: float) -> None:
        self._handle_one.observe(seconds, trace_exemplar())

    def order_events(self, events: Sequence[Event]) -> None:
        """Count the order events among published outputs (ORDER_EVENTS), per account."""
        for event in events:
            tag = str(event.__struct_config__.tag)
            if tag in ORDER_EVENTS:
                reason = getattr(event, "reason", "")  # msgspec.UNSET when an optional one is not set
                self._order_events.labels(
                    self.service, str(getattr(event, "account", "")), tag, reason if isinstance(reason, str) else ""
                ).inc()

    def account(self, account: str, equity: float, gross: float, net: float) -> None:
        self._equity.labels(self.service, account).set(equity)
        if equity > self._peaks.get(account, float("-inf")):
            self._peaks[account] = equity
            self._equity_peak.labels(self.service, account).set(equity)
        self._gross.labels(self.service, account).set(gross)
        self._net.labels(self.service, account).set(net)

    def halted(self, account: str, halted: bool) -> None:
        self._halted.labels(self.service, account).set(1.0 if halted else 0.0)

    def ws_reconnect_counter(self, venue: str, shard: int) -> Counter:
        """The reconnect counter of one shard (created at 0, so a shard that never reconnects shows)."""
        child: Counter = self._ws_reconnects.labels(self.service, venue, str(shard))
        return child

    def shard_connected(self, venue: str, shard: int, connected: Callable[[], bool]) -> None:
        """Expose whether a shard is connected, asked at every scrape."""
        self._shard_connected.labels(self.service, venue, str(shard)).set_function(lambda: float(connected()))

    def universe_trimmed(self, venue: str, dropped: int) -> None:
        """A universe was cut to the venue's budget: `dropped` symbols are not followed."""
        self._trimmed.labels(self.service, venue).inc()
        self._dropped.labels(self.service, venue).set(dropped)

    def names(self) -> set[str]:
        """Every metric name this registry exports (with _total, _bucket... suffixes)."""
        return exported_names(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve the registry on host:port (telemetry.metrics_host; port 0: not at all). Raises
        OSError when the port is taken."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)


def exported_names(registry: CollectorRegistry) -> set[str]:
    """The metric family names and every sample name a registry can export."""
    names: set[str] = set()
    for metric in registry.collect():
        names.add(metric.name)
        kind = metric.type
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
        names.update(metric.name + suffix for suffix in suffixes.get(kind, ()))
        names.update(sample.name for sample in metric.samples)
    return names


def metrics_url(host: str, port: int) -> str:
    """The URL of a metrics endpoint bound on host:port (an IPv6 address in brackets)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


def service_ports(base: int, services: Sequence[str], registered: Sequence[str]) -> dict[str, int]:
    """The metrics port of each service under `ticktape up`: `ticktape up` itself serves on `base`,
    each service on base + 1 + its index in the registry's order (so a port does not move when
    --services picks a subset). base 0: metrics off, no ports."""
    if not base:
        return {}
    last = base + len(registered)
    if last > 65535:
        raise ValueError(
            f"telemetry.metrics_port {base} leaves no room for {len(registered)} services and `ticktape up` "
            f"(ports {base}..{last}); use at most {65535 - len(registered)}"
        )
    return {name: base + 1 + registered.index(name) for name in services}


class SupervisorMetrics:
    """What `ticktape up` serves on the base port: restarts of each service it supervises (the
    crash-loop alert's input: a service that dies cannot report its own deaths) and whether each
    one runs now."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._restarts = Counter(
            "ticktape_supervisor_restarts",
            "Times `ticktape up` restarted a service after it exited",
            ["service"],
            registry=self.registry,
        )
        self._running = Gauge(
            "ticktape_supervisor_service_running",
            "1 while the service's process runs, 0 while it waits to be restarted",
            ["service"],
            registry=self.registry,
        )

    def started(self, service: str) -> None:
        self._running.labels(service).set(1)
        self._restarts.labels(service)  # 0 until the first restart

    def exited(self, service: str) -> None:
        self._running.labels(service).set(0)

    def restarted(self, service: str) -> None:
        self._restarts.labels(service).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        if port:
            start_http_server(port, addr=host, registry=self.registry)
