"""Exemplars that link a latency to its trace: an observation made while the current trace is
sampled carries {trace_id: ...}, and a scrape that asks for OpenMetrics, as Prometheus does, gets
it on the histogram bucket the value fell in. Checked on a real metrics endpoint
(ServiceMetrics.serve), through the consuming shell on a real nats-server (handle time, publish to
ack, tick to output) and through the pipelined publisher market data uses (publish to ack)."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from typing import Any

import msgspec
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.support.bars import wave_bars
from ticktape import ids, subjects, telemetry
from ticktape.bus.consumer import CoreConsumer
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, Event, OrderRejected
from ticktape.metrics import ServiceMetrics, metrics_url
from ticktape.testing import eventually

# what Prometheus 2.55 (deploy/docker-compose.observability.yml) sends with its default
# scrape_protocols (scrape.acceptHeader): OpenMetrics first
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def serve(metrics: ServiceMetrics) -> str:
    """Serve the registry the way a service does; its URL."""
    port = _free_port()
    metrics.serve(port, HOST)
    return metrics_url(HOST, port)


def scrape(url: str, accept: str | None) -> tuple[str, str]:
    """(Content-Type, body) of one scrape."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def exemplars(body: str, family: str) -> list[tuple[dict[str, str], str]]:
    """(bucket labels, exemplar trace_id) of every bucket of `family` that holds an exemplar."""
    found = []
    for metric in parse_openmetrics(body):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.exemplar is not None:
                assert sample.name == f"{family}_bucket"
                assert set(sample.exemplar.labels) == {"trace_id"}
                found.append((sample.labels, sample.exemplar.labels["trace_id"]))
    return found


def recording_tracer() -> TracerProvider:
    """What telemetry.setup installs with an OTLP endpoint (spans recorded), minus the exporter."""
    return TracerProvider(sampler=ParentBased(ALWAYS_ON))


def test_a_traced_observation_is_served_as_an_exemplar_to_an_openmetrics_scrape() -> None:
    metrics = ServiceMetrics("signal")
    url = serve(metrics)
    tracer = recording_tracer().get_tracer("test")
    with tracer.start_as_current_span("signal handle md.bar.closed") as span:
        metrics.hop_latency("md.bar.closed", 0.012)
        metrics.core_handled(0.0002)
        metrics.publish_acked(0.003)
    trace_id = format(span.get_span_context().trace_id, "032x")

    content_type, body = scrape(url, PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text")
    hop = exemplars(body, "ticktape_tick_to_output_seconds")
    assert hop == [({"service": "signal", "input": "md.bar.closed", "le": "0.025"}, trace_id)]
    assert exemplars(body, "ticktape_core_handle_seconds") == [({"service": "signal", "le": "0.00025"}, trace_id)]
    assert exemplars(body, "ticktape_publish_ack_seconds") == [({"service": "signal", "le": "0.005"}, trace_id)]

    # the plain text format (a scraper that does not ask for OpenMetrics) has no exemplars
    content_type, body = scrape(url, None)
    assert content_type.startswith("text/plain")
    assert trace_id not in body
    assert any(f.name == "ticktape_tick_to_output_seconds" for f in parse_text(body))


def test_an_untraced_or_unsampled_observation_has_no_exemplar() -> None:
    metrics = ServiceMetrics("risk")
    url = serve(metrics)
    metrics.hop_latency("signal.generated", 0.02)  # no span at all
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")  # telemetry.setup without an endpoint
    with unsampled.start_as_current_span("risk handle signal.generated"):
        metrics.core_handled(0.0001)
    _, body = scrape(url, PROMETHEUS_ACCEPT)
    assert exemplars(body, "ticktape_tick_to_output_seconds") == []
    assert exemplars(body, "ticktape_core_handle_seconds") == []
    assert 'ticktape_tick_to_output_seconds_count{input="signal.generated",service="risk"} 1.0' in body


class RejectEveryBar:
    """A core with one output per input: risk's rejection of a (pretend) signal on each bar."""

    def handle(self, event: Event) -> list[Event]:
        assert isinstance(event, BarClosed)
        return [
            OrderRejected(
                event_id=ids.child_id(event.event_id, "reject"),
                ts_event=event.ts_event,
                ts_init=event.ts_init,
                causation_id=event.event_id,
                account="acct-1",
                strategy="test",
                venue=event.venue,
                symbol=event.symbol,
                side=None,
                quantity=0.0,
                reason="halted",
                detail="test rejection",
                signal_id=event.event_id,
            )
        ]


def _traceparent(i: int, sampled: bool) -> tuple[str, dict[str, str]]:
    trace_id = f"{0xE0 << 120 | i + 1:032x}"
    return trace_id, {"traceparent": f"00-{trace_id}-{i + 1:016x}-{'01' if sampled else '00'}"}


async def test_the_consuming_shell_links_its_latencies_to_the_inputs_trace(nats_client: Any) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    now = time.time_ns()
    # ts_init near now: the tick-to-output latency falls in a finite bucket
    bars = [msgspec.structs.replace(b, ts_init=now) for b in wave_bars(n=4)]
    sampled = {i: _traceparent(i, sampled=i != 2) for i in range(len(bars))}  # bar 2's trace is not sampled
    await publish_batch(js, [(bar, sampled[i][1]) for i, bar in enumerate(bars)])

    metrics = ServiceMetrics("risk")
    url = serve(metrics)
    consumer = CoreConsumer(
        service="risk",
        js=js,
        stream="TICKTAPE",
        filter_subjects=[subjects.bars()],
        core=RejectEveryBar(),
        metrics=metrics,
        log=structlog.get_logger("test"),
        tracer=recording_tracer().get_tracer("ticktape.risk"),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await eventually(lambda: consumer.last_seq >= len(bars) or None, timeout=20, what="every bar handled")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)

    _, body = scrape(url, PROMETHEUS_ACCEPT)
    traced = {sampled[i][0] for i in range(len(bars)) if i != 2}
    last = sampled[len(bars) - 1][0]
    for family in ("ticktape_tick_to_output_seconds", "ticktape_core_handle_seconds", "ticktape_publish_ack_seconds"):
        found = {trace_id for _, trace_id in exemplars(body, family)}
        # each bucket keeps its latest exemplar: the last bar's is there, and every one is an input's trace
        assert last in found, family
        assert found <= traced, f"{family}: {found - traced} (bar 2's unsampled trace must not appear)"
    hop = exemplars(body, "ticktape_tick_to_output_seconds")
    assert all(labels["input"] == "md.bar.closed" and labels["le"] != "+Inf" for labels, _ in hop)
    # the outputs were counted per account, with the rejection's reason
    assert metrics.value("ticktape_order_events", account="acct-1", type="risk.order.rejected", reason="halted") == 4


async def test_the_pipelined_publisher_links_publish_to_ack_to_the_bars_trace(nats_client: Any) -> None:
    """Market data's publisher observes the ack in a callback, after the publish span has ended:
    the callback runs in the publish's context, whose trace is still the bar's."""
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    metrics = ServiceMetrics("market_data")
    url = serve(metrics)
    publisher = PipelinedPublisher(js, observe=metrics.publish_acked, sample=1)
    tracer = recording_tracer().get_tracer("ticktape.market_data")
    bar = wave_bars(n=1)[0]
    with tracer.start_as_current_span("market_data publish md.bar.closed") as span:
        await publisher.publish(bar, telemetry.inject({}))
    await publisher.flush()
    trace_id = format(span.get_span_context().trace_id, "032x")
    _, body = await eventually(lambda: _with_exemplar(url), timeout=10, what="the ack's observation")
    assert {t for _, t in exemplars(body, "ticktape_publish_ack_seconds")} == {trace_id}


async def _with_exemplar(url: str) -> tuple[str, str] | None:
    result = await asyncio.to_thread(scrape, url, PROMETHEUS_ACCEPT)
    return result if exemplars(result[1], "ticktape_publish_ack_seconds") else None
