"""Market data's atomic batches (ticktape.bus.atomic) on a real nats-server: events go in as
batches, in order, each once; a batch refused for a duplicate id (a retry of stored events) is
published again one by one and nothing doubles; a stream without allow_atomic turns batching off
and every event is still stored; other streams' events (trades) bypass the batches; provisioning
turns allow_atomic on for an existing event log."""

from __future__ import annotations

import nats
import pytest

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.atomic import MAX_BATCH, AtomicBatchPublisher
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.bus.provision import ensure_streams, stream_configs
from ticktape.config import NatsSettings
from ticktape.events import TradeTick
from ticktape.testing.bus import stream_events


@pytest.fixture
async def js(nats_url):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, NatsSettings(url=nats_url))
    yield js
    await nc.drain()


async def publish_all(js, events, **options):
    publisher = AtomicBatchPublisher(PipelinedPublisher(js), **options)
    for event in events:
        await publisher.publish(event)
    await publisher.aclose()
    return publisher


async def stored_ids(js):
    return [e.event_id for e in await stream_events(js, "TICKTAPE", [subjects.ALL_BARS])]


async def test_a_burst_then_stored_in_order_once_in_batches(js):
    bars = wave_bars(n=MAX_BATCH * 2 + 500)
    publisher = await publish_all(js, bars)
    assert await stored_ids(js) == [b.event_id for b in bars]
    assert 3 <= publisher.batches < len(bars) and publisher.retried == 0 and publisher.disabled is None
    assert publisher.published == len(bars)


async def test_events_already_stored_then_batch_refused_republished_singly_nothing_doubled(js):
    bars = wave_bars(n=50)
    await publish_all(js, bars[:30])
    again = await publish_all(js, bars)  # a retry after a lost ack: the first 30 are duplicates
    assert await stored_ids(js) == [b.event_id for b in bars]
    assert again.retried == 50 and again.disabled is None  # refused as a batch, still batching


async def test_stream_without_allow_atomic_then_batching_off_and_every_event_stored(js, nats_url):
    (log,) = [c for c in stream_configs(NatsSettings(url=nats_url)) if c.name == "TICKTAPE"]
    log.allow_atomic = False
    await js.update_stream(log)
    bars = wave_bars(n=40)
    told: list[str] = []
    publisher = await publish_all(js, bars, on_disabled=told.append)
    assert publisher.disabled and "atomic" in publisher.disabled and told == [publisher.disabled]
    assert await stored_ids(js) == [b.event_id for b in bars]


async def test_trades_then_published_on_their_own_stream_outside_the_batches(js):
    trade = TradeTick(
        event_id="t1", ts_event=1, ts_init=1, venue="binance_usdm", symbol="BTCUSDT",
        trade_id="1", price=100.0, size=1.0, aggressor="buy",
    )  # fmt: skip
    publisher = await publish_all(js, [trade, *wave_bars(n=3)])
    assert [e.event_id for e in await stream_events(js, "TICKTAPE_TRADES")] == ["t1"]
    assert publisher.fallback.published == 1 and publisher.published == 4


async def test_existing_event_log_without_allow_atomic_then_provisioning_turns_it_on(js, nats_url):
    settings = NatsSettings(url=nats_url)
    (log,) = [c for c in stream_configs(settings) if c.name == "TICKTAPE"]
    log.allow_atomic = False
    await js.update_stream(log)
    await ensure_streams(js, settings)
    assert (await js.stream_info("TICKTAPE")).config.allow_atomic is True
