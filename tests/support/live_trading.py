"""A live account trading on the venue simulator under the execution service, per venue (Binance
USDT-M, a Hyperliquid sub-account): the venue's account and what the simulator holds for it
(placements, lookups, its own book and fills, its position), a session's bars and orders, and the
simulator's trading faults. Shared by the live-execution integration tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.client_ids import binance_client_order_id, hyperliquid_cloid
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from exchanges.trading.clients.hyperliquid import HyperliquidClient
from exchanges.trading.hyperliquid_sign import HyperliquidSigner
from services.execution.loading import from_raw
from services.execution.service import serve
from tests.support.live_venue import (
    AGENT_KEY,
    BINANCE_LIVE,
    HL_LIVE,
    KEY,
    NOW_BAR,
    SECRET,
    SUB,
    USER,
    approval,
    bar_event,
    events_of,
    execution_common,
    publish,
    reconciled,
    sim_requests,
)
from ticktape.events import OrderFilled, OrderSubmitted, PositionUpdated, VenueFill
from ticktape.testing import eventually
from ticktape.testing.services import running_service
from venuesim.server import VenueSim
from venuesim.trading import Order


def binance(base: str, http: aiohttp.ClientSession) -> BinanceUsdmClient:
    """A client of the simulator's Binance USDT-M account (alpha)."""
    return BinanceUsdmClient(http, BinanceCredentials(KEY, SECRET), base_url=f"{base}/binance_usdm")


def hyperliquid(base: str, http: aiohttp.ClientSession) -> HyperliquidClient:
    """A client of the simulator's Hyperliquid sub-account, signing as its agent."""
    signer = HyperliquidSigner.from_key(AGENT_KEY, account_address=USER.address, vault_address=SUB)
    return HyperliquidClient(http, signer, base_url=f"{base}/hyperliquid")


class Venue(NamedTuple):
    """A venue's live account (its config entry), the symbol it trades and its secrets, with what
    the simulator was asked about its orders."""

    name: str
    account: dict[str, Any]
    symbol: str
    secrets: tuple[str, ...]

    def client_id(self, order_id: str) -> str:
        return binance_client_order_id(order_id) if self.name == "binance_usdm" else hyperliquid_cloid(order_id)

    async def placements(self, base: str, cid: str) -> list[dict[str, Any]]:
        if self.name == "binance_usdm":
            posts = [r for r in await sim_requests(base) if r["method"] == "POST" and "/fapi/v1/order?" in r["path"]]
            return [r for r in posts if f"newClientOrderId={cid}" in r["path"]]
        sent = [json.loads(r["body"]) for r in await sim_requests(base) if r["path"] == "/hyperliquid/exchange"]
        return [s for s in sent if s["action"]["type"] == "order" and s["action"]["orders"][0].get("c") == cid]

    async def lookups(self, base: str, cid: str) -> list[dict[str, Any]]:
        if self.name == "binance_usdm":
            return [
                r for r in await sim_requests(base) if r["method"] == "GET" and f"origClientOrderId={cid}" in r["path"]
            ]
        asked = [json.loads(r["body"]) for r in await sim_requests(base) if r["path"] == "/hyperliquid/info"]
        return [a for a in asked if a.get("type") == "orderStatus" and a.get("oid") == cid]

    async def listening(self, base: str) -> bool:
        ending = "/fapi/v1/listenKey" if self.name == "binance_usdm" else "/hyperliquid/ws"
        return any(r["path"].endswith(ending) for r in await sim_requests(base))

    async def position(self, base: str) -> float:
        async with aiohttp.ClientSession() as http:
            client = binance(base, http) if self.name == "binance_usdm" else hyperliquid(base, http)
            [found] = await client.positions()
        return float(found.quantity)


BINANCE = Venue("binance_usdm", BINANCE_LIVE, "BTCUSDT", (KEY, SECRET))
HYPERLIQUID = Venue("hyperliquid", HL_LIVE, "BTC", (AGENT_KEY, AGENT_KEY[2:]))


async def trading_faults(base: str, **settings: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        if settings:
            async with http.post(f"{base}/_sim/trading_fault", json=settings) as resp:
                assert resp.status == 200, await resp.text()
        async with http.get(f"{base}/_sim/trading_fault") as resp:
            doc: dict[str, Any] = await resp.json()
            return doc


def engine_of(sim: VenueSim, venue: Venue) -> Any:
    """The simulated venue's own matching engine (its book and fills, not our log)."""
    return sim.binance_trading.engine if venue.name == "binance_usdm" else sim.hl_trading.engine


def venue_orders(sim: VenueSim, venue: Venue, client_id: str) -> list[Order]:
    """The orders the simulated venue holds with this client id (its own book, not our log)."""
    return [o for o in engine_of(sim, venue).orders.values() if o.client_id == client_id]


class Run:
    """One live session on the simulator: the account's name, its config document, bars, price
    and the log."""

    def __init__(
        self, venue: Venue, sim: VenueSim, base: str, moved: dict[str, Any], js: Any, raw: dict[str, Any]
    ) -> None:
        self.venue, self.sim, self.base, self.js, self.raw = venue, sim, base, js, raw
        self.name = venue.account["name"]
        btc = moved["BTCUSDT"]
        self.bars = [bar_event(btc, i, venue.name, venue.symbol) for i in range(NOW_BAR - 2, NOW_BAR)]
        self.price = float(btc.fields(NOW_BAR)[1])

    async def order(self, nats_auth: Any, side: str, qty: float, name: str) -> None:
        await publish(nats_auth, "risk", [approval(self.bars[-1], self.name, side, qty, self.price, name)])

    async def position(self, quantity: float, what: str) -> PositionUpdated:
        async def at() -> PositionUpdated | None:
            found = await events_of(self.js, PositionUpdated, self.name)
            return found[-1] if found and found[-1].quantity == pytest.approx(quantity) else None

        result: PositionUpdated = await eventually(at, timeout=45, what=what)
        return result

    async def submitted(self) -> list[OrderSubmitted]:
        return [o for o in await events_of(self.js, OrderSubmitted) if o.account == self.name]

    async def once_each(self) -> None:
        """Every order at the venue once, one VenueFill per venue fill, one OrderFilled per fill."""
        orders = await self.submitted()
        venue_fills = [f for o in orders for f in self._venue_fills(o.client_order_id or "")]
        for o in orders:
            assert len(venue_orders(self.sim, self.venue, o.client_order_id or "")) == 1, o.order_id
        fills = await events_of(self.js, VenueFill, self.name)
        assert sorted(f.fill_id for f in fills) == sorted(str(f.tid) for f in venue_fills)
        assert len(await events_of(self.js, OrderFilled, self.name)) == len(venue_fills)
        assert float(await self.venue.position(self.base)) == pytest.approx(
            (await events_of(self.js, PositionUpdated, self.name))[-1].quantity
        )

    def _venue_fills(self, client_id: str) -> list[Any]:
        [order] = venue_orders(self.sim, self.venue, client_id)
        return [f for fills in engine_of(self.sim, self.venue).fills.values() for f in fills if f.oid == order.oid]


@contextlib.asynccontextmanager
async def executing(run: Run, nats_auth: Any, tmp_path: Any) -> AsyncIterator[Run]:
    """Execution serving `run.raw` against the run's simulator, the account reconciled and the bars
    before the one in progress published."""
    async with running_service("execution", serve, from_raw(run.raw), execution_common(run.base, nats_auth, tmp_path)):
        await reconciled(run.js, run.name)
        await publish(nats_auth, "market_data", run.bars)
        yield run
