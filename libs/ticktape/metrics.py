"""Per-service counters (received, published, rejected, dead-lettered, errors, retries, inputs
that exhausted their deliveries, dead-letter payloads kept out of band) and the storage gauge
(ticktape.storage: fraction of each stream's and disk's limit in use), exported in Prometheus
text format when telemetry.metrics_port is set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


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
        self._storage = Gauge(
            "ticktape_storage_used_fraction",
            "Bytes used / limit of a store: a stream against its max_bytes, a disk against its size",
            labels + ["resource", "store"],
            registry=self.registry,
        )
        # label children looked up once: received/published are on every message's path
        self._received_one = self._received.labels(service)
        self._published_one = self._published.labels(service)

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

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)
