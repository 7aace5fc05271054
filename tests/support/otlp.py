"""An OTLP/HTTP receiver for tests: what a collector would get on POST /v1/traces and /v1/metrics,
decoded with the OTLP protobuf classes (gzip or not). It runs on a thread, on 127.0.0.1 and a
free port, so synchronous (e2e) and asynchronous tests can use it alike."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _attrs(items: Iterator[KeyValue] | Any) -> dict[str, Any]:
    return {a.key: _value(a.value) for a in items}


@dataclass(frozen=True)
class Span:
    service: str  # the resource's service.name
    name: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Point:
    """One data point of one metric: value for sums and gauges; count, sum, bounds and per-bucket
    counts for histograms (has_min/has_max: whether those optional fields were sent)."""

    service: str
    metric: str
    kind: str  # sum | gauge | histogram
    attributes: dict[str, Any] = field(hash=False)
    value: float = 0.0
    monotonic: bool = False
    start_ns: int = 0
    count: int = 0
    sum: float = 0.0
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()
    has_min: bool = False
    has_max: bool = False


class OtlpReceiver:
    """`with OtlpReceiver() as rec:` rec.url is the base endpoint (what telemetry.otlp_endpoint
    takes); rec.spans() and rec.points() what has arrived so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._points: list[Point] = []
        self.requests: dict[str, int] = {"traces": 0, "metrics": 0}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    receiver._traces(ExportTraceServiceRequest.FromString(body))
                    reply = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver._metrics(ExportMetricsServiceRequest.FromString(body))
                    reply = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def points(self) -> list[Point]:
        with self._lock:
            return list(self._points)

    def _traces(self, export: ExportTraceServiceRequest) -> None:
        spans = []
        for rs in export.resource_spans:
            service = str(_attrs(rs.resource.attributes).get("service.name", ""))
            for scope in rs.scope_spans:
                for s in scope.spans:
                    spans.append(
                        Span(
                            service=service,
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            attributes=_attrs(s.attributes),
                        )
                    )
        with self._lock:
            self.requests["traces"] += 1
            self._spans.extend(spans)

    def _metrics(self, export: ExportMetricsServiceRequest) -> None:
        points = []
        for rm in export.resource_metrics:
            service = str(_attrs(rm.resource.attributes).get("service.name", ""))
            for scope in rm.scope_metrics:
                for m in scope.metrics:
                    kind = m.WhichOneof("data")
                    if kind in ("sum", "gauge"):
                        data = getattr(m, kind)
                        for p in data.data_points:
                            value = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
                            points.append(
                                Point(
                                    service=service,
                                    metric=m.name,
                                    kind=kind,
                                    attributes=_attrs(p.attributes),
                                    value=value,
                                    monotonic=kind == "sum" and data.is_monotonic,
                                    start_ns=p.start_time_unix_nano,
                                )
                            )
                    elif kind == "histogram":
                        for h in m.histogram.data_points:
                            points.append(
                                Point(
                                    service=service,
                                    metric=m.name,
                                    kind=kind,
                                    attributes=_attrs(h.attributes),
                                    start_ns=h.start_time_unix_nano,
                                    count=h.count,
                                    sum=h.sum,
                                    bounds=tuple(h.explicit_bounds),
                                    buckets=tuple(h.bucket_counts),
                                    has_min=h.HasField("min"),
                                    has_max=h.HasField("max"),
                                )
                            )
        with self._lock:
            self.requests["metrics"] += 1
            self._points.extend(points)
