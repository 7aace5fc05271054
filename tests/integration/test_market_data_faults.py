"""Market data under injected faults, three venues at once: connection drops, stalls, refused
reconnects, malformed frames and skipped minutes. The archived 1m bars must equal the
simulator's input exactly: zero gaps, zero duplicates."""

from __future__ import annotations

import itertools

import aiohttp
import msgspec
import psycopg
import pytest
from aiohttp import web

from services.archive.config import ArchiveConfig
from services.archive.service import serve as serve_archive
from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.service import serve as serve_market_data
from tests.support.recorded import OCTOBOT_BTC, OCTOBOT_ETH, convert_octobot
from ticktape import ids
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import MarketDataStatus, UniverseMember, UniverseUpdated
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings, running_service
from venuesim.bars import align, load_dir
from venuesim.faults import FaultConfig
from venuesim.server import VenueSim

pytestmark = pytest.mark.timeout(180)
SPEED = 2400.0  # 40 sim minutes per wall second
VENUES = {"binance_usdm": ("BTCUSDT", "ETHUSDT"), "binance_spot": ("BTCUSDT", "ETHUSDT"), "hyperliquid": ("BTC", "ETH")}


def universe(venue: str, symbols: tuple[str, ...]) -> UniverseUpdated:
    return UniverseUpdated(
        event_id=ids.derive("test-universe", venue),
        ts_event=1,
        ts_init=1,
        venue=venue,
        quote_asset="USDT",
        top_n=len(symbols),
        as_of=1,
        symbols=symbols,
        members=tuple(UniverseMember(symbol=s, rank=i + 1, quote_volume=1.0) for i, s in enumerate(symbols)),
    )


async def archived(dsn: str) -> list[tuple]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        try:
            cur = await conn.execute(
                "SELECT venue, symbol, open_time / 1000000, open, high, low, close, volume FROM bars "
                "WHERE timeframe = '1m' ORDER BY venue, symbol, open_time"
            )
        except psycopg.errors.UndefinedTable:
            return []
        return await cur.fetchall()


async def test_archived_bars_equal_the_input_under_drops_stalls_refusals_malformed_and_skips(
    tmp_path, nats_url, nats_client, pg_dsn
):
    series = align(load_dir(convert_octobot(tmp_path / "bars", OCTOBOT_BTC, OCTOBOT_ETH)))
    expected = sorted(
        (
            venue,
            coin,
            bar.open_time,
            float(bar.open),
            float(bar.high),
            float(bar.low),
            float(bar.close),
            float(bar.volume),
        )
        for venue, symbols in VENUES.items()
        for symbol, coin in zip(("BTCUSDT", "ETHUSDT"), symbols, strict=True)
        for bar in (series[symbol][i] for i in range(len(series[symbol])))
    )
    faults = FaultConfig(
        drop_every=1.5,
        stall=(0.4, 2.5),
        malformed_every=200,
        refuse_reconnect=0.4,
        skip_indexes=frozenset({3, 4, 5, 120, 121, 333, 498}),
    )
    sim = VenueSim(series, speed=SPEED, faults=faults)
    runner = sim.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        js = nats_client.jetstream()
        await ensure_streams(js, NatsSettings())
        await publish_batch(js, [(universe(v, s), {}) for v, s in VENUES.items()])
        common = common_settings(nats_url, pg_dsn, venue_sim=base)
        config = MarketDataConfig(
            venues=tuple(VenueFeedConfig(venue=v) for v in VENUES),
            reconnect_backoff_initial_s=0.1,
            reconnect_backoff_max_s=0.5,
            status_interval_s=0.5,
        )
        async with (
            running_service("archive", serve_archive, ArchiveConfig(batch_wait_s=0.1), common),
            running_service("market_data", serve_market_data, config, common) as md,
        ):
            rows = await eventually(
                lambda: _when_len(archived(pg_dsn), len(expected)),
                timeout=120,
                interval=0.5,
                what=f"{len(expected)} archived 1m bars",
            )
            assert md.metrics.value("ticktape_rejected", reason="malformed_frame") > 0
        statuses = [e for e in await stream_events(js, "TICKTAPE", ["md.status.>"]) if isinstance(e, MarketDataStatus)]
        for venue in VENUES:  # every venue reported its shards, and they saw the drops
            mine = [e for e in statuses if e.venue == venue]
            assert mine and max(sh.reconnects for e in mine for sh in e.shards) > 0
        async with aiohttp.ClientSession() as http, http.get(f"{base}/_sim/stats") as resp:
            stats = await resp.json()
    finally:
        await runner.cleanup()
    assert rows == [tuple(r) for r in expected]  # every bar, exact values, no duplicate
    text = str(stats)
    for fault in ("drop", "malformed", "refused", "skipped", "stall"):
        assert fault in text, f"the simulator never injected {fault}: {stats}"


async def _when_len(coro, n):
    rows = await coro
    if len(rows) > n:
        raise AssertionError(f"more archived bars ({len(rows)}) than the input ({n}): duplicates")
    return rows if len(rows) == n else None


async def test_universe_change_then_subscribed_on_the_live_connection_without_reconnecting(
    tmp_path, nats_url, nats_client, pg_dsn
):
    series = align(load_dir(convert_octobot(tmp_path / "bars", OCTOBOT_BTC, OCTOBOT_ETH)))
    sim = VenueSim(series, speed=600.0)
    runner = sim.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await publish_batch(js, [(universe("binance_usdm", ("BTCUSDT",)), {})])
    config = MarketDataConfig(aggregate=(), status_interval_s=0.3)
    try:
        async with running_service(
            "market_data", serve_market_data, config, common_settings(nats_url, pg_dsn, venue_sim=base)
        ):
            await eventually(lambda: _bars_of(js, "ETHUSDT", "BTCUSDT"), timeout=20, what="BTC bars")
            wider = msgspec.structs.replace(universe("binance_usdm", ("BTCUSDT", "ETHUSDT")), event_id="wider")
            await publish_batch(js, [(wider, {})])
            eth = await eventually(lambda: _bars_of(js, "BTCUSDT", "ETHUSDT"), timeout=20, what="ETH bars")
            statuses = await eventually(lambda: _statuses_after(js, 2), timeout=10, what="status events")
    finally:
        await runner.cleanup()
    assert len(statuses[-1].shards) == 1 and statuses[-1].shards[0].symbols == 2
    assert all(sh.reconnects == 0 for e in statuses for sh in e.shards)  # never reconnected
    opens = [b.open_time for b in eth]
    assert opens == sorted(set(opens)) and all(b - a == 60_000_000_000 for a, b in itertools.pairwise(opens))


async def _bars_of(js, other: str, symbol: str):
    bars = [e for e in await stream_events(js, "TICKTAPE", [f"md.bar.binance_usdm.{symbol}.1m"])]
    return bars if len(bars) >= 3 else None


async def _statuses_after(js, n: int):
    found = [e for e in await stream_events(js, "TICKTAPE", ["md.status.>"]) if isinstance(e, MarketDataStatus)]
    found = [e for e in found if e.shards and e.shards[0].symbols == 2]
    return found if len(found) >= n else None
