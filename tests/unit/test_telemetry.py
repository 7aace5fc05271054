"""Trace context travels in NATS headers whether or not spans are exported."""

from __future__ import annotations

from opentelemetry import trace

from ticktape import telemetry


def test_context_propagates_through_headers_and_children_share_the_trace_id():
    tracer = telemetry.setup("test")
    with tracer.start_as_current_span("root"):
        headers = telemetry.inject({})
    trace_id = telemetry.trace_id_of(headers)
    assert trace_id and trace_id != "0" * 32
    with tracer.start_as_current_span("child", context=telemetry.extract(headers)):
        child = telemetry.inject({})
        current = trace.get_current_span().get_span_context()
    assert telemetry.trace_id_of(child) == trace_id == format(current.trace_id, "032x")
    assert child["traceparent"] != headers["traceparent"]  # a new span id in the same trace


def test_trace_id_of_without_or_with_a_malformed_header_is_none():
    assert telemetry.trace_id_of({}) is None
    assert telemetry.trace_id_of({"traceparent": "garbage"}) is None


def test_otlp_endpoint_is_a_base_url_as_the_otel_variable_is():
    assert telemetry.traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert telemetry.traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert telemetry.traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"
