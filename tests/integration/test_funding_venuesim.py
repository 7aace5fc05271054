"""Perpetual funding end to end: the venue simulator serves Binance USDT-M GET /fapi/v1/fundingRate
and Hyperliquid /info fundingHistory from a real recorded Hyperliquid fundingHistory (the SDK's
cassette in ../shared/data), market data polls them with its own bus credential and publishes
FundingRate on md.funding.<venue>.<symbol>, and the execution service applies each settlement to
the open paper positions: payment = -quantity x mark x rate, into the position's and the
account's funding and equity. A re-poll and a restarted poller publish nothing twice, and the
execution core re-run over the recorded stream (replay --verify) gives the recorded outputs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from nats.js import JetStreamContext

from services.execution.loading import from_raw
from services.execution.service import serve
from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.feed import VenueFeed
from services.market_data.funding import FundingPoller
from tests.integration.test_venue_sim import FakeWall, get, series, start_sim
from tests.support.live_venue import (
    admin_js,
    approval,
    bar_event,
    events_of,
    execution_common,
    publish,
    records,
    verify,
)
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.clock import NS_PER_MS
from ticktape.config import CommonSettings
from ticktape.events import AccountUpdated, FundingRate, OrderFilled, PositionUpdated
from ticktape.runtime import Runtime, open_runtime
from ticktape.testing import eventually
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.data import shared_data
from venuesim.bars import MINUTE_MS, BarSeries
from venuesim.funding import load_rates

__all__ = ["admin_js", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(120)

CASSETTE = shared_data("hyperliquid_python_sdk_cassettes", "test_get_funding_history[1684811870000].yaml")
HOUR_MS = 3_600_000


def recorded_rates() -> list[str]:
    """The cassette's fundingHistory rates in time order, read here independently of the simulator."""
    doc = yaml.safe_load(CASSETTE.read_text())
    rows: list[dict[str, Any]] = []
    for i in doc["interactions"]:
        if '"fundingHistory"' in i["request"]["body"]:
            rows += json.loads(i["response"]["body"]["string"])
    return [r["fundingRate"] for r in sorted(rows, key=lambda r: r["time"])]


async def poller_for(
    venue: str, nats_auth: AuthorizedNats, base: str, tmp_path: Any, http: aiohttp.ClientSession
) -> tuple[Runtime, FundingPoller]:
    common = CommonSettings(home=str(tmp_path / f"md-{venue}"), venue_sim=base, nats=nats_auth.settings("market_data"))
    rt = await open_runtime("market_data", common, raw={})
    config = MarketDataConfig(funding_poll_s=3600.0, funding_lookback_s=24 * 3600.0)
    feed = VenueFeed(rt, config, VenueFeedConfig(venue=venue), http, PipelinedPublisher(rt.js))  # type: ignore[arg-type]
    return rt, FundingPoller(feed, 3600.0, 24 * 3600.0)


async def test_market_data_polls_the_simulators_funding_and_execution_pays_it(
    series: dict[str, BarSeries], start_sim: Any, nats_auth: AuthorizedNats, admin_js: JetStreamContext, tmp_path: Path
) -> None:
    btc = series["BTCUSDT"]
    first, last = btc.open_times[0], btc.open_times[-1]
    sim, base = await start_sim(series, start_ms=last + MINUTE_MS, heartbeat=None, funding=load_rates(CASSETTE))
    rates = recorded_rates()
    raw = {"accounts": [{"name": "paper-main", "strategies": ["*"]}]}
    common = execution_common(base, nats_auth, tmp_path)
    hl_bars = [bar_event(btc, i, "hyperliquid", "BTC") for i in range(2)]  # Hyperliquid names coins
    bn_bars = [bar_event(btc, i, "binance_usdm", "BTCUSDT") for i in range(2)]
    qty = 0.01
    async with aiohttp.ClientSession() as http, running(serve, raw, common):
        await publish(nats_auth, "market_data", [hl_bars[0], bn_bars[0]])
        await publish(nats_auth, "risk", [
            approval(hl_bars[0], "paper-main", "buy", qty, hl_bars[0].close, "hl-long"),
            approval(bn_bars[0], "paper-main", "sell", qty, bn_bars[0].close, "bn-short"),
        ])  # fmt: skip
        await publish(nats_auth, "market_data", [hl_bars[1], bn_bars[1]])

        async def both_filled() -> bool:
            return len(await events_of(admin_js, OrderFilled)) == 2

        await eventually(both_filled, timeout=30, what="both paper orders filled")

        md_rt, hl_poller = await poller_for("hyperliquid", nats_auth, base, tmp_path, http)
        bn_rt, bn_poller = await poller_for("binance_usdm", nats_auth, base, tmp_path, http)
        try:
            # hourly on Hyperliquid, 8-hourly on Binance, between the first bar and the last close
            hl_times = list(range(-(-(first + MINUTE_MS) // HOUR_MS) * HOUR_MS, last + MINUTE_MS + 1, HOUR_MS))
            bn_times = [t for t in hl_times if t % (8 * HOUR_MS) == 0]
            assert len(hl_times) >= 8 and len(bn_times) == 1
            assert await hl_poller.poll(["BTC"]) == len(hl_times)
            assert await bn_poller.poll(["BTCUSDT"]) == len(bn_times)
            assert await hl_poller.poll(["BTC"]) == 0  # nothing new
            again_rt, restarted = await poller_for("hyperliquid", nats_auth, base, tmp_path, http)
            try:
                assert await restarted.poll(["BTC"]) == 0  # seeded from the stream's last settlement
            finally:
                await again_rt.nc.drain()
        finally:
            await md_rt.nc.drain()
            await bn_rt.nc.drain()

        published = await events_of(admin_js, FundingRate)
        hl = [f for f in published if f.venue == "hyperliquid"]
        bn = [f for f in published if f.venue == "binance_usdm"]
        assert [f.funding_time for f in hl] == [t * NS_PER_MS for t in hl_times]
        assert [f.rate for f in hl] == [float(rates[(t // HOUR_MS) % len(rates)]) for t in hl_times]
        assert all(f.mark_price == 0.0 for f in hl)  # Hyperliquid reports no mark
        (b,) = bn
        assert b.rate == float(rates[(bn_times[0] // (8 * HOUR_MS)) % len(rates)])
        i = btc.open_times.index(bn_times[0] - MINUTE_MS)
        assert b.mark_price == float(Decimal(btc[i].close))  # the close of the bar ending at 08:00

        hl_mark = hl_bars[1].close  # the position's mark: the last bar's close
        want_hl = sum(-qty * hl_mark * f.rate for f in hl)
        want_bn = qty * b.mark_price * b.rate  # short: -(-qty) x mark x rate

        async def paid() -> AccountUpdated | None:
            accounts = await events_of(admin_js, AccountUpdated, "paper-main")
            done = [a for a in accounts if a.funding and abs(a.funding - (want_hl + want_bn)) < 1e-9]
            return done[-1] if done else None

        account = await eventually(paid, timeout=30, what="every settlement applied")
        positions = await events_of(admin_js, PositionUpdated, "paper-main")
        last_hl = [p for p in positions if p.venue == "hyperliquid"][-1]
        last_bn = [p for p in positions if p.venue == "binance_usdm"][-1]
        assert last_hl.funding == pytest.approx(want_hl, abs=1e-12)
        assert last_bn.funding == pytest.approx(want_bn, abs=1e-12)
        no_funding = account.equity - account.funding
        t = account
        assert no_funding == pytest.approx(t.initial_equity + t.realized_pnl + t.unrealized_pnl - t.fees_paid, abs=1e-9)
    verify(raw, await records(admin_js))


async def test_the_simulators_funding_endpoints_answer_in_the_venues_wire_formats(
    series: dict[str, BarSeries], start_sim: Any
) -> None:
    btc = series["BTCUSDT"]
    last = btc.open_times[-1]
    rates = recorded_rates()
    _, base = await start_sim(series, start_ms=last + MINUTE_MS, wall=FakeWall(), funding=load_rates(CASSETTE))
    _, bare = await start_sim(series, start_ms=last + MINUTE_MS, wall=FakeWall())  # no recorded funding
    async with aiohttp.ClientSession() as http:
        status, rows = await get(http, f"{base}/binance_usdm/fapi/v1/fundingRate?symbol=BTCUSDT")
        assert status == 200
        (row,) = rows
        t = row["fundingTime"]
        assert t % (8 * HOUR_MS) == 0 and list(row) == ["symbol", "fundingTime", "fundingRate", "markPrice"]
        assert row["fundingRate"] == f"{Decimal(rates[(t // (8 * HOUR_MS)) % len(rates)]):.8f}"
        assert row["markPrice"] == f"{Decimal(btc[btc.open_times.index(t - MINUTE_MS)].close):.8f}"
        assert await get(http, f"{base}/fapi/v1/fundingRate?symbol=BTCUSDT&startTime={t + 1}") == (200, [])
        assert await get(http, f"{base}/fapi/v1/fundingRate?symbol=BTCUSDT&limit=1001") == (
            400,
            {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."},
        )
        assert await get(http, f"{base}/fapi/v1/fundingRate?symbol=NOPE") == (
            400,
            {"code": -1121, "msg": "Invalid symbol."},
        )
        status, every = await get(http, f"{base}/fapi/v1/fundingRate")  # no symbol: every symbol
        assert status == 200 and sorted(r["symbol"] for r in every) == ["BTCUSDT", "ETHUSDT"]
        assert await get(http, f"{bare}/fapi/v1/fundingRate?symbol=BTCUSDT") == (200, [])

        async def info(url: str, body: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(f"{url}/hyperliquid/info", json=body) as resp:
                text = await resp.text()
                return resp.status, json.loads(text) if resp.content_type == "application/json" else text

        status, records = await info(base, {"type": "fundingHistory", "coin": "BTC", "startTime": 0})
        assert status == 200 and len(records) >= 8
        assert all(list(r) == ["coin", "fundingRate", "premium", "time"] for r in records)
        assert [r["fundingRate"] for r in records] == [rates[(r["time"] // HOUR_MS) % len(rates)] for r in records]
        assert [r["time"] for r in records] == list(range(records[0]["time"], records[-1]["time"] + 1, HOUR_MS))
        end = records[2]["time"]
        status, two = await info(
            base, {"type": "fundingHistory", "coin": "BTC", "startTime": records[1]["time"], "endTime": end}
        )
        assert (status, two) == (200, records[1:3])
        assert await info(base, {"type": "fundingHistory", "coin": "NOPE", "startTime": 0}) == (500, None)
        status, text = await info(base, {"type": "fundingHistory", "startTime": 0})
        assert status == 422 and "missing field `coin`" in text
        assert await info(bare, {"type": "fundingHistory", "coin": "BTC", "startTime": 0}) == (200, [])


def running(serve_fn: Any, raw: dict[str, Any], common: CommonSettings) -> Any:
    from ticktape.testing.services import running_service

    return running_service("execution", serve_fn, from_raw(raw), common)
