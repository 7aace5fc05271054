"""Venue per-IP limits enforced, not just declared: against a simulated Hyperliquid that counts
connections, subscriptions and messages per IP and refuses beyond them (as configured here, far
below the real ones), the market-data shell stays within its budget (venues.hyperliquid), trims
a universe that would exceed it with a UniverseTrimmed on md.trimmed.hyperliquid, and paces its
subscribe messages with one pacer shared by all its connections."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.feed import VenueFeed
from services.market_data.service import serve
from tests.integration.test_market_data_faults import universe
from tests.support.recorded import OCTOBOT_BTC, OCTOBOT_ETH, convert_octobot
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import EXIT_CONFIG, IpBudgetShares, IpLimitOverrides, NatsSettings, VenueSettings, VenuesSettings
from ticktape.events import BarClosed, UniverseTrimmed
from ticktape.runtime import open_runtime
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings, running_service
from venuesim.bars import align, load_dir
from venuesim.server import VenueSim

pytestmark = pytest.mark.timeout(120)
SPEED = 600.0
RANKED = ("BTC", "ETH", "SOL", "XRP")  # best first


async def start_sim(tmp_path, **limits):
    bars = align(load_dir(convert_octobot(tmp_path / "bars", OCTOBOT_BTC, OCTOBOT_ETH)))
    btc, eth = bars["BTCUSDT"], bars["ETHUSDT"]
    coins = {"BTC": btc, "ETH": eth, "SOL": btc, "XRP": eth}  # recorded bars under four coins
    sim = VenueSim(venues={"hyperliquid": coins}, speed=SPEED, **limits)
    runner = sim.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def sim_limits(base: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_sim/stats") as resp:
        return (await resp.json())["ip_limits"]["hyperliquid"]


def hl_budget(**limits: int) -> VenuesSettings:
    """All of the (lowered) per-IP limits to market data: the simulator counts only its IP."""
    shares = IpBudgetShares(market_data=1.0, symbol_registry=0.0, execution=0.0)
    return VenuesSettings(hyperliquid=VenueSettings(ip_budget=shares, limits=IpLimitOverrides(**limits)))


async def bars_of(js, symbols: set[str]) -> set[str] | None:
    seen = {e.symbol for e in await stream_events(js, "TICKTAPE", ["md.bar.hyperliquid.>"]) if isinstance(e, BarClosed)}
    return seen if symbols <= seen else None


async def test_universe_over_the_ip_budget_is_trimmed_and_the_venue_never_refuses(tmp_path, nats_url, nats_client):
    runner, base = await start_sim(tmp_path, hl_max_connections=2, hl_max_subscriptions=3)
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    wanted = universe("hyperliquid", RANKED)
    await publish_batch(js, [(wanted, {})])
    common = common_settings(nats_url, venue_sim=base, venues=hl_budget(connections_per_ip=2, subscriptions_per_ip=3))
    # two streams per connection: 4 coins would take 2 connections and 4 subscriptions
    config = MarketDataConfig(venues=(VenueFeedConfig(venue="hyperliquid", streams_per_connection=2),), aggregate=())
    try:
        async with running_service("market_data", serve, config, common):
            seen = await eventually(lambda: bars_of(js, {"BTC", "ETH", "SOL"}), timeout=60, what="bars of the kept")
            limits = await sim_limits(base)
        trimmed = [e for e in await stream_events(js, "TICKTAPE", ["md.trimmed.>"]) if isinstance(e, UniverseTrimmed)]
    finally:
        await runner.cleanup()
    assert "XRP" not in seen
    assert len(trimmed) == 1
    event = trimmed[0]
    assert (event.venue, event.service, event.wanted, event.kept, event.dropped) == (
        "hyperliquid",
        "market_data",
        RANKED,
        ("BTC", "ETH", "SOL"),
        ("XRP",),
    )
    assert (event.limit, event.limit_value, event.causation_id) == ("subscriptions_per_ip", 3, wanted.event_id)
    # the venue's view: within its per-IP limits, never a refusal, and the budget used
    assert (limits["peak_subscriptions"], limits["peak_connections"]) == (3, 2)
    assert (limits["refused_subscriptions"], limits["refused_connections"], limits["refused_messages"]) == (0, 0, 0)


async def test_subscribe_messages_over_the_per_ip_rate_wait_for_the_window_and_none_is_refused(
    tmp_path, nats_url, nats_client
):
    # 4 coins on 2 connections need 4 subscribe messages; the venue takes 3 a minute per IP
    runner, base = await start_sim(tmp_path, hl_max_messages_per_minute=3)
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await publish_batch(js, [(universe("hyperliquid", RANKED), {})])
    common = common_settings(nats_url, venue_sim=base, venues=hl_budget(messages_per_minute_per_ip=3))
    config = MarketDataConfig(venues=(VenueFeedConfig(venue="hyperliquid", streams_per_connection=2),), aggregate=())
    try:
        async with running_service("market_data", serve, config, common):
            # the connection that got both its messages out flows; the other sent one and waits
            await eventually(lambda: _coins_with_bars(js, 2), timeout=60, what="bars of one connection's two coins")
            limits = await eventually(
                lambda: _when(sim_limits(base), lambda got: got["peak_messages_per_minute"] == 3),
                timeout=30,
                what="3 messages at the simulator",
            )
    finally:
        await runner.cleanup()
    assert limits["refused_messages"] == 0
    assert limits["peak_subscriptions"] == 3  # the fourth subscription was held back, not refused


async def _coins_with_bars(js, n: int) -> set[str] | None:
    seen = {e.symbol for e in await stream_events(js, "TICKTAPE", ["md.bar.hyperliquid.>"]) if isinstance(e, BarClosed)}
    return seen if len(seen) >= n else None


async def _when(coro, check):
    value = await coro
    return value if check(value) else None


async def test_with_on_exceed_refuse_a_universe_over_the_budget_stops_market_data_with_exit_78(nats_url):
    limits = IpLimitOverrides(subscriptions_per_ip=3)  # x 0.8 = 2 for market data
    venues = VenuesSettings(hyperliquid=VenueSettings(on_exceed="refuse", limits=limits))
    rt = await open_runtime("market_data", common_settings(nats_url, venues=venues), raw={})
    try:
        async with aiohttp.ClientSession() as session:
            vcfg = VenueFeedConfig(venue="hyperliquid")
            feed = VenueFeed(rt, MarketDataConfig(venues=(vcfg,)), vcfg, session, PipelinedPublisher(rt.js))
            assert await feed.within_budget(universe("hyperliquid", RANKED[:2])) == list(RANKED[:2])
            with pytest.raises(SystemExit) as exited:
                await feed.within_budget(universe("hyperliquid", RANKED[:3]))
            assert exited.value.code == EXIT_CONFIG
    finally:
        await rt.nc.drain()


async def test_rest_requests_take_their_weight_from_the_budget_and_the_venue_never_answers_429(
    tmp_path, nats_url, nats_client
):
    # One coin per connection, each backfilling on connect: Hyperliquid's time (an info request,
    # 20) and a candleSnapshot (20 + 1 per 60 candles; 50 at most here): the first connection
    # spends 40, the second 20 more, and the next request would pass 60: it waits for the window.
    runner, base = await start_sim(tmp_path, hl_max_rest_weight_per_minute=60)
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await publish_batch(js, [(universe("hyperliquid", RANKED[:3]), {})])
    common = common_settings(nats_url, venue_sim=base, venues=hl_budget(rest_weight_per_minute_per_ip=60))
    vcfg = VenueFeedConfig(venue="hyperliquid", streams_per_connection=1)
    config = MarketDataConfig(venues=(vcfg,), aggregate=(), backfill_limit=50)
    try:
        async with running_service("market_data", serve, config, common):
            await eventually(lambda: _coins_with_bars(js, 1), timeout=60, what="bars of the first coin")
            limits = await eventually(
                lambda: _when(sim_limits(base), lambda got: got["peak_rest_weight_per_minute"] >= 40),
                timeout=30,
                what="the REST weight spent at the simulator",
            )
    finally:
        await runner.cleanup()
    assert limits["refused_rest"] == 0 and limits["peak_rest_weight_per_minute"] <= 60
