"""The consuming shell's pull loop on a real nats-server: pull requests kept outstanding
(ticktape.bus.feed.PullFeed) deliver in order across expiries, and a pull of many inputs is
handled with its publish acks pipelined while each input is still answered only after its own
outputs are acked, in stream order."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import structlog
from nats.js.errors import NotFoundError

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.consumer import CoreConsumer
from ticktape.bus.durable import recreate_durable
from ticktape.bus.feed import PullFeed
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, DeadLettered, Event
from ticktape.metrics import ServiceMetrics
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events

EVENTS, DLQ = subjects.EVENTS_STREAM, subjects.DLQ_STREAM


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


class _Wide:
    """Each 1m bar becomes a "2m" bar; the `wide` ones' outputs are larger than the stream
    takes (but fit in a bus message, so they are sent)."""

    def __init__(self, wide: frozenset[str]) -> None:
        self.wide = wide
        self.seen: list[str] = []

    def handle(self, event: Event) -> list[Event]:
        assert isinstance(event, BarClosed)
        self.seen.append(event.event_id)
        out = msgspec.structs.replace(event, timeframe="2m", event_id=event.event_id + "-2m")
        if event.event_id in self.wide:
            out = msgspec.structs.replace(out, venue="v" * 3000)
        return [out]


async def test_feed_when_requests_expire_with_nothing_to_deliver_then_later_messages_still_arrive_in_order(js):
    await recreate_durable(js, EVENTS, "feed_test", 1, ack_wait=30.0, max_ack_pending=64)
    # silence far beyond the test: only the expiries' status messages can keep requests going
    feed = PullFeed(js, EVENTS, "feed_test", batch=4, expires=0.2, silence=600.0)
    await feed.start()
    try:
        assert await feed.next(timeout=0.7) == []  # several requests expired (408) meanwhile
        bars = wave_bars(n=13)
        await publish_batch(js, [(b, {}) for b in bars])
        got: list[str] = []

        async def all_delivered() -> bool:
            for msg in await feed.next(timeout=0.2):
                got.append(subjects.decode_on(msg.subject, msg.data).event_id)
                await msg.ack()
            return len(got) >= len(bars)

        await eventually(all_delivered, timeout=20, what="every bar delivered")
    finally:
        await feed.stop()
    assert got == [b.event_id for b in bars]


async def test_pull_whose_middle_outputs_are_refused_then_none_after_it_is_acked_before_it_is_dead_lettered(js):
    """20 inputs in one pull: their outputs are sent without waiting, but JetStream refuses the
    10th input's (the stream's max_msg_size). The inputs are answered in order: none after the
    10th is acked before it is dead-lettered (after max_deliver attempts, in place); then they all
    are, each output stored once."""
    bars = wave_bars(n=20)
    await publish_batch(js, [(b, {}) for b in bars])
    config = (await js.stream_info(EVENTS)).config
    config.max_msg_size = 2000
    await js.update_stream(config)
    middle = bars[9]
    core = _Wide(frozenset({middle.event_id}))
    consumer = CoreConsumer(
        service="pipelining_test",
        js=js,
        stream=EVENTS,
        filter_subjects=[subjects.bars(timeframe="1m")],
        core=core,
        metrics=ServiceMetrics("pipelining_test"),
        log=structlog.get_logger(),
        max_deliver=3,
        retry_delay=0.01,
        publish_timeout=1.0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    answered_before_letter: list[int] = []
    try:

        async def dead_lettered() -> list[DeadLettered] | None:
            try:
                info = await js.consumer_info(EVENTS, consumer.durable)
            except NotFoundError:  # not created yet
                return None
            letters = await stream_events(js, DLQ, [subjects.dead_letter("pipelining_test")])
            if not letters:  # the letter goes before its input is terminated
                answered_before_letter.append(info.delivered.consumer_seq - info.num_ack_pending)
                return None
            return [e for e in letters if isinstance(e, DeadLettered)]

        [letter] = await eventually(dead_lettered, timeout=30, what="the refused input dead-lettered")

        async def settled() -> bool:
            info = await js.consumer_info(EVENTS, consumer.durable)
            return info.num_ack_pending == 0 and info.ack_floor.stream_seq == len(bars)

        await eventually(settled, timeout=20, what="every input answered")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert letter.stream_seq == 10 and letter.causation_id == middle.event_id and letter.delivery == 3
    assert all(n <= 9 for n in answered_before_letter)  # nothing after it was acked before it
    outputs = await stream_events(js, EVENTS, [subjects.bars(timeframe="2m")])
    assert [e.event_id for e in outputs] == [b.event_id + "-2m" for b in bars if b is not middle]
    assert core.seen == [b.event_id for b in bars]  # each handled once, in order
