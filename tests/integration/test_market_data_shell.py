"""The market-data shell on a real nats-server: malformed frames are dead-lettered and counted,
closed bars are published once, even across a restart."""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest

from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.feed import VenueFeed
from ticktape import subjects
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.events import BarClosed, BarRejected, DeadLettered
from ticktape.runtime import open_runtime
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings


def kline_frame(symbol: str, open_ms: int, closed: bool = True, close: str = "101.5") -> bytes:
    return json.dumps(
        {
            "stream": f"{symbol.lower()}@kline_1m",
            "data": {
                "e": "kline",
                "E": open_ms + 60_000,
                "s": symbol,
                "k": {
                    "t": open_ms,
                    "T": open_ms + 59_999,
                    "s": symbol,
                    "i": "1m",
                    "f": 1,
                    "L": 9,
                    "o": "100.0",
                    "c": close,
                    "h": "102.0",
                    "l": "99.5",
                    "v": "12.5",
                    "n": 9,
                    "x": closed,
                    "q": "1262.5",
                    "V": "6.0",
                    "Q": "606.0",
                    "B": "0",
                },
            },
        }
    ).encode()


@pytest.fixture
async def shell(nats_url):
    rt = await open_runtime("market_data", common_settings(nats_url), raw={})
    async with aiohttp.ClientSession() as session:
        yield make_feed(rt, session)
    await rt.nc.drain()


class Feed(VenueFeed):
    """The feed with its publisher flushed after every frame, so tests can read the stream."""

    async def on_frame(self, shard, data):
        await super().on_frame(shard, data)
        await self.publisher.flush()


def make_feed(rt, session):
    return Feed(rt, MarketDataConfig(), VenueFeedConfig(venue="binance_usdm"), session, PipelinedPublisher(rt.js))


@pytest.mark.parametrize(
    "frame",
    [
        b"{truncated",
        b'{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT"}}',
        kline_frame("BTCUSDT", 1_700_000_000_000, close="abc"),
        b"\x00\x01binary",
    ],
)
async def test_malformed_frame_then_dead_lettered_counted_and_not_published(shell, frame):
    await shell.on_frame(0, frame)
    letters = await stream_events(shell.rt.js, "TICKTAPE_DLQ", ["dlq.market_data"])
    assert len(letters) == 1 and isinstance(letters[0], DeadLettered)
    assert base64.b64decode(letters[0].payload_b64) == frame
    assert letters[0].source.startswith("ws:binance_usdm:shard0") and letters[0].error
    assert shell.rt.metrics.value("ticktape_rejected", reason="malformed_frame") == 1
    assert await stream_events(shell.rt.js, "TICKTAPE", [subjects.bars(timeframe="1m")]) == []


async def test_closed_frames_then_each_bar_published_once_and_open_frames_ignored(shell):
    t0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    for frame in [
        kline_frame("BTCUSDT", t0, closed=False),
        kline_frame("BTCUSDT", t0),
        kline_frame("BTCUSDT", t0),
        kline_frame("BTCUSDT", t0 + 60_000),
    ]:
        await shell.on_frame(0, frame)
    bars = await stream_events(shell.rt.js, "TICKTAPE", [subjects.bars(timeframe="1m")])
    assert [b.open_time for b in bars] == [t0 * 1_000_000, (t0 + 60_000) * 1_000_000]
    assert all(isinstance(b, BarClosed) and b.close == 101.5 for b in bars)


async def test_restarted_shell_then_seeded_from_the_stream_and_never_republishes(nats_url, shell):
    t0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    await shell.on_frame(0, kline_frame("ETHUSDT", t0))
    rt2 = await open_runtime("market_data", common_settings(nats_url), raw={})
    try:
        async with aiohttp.ClientSession() as session:
            fresh = make_feed(rt2, session)
            await fresh._seed("ETHUSDT")
            await fresh.on_frame(0, kline_frame("ETHUSDT", t0))  # the venue resends the last bar
            await fresh.on_frame(0, kline_frame("ETHUSDT", t0 + 60_000))
    finally:
        await rt2.nc.drain()
    bars = await stream_events(shell.rt.js, "TICKTAPE", [subjects.bars(timeframe="1m")])
    assert [b.open_time // 1_000_000 for b in bars] == [t0, t0 + 60_000]
    assert rt2.metrics.value("ticktape_published") == 1


async def test_warm_up_skips_and_counts_an_undecodable_bar_and_still_seeds_the_rest(nats_url, shell):
    t0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    await shell.on_frame(0, kline_frame("BTCUSDT", t0))
    await shell.rt.js.publish("md.bar.binance_usdm.BTCUSDT.1m", b"{garbage")
    await shell.on_frame(0, kline_frame("BTCUSDT", t0 + 60_000))
    rt2 = await open_runtime("market_data", common_settings(nats_url), raw={})
    try:
        async with aiohttp.ClientSession() as session:
            fresh = make_feed(rt2, session)
            await fresh.warm()
            assert fresh.core.last_open_time("BTCUSDT") == (t0 + 60_000) * 1_000_000
            assert rt2.metrics.value("ticktape_rejected", reason="undecodable") == 1
    finally:
        await rt2.nc.drain()


def kline_frame_with(symbol: str, open_ms: int, **values: object) -> bytes:
    body = json.loads(kline_frame(symbol, open_ms))
    body["data"]["k"].update(values)
    return json.dumps(body).encode()


async def test_insane_bars_then_each_rejected_with_a_reason_event_counted_and_never_published(shell):
    t0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    frames = [
        kline_frame("BTCUSDT", t0),
        kline_frame_with("BTCUSDT", t0 + 60_000, c="1e308", h="1e308"),
        kline_frame_with("BTCUSDT", t0 + 120_000, l="1e-320"),
        kline_frame_with("BTCUSDT", 0, T=59_999),  # 1970: older than the last bar, reported anyway
        kline_frame("BTCUSDT", t0 + 180_000),
    ]
    for frame in frames:
        await shell.on_frame(0, frame)
    rejected = await stream_events(shell.rt.js, "TICKTAPE", [subjects.ALL_REJECTED_BARS])
    assert [(r.open_time // 1_000_000, r.reason) for r in rejected if isinstance(r, BarRejected)] == [
        (t0 + 60_000, "price"),
        (t0 + 120_000, "price"),
        (0, "open_time"),
    ]
    assert all(isinstance(r, BarRejected) and r.detail and r.symbol == "BTCUSDT" for r in rejected)
    bars = await stream_events(shell.rt.js, "TICKTAPE", [subjects.bars(timeframe="1m")])
    assert [b.open_time // 1_000_000 for b in bars] == [t0, t0 + 180_000]  # the next good bar is no gap
    assert all(
        b.high < 1e12 and b.low > 1e-12 for b in await stream_events(shell.rt.js, "TICKTAPE", [subjects.ALL_BARS])
    )
    assert shell.rt.metrics.value("ticktape_rejected", reason="invalid_bar") == 3
    assert await stream_events(shell.rt.js, "TICKTAPE_DLQ", ["dlq.>"]) == []


async def test_malformed_frame_over_the_inline_bound_then_kept_whole_in_the_object_store(shell):
    """Issue item 1: a frame too large to inline is stored out of band, as the bus consumers do."""
    import hashlib

    from ticktape.bus.deadletter import INLINE_BYTES

    frame = b'{"stream":"btcusdt@kline_1m","data":{"e":"kline","pad":"' + b"x" * (INLINE_BYTES + 10_000)  # cut short
    await shell.on_frame(0, frame)
    (letter,) = await stream_events(shell.rt.js, "TICKTAPE_DLQ", ["dlq.market_data"])
    assert isinstance(letter, DeadLettered) and letter.payload_truncated
    assert letter.payload_size == len(frame) and letter.payload_sha256 == hashlib.sha256(frame).hexdigest()
    assert base64.b64decode(letter.payload_b64) == frame[:INLINE_BYTES]
    assert letter.payload_ref is not None
    bucket, name = letter.payload_ref.split("/")
    assert name == letter.payload_sha256
    stored = await (await shell.rt.js.object_store(bucket)).get(name)
    assert stored.data == frame
    assert shell.rt.metrics.value("ticktape_rejected", reason="malformed_frame") == 1


async def test_malformed_frame_within_the_inline_bound_then_inlined_and_not_stored(shell):
    frame = b"{" + b"x" * 1000
    await shell.on_frame(0, frame)
    (letter,) = await stream_events(shell.rt.js, "TICKTAPE_DLQ", ["dlq.market_data"])
    assert isinstance(letter, DeadLettered) and letter.payload_ref is None and not letter.payload_truncated
    assert base64.b64decode(letter.payload_b64) == frame
