"""The market-data shell on a real nats-server: in a window-closing minute every followed symbol's
1m bar goes to JetStream before the minute's roll-ups (5m..1d), and each symbol's bars stay in
time order (a roll-up before that symbol's next 1m bar)."""

from __future__ import annotations

import random

import aiohttp
import pytest

from exchanges import adapter_for
from services.market_data.shard import Shard
from tests.integration.test_market_data_shell import kline_frame, make_feed
from ticktape import subjects
from ticktape.ratelimit import WindowLimiter
from ticktape.runtime import open_runtime
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings

SYMBOLS = ("AUSDT", "BUSDT", "CUSDT")
# a minute whose close ends a 5m window and no longer one: 00:04 of an hour that is not 00 UTC
T0 = 1_700_000_040_000 - 1_700_000_040_000 % 3_600_000 + 4 * 60_000


@pytest.fixture
async def feed(nats_url):
    rt = await open_runtime("market_data", common_settings(nats_url), raw={})
    async with aiohttp.ClientSession() as session:
        feed = make_feed(rt, session)
        shard = Shard(  # never run: it only tells the feed which symbols it follows
            0,
            adapter=adapter_for("binance_usdm"),
            ws_url="ws://127.0.0.1:9",
            interval="1m",
            trades=False,
            session=session,
            on_frame=feed.on_frame,
            backfill=feed.backfill,
            limiter=WindowLimiter(1, 1.0),
            backoff_initial=1.0,
            backoff_max=1.0,
            log=rt.log,
            rng=random.Random(0),
        )
        shard.symbols.extend(SYMBOLS)
        feed.shards.append(shard)
        yield feed
    await rt.nc.drain()


async def bars(feed):
    return [(b.symbol, b.timeframe) for b in await stream_events(feed.rt.js, "TICKTAPE", [subjects.ALL_BARS])]


async def test_window_closing_minute_then_every_1m_bar_before_the_roll_ups(feed):
    for symbol in SYMBOLS:
        await feed.on_frame(0, kline_frame(symbol, T0))
    assert await bars(feed) == [(s, "1m") for s in SYMBOLS] + [(s, "5m") for s in SYMBOLS]


async def test_a_symbol_missing_then_roll_ups_wait_for_the_flusher(feed):
    for symbol in SYMBOLS[:2]:
        await feed.on_frame(0, kline_frame(symbol, T0))
    assert await bars(feed) == [("AUSDT", "1m"), ("BUSDT", "1m")]
    await feed.publish_later()  # what the service's flusher does every 0.2 s
    await feed.publisher.flush()
    assert await bars(feed) == [("AUSDT", "1m"), ("BUSDT", "1m"), ("AUSDT", "5m"), ("BUSDT", "5m")]


async def test_next_bar_of_a_symbol_with_queued_roll_ups_then_its_roll_ups_first(feed):
    await feed.on_frame(0, kline_frame("AUSDT", T0))
    await feed.on_frame(0, kline_frame("AUSDT", T0 + 60_000))
    assert await bars(feed) == [("AUSDT", "1m"), ("AUSDT", "5m"), ("AUSDT", "1m")]
