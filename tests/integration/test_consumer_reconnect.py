"""A core consumer across a nats-server killed with SIGKILL and restarted on the same port and
store: every input is handled once, and nothing is left pending until its ack_wait runs out
(acks sent while the server was away, or forgotten by it, are sent again after the reconnect)."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.connect import connect
from ticktape.bus.consumer import CoreConsumer
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, Event
from ticktape.infra.nats_server import start_nats_server
from ticktape.metrics import ServiceMetrics
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events

ACK_WAIT = 60.0  # far longer than the test waits: a redelivery after ack_wait cannot pass it


class TwoMinute:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, event: Event) -> list[Event]:
        assert isinstance(event, BarClosed)
        self.seen.append(event.event_id)
        return [msgspec.structs.replace(event, timeframe="2m", event_id=event.event_id + "-2m")]


async def test_consumer_rides_out_a_killed_server_with_nothing_left_pending(tmp_path):
    server = start_nats_server(tmp_path / "nats", config=["jetstream { sync_interval: always }"])
    nc = await connect(server.url, "reconnect-test")
    try:
        js = nc.jetstream()
        await ensure_streams(js, NatsSettings())
        bars = wave_bars(n=400)
        await publish_batch(js, [(b, {}) for b in bars[:200]])
        core = TwoMinute()
        metrics = ServiceMetrics("reconnect_test")
        consumer = CoreConsumer(
            service="reconnect_test",
            js=js,
            stream=subjects.EVENTS_STREAM,
            filter_subjects=[subjects.bars(timeframe="1m")],
            core=core,
            metrics=metrics,
            log=structlog.get_logger(),
            ack_wait=ACK_WAIT,
            nc=nc,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            await eventually(lambda: len(core.seen) >= 200, timeout=30, what="the first inputs handled")
            server.kill()  # SIGKILL: whatever acks were in flight are lost
            server.restart()
            await eventually(lambda: nc.is_connected, timeout=30, what="the client reconnected")
            await publish_batch(js, [(b, {}) for b in bars[200:]])
            await eventually(lambda: len(set(core.seen)) == 400, timeout=30, what="every input handled")

            async def settled() -> bool:
                info = await js.consumer_info(subjects.EVENTS_STREAM, consumer.durable)
                return info.num_ack_pending == 0 and info.ack_floor.stream_seq >= consumer.last_seq

            await eventually(settled, timeout=ACK_WAIT / 3, what="nothing pending long before ack_wait")
            assert metrics.value("ticktape_retries", kind="ack_after_reconnect") >= 1
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)
        outputs = await stream_events(js, subjects.EVENTS_STREAM, [subjects.bars(timeframe="2m")])
        assert sorted(e.event_id for e in outputs) == sorted(b.event_id + "-2m" for b in bars)
        assert core.seen == [b.event_id for b in bars]  # in order, each once: nothing redelivered
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        server.stop()
