"""OpenTelemetry tracing whose context travels in NATS headers (W3C `traceparent`).

Every shell extracts the context from the input message's headers, runs its core inside a span
that is a child of it, and injects the new context into the headers of what it publishes, so one
trace links bar, signal, decision, order and fill. Spans are exported over OTLP/HTTP (batched,
flushed by shutdown()) when telemetry.otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT is set, as the
resource service.name=ticktape-<service>; otherwise they are not recorded, but their context
(trace and span ids, flagged not-sampled) is still minted and propagated, so ids link services
and logs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import DefaultGetter, DefaultSetter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_getter = DefaultGetter()
# DefaultSetter is typed for MutableMapping[str, str | list[str]], which (invariance) a
# dict[str, str] is not; it only ever stores the str values the propagator gives it.
_setter = cast("Setter[dict[str, str]]", DefaultSetter())
_provider: TracerProvider | None = None


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a base endpoint (http://host:4318 -> http://host:4318/v1/traces),
    as OTEL_EXPORTER_OTLP_ENDPOINT is read; a URL already ending in /v1/traces is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def setup(service: str, endpoint: str | None = None) -> trace.Tracer:
    """Install a tracer provider for this process (once) and return a tracer. `endpoint` is
    telemetry.otlp_endpoint (it wins over OTEL_EXPORTER_OTLP_ENDPOINT)."""
    global _provider
    if _provider is None:
        endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        # Without an exporter nothing would read recorded spans: don't record them (it costs as
        # much as the JetStream publish per bar), but still mint and propagate trace context, so
        # trace ids link the chain in headers and logs.
        sampler = ParentBased(ALWAYS_ON) if endpoint else ALWAYS_OFF
        _provider = TracerProvider(resource=Resource.create({"service.name": f"ticktape-{service}"}), sampler=sampler)
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
        trace.set_tracer_provider(_provider)
    return trace.get_tracer(f"ticktape.{service}")


def shutdown() -> None:
    """Export the spans still batched, then stop the exporter (the service's exit path calls it)."""
    if _provider is not None:
        _provider.shutdown()


def extract(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context carried by a message's headers (empty context if none)."""
    return _propagator.extract(dict(headers or {}), getter=_getter)


def inject(headers: dict[str, str], ctx: otel_context.Context | None = None) -> dict[str, str]:
    """Write the current (or given) span context into headers as `traceparent`."""
    _propagator.inject(headers, context=ctx, setter=_setter)
    return headers


def trace_id_of(headers: Mapping[str, str] | None) -> str | None:
    """The 32-hex trace id in a `traceparent` header, or None."""
    tp = (headers or {}).get("traceparent")
    if not tp:
        return None
    parts = tp.split("-")
    return parts[1] if len(parts) == 4 else None
