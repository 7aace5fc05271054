"""Following a stream (ticktape.bus.reader.follow, used by the execution gateway and the API's
read model) on a real nats-server: from a given sequence, in order, and across the loss of its
ephemeral consumer (a server restart forgets it) without a gap or a repeat."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.bus.reader import follow
from ticktape.config import NatsSettings
from ticktape.testing import eventually

EVENTS = subjects.EVENTS_STREAM


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


async def test_follow_when_its_consumer_is_lost_then_it_goes_on_from_the_next_sequence(js) -> None:
    bars = wave_bars(n=30)
    await publish_batch(js, [(b, {}) for b in bars[:10]])
    stop = asyncio.Event()
    seen: list[int] = []

    async def run() -> None:
        async for msg in follow(
            js, EVENTS, [subjects.bars()], start_seq=3, stop=stop, log=structlog.get_logger(), what="bars",
            fetch_timeout=0.1, check_every=2, name_prefix="follow_test",
        ):  # fmt: skip
            seen.append(msg.metadata.sequence.stream)

    task = asyncio.create_task(run())
    try:
        await eventually(lambda: len(seen) == 8, timeout=10, what="the messages from sequence 3")
        names = [c.name for c in await js.consumers_info(EVENTS) if c.name and c.name.startswith("follow_test")]
        assert len(names) == 1
        await js.delete_consumer(EVENTS, names[0])  # as a server restart would lose it
        await publish_batch(js, [(b, {}) for b in bars[10:]])
        await eventually(lambda: len(seen) == 28, timeout=15, what="the messages after the consumer was lost")
        assert seen == list(range(3, 31))
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
