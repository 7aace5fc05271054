"""The Binance USDT-M execution client (exchanges.trading.clients.binance_usdm) against a stand-in
on loopback that speaks Binance's wire: every parameter in the query string, X-MBX-APIKEY, the
HMAC signature recomputed here with hashlib/hmac, `timestamp` checked against recvWindow, and
answers in the shapes of the USDⓈ-M futures documentation (New Order with RESULT, Query Order,
Cancel Order, Current All Open Orders, Account Trade List, Position Information V2, Account
Information V2, the listenKey calls, errors `{"code", "msg"}`, 429/418 with Retry-After).

The clients' pacing and waits run on a fake clock (tests/support/trading_standin.FakeTime), so
Retry-After and recvWindow waits are measured exactly and cost no time; timeouts are real and
short. What is checked: the exact requests, one order per order event whatever happens (a lost
answer, a 5xx, a duplicate), the documented limits, and every refusal as a reason code."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.client_ids import binance_client_order_id
from exchanges.trading.clients._common import VenueCallFailed
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from exchanges.trading.clients.credentials import CredentialsMissing, binance_credentials
from exchanges.trading.clients.pacing import binance_order_windows, binance_pacer
from exchanges.trading.model import (
    AccountState,
    CancelAck,
    Fill,
    OrderAck,
    OrderIntent,
    OrderRejected,
    OutcomeUnknown,
    Position,
)
from tests.support.trading_standin import FakeTime, Seen, json_response, seen, serve

__all__ = ["serve"]  # fixture

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
RECV_WINDOW = 5000
BTCUSDT = {
    "symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING",
    "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 3,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "1000", "minQty": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "maxQty": "120", "minQty": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ],
    "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
}  # fmt: skip
MARKET_PRICE = "67012.40"


def error(code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"code": code, "msg": msg}, status, headers)


class BinanceStandIn:
    """Binance USDT-M's order, account and listenKey endpoints, for one API key. `script` queues
    what the next call of (method, path) does instead of the normal answer:
      ("answer", status, body, headers)   answer that, do nothing else
      ("accept", status, body)            do the normal thing, then answer that (a 5xx after success)
      "accept_and_hang"                   do the normal thing, never answer (until teardown)
      "hang"                              do nothing, never answer"""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.requests: list[Seen] = []
        self.orders: dict[str, dict[str, Any]] = {}  # clientOrderId -> the order
        self.script: dict[tuple[str, str], list[Any]] = {}
        self.release = asyncio.Event()
        self.next_id = 4_099_000_001
        self.listen_key: str | None = None
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    def then(self, method: str, path: str, *steps: Any) -> None:
        self.script.setdefault((method, path), []).extend(steps)

    def calls(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = await seen(request)
        self.requests.append(got)
        if got.path == "/fapi/v1/exchangeInfo":
            return json_response({"timezone": "UTC", "serverTime": self.time.now_ms(), "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ], "exchangeFilters": [], "symbols": [BTCUSDT]})  # fmt: skip
        if got.headers.get("X-MBX-APIKEY") != API_KEY:
            return error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if got.path == "/fapi/v1/listenKey":
            return self.listen(got)
        refused = self.check_signed(got)
        if refused is not None:
            return refused
        step = (
            self.script.get((got.method, got.path), [None]).pop(0) if self.script.get((got.method, got.path)) else None
        )
        if step == "hang":
            await self.release.wait()
            return error(-1007, "Timeout waiting for response from backend server.", 408)
        if isinstance(step, tuple) and step[0] == "answer":
            return json_response(step[2], step[1], step[3] if len(step) > 3 else None)
        response = self.serve(got)
        if step == "accept_and_hang":
            await self.release.wait()
        if isinstance(step, tuple) and step[0] == "accept":
            return json_response(step[2], step[1])
        return response

    def check_signed(self, got: Seen) -> web.Response | None:
        """What Binance checks of a SIGNED request: the signature last, HMAC-SHA256 of everything
        before it; timestamp within recvWindow of the server's clock and < server + 1000 ms."""
        total, sep, signature = got.query.rpartition("&signature=")
        if not sep or got.body:
            return error(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        expected = hmac.new(SECRET.encode(), total.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return error(-1022, "Signature for this request is not valid.")
        params = got.params()
        now, ts = self.time.now_ms(), int(params["timestamp"])
        if not (ts < now + 1000 and now - ts <= int(params.get("recvWindow", "5000"))):
            return error(-1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def listen(self, got: Seen) -> web.Response:
        if got.method == "POST":
            self.listen_key = self.listen_key or "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
            return json_response({"listenKey": self.listen_key})
        if self.listen_key is None:
            return error(-1125, "This listenKey does not exist.")
        if got.method == "DELETE":
            self.listen_key = None
        return json_response({})

    def serve(self, got: Seen) -> web.Response:
        p = got.params()
        if (got.method, got.path) == ("POST", "/fapi/v1/order"):
            return self.new_order(p)
        if got.path == "/fapi/v1/order":
            order = self.find(p)
            if order is None:
                return (
                    error(-2013, "Order does not exist.")
                    if got.method == "GET"
                    else error(-2011, "Unknown order sent.")
                )
            if got.method == "DELETE":
                if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                    return error(-2011, "Unknown order sent.")
                order.update(status="CANCELED", updateTime=self.time.now_ms())
                return json_response(answer_of(order))
            return json_response(order)
        if got.path == "/fapi/v1/openOrders":
            return json_response([o for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")])
        if got.path == "/fapi/v1/userTrades":
            return json_response(USER_TRADES)
        if got.path == "/fapi/v2/positionRisk":
            return json_response(POSITION_RISK)
        if got.path == "/fapi/v2/account":
            return json_response(ACCOUNT)
        return error(-1000, "An unknown error occured while processing the request.", 404)

    def find(self, p: dict[str, str]) -> dict[str, Any] | None:
        if "orderId" in p:
            return next((o for o in self.orders.values() if str(o["orderId"]) == p["orderId"]), None)
        return self.orders.get(p.get("origClientOrderId", ""))

    def new_order(self, p: dict[str, str]) -> web.Response:
        cid = p["newClientOrderId"]
        if cid in self.orders and self.orders[cid]["status"] in ("NEW", "PARTIALLY_FILLED"):
            return error(-4116, "ClientOrderId is duplicated.")
        self.next_id += 1
        now = self.time.now_ms()
        market = p["type"] == "MARKET"
        order = {  # the Query Order shape; the new-order answer is answer_of(order)
            "avgPrice": MARKET_PRICE if market else "0.00", "clientOrderId": cid,
            "cumQuote": str(Decimal(MARKET_PRICE) * Decimal(p["quantity"])) if market else "0",
            "executedQty": p["quantity"] if market else "0", "orderId": self.next_id, "origQty": p["quantity"],
            "origType": p["type"], "price": p.get("price", "0"), "reduceOnly": p.get("reduceOnly") == "true",
            "side": p["side"], "positionSide": "BOTH", "status": "FILLED" if market else "NEW", "stopPrice": "0",
            "closePosition": False, "symbol": p["symbol"], "time": now, "timeInForce": p.get("timeInForce", "GTC"),
            "type": p["type"], "updateTime": now, "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
        }  # fmt: skip
        self.orders[cid] = order
        return json_response(answer_of(order))


def answer_of(order: dict[str, Any]) -> dict[str, Any]:
    """New Order / Cancel Order answer: the order with cumQty, without time."""
    out = {k: v for k, v in order.items() if k != "time"}
    return {"clientOrderId": out.pop("clientOrderId"), "cumQty": order["executedQty"], **out}


USER_TRADES = [
    {"buyer": False, "commission": "-0.07819010", "commissionAsset": "USDT", "id": 698759, "maker": False,
     "orderId": 25851813, "price": "7819.01", "qty": "0.002", "quoteQty": "15.63802",
     "realizedPnl": "-0.91539999", "side": "SELL", "positionSide": "SHORT", "symbol": "BTCUSDT",
     "time": 1569514978020},
]  # fmt: skip
POSITION_RISK = [
    {"entryPrice": "0.00000", "breakEvenPrice": "0.0", "marginType": "isolated", "isAutoAddMargin": "false",
     "isolatedMargin": "0.00000000", "leverage": "10", "liquidationPrice": "0", "markPrice": "6679.50671178",
     "maxNotionalValue": "20000000", "positionAmt": "0.000", "notional": "0", "isolatedWallet": "0",
     "symbol": "BTCUSDT", "unRealizedProfit": "0.00000000", "positionSide": "BOTH", "updateTime": 0},
    {"entryPrice": "3420.10", "breakEvenPrice": "3421.81", "marginType": "cross", "isAutoAddMargin": "false",
     "isolatedMargin": "0.00000000", "leverage": "20", "liquidationPrice": "0", "markPrice": "3400.00000000",
     "maxNotionalValue": "25000000", "positionAmt": "-1.500", "notional": "-5100.00000000",
     "isolatedWallet": "0", "symbol": "ETHUSDT", "unRealizedProfit": "30.15000000", "positionSide": "BOTH",
     "updateTime": 1717171700000},
]  # fmt: skip
ACCOUNT = {
    "feeTier": 0, "feeBurn": True, "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": 0,
    "multiAssetsMargin": False, "tradeGroupId": -1, "totalInitialMargin": "255.00000000",
    "totalMaintMargin": "20.40000000", "totalWalletBalance": "10000.00000000",
    "totalUnrealizedProfit": "30.15000000", "totalMarginBalance": "10030.15000000",
    "totalPositionInitialMargin": "255.00000000", "totalOpenOrderInitialMargin": "0.00000000",
    "totalCrossWalletBalance": "10000.00000000", "totalCrossUnPnl": "30.15000000",
    "availableBalance": "9775.15000000", "maxWithdrawAmount": "9775.15000000",
    "assets": [{"asset": "USDT", "walletBalance": "10000.00000000", "unrealizedProfit": "30.15000000",
                "marginBalance": "10030.15000000", "maintMargin": "20.40000000", "initialMargin": "255.00000000",
                "positionInitialMargin": "255.00000000", "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": "10000.00000000", "crossUnPnl": "30.15000000",
                "availableBalance": "9775.15000000", "maxWithdrawAmount": "9775.15000000",
                "marginAvailable": True, "updateTime": 1717171700000}],
    "positions": [
        {"symbol": "ETHUSDT", "initialMargin": "255.00000000", "maintMargin": "20.40000000",
         "unrealizedProfit": "30.15000000", "positionInitialMargin": "255.00000000",
         "openOrderInitialMargin": "0", "leverage": "20", "isolated": False, "entryPrice": "3420.10",
         "breakEvenPrice": "3421.81", "maxNotional": "25000000", "bidNotional": "0", "askNotional": "0",
         "positionSide": "BOTH", "positionAmt": "-1.500", "updateTime": 1717171700000},
        {"symbol": "BTCUSDT", "initialMargin": "0", "maintMargin": "0", "unrealizedProfit": "0.00000000",
         "positionInitialMargin": "0", "openOrderInitialMargin": "0", "leverage": "20", "isolated": False,
         "entryPrice": "0.0", "breakEvenPrice": "0.0", "maxNotional": "250000", "bidNotional": "0",
         "askNotional": "0", "positionSide": "BOTH", "positionAmt": "0.000", "updateTime": 0},
    ],
}  # fmt: skip


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def venue(serve, time) -> AsyncIterator[tuple[BinanceStandIn, str]]:
    standin = BinanceStandIn(time)
    base = await serve(standin.app)
    yield standin, base
    standin.release.set()  # let hanging handlers end before the server stops


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


Make = Callable[..., BinanceUsdmClient]


@pytest.fixture
def make(venue, session, time) -> Make:
    _, base = venue

    def make(**kwargs: Any) -> BinanceUsdmClient:
        options: dict[str, Any] = {
            "base_url": base, "pacer": binance_pacer(clock=time.monotonic, sleep=time.sleep), "timeout_s": 2.0,
            "clock_ms": time.now_ms, "sleep": time.sleep, "recv_window_ms": RECV_WINDOW,
        }  # fmt: skip
        options.update(kwargs)
        return BinanceUsdmClient(session, BinanceCredentials(API_KEY, SECRET), **options)

    return make


def buy(event_id: str = "order-evt-1", **kwargs: Any) -> OrderIntent:
    fields: dict[str, Any] = {"event_id": event_id, "symbol": "BTCUSDT", "side": "buy",
                              "quantity": Decimal("0.0025"), "price": Decimal("60000.07")}  # fmt: skip
    fields.update(kwargs)
    return OrderIntent(**fields)


async def test_place_query_and_cancel_when_venue_answers_then_exact_signed_requests_and_plain_results(
    venue, make, time
):
    standin, _ = venue
    client = make()
    rules = await client.load_rules()
    assert rules["BTCUSDT"].tick_size == Decimal("0.10") and rules["BTCUSDT"].min_notional == Decimal(100)
    assert "X-MBX-APIKEY" not in standin.requests[0].headers  # exchangeInfo is public: no key sent

    placed = await client.place(buy())
    cid = binance_client_order_id("order-evt-1")
    assert placed == OrderAck(venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid, venue_order_id=4_099_000_002,
                              status="open", filled_quantity=Decimal(0), attempts=1)  # fmt: skip
    [post] = standin.calls("POST", "/fapi/v1/order")
    total = (f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.002&price=60000&timeInForce=GTC&newClientOrderId={cid}"
             f"&newOrderRespType=RESULT&recvWindow={RECV_WINDOW}&timestamp={time.now_ms()}")  # fmt: skip
    signature = hmac.new(SECRET.encode(), total.encode(), hashlib.sha256).hexdigest()
    assert post.query == f"{total}&signature={signature}"  # rounded to the tick and step, passive side
    assert post.body == b"" and post.headers["X-MBX-APIKEY"] == API_KEY

    state = await client.order("BTCUSDT", client_order_id=cid)
    assert state is not None and (state.venue_order_id, state.status, state.price, state.quantity) == (
        4_099_000_002, "open", Decimal("60000"), Decimal("0.002"))  # fmt: skip
    assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == [cid]
    assert standin.calls("GET", "/fapi/v1/openOrders")[-1].params()["symbol"] == "BTCUSDT"

    assert await client.cancel("BTCUSDT", client_order_id=cid) == CancelAck(
        venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid, venue_order_id=4_099_000_002, status="canceled"
    )
    # canceled twice: the venue says "Unknown order sent."; the order is looked up and reported closed
    again = await client.cancel("BTCUSDT", order_id=4_099_000_002)
    assert again == CancelAck(venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid,
                              venue_order_id=4_099_000_002, status="canceled", recovered=True)  # fmt: skip
    assert await client.order("BTCUSDT", client_order_id=binance_client_order_id("never-sent")) is None
    assert await client.open_orders() == []  # all symbols: weight 40

    market = await client.place(buy("order-evt-2", order_type="market", price=None, reference_price=Decimal("67000"),
                                    quantity=Decimal("0.003")))  # fmt: skip
    assert isinstance(market, OrderAck) and (market.status, market.filled_quantity, market.average_price) == (
        "filled", Decimal("0.003"), Decimal(MARKET_PRICE))  # fmt: skip
    assert "timeInForce" not in standin.calls("POST", "/fapi/v1/order")[-1].params()

    # The documented weights went on the IP window: exchangeInfo 1, orders 0, query 1 x3 (one by the
    # second cancel), openOrders 1 and 40, cancel 1 x2; two orders on this account's order windows.
    assert client.pacer.weight.used(time.monotonic()) == 1 + 3 + 1 + 40 + 2
    assert [w.used(time.monotonic()) for w in client.order_windows] == [2, 2]
    assert SECRET not in repr(standin.requests) and SECRET not in repr(client)


async def test_place_when_answer_lost_and_venue_has_the_order_then_found_by_client_id_and_not_sent_again(
    venue, make, time
):
    standin, _ = venue
    client = make(timeout_s=0.3, rules=None)
    await client.load_rules()
    standin.then("POST", "/fapi/v1/order", "accept_and_hang")

    result = await client.place(buy())

    cid = binance_client_order_id("order-evt-1")
    assert result == OrderAck(venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid,
                              venue_order_id=4_099_000_002, status="open", recovered=True, attempts=2)  # fmt: skip
    [post] = standin.calls("POST", "/fapi/v1/order")
    [get] = standin.calls("GET", "/fapi/v1/order")
    assert get.params()["origClientOrderId"] == cid
    # asked only once the lost request could no longer be accepted: its timestamp + recvWindow +
    # the 1000 ms Binance allows a client clock ahead of its own
    assert int(get.params()["timestamp"]) >= int(post.params()["timestamp"]) + RECV_WINDOW + 1000
    assert time.sleeps == [pytest.approx((RECV_WINDOW + 1000) / 1000)]


async def test_outliving_a_request_when_the_venue_clock_runs_at_pace_10_then_waits_in_wall_clock_time(make, time):
    """recvWindow (+ the 1000 ms ahead allowance) bounds a request's delay in wall-clock time, also
    at a simulator running ten times faster: a request stamped one wall second ago (ten venue
    seconds) can still be executed for RECV_WINDOW + 1000 - 1000 wall ms, not for none."""
    client = make(clock_ms=lambda: time.now_ms() * 10, clock_pace=lambda: 10.0)
    stamped = client.clock_ms() - 10_000
    assert await client._outlive(stamped, deadline=time.monotonic() + 60)
    assert time.sleeps == [pytest.approx(RECV_WINDOW / 1000)]


async def test_place_when_answer_lost_and_venue_does_not_know_the_order_then_sent_again_with_the_same_id(venue, make):
    standin, _ = venue
    client = make(timeout_s=0.3)
    await client.load_rules()
    standin.then("POST", "/fapi/v1/order", "hang")

    result = await client.place(buy())

    assert isinstance(result, OrderAck) and not result.recovered and result.attempts == 3
    sequence = [(r.method, r.path) for r in standin.requests[1:]]
    assert sequence == [("POST", "/fapi/v1/order"), ("GET", "/fapi/v1/order"), ("POST", "/fapi/v1/order")]
    first, second = standin.calls("POST", "/fapi/v1/order")
    assert first.params()["newClientOrderId"] == second.params()["newClientOrderId"] == result.client_order_id
    assert first.params()["timestamp"] != second.params()["timestamp"]  # signed anew
    assert len(standin.orders) == 1


async def test_place_when_5xx_after_the_venue_took_it_then_looked_up_not_doubled(venue, make):
    standin, _ = venue
    client = make()
    await client.load_rules()
    unknown = {"code": -1000, "msg": "Unknown error, please check your request or try again later."}
    standin.then("POST", "/fapi/v1/order", ("accept", 503, unknown))

    result = await client.place(buy())

    assert isinstance(result, OrderAck) and result.recovered and result.status == "open"
    assert len(standin.calls("POST", "/fapi/v1/order")) == 1 and len(standin.orders) == 1


async def test_place_when_duplicate_client_order_id_then_the_open_order_is_acknowledged_at_once(venue, make, time):
    standin, _ = venue
    client = make()
    await client.load_rules()
    first = await client.place(buy())
    again = await client.place(buy())  # the same order event, placed again (a redelivery)

    assert isinstance(first, OrderAck) and isinstance(again, OrderAck)
    assert (again.venue_order_id, again.recovered) == (first.venue_order_id, True)
    assert time.sleeps == []  # -4116 says the venue has it: no recvWindow to wait out
    assert len(standin.orders) == 1


async def test_place_when_query_first_and_order_exists_then_nothing_is_sent(venue, make):
    standin, _ = venue
    client = make()
    await client.load_rules()
    await client.place(buy())
    restarted = make()  # a new process after a restart
    restarted.rules = client.rules

    result = await restarted.place(buy(), query_first=True)

    assert isinstance(result, OrderAck) and result.recovered and result.attempts == 1
    assert len(standin.calls("POST", "/fapi/v1/order")) == 1


async def test_place_when_429_with_retry_after_then_waits_that_long_and_places_once(venue, make, time):
    standin, _ = venue
    client = make()
    await client.load_rules()
    limited = {"code": -1003, "msg": "Too many requests; current limit is 2400 requests per minute."}
    standin.then("POST", "/fapi/v1/order", ("answer", 429, limited, {"Retry-After": "7"}))

    result = await client.place(buy())

    assert isinstance(result, OrderAck) and result.attempts == 2 and not result.recovered
    assert time.sleeps == [7.0] and client.pacer.backoff.refusals == 1
    assert len(standin.calls("POST", "/fapi/v1/order")) == 2 and len(standin.orders) == 1


async def test_place_when_ip_banned_longer_than_max_wait_then_rejected_and_every_client_stays_quiet(venue, make, time):
    standin, _ = venue
    client = make(max_wait_s=60)
    await client.load_rules()
    banned = {"code": -1003, "msg": "Way too many requests; IP banned until 1717171837000."}
    standin.then("POST", "/fapi/v1/order", ("answer", 418, banned, {"Retry-After": "120"}))

    result = await client.place(buy())

    assert isinstance(result, OrderRejected)
    assert (result.reason, result.http_status, result.code) == ("ip_banned", 418, -1003)
    other_account = make(pacer=client.pacer)  # another account's client on the same IP
    before = len(standin.requests)
    with pytest.raises(VenueCallFailed) as failed:
        await other_account.account()
    assert failed.value.error.reason == "ip_banned" and len(standin.requests) == before
    assert time.sleeps == []  # nothing waited: the ban outlasts max_wait_s


@pytest.mark.parametrize(
    ("code", "msg", "reason"),
    [
        (-2019, "Margin is insufficient.", "insufficient_margin"),
        (-4164, "Order's notional must be no smaller than 100 (unless you choose reduce only).", "below_min_notional"),
        (-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected.",
         "post_only_would_match"),
        (-2022, "ReduceOnly Order is rejected.", "reduce_only_rejected"),
    ],
)  # fmt: skip
async def test_place_when_venue_refuses_then_rejected_with_the_reason_code(venue, make, code, msg, reason):
    standin, _ = venue
    client = make()
    await client.load_rules()
    standin.then("POST", "/fapi/v1/order", ("answer", 400, {"code": code, "msg": msg}))

    result = await client.place(buy())

    assert result == OrderRejected(venue="binance_usdm", symbol="BTCUSDT",
                                   client_order_id=binance_client_order_id("order-evt-1"), reason=reason, message=msg,
                                   http_status=400, code=code, attempts=1)  # fmt: skip
    assert len(standin.calls("POST", "/fapi/v1/order")) == 1


async def test_place_when_order_breaks_a_rule_then_rejected_before_any_request(venue, make):
    standin, _ = venue
    client = make()
    await client.load_rules()
    before = len(standin.requests)

    small = await client.place(buy(quantity=Decimal("0.001")))  # 60 USDT < the 100 USDT minimum notional
    unknown = await client.place(buy(symbol="DOGEUSDT"))

    assert isinstance(small, OrderRejected) and (small.reason, small.http_status) == ("below_min_notional", 0)
    assert isinstance(unknown, OrderRejected) and unknown.reason == "unknown_symbol"
    assert len(standin.requests) == before


async def test_cancel_when_the_answer_is_lost_then_sent_again_and_the_canceled_order_is_reported(venue, make):
    standin, _ = venue
    client = make(timeout_s=0.3)
    await client.load_rules()
    placed = await client.place(buy())
    assert isinstance(placed, OrderAck)
    standin.then("DELETE", "/fapi/v1/order", "accept_and_hang")

    result = await client.cancel("BTCUSDT", client_order_id=placed.client_order_id)

    assert result == CancelAck(venue="binance_usdm", symbol="BTCUSDT", client_order_id=placed.client_order_id,
                               venue_order_id=placed.venue_order_id, status="canceled", recovered=True)  # fmt: skip
    assert [(r.method, r.path) for r in standin.requests[2:]] == [
        ("DELETE", "/fapi/v1/order"), ("DELETE", "/fapi/v1/order"), ("GET", "/fapi/v1/order")]  # fmt: skip


async def test_place_when_every_answer_is_lost_then_outcome_unknown_not_a_rejection(venue, make):
    standin, _ = venue
    client = make(timeout_s=0.2, max_attempts=2)
    await client.load_rules()
    standin.then("POST", "/fapi/v1/order", "accept_and_hang")
    standin.then("GET", "/fapi/v1/order", "hang")

    result = await client.place(buy())

    assert isinstance(result, OutcomeUnknown) and result.reason == "outcome_unknown" and result.attempts == 2
    assert result.client_order_id == binance_client_order_id("order-evt-1")


async def test_order_windows_when_more_orders_than_10s_allows_then_the_next_waits_for_the_window(venue, make, time):
    standin, _ = venue
    client = make(order_windows=binance_order_windows(per_10s=2, per_minute=1200))
    await client.load_rules()

    results = [await client.place(buy(f"order-evt-{i}")) for i in range(3)]

    assert all(isinstance(r, OrderAck) for r in results)
    assert time.sleeps == [pytest.approx(10.0)]  # the third waited until the first left the window
    first, _, third = standin.calls("POST", "/fapi/v1/order")
    assert int(third.params()["timestamp"]) - int(first.params()["timestamp"]) == 10_000


async def test_account_positions_fills_and_listen_key_then_documented_shapes_become_plain_values(venue, make):
    standin, _ = venue
    client = make()

    account = await client.account()
    short = Position(venue="binance_usdm", symbol="ETHUSDT", quantity=Decimal("-1.5"), entry_price=Decimal("3420.10"),
                     unrealized_pnl=Decimal("30.15"), leverage=20)  # fmt: skip
    assert account == AccountState(venue="binance_usdm", equity=Decimal("10030.15"), wallet_balance=Decimal(10000),
                                   available=Decimal("9775.15"), margin_used=Decimal(255),
                                   unrealized_pnl=Decimal("30.15"), positions=(short,))  # fmt: skip
    positions = await client.positions()
    assert positions == [Position(venue="binance_usdm", symbol="ETHUSDT", quantity=Decimal("-1.5"),
                                  entry_price=Decimal("3420.10"), unrealized_pnl=Decimal("30.15"),
                                  mark_price=Decimal(3400), leverage=20)]  # fmt: skip
    assert await client.fills("BTCUSDT", start_time_ms=1569514978000, limit=500) == [
        Fill(venue="binance_usdm", symbol="BTCUSDT", trade_id="698759", venue_order_id=25851813,
             client_order_id=None, side="sell", price=Decimal("7819.01"), quantity=Decimal("0.002"),
             fee=Decimal("-0.07819010"), fee_asset="USDT", maker=False, realized_pnl=Decimal("-0.91539999"),
             time_ms=1569514978020)
    ]  # fmt: skip
    assert standin.calls("GET", "/fapi/v1/userTrades")[0].params() | {"timestamp": "", "signature": ""} == {
        "symbol": "BTCUSDT", "startTime": "1569514978000", "limit": "500", "recvWindow": "5000", "timestamp": "",
        "signature": ""}  # fmt: skip

    key = await client.listen_key_create()
    await client.listen_key_keepalive()
    await client.listen_key_close()
    assert key == "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
    calls = [(r.method, r.query, r.headers["X-MBX-APIKEY"]) for r in standin.requests if r.path == "/fapi/v1/listenKey"]
    assert calls == [("POST", "", API_KEY), ("PUT", "", API_KEY), ("DELETE", "", API_KEY)]  # API key only, unsigned
    with pytest.raises(VenueCallFailed) as failed:
        await client.listen_key_keepalive()  # closed: the venue no longer knows it
    assert (failed.value.error.reason, failed.value.error.code) == ("invalid_listen_key", -1125)
    # weights: account 5, positionRisk 5, userTrades 5, listenKey 1 x4
    assert client.pacer.weight.used(client.pacer.clock()) == 5 + 5 + 5 + 4


async def test_signed_request_when_the_key_is_wrong_then_refused_with_the_reason_and_nothing_leaks(
    venue, session, time
):
    _, base = venue
    wrong = BinanceUsdmClient(session, BinanceCredentials(API_KEY, "not-the-secret"), base_url=base,
                              pacer=binance_pacer(clock=time.monotonic, sleep=time.sleep), clock_ms=time.now_ms,
                              sleep=time.sleep)  # fmt: skip
    with pytest.raises(VenueCallFailed) as failed:
        await wrong.account()
    assert (failed.value.error.reason, failed.value.error.code) == ("invalid_signature", -1022)
    assert "not-the-secret" not in str(failed.value) and "signature=" not in str(failed.value)


def test_credentials_when_read_from_the_environment_then_errors_name_the_variable_never_the_value():
    env = {"TT_ALPHA_KEY": API_KEY, "TT_ALPHA_SECRET": SECRET}
    creds = binance_credentials("TT_ALPHA_KEY", "TT_ALPHA_SECRET", environ=env)
    assert creds.headers() == {"X-MBX-APIKEY": API_KEY} and SECRET not in repr(creds) and API_KEY not in str(creds)
    with pytest.raises(CredentialsMissing) as missing:
        binance_credentials("TT_ALPHA_KEY", "TT_BETA_SECRET", environ=env)
    assert missing.value.variable == "TT_BETA_SECRET" and "TT_BETA_SECRET" in str(missing.value)
    with pytest.raises(CredentialsMissing) as bad:
        binance_credentials("TT_ALPHA_KEY", "TT_ALPHA_SECRET", environ={**env, "TT_ALPHA_SECRET": "has space é"})
    assert "has space" not in str(bad.value) and "TT_ALPHA_SECRET" in str(bad.value)
