"""The Hyperliquid execution client (exchanges.trading.clients.hyperliquid) against a stand-in on
loopback that speaks Hyperliquid's wire: POST /exchange bodies whose L1 signature it recovers
(and the test recovers again with the official SDK), nonces it takes once per signer, POST /info
answers in the shapes of the info endpoint's documentation (meta, orderStatus, openOrders,
clearinghouseState, userFills), per-order statuses and errors of the exchange endpoint's, and
429s. The clients' pacing and waits run on a fake clock (tests/support/trading_standin.FakeTime);
timeouts are real and short."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import eth_account
import pytest
from aiohttp import web
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from exchanges.trading.client_ids import hyperliquid_cloid
from exchanges.trading.clients._common import VenueCallFailed
from exchanges.trading.clients.credentials import CredentialsMissing, hyperliquid_signer
from exchanges.trading.clients.hyperliquid import HyperliquidClient, Nonces
from exchanges.trading.clients.pacing import hyperliquid_pacer
from exchanges.trading.hyperliquid_orders import Asset
from exchanges.trading.hyperliquid_sign import HyperliquidSigner, SignatureError, recover_signer
from exchanges.trading.model import (
    AccountState,
    CancelAck,
    Fill,
    OrderAck,
    OrderIntent,
    OrderRejected,
    OrderState,
    OutcomeUnknown,
    Position,
)
from tests.support.trading_standin import FakeTime, Seen, json_response, seen, serve

__all__ = ["serve"]  # fixture

USER = eth_account.Account.from_key("0x" + "11" * 32)
AGENT_KEY = "0x" + "22" * 32
AGENT = eth_account.Account.from_key(AGENT_KEY)
STRANGER_KEY = "0x" + "33" * 32
SUB = eth_account.Account.from_key("0x" + "44" * 32).address.lower()
COINS = ["BTC", "ETH"]
META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
                     {"name": "ETH", "szDecimals": 4, "maxLeverage": 50}]}  # fmt: skip
FILL_PX = "60012.5"
CLEARINGHOUSE = {
    "assetPositions": [{"position": {
        "coin": "ETH", "cumFunding": {"allTime": "514.085417", "sinceChange": "0.0", "sinceOpen": "0.0"},
        "entryPx": "2986.3", "leverage": {"rawUsd": "-95.059824", "type": "isolated", "value": 20},
        "liquidationPx": "2866.26936529", "marginUsed": "4.967826", "maxLeverage": 50, "positionValue": "100.02765",
        "returnOnEquity": "-0.0026789", "szi": "0.0335", "unrealizedPnl": "-0.0134"}, "type": "oneWay"}],
    "crossMaintenanceMarginUsed": "0.0",
    "crossMarginSummary": {"accountValue": "13104.514502", "totalMarginUsed": "0.0", "totalNtlPos": "0.0",
                           "totalRawUsd": "13104.514502"},
    "marginSummary": {"accountValue": "13109.482328", "totalMarginUsed": "4.967826", "totalNtlPos": "100.02765",
                      "totalRawUsd": "13009.454678"},
    "time": 1708622398623, "withdrawable": "13104.514502",
}  # fmt: skip
USER_FILL = {
    "closedPnl": "0.0", "coin": "AVAX", "crossed": False, "dir": "Open Long",
    "hash": "0xa166e3fa63c25663024b03f2e0da011a00307e4017465df020210d3d432e7cb8", "oid": 90542681, "px": "18.435",
    "side": "B", "startPosition": "26.86", "sz": "93.53", "time": 1681222254710, "fee": "0.01", "feeToken": "USDC",
    "builderFee": "0.01", "tid": 118906512037719,
}  # fmt: skip
MISSING = "Order was never placed, already canceled, or filled. asset={}"


class HyperliquidStandIn:
    """Hyperliquid's /exchange and /info for one user (USER, trading through AGENT, with the
    sub-account SUB). `script` queues what the next /exchange does instead of the normal answer
    (as BinanceStandIn's); `ioc` queues how much each IOC order finds to fill (None: nothing)."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.requests: list[Seen] = []
        self.orders: dict[int, dict[str, Any]] = {}
        self.status: dict[int, str] = {}
        self.used_nonces: set[tuple[str, int]] = set()
        self.script: list[Any] = []
        self.ioc: list[Decimal | None] = []
        self.release = asyncio.Event()
        self.next_oid = 77_738_300
        self.app = web.Application()
        self.app.router.add_post("/exchange", self.exchange)
        self.app.router.add_post("/info", self.info)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests if r.path == path]

    def calls(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def exchange(self, request: web.Request) -> web.StreamResponse:
        got = await seen(request)
        self.requests.append(got)
        if got.headers.get("Content-Type") != "application/json":
            return web.Response(status=415, text="Expected request with `Content-Type: application/json`")
        step = self.script.pop(0) if self.script else None
        if step == "hang":
            await self.release.wait()
            return web.Response(status=500)
        if isinstance(step, tuple) and step[0] == "answer":
            _, status, body, headers = step
            return json_response(body, status, headers)
        answer = self.act(json.loads(got.body))
        if step == "accept_and_hang":
            await self.release.wait()
        if isinstance(step, tuple) and step[0] == "accept":
            return web.Response(status=step[1], text=step[2])
        return json_response(answer)

    def act(self, body: dict[str, Any]) -> dict[str, Any]:
        action, nonce, vault = body["action"], body["nonce"], body["vaultAddress"]
        try:
            signer = recover_signer(action, body["signature"], nonce, vault, False, expires_after=body["expiresAfter"])
        except SignatureError:
            return {"status": "err", "response": "Unable to recover signer."}
        if signer.lower() not in (AGENT.address.lower(), USER.address.lower()):
            return {"status": "err", "response": f"User or API Wallet {signer.lower()} does not exist."}
        if (signer, nonce) in self.used_nonces:
            return {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
        self.used_nonces.add((signer, nonce))
        if vault is not None and vault != SUB:
            return {"status": "err", "response": f"Vault {vault} is not a sub-account or vault of {USER.address}."}
        kind = action["type"]
        if kind == "order":
            return ok("order", [self.place(o) for o in action["orders"]])
        if kind in ("cancel", "cancelByCloid"):
            return ok("cancel", [self.cancel(c) for c in action["cancels"]])
        if kind == "modify":
            old = self.find(action["oid"])
            if old is None or self.status[old["oid"]] != "open":
                return {"status": "err", "response": "Cannot modify canceled or filled order"}
            self.status[old["oid"]] = "canceled"
            self.place(action["order"])
            return {"status": "ok", "response": {"type": "default"}}
        return {"status": "err", "response": f"unknown action {kind}"}

    def place(self, o: dict[str, Any]) -> dict[str, Any]:
        asset, size, tif = o["a"], Decimal(o["s"]), o["t"]["limit"]["tif"]
        if size > 1:
            return {"error": f"Insufficient margin to place order. asset={asset}"}
        filled = Decimal(0)
        if tif == "Ioc":
            found = self.ioc.pop(0) if self.ioc else size
            if found is None:
                return {"error": f"Order could not immediately match against any resting orders. asset={asset}"}
            filled = min(found, size)
        self.next_oid += 1
        oid = self.next_oid
        self.orders[oid] = {
            "coin": COINS[asset], "side": "B" if o["b"] else "A", "limitPx": o["p"], "sz": str(size - filled),
            "oid": oid, "timestamp": self.time.now_ms(), "origSz": o["s"], "cloid": o.get("c"),
            "reduceOnly": o["r"], "tif": tif,
        }  # fmt: skip
        self.status[oid] = "open" if tif != "Ioc" else "filled" if filled == size else "canceled"
        if tif == "Ioc":
            self.orders[oid]["sz"] = "0.0"
            return {"filled": {"totalSz": str(filled), "avgPx": FILL_PX, "oid": oid}}
        return {"resting": {"oid": oid}}

    def find(self, ref: int | str) -> dict[str, Any] | None:
        if isinstance(ref, int):
            return self.orders.get(ref)
        return next((o for o in self.orders.values() if o["cloid"] == ref), None)

    def cancel(self, c: dict[str, Any]) -> Any:
        asset = c.get("a", c.get("asset"))
        order = self.find(c["o"] if "o" in c else c["cloid"])
        if order is None or self.status[order["oid"]] != "open":
            return {"error": MISSING.format(asset)}
        self.status[order["oid"]] = "canceled"
        return "success"

    async def info(self, request: web.Request) -> web.StreamResponse:
        got = await seen(request)
        self.requests.append(got)
        body = json.loads(got.body)
        kind = body["type"]
        if kind == "meta":
            return json_response(META)
        if kind == "orderStatus":
            order = self.find(body["oid"])
            if order is None:
                return json_response({"status": "unknownOid"})
            doc = {**order, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0", "children": [],
                   "isPositionTpsl": False, "orderType": "Limit"}  # fmt: skip
            return json_response({"status": "order", "order": {
                "order": doc, "status": self.status[order["oid"]], "statusTimestamp": self.time.now_ms()}})  # fmt: skip
        if kind == "openOrders":
            return json_response([
                {k: o[k] for k in ("coin", "limitPx", "oid", "side", "sz", "timestamp")}
                for o in self.orders.values() if self.status[o["oid"]] == "open"
            ])  # fmt: skip
        if kind == "clearinghouseState":
            return json_response(CLEARINGHOUSE)
        if kind in ("userFills", "userFillsByTime"):
            return json_response([{**USER_FILL, "tid": USER_FILL["tid"] + i} for i in range(45)])
        return web.Response(status=422, text="Failed to deserialize the JSON body into the target type")


def ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def venue(serve, time) -> AsyncIterator[tuple[HyperliquidStandIn, str]]:
    standin = HyperliquidStandIn(time)
    base = await serve(standin.app)
    yield standin, base
    standin.release.set()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


Make = Callable[..., HyperliquidClient]


@pytest.fixture
def make(venue, session, time) -> Make:
    _, base = venue

    def make(signer: HyperliquidSigner | None = None, **kwargs: Any) -> HyperliquidClient:
        options: dict[str, Any] = {
            "base_url": base, "pacer": hyperliquid_pacer(clock=time.monotonic, sleep=time.sleep), "timeout_s": 2.0,
            "clock_ms": time.now_ms, "sleep": time.sleep, "nonces": Nonces(),
        }  # fmt: skip
        options.update(kwargs)
        signer = signer or HyperliquidSigner.from_key(AGENT_KEY, account_address=USER.address)
        return HyperliquidClient(session, signer, **options)

    return make


def intent(event_id: str = "order-evt-1", **kwargs: Any) -> OrderIntent:
    fields: dict[str, Any] = {"event_id": event_id, "symbol": "BTC", "side": "buy", "quantity": Decimal("0.0025"),
                              "price": Decimal("60000.4")}  # fmt: skip
    fields.update(kwargs)
    return OrderIntent(**fields)


async def test_place_when_the_order_rests_then_the_exact_signed_body_and_an_ack(venue, make, time):
    standin, _ = venue
    client = make()
    assert (await client.load_assets())["ETH"].asset == 1
    assert not client.is_mainnet  # not the mainnet URL: signed for testnet, as the SDK does

    result = await client.place(intent())

    cloid = hyperliquid_cloid("order-evt-1")
    assert result == OrderAck(venue="hyperliquid", symbol="BTC", client_order_id=cloid, venue_order_id=77_738_301,
                              status="open", attempts=1)  # fmt: skip
    [sent] = standin.calls("/exchange")
    assert sent.headers["Content-Type"] == "application/json"
    body = json.loads(sent.body)
    assert list(body) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    assert body["action"] == {"type": "order", "orders": [
        {"a": 0, "b": True, "p": "60000", "s": "0.0025", "r": False, "t": {"limit": {"tif": "Gtc"}}, "c": cloid}],
        "grouping": "na"}  # fmt: skip  # the price at 5 significant figures, rounded down for a buy
    assert (body["nonce"], body["vaultAddress"], body["expiresAfter"]) == (time.now_ms(), None, None)
    # the official SDK recovers the agent from what was sent
    signer = recover_agent_or_user_from_l1_action(body["action"], body["signature"], None, body["nonce"], None, False)
    assert signer.lower() == AGENT.address.lower()
    # and the venue knows the order by its cloid, for the account (not the agent)
    state = await client.order_status(cloid)
    assert state == OrderState(venue="hyperliquid", symbol="BTC", venue_order_id=77_738_301, client_order_id=cloid,
                               side="buy", status="open", price=Decimal(60000), quantity=Decimal("0.0025"),
                               filled_quantity=Decimal(0), reduce_only=False, time_in_force="Gtc",
                               created_ms=time.now_ms(), updated_ms=time.now_ms())  # fmt: skip
    assert standin.bodies("/info")[-1] == {"type": "orderStatus", "user": USER.address.lower(), "oid": cloid}
    # weights: meta 20, the order 1, orderStatus 2
    assert client.pacer.weight.used(time.monotonic()) == 20 + 1 + 2


async def test_market_order_when_partly_filled_then_an_ioc_bounded_by_the_slippage_and_expired(venue, make):
    standin, _ = venue
    client = make()
    await client.load_assets()
    standin.ioc = [Decimal("0.001")]
    market = intent(order_type="market", price=None, reference_price=Decimal(60000), slippage=Decimal("0.01"))

    result = await client.place(market)

    assert isinstance(result, OrderAck)
    assert (result.status, result.filled_quantity, result.average_price) == ("expired", Decimal("0.001"),
                                                                             Decimal(FILL_PX))  # fmt: skip
    wire = standin.bodies("/exchange")[0]["action"]["orders"][0]
    assert (wire["p"], wire["t"]) == ("60600", {"limit": {"tif": "Ioc"}})  # 60000 x 1.01, never above
    full = await client.place(intent("order-evt-2", order_type="market", price=None, reference_price=Decimal(60000)))
    assert isinstance(full, OrderAck) and (full.status, full.filled_quantity) == ("filled", Decimal("0.0025"))
    assert standin.bodies("/exchange")[1]["action"]["orders"][0]["p"] == "63000"  # the default 5 %


async def test_place_when_answer_lost_and_venue_has_the_order_then_found_by_cloid_not_sent_again(venue, make):
    standin, _ = venue
    client = make(timeout_s=0.3)
    await client.load_assets()
    standin.script = ["accept_and_hang"]

    result = await client.place(intent())

    cloid = hyperliquid_cloid("order-evt-1")
    assert result == OrderAck(venue="hyperliquid", symbol="BTC", client_order_id=cloid, venue_order_id=77_738_301,
                              status="open", recovered=True, attempts=2)  # fmt: skip
    assert len(standin.calls("/exchange")) == 1 and len(standin.orders) == 1
    assert standin.bodies("/info")[-1]["oid"] == cloid


async def test_place_when_answer_lost_and_order_unknown_then_the_same_bytes_are_sent_again(venue, make):
    standin, _ = venue
    client = make(timeout_s=0.3)
    await client.load_assets()
    standin.script = ["hang"]

    result = await client.place(intent())

    assert isinstance(result, OrderAck) and result.status == "open" and not result.recovered
    first, second = standin.calls("/exchange")
    assert first.body == second.body  # one nonce: the venue could never take both
    assert [r.path for r in standin.requests[1:]] == ["/exchange", "/info", "/exchange"]


async def test_place_when_the_lost_copy_was_processed_then_nonce_refusal_leads_to_a_lookup_and_a_fresh_nonce(
    venue, make
):
    standin, _ = venue
    client = make(timeout_s=0.3)
    await client.load_assets()
    # the first copy is processed (an IOC that finds nothing: no order) and its answer is lost
    standin.script = ["accept_and_hang"]
    standin.ioc = [None]

    result = await client.place(intent(order_type="market", price=None, reference_price=Decimal(60000)))

    assert isinstance(result, OrderAck) and result.status == "filled" and result.attempts == 5
    sent = standin.bodies("/exchange")
    assert [r.path for r in standin.requests[1:]] == ["/exchange", "/info", "/exchange", "/info", "/exchange"]
    assert sent[0] == sent[1] and sent[2]["nonce"] > sent[0]["nonce"]  # re-signed once the nonce was spent
    assert sent[0]["action"] == sent[2]["action"]  # the same order, the same cloid


async def test_place_when_429_then_backs_off_and_sends_once_more(venue, make, time):
    standin, _ = venue
    client = make()
    await client.load_assets()
    standin.script = [("answer", 429, None, None)]  # Hyperliquid documents no Retry-After

    result = await client.place(intent())

    assert isinstance(result, OrderAck) and result.attempts == 2
    assert time.sleeps == [1.0] and client.pacer.backoff.refusals == 1
    assert len(standin.orders) == 1


async def test_place_when_5xx_after_the_venue_took_it_then_looked_up_not_doubled(venue, make):
    standin, _ = venue
    client = make()
    await client.load_assets()
    standin.script = [("accept", 502, "Bad Gateway")]

    result = await client.place(intent())

    assert isinstance(result, OrderAck) and result.recovered and len(standin.calls("/exchange")) == 1


async def test_place_when_every_answer_is_lost_then_outcome_unknown(venue, make):
    standin, _ = venue
    client = make(timeout_s=0.2, max_attempts=1)
    await client.load_assets()
    standin.script = ["accept_and_hang"]

    result = await client.place(intent())

    assert isinstance(result, OutcomeUnknown) and result.reason == "outcome_unknown"
    assert result.client_order_id == hyperliquid_cloid("order-evt-1")


async def test_place_when_venue_refuses_then_rejected_with_the_reason_code(venue, make):
    standin, _ = venue
    client = make()
    await client.load_assets()

    margin = await client.place(intent(quantity=Decimal(2)))
    stranger = make(HyperliquidSigner.from_key(STRANGER_KEY))
    stranger.assets = client.assets
    unknown = await stranger.place(intent("order-evt-2"))
    small = await client.place(intent("order-evt-3", quantity=Decimal("0.0001")))  # $6 < $10: refused here

    assert isinstance(margin, OrderRejected)
    assert (margin.reason, margin.message) == ("insufficient_margin", "Insufficient margin to place order. asset=0")
    address = eth_account.Account.from_key(STRANGER_KEY).address.lower()
    assert isinstance(unknown, OrderRejected) and (unknown.reason, unknown.message) == (
        "unknown_signer", f"User or API Wallet {address} does not exist.")  # fmt: skip
    assert isinstance(small, OrderRejected) and (small.reason, small.http_status) == ("below_min_notional", 0)
    assert len(standin.calls("/exchange")) == 2


async def test_cancel_modify_and_cancel_by_cloid_then_acks_and_a_filled_order_is_reported_as_filled(venue, make):
    standin, _ = venue
    client = make()
    await client.load_assets()
    resting = await client.place(intent())
    assert isinstance(resting, OrderAck) and resting.venue_order_id is not None

    moved = await client.modify(resting.venue_order_id, intent("modify-evt-1", price=Decimal(59000)))
    new_cloid = hyperliquid_cloid("modify-evt-1")
    assert moved == OrderAck(venue="hyperliquid", symbol="BTC", client_order_id=new_cloid, venue_order_id=77_738_302,
                             status="open", attempts=1)  # fmt: skip
    assert standin.bodies("/exchange")[-1]["action"]["oid"] == resting.venue_order_id

    canceled = await client.cancel_by_cloid("BTC", new_cloid)
    assert canceled == CancelAck(venue="hyperliquid", symbol="BTC", client_order_id=new_cloid, venue_order_id=None)
    assert standin.bodies("/exchange")[-1]["action"] == {
        "type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": new_cloid}]}  # fmt: skip

    filled = await client.place(intent("order-evt-2", order_type="market", price=None, reference_price=Decimal(60000)))
    assert isinstance(filled, OrderAck) and filled.venue_order_id is not None
    late = await client.cancel("BTC", filled.venue_order_id)
    assert late == CancelAck(venue="hyperliquid", symbol="BTC", client_order_id=hyperliquid_cloid("order-evt-2"),
                             venue_order_id=filled.venue_order_id, status="filled", recovered=True)  # fmt: skip
    never = await client.cancel("BTC", 1)
    assert isinstance(never, OrderRejected) and (never.reason, never.message) == ("unknown_order", MISSING.format(0))


async def test_account_open_orders_and_fills_then_documented_shapes_and_per_item_weight(venue, make, time):
    standin, _ = venue
    client = make()
    await client.load_assets()
    await client.place(intent())

    assert await client.account() == AccountState(
        venue="hyperliquid", equity=Decimal("13109.482328"), wallet_balance=Decimal("13109.495728"),
        available=Decimal("13104.514502"), margin_used=Decimal("4.967826"), unrealized_pnl=Decimal("-0.0134"),
        positions=(Position(venue="hyperliquid", symbol="ETH", quantity=Decimal("0.0335"),
                            entry_price=Decimal("2986.3"), unrealized_pnl=Decimal("-0.0134"),
                            mark_price=Decimal("2985.9"), leverage=20),),
        time_ms=1708622398623,
    )  # fmt: skip
    [order] = await client.open_orders()
    assert (order.symbol, order.venue_order_id, order.status, order.quantity) == ("BTC", 77_738_301, "open",
                                                                                  Decimal("0.0025"))  # fmt: skip
    fills = await client.fills()
    assert len(fills) == 45 and fills[0] == Fill(
        venue="hyperliquid", symbol="AVAX", trade_id="118906512037719", venue_order_id=90542681, client_order_id=None,
        side="buy", price=Decimal("18.435"), quantity=Decimal("93.53"), fee=Decimal("0.01"), fee_asset="USDC",
        maker=True, realized_pnl=Decimal(0), time_ms=1681222254710)  # fmt: skip
    await client.fills(start_ms=1681222254000)
    assert standin.bodies("/info")[-1] == {"type": "userFillsByTime", "user": USER.address.lower(),
                                           "startTime": 1681222254000}  # fmt: skip
    # meta 20, order 1, clearinghouseState 2, openOrders 20, userFills 20 + 45 // 20, userFillsByTime the same
    assert client.pacer.weight.used(time.monotonic()) == 20 + 1 + 2 + 20 + 2 * (20 + 2)


async def test_vault_when_trading_a_sub_account_then_signed_for_it_and_queries_name_it(venue, make):
    standin, _ = venue
    client = make(HyperliquidSigner.from_key(AGENT_KEY, account_address=USER.address, vault_address=SUB))
    await client.load_assets()

    result = await client.place(intent())
    await client.account()

    assert isinstance(result, OrderAck) and result.status == "open"
    body = standin.bodies("/exchange")[0]
    assert body["vaultAddress"] == SUB
    assert recover_agent_or_user_from_l1_action(body["action"], body["signature"], SUB, body["nonce"], None,
                                                False).lower() == AGENT.address.lower()  # fmt: skip
    assert standin.bodies("/info")[-1] == {"type": "clearinghouseState", "user": SUB}


async def test_queries_when_the_venue_cannot_be_reached_then_backoff_and_venue_call_failed(session, time):
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HyperliquidClient(
        session, HyperliquidSigner.from_key(AGENT_KEY), base_url=f"http://127.0.0.1:{port}", max_attempts=3,
        pacer=hyperliquid_pacer(clock=time.monotonic, sleep=time.sleep), clock_ms=time.now_ms, sleep=time.sleep,
    )  # fmt: skip
    with pytest.raises(VenueCallFailed) as failed:
        await client.account()
    assert (failed.value.error.reason, failed.value.error.retry) == ("venue_unavailable", "backoff")
    assert time.sleeps == [0.5, 1.0]  # a pause after each failed connection but the last, doubling

    client.assets = {"BTC": Asset(coin="BTC", asset=0, sz_decimals=5)}
    result = await client.place(intent())
    assert isinstance(result, OrderRejected) and result.reason == "venue_unavailable"  # never sent: not unknown


def test_signer_when_read_from_the_environment_then_errors_name_the_variable_never_the_key():
    signer = hyperliquid_signer("TT_HL_KEY", account_address=USER.address, environ={"TT_HL_KEY": AGENT_KEY})
    assert signer.signer_address == AGENT.address and AGENT_KEY[2:] not in repr(signer)
    with pytest.raises(CredentialsMissing) as missing:
        hyperliquid_signer("TT_HL_KEY", environ={})
    assert missing.value.variable == "TT_HL_KEY"
    with pytest.raises(CredentialsMissing) as bad:
        hyperliquid_signer("TT_HL_KEY", environ={"TT_HL_KEY": "0xnotakey-but-secret"})
    assert "notakey" not in str(bad.value) and "TT_HL_KEY" in str(bad.value)
