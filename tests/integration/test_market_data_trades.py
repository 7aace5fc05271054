"""The optional trade stream end to end: a real Binance spot capture replayed verbatim by the
simulator, through the market-data shell, onto md.trade.<venue>.<symbol> in the trades stream."""

from __future__ import annotations

import gzip
import json

import pytest
from aiohttp import web

from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.service import serve
from tests.integration.test_market_data_faults import universe
from tests.support.recorded import OCTOBOT_BTC, convert_octobot
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import TradeTick
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.data import shared_data
from ticktape.testing.services import common_settings, running_service
from venuesim.bars import align, load_dir
from venuesim.server import VenueSim

pytestmark = pytest.mark.timeout(120)


def captured_trades(path) -> dict[str, dict]:
    out = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            _, _, body = line.partition(" ")
            frame = json.loads(body)
            if frame.get("stream") == "btcusdt@trade":
                out[str(frame["data"]["t"])] = frame["data"]
    return out


async def test_captured_spot_trades_are_published_once_each_with_the_recorded_values(tmp_path, nats_url, nats_client):
    capture = shared_data("hftbacktest", "spot_btcusdt_20240808.gz")
    expected = captured_trades(capture)
    bars = convert_octobot(tmp_path / "bars", OCTOBOT_BTC)
    sim = VenueSim(align(load_dir(bars)), speed=120.0, captures=[("binance_spot", capture)])
    runner = sim.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await publish_batch(js, [(universe("binance_spot", ("BTCUSDT",)), {})])
    config = MarketDataConfig(venues=(VenueFeedConfig(venue="binance_spot", trades=True),), aggregate=())
    try:
        async with running_service("market_data", serve, config, common_settings(nats_url, venue_sim=base)):
            ticks = await eventually(
                lambda: _at_least(js, len(expected)), timeout=60, interval=0.5, what=f"{len(expected)} trades"
            )
    finally:
        await runner.cleanup()
    assert len(ticks) == len(expected) == len({t.event_id for t in ticks})
    for tick in ticks:
        raw = expected[tick.trade_id]
        assert (tick.venue, tick.symbol) == ("binance_spot", "BTCUSDT")
        assert (tick.price, tick.size) == (float(raw["p"]), float(raw["q"]))
        assert tick.ts_event == raw["T"] * 1_000_000
        assert tick.aggressor == ("sell" if raw["m"] else "buy")


async def _at_least(js, n: int):
    ticks = [e for e in await stream_events(js, "TICKTAPE_TRADES", ["md.trade.>"]) if isinstance(e, TradeTick)]
    return ticks if len(ticks) >= n else None
