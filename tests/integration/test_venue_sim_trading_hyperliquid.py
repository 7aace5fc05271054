"""Hyperliquid trading on the venue simulator, driven by the official hyperliquid-python-sdk
(`Exchange`, `Info`: requests against base_url) and by hand-signed /exchange bodies, on loopback,
over real converted 1m bars (OctoBot) shifted to the present so the SDK's wall-clock nonces fall
in the venue's nonce window. Signers are recovered by the simulator with the SDK's action hashing
and eth-account; here they are recovered again, independently, from GET /_sim/requests."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import eth_account
import hyperliquid.exchange
import pytest
import requests
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import (
    get_timestamp_ms,
    order_request_to_order_wire,
    order_wires_to_order_action,
    recover_agent_or_user_from_l1_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from tests.integration.test_venue_sim import FakeWall, http, series, start_sim
from ticktape.testing import eventually
from venuesim.bars import MINUTE_MS, BarSeries, align
from venuesim.hyperliquid_orders import num
from venuesim.trading_config import parse

__all__ = ["http", "series", "start_sim"]  # fixtures used here

USER = eth_account.Account.from_key("0x" + "11" * 32)
AGENT = eth_account.Account.from_key("0x" + "22" * 32)
STRANGER = eth_account.Account.from_key("0x" + "33" * 32)
SUB = eth_account.Account.from_key("0x" + "44" * 32).address.lower()  # a sub-account: never signs
OTHER = eth_account.Account.from_key("0x" + "55" * 32)
OTHER_SUB = eth_account.Account.from_key("0x" + "66" * 32).address.lower()
BARS_BEFORE_NOW = 30  # the sim clock starts this many minutes before the wall clock


def accounts() -> Any:
    return parse({
        "hyperliquid": {
            "chain": "testnet",
            "accounts": [
                {"address": USER.address, "balance": "10000", "agents": [AGENT.address]},
                {"address": SUB, "balance": "2000", "master": USER.address},
                {"address": OTHER.address, "balance": "500"},
                {"address": OTHER_SUB, "balance": "500", "master": OTHER.address},
            ],
        }
    })  # fmt: skip


@pytest.fixture
def present(series: dict[str, BarSeries]) -> dict[str, BarSeries]:
    """The recorded bars moved so that bar BARS_BEFORE_NOW opens at the current wall minute."""
    now_minute = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    return align(series, now_minute - BARS_BEFORE_NOW * MINUTE_MS)


@pytest.fixture
def monotonic_nonces(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's nonce is the wall clock in ms; two actions in one millisecond would share one, which
    the venue refuses. A careful client keeps them strictly increasing, so this one does too."""
    lock = threading.Lock()
    state = {"last": 0}

    def nonce() -> int:
        with lock:
            state["last"] = max(state["last"] + 1, get_timestamp_ms())
            return state["last"]

    monkeypatch.setattr(hyperliquid.exchange, "get_timestamp_ms", nonce)


@pytest.fixture
def sent_urls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL the SDK's requests sessions send to (nothing may leave loopback)."""
    urls: list[str] = []
    real_send = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        urls.append(str(request.url))
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    return urls


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if resp.content_type == "application/json" else text)


class Channel:
    """A WebSocket on the simulator's Hyperliquid endpoint that keeps every message it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))

    def on(self, channel: str) -> list[Any]:
        return [m["data"] for m in self.messages if m.get("channel") == channel]

    async def wait(self, what: str, check: Callable[[], Any]) -> Any:
        return await eventually(check, timeout=10, what=what)

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


@pytest.fixture
async def channels(http: aiohttp.ClientSession) -> AsyncIterator[Callable[[str], Any]]:
    opened: list[Channel] = []

    async def open_channel(base: str) -> Channel:
        channel = Channel(await http.ws_connect(f"{base}/hyperliquid/ws"))
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        await channel.close()


def limit_gtc(coin: str, is_buy: bool, sz: float, px: float, cloid: Cloid | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {
        "coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": "Gtc"}},
        "reduce_only": False,
    }  # fmt: skip
    if cloid is not None:
        order["cloid"] = cloid
    return order


def signed_body(
    wallet: LocalAccount, action: dict[str, Any], nonce: int, vault: str | None = None, mainnet: bool = False
) -> dict[str, Any]:
    """An /exchange body signed with the SDK's signing (as Exchange._post_action sends it)."""
    signature = sign_l1_action(wallet, action, vault, nonce, None, mainnet)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": vault, "expiresAfter": None}


def order_action(coin_asset: int, is_buy: bool, sz: float, px: float) -> dict[str, Any]:
    wire = order_request_to_order_wire(limit_gtc("BTC", is_buy, sz, px), coin_asset)
    return order_wires_to_order_action([wire])


async def test_sdk_exchange_and_info_when_trading_then_orders_rest_cancel_fill_and_stream(
    present, start_sim, http, channels, monotonic_nonces, sent_urls
):
    wall = FakeWall()
    bars = present["BTCUSDT"]
    sim, base = await start_sim(present, start_ms=bars.open_times[BARS_BEFORE_NOW], wall=wall, trading=accounts())
    url = f"{base}/hyperliquid"

    # The SDK's constructors fetch spotMeta and meta from base_url, and nothing else.
    exchange = await asyncio.to_thread(Exchange, AGENT, url, account_address=USER.address)
    info = await asyncio.to_thread(Info, url, True)
    assert sent_urls and all(u == f"{url}/info" for u in sent_urls)
    assert exchange.info.coin_to_asset == {"BTC": 0, "ETH": 1} and exchange.info.asset_to_sz_decimals[0] == 6

    feed = await channels(base)
    for kind in ("orderUpdates", "userFills", "userEvents"):
        await feed.ws.send_json({"method": "subscribe", "subscription": {"type": kind, "user": USER.address}})
    await feed.wait("the subscriptions", lambda: len(feed.on("subscriptionResponse")) == 3)
    assert await feed.wait("the fills snapshot", lambda: feed.on("userFills")) == [
        {"isSnapshot": True, "user": USER.address.lower(), "fills": []}
    ]

    price = float(bars.fields(BARS_BEFORE_NOW)[1])  # the bar in progress opened at this price
    mids = await asyncio.to_thread(info.all_mids)
    assert float(mids["BTC"]) == price

    # A GTC buy below the market rests; it is found by cloid, then canceled by cloid.
    cloid = Cloid.from_str("0x" + "ab" * 16)
    bid = float(int(price * 0.97))
    placed = await asyncio.to_thread(exchange.order, "BTC", True, 0.002, bid, {"limit": {"tif": "Gtc"}}, False, cloid)
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert placed == {
        "status": "ok",
        "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": oid, "cloid": cloid.to_raw()}}]}},
    }
    assert await asyncio.to_thread(info.open_orders, USER.address) == [
        {"coin": "BTC", "limitPx": num_f(bid), "oid": oid, "side": "B", "sz": "0.002", "timestamp": sim.clock.now_ms()}
    ]
    status = await asyncio.to_thread(info.query_order_by_cloid, USER.address, cloid)
    assert (status["status"], status["order"]["status"], status["order"]["order"]["cloid"]) == (
        "order", "open", cloid.to_raw())  # fmt: skip
    canceled = await asyncio.to_thread(exchange.cancel_by_cloid, "BTC", cloid)
    assert canceled == {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}
    again = await asyncio.to_thread(exchange.cancel, "BTC", oid)
    assert again["response"]["data"]["statuses"] == [
        {"error": "Order was never placed, already canceled, or filled. asset=0"}
    ]
    status = await asyncio.to_thread(info.query_order_by_oid, USER.address, oid)
    assert status["order"]["status"] == "canceled"

    # A market order (an aggressive IOC at the mid + 5%, as the SDK builds it) fills at the market.
    bought = await asyncio.to_thread(exchange.market_open, "BTC", True, 0.002)
    filled = bought["response"]["data"]["statuses"][0]["filled"]
    assert (filled["totalSz"], float(filled["avgPx"])) == ("0.002", price)
    state = await asyncio.to_thread(info.user_state, USER.address)
    position = state["assetPositions"][0]["position"]
    assert (position["coin"], position["szi"], float(position["entryPx"])) == ("BTC", "0.002", price)
    fee = 0.002 * price * 0.00045
    assert float(state["marginSummary"]["accountValue"]) == pytest.approx(10000 - fee, abs=1e-6)

    # A reduce-only sell above the market rests until a bar trades through it.
    ask = float(math.ceil(price + 5))
    later = next(i for i in range(BARS_BEFORE_NOW, len(bars)) if float(bars.fields(i)[2]) >= ask)
    order = limit_gtc("BTC", False, 0.002, ask) | {"reduce_only": True}
    rested = await asyncio.to_thread(exchange.bulk_orders, [order])
    sell_oid = rested["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert (await asyncio.to_thread(info.user_state, USER.address))["assetPositions"] != []
    wall.t = (bars.open_times[later] + MINUTE_MS - sim.clock.t0_ms) / 1000 + 1  # that bar has closed
    state = await asyncio.to_thread(info.user_state, USER.address)  # any request matches up to now
    assert state["assetPositions"] == []
    fills = await asyncio.to_thread(info.user_fills, USER.address)
    assert [(f["oid"], f["side"], f["dir"], f["crossed"], float(f["px"])) for f in fills] == [
        (sell_oid, "A", "Close Long", False, ask),
        (filled["oid"], "B", "Open Long", True, price),
    ]
    assert float(fills[0]["closedPnl"]) == pytest.approx(0.002 * (ask - price), abs=1e-6)
    assert fills[0]["time"] in (bars.open_times[later], bars.open_times[later] + MINUTE_MS)  # its open or close

    # Every change came over the user channels.
    def statuses() -> list[tuple[int, str]]:
        return [(u["order"]["oid"], u["status"]) for batch in feed.on("orderUpdates") for u in batch]

    await feed.wait("the sell's update", lambda: (sell_oid, "filled") in statuses())
    assert statuses() == [
        (oid, "open"), (oid, "canceled"), (filled["oid"], "filled"), (sell_oid, "open"), (sell_oid, "filled")
    ]  # fmt: skip
    streamed = await feed.wait("two fills", lambda: len(feed.on("userFills")) == 3 and feed.on("userFills"))
    assert [f["tid"] for batch in streamed[1:] for f in batch["fills"]] == [f["tid"] for f in reversed(fills)]
    assert [batch["fills"] for batch in feed.on("user")] == [batch["fills"] for batch in streamed[1:]]
    assert all("isSnapshot" not in batch for batch in streamed[1:])


def num_f(x: float) -> str:
    return num(Decimal(repr(x)))


async def test_sdk_when_vault_address_then_sub_account_trades_with_the_users_signature(
    present, start_sim, http, monotonic_nonces
):
    bars = present["BTCUSDT"]
    sim, base = await start_sim(present, start_ms=bars.open_times[BARS_BEFORE_NOW], wall=FakeWall(), trading=accounts())
    url = f"{base}/hyperliquid"
    for wallet in (USER, AGENT):  # the user itself, and the user's agent, sign for the sub-account
        exchange = await asyncio.to_thread(Exchange, wallet, url, vault_address=SUB)
        answer = await asyncio.to_thread(exchange.market_open, "ETH", True, 0.05)
        assert "filled" in answer["response"]["data"]["statuses"][0], answer
    info = await asyncio.to_thread(Info, url, True)
    sub_state, user_state = await asyncio.gather(
        asyncio.to_thread(info.user_state, SUB), asyncio.to_thread(info.user_state, USER.address)
    )
    assert [p["position"]["szi"] for p in sub_state["assetPositions"]] == ["0.1"]
    assert user_state["assetPositions"] == [] and user_state["marginSummary"]["accountValue"] == "10000.0"

    # Somebody else's sub-account is refused, naming it.
    exchange = await asyncio.to_thread(Exchange, USER, url, vault_address=OTHER_SUB)
    answer = await asyncio.to_thread(exchange.market_open, "ETH", True, 0.05)
    assert answer == {
        "status": "err",
        "response": f"Vault {OTHER_SUB} is not a sub-account or vault of {USER.address.lower()}.",
    }

    # Modify (the SDK's batchModify) moves a resting order: the old one is canceled, a new one rests.
    exchange = await asyncio.to_thread(Exchange, USER, url)
    price = float(bars.fields(BARS_BEFORE_NOW)[1])
    placed = await asyncio.to_thread(
        exchange.order, "BTC", True, 0.002, float(int(price * 0.9)), {"limit": {"tif": "Gtc"}}
    )
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    moved = await asyncio.to_thread(
        exchange.modify_order, oid, "BTC", True, 0.003, float(int(price * 0.95)), {"limit": {"tif": "Alo"}}
    )
    new_oid = moved["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert new_oid != oid
    opened = await asyncio.to_thread(info.open_orders, USER.address)
    assert [(o["oid"], o["sz"], o["limitPx"]) for o in opened] == [(new_oid, "0.003", num_f(float(int(price * 0.95))))]
    assert (await asyncio.to_thread(info.query_order_by_oid, USER.address, oid))["order"]["status"] == "canceled"
    gone = await asyncio.to_thread(
        exchange.modify_order, oid, "BTC", True, 0.003, float(int(price * 0.95)), {"limit": {"tif": "Gtc"}}
    )
    assert gone["response"]["data"]["statuses"] == [{"error": "Cannot modify canceled or filled order"}]


async def test_exchange_when_order_breaks_a_rule_then_hyperliquid_error_statuses(
    present, start_sim, http, monotonic_nonces
):
    bars = present["BTCUSDT"]
    _, base = await start_sim(present, start_ms=bars.open_times[BARS_BEFORE_NOW], wall=FakeWall(), trading=accounts())
    exchange = await asyncio.to_thread(Exchange, USER, f"{base}/hyperliquid")
    price = float(bars.fields(BARS_BEFORE_NOW)[1])
    gtc, alo = {"limit": {"tif": "Gtc"}}, {"limit": {"tif": "Alo"}}
    cases = [
        (("BTC", True, 0.0005, float(int(price * 0.99)), gtc), "Order must have minimum value of $10. asset=0"),
        (("BTC", True, 0.002, int(price * 0.99) + 0.5, gtc), "Price must be divisible by tick size. asset=0"),
        (("BTC", True, 0.0000021, float(int(price * 0.99)), gtc), "Order has invalid size. asset=0"),
        (("BTC", True, 30.0, float(int(price * 0.99)), gtc), "Insufficient margin to place order. asset=0"),
        (("BTC", False, 0.002, float(int(price * 1.01)), gtc), None),  # rests: it would open a short
        (("BTC", True, 0.002, float(int(price * 1.01)), alo), "Post only order would have immediately matched"),
        (("BTC", True, 0.002, float(int(price * 0.99)), {"limit": {"tif": "Ioc"}}),
         "Order could not immediately match against any resting orders. asset=0"),
    ]  # fmt: skip
    for args, error in cases:
        answer = await asyncio.to_thread(exchange.order, *args)
        status = answer["response"]["data"]["statuses"][0]
        if error is None:
            assert "resting" in status, (args, answer)
        else:
            assert status.get("error", "").startswith(error), (args, answer)
    reduce = await asyncio.to_thread(exchange.order, "BTC", True, 0.002, float(int(price * 0.99)), gtc, True)
    assert reduce["response"]["data"]["statuses"] == [{"error": "Reduce only order would increase position. asset=0"}]
    cloid = Cloid.from_int(7)
    first = await asyncio.to_thread(exchange.order, "BTC", True, 0.002, float(int(price * 0.9)), gtc, False, cloid)
    assert "resting" in first["response"]["data"]["statuses"][0]
    second = await asyncio.to_thread(exchange.order, "BTC", True, 0.002, float(int(price * 0.9)), gtc, False, cloid)
    assert second["response"]["data"]["statuses"] == [{"error": "Duplicate cloid. asset=0"}]


async def test_exchange_when_signature_nonce_or_signer_wrong_then_refused_and_requests_recoverable(
    present, start_sim, http, monotonic_nonces
):
    bars = present["BTCUSDT"]
    sim, base = await start_sim(present, start_ms=bars.open_times[BARS_BEFORE_NOW], wall=FakeWall(), trading=accounts())
    url = f"{base}/hyperliquid/exchange"
    now = sim.clock.now_ms()
    price = float(int(float(bars.fields(BARS_BEFORE_NOW)[1]) * 0.95))
    action = order_action(0, True, 0.002, price)

    body = signed_body(AGENT, action, now + 1)
    status, first = await post(http, url, body)
    assert status == 200 and "resting" in first["response"]["data"]["statuses"][0]
    assert await post(http, url, body) == (
        200,
        {"status": "err", "response": f"Invalid nonce: duplicate nonce {now + 1}"},
    )

    stale = now - 3 * 86_400_000
    too_low = f"Invalid nonce: nonce too low {stale} < {now - 2 * 86_400_000}"
    assert await post(http, url, signed_body(AGENT, action, stale)) == (200, {"status": "err", "response": too_low})
    ahead = now + 2 * 86_400_000
    assert await post(http, url, signed_body(AGENT, action, ahead)) == (
        200, {"status": "err", "response": f"Invalid nonce: nonce too high {ahead} > {now + 86_400_000}"})  # fmt: skip

    stranger = STRANGER.address.lower()
    assert await post(http, url, signed_body(STRANGER, action, now + 2)) == (
        200, {"status": "err", "response": f"User or API Wallet {stranger} does not exist."})  # fmt: skip
    # Signed for mainnet (phantom agent source "a") while the simulator is testnet: another signer.
    status, wrong_chain = await post(http, url, signed_body(AGENT, action, now + 3, mainnet=True))
    assert wrong_chain["status"] == "err" and AGENT.address.lower() not in wrong_chain["response"]
    assert wrong_chain["response"].startswith("User or API Wallet 0x")
    # The action changed after signing: the signature now recovers some other address.
    tampered = signed_body(AGENT, action, now + 4)
    tampered["action"]["orders"][0]["s"] = "0.003"
    status, answer = await post(http, url, tampered)
    assert answer["status"] == "err" and AGENT.address.lower() not in answer["response"]
    broken = signed_body(AGENT, action, now + 5) | {"signature": {"r": "0x0", "s": "0x0", "v": 27}}
    assert await post(http, url, broken) == (200, {"status": "err", "response": "Unable to recover signer."})
    # Bodies the venue cannot read are refused before any signature is looked at.
    status, text = await post(http, url, {**body, "action": {**action, "type": "twapOrder"}})
    assert status == 422 and text.startswith("Failed to deserialize the JSON body into the target type")

    # An agent approved at run time (the SDK's approveAgent, signed by the user) may then trade.
    exchange = await asyncio.to_thread(Exchange, USER, f"{base}/hyperliquid")
    approved, agent_key = await asyncio.to_thread(exchange.approve_agent, "bot")
    assert approved == {"status": "ok", "response": {"type": "default"}}
    agent = eth_account.Account.from_key(agent_key)
    status, answer = await post(http, url, signed_body(agent, action, now + 6))
    assert "resting" in answer["response"]["data"]["statuses"][0]
    agents_exchange = await asyncio.to_thread(Exchange, AGENT, f"{base}/hyperliquid")
    approved_by_agent = await asyncio.to_thread(agents_exchange.approve_agent)
    must_deposit = f"Must deposit before performing actions. User: {AGENT.address.lower()}"
    assert approved_by_agent[0] == {"status": "err", "response": must_deposit}

    # From outside: every /exchange request as received; each order's signer is recovered again.
    async with http.get(f"{base}/_sim/requests") as resp:
        log = await resp.json()
    recovered = []
    for entry in log:
        if entry["path"] != "/hyperliquid/exchange":
            continue
        sent = json.loads(entry["body"])
        if sent["action"].get("type") != "order" or sent["signature"]["r"] == "0x0":
            continue
        signer = recover_agent_or_user_from_l1_action(
            sent["action"], sent["signature"], sent["vaultAddress"], sent["nonce"], sent["expiresAfter"], False
        )
        recovered.append(signer.lower())
    assert recovered[:3] == [AGENT.address.lower()] * 3
    assert STRANGER.address.lower() in recovered and agent.address.lower() in recovered
    assert any(dict(entry["headers"]).get("Content-Type") == "application/json" for entry in log)


async def test_sdk_websocket_when_subscribed_to_user_channels_then_callbacks_get_orders_and_fills(
    present, start_sim, http, monotonic_nonces
):
    bars = present["BTCUSDT"]
    _, base = await start_sim(present, start_ms=bars.open_times[BARS_BEFORE_NOW], wall=FakeWall(), trading=accounts())
    url = f"{base}/hyperliquid"
    info = await asyncio.to_thread(Info, url, False)  # with the SDK's own WebSocket manager (a thread)
    got: dict[str, list[Any]] = {"orderUpdates": [], "userFills": [], "user": []}
    lock = threading.Lock()

    def keep(message: Any) -> None:
        with lock:
            got[message["channel"]].append(message["data"])

    try:
        for kind in ("orderUpdates", "userFills", "userEvents"):
            info.subscribe({"type": kind, "user": USER.address}, keep)
        await eventually(lambda: got["userFills"], what="the fills snapshot")
        exchange = await asyncio.to_thread(Exchange, AGENT, url, account_address=USER.address)
        answer = await asyncio.to_thread(exchange.market_open, "BTC", True, 0.002)
        oid = answer["response"]["data"]["statuses"][0]["filled"]["oid"]
        await eventually(lambda: got["user"] and len(got["userFills"]) == 2, what="the fill on the user channels")
    finally:
        await asyncio.to_thread(info.disconnect_websocket)
    with lock:
        assert got["userFills"][0] == {"isSnapshot": True, "user": USER.address.lower(), "fills": []}
        assert [(u["order"]["oid"], u["status"]) for batch in got["orderUpdates"] for u in batch] == [(oid, "filled")]
        assert [f["oid"] for f in got["userFills"][1]["fills"]] == [oid]
        assert got["user"] == [{"fills": got["userFills"][1]["fills"]}]
