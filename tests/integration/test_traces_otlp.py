"""telemetry.otlp_endpoint exports spans over OTLP/HTTP: signal, risk and execution run as their
own processes (as `ticktape up` runs them) against a real nats-server, a tiny OTLP/HTTP receiver
stands in for the collector, and one bar's trace (its traceparent, as market_data would set it)
reaches the fill it led to through the signal, the approval and the order: one tick, one trace."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, Event, OrderFilled, OrderSubmitted
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("signal", "risk", "execution")


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    event_id: str | None


class Receiver:
    """POST /v1/traces, decoded with the OTLP protobuf classes: what a collector would get."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        self.requests += 1
        for resource_spans in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    span_attrs = {a.key: a.value.string_value for a in span.attributes}
                    self.spans.append(
                        Span(
                            attrs.get("service.name", ""),
                            span.name,
                            span.trace_id.hex(),
                            span_attrs.get("ticktape.event_id"),
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield rec, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def traceparent(i: int) -> tuple[str, dict[str, str]]:
    """A sampled W3C trace context for bar i, as market_data's span would put it on the bar."""
    trace_id = f"{0xB0 << 120 | i + 1:032x}"
    return trace_id, {"traceparent": f"00-{trace_id}-{i + 1:016x}-01"}


async def test_one_bar_to_one_fill_is_one_trace_exported_by_every_service(nats_url, nats_client, receiver, tmp_path):
    rec, endpoint = receiver
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    config = tmp_path / "ticktape.yaml"
    config.write_text(f"telemetry:\n  otlp_endpoint: {endpoint}\n")  # the config key, not the OTEL_ variable
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKTAPE_", "OTEL_"))}
    # a batch exported only when full or at exit: the spans arriving prove shutdown flushes them
    env.update(
        TICKTAPE_NATS_URL=nats_url,
        TICKTAPE_CONFIG=str(config),
        TICKTAPE_HOME=str(tmp_path / "home"),
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-m", f"services.{name}", cwd=ROOT, env=env)
        for name in SERVICES
    ]
    try:
        bars = wave_bars(n=120)
        traces = {}
        items = []
        for i, bar in enumerate(bars):
            trace_id, headers = traceparent(i)
            traces[bar.event_id] = trace_id
            items.append((bar, headers))
        # a paper order fills at the next bar's open: bars after the first orders fill them
        await publish_batch(js, items[:60])

        async def of_type(kind: type[Event]) -> list[Event]:
            return [e for e in await stream_events(js, subjects.EVENTS_STREAM) if isinstance(e, kind)]

        await eventually(lambda: of_type(OrderSubmitted), timeout=30, what="orders from the first bars")
        await publish_batch(js, items[60:])
        await eventually(lambda: of_type(OrderFilled), timeout=30, what="fills from the next bars")
        assert rec.requests == 0, "a batch (fewer than 512 spans, 10 min delay) is exported only at exit"
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(proc.wait(), timeout=20) for proc in procs]
        assert codes == [0, 0, 0]
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    assert rec.requests > 0
    assert {f"ticktape-{name}" for name in SERVICES} <= {s.service for s in rec.spans}
    events = {e.event_id: e for e in await stream_events(js, subjects.EVENTS_STREAM)}
    by_event: dict[str, list[Span]] = {}
    for span in rec.spans:
        if span.event_id:
            by_event.setdefault(span.event_id, []).append(span)
    fill = next(e for e in events.values() if isinstance(e, OrderFilled))
    # the fill's causes, back to the bar: order, approval, signal, bar
    chain: list[Event] = [fill]
    while not isinstance(chain[-1], BarClosed):
        cause = chain[-1].causation_id
        assert cause in events, f"{type(chain[-1]).__name__} {chain[-1].event_id} has no cause on the bus"
        chain.append(events[cause])
    assert [type(e).__name__ for e in chain][-1] == "BarClosed" and len(chain) >= 4
    bar_trace = traces[chain[-1].event_id]
    spans = [s for e in chain[:-1] for s in by_event.get(e.event_id, [])]
    for event in chain[:-1]:
        assert by_event.get(event.event_id), f"no span for {type(event).__name__} {event.event_id}"
    assert {s.trace_id for s in spans} == {bar_trace}, "the fill's chain is not one trace with its bar"
    assert {s.service for s in spans} == {f"ticktape-{name}" for name in SERVICES}
    # and the fill's own span is the execution service's
    assert any(s.service == "ticktape-execution" and "emit" in s.name for s in by_event[fill.event_id])
