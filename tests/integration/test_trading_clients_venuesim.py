"""Both execution clients against the real venue simulator (libs/venuesim, in-process on a free
loopback port) over real converted 1m bars (OctoBot): the simulator checks every Binance HMAC and
recovers every Hyperliquid signer itself, matches the orders against the recorded bars, and keeps
the account; here the clients place, find, cancel and modify orders, read positions, accounts and
fills, and re-placing an order event is shown to find the first order instead of making another.
Afterwards every signed request is checked again from outside over GET /_sim/requests: each
Binance signature recomputed with the secret, each Hyperliquid signer recovered with the official
SDK, and no request holds the secret or the key.

The clients read the simulator's clock (its frozen FakeWall), so Binance's timestamps and
Hyperliquid's nonces fall in the venue's windows without moving the bars to the present."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import aiohttp
import eth_account
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.client_ids import binance_client_order_id, hyperliquid_cloid
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from exchanges.trading.clients.hyperliquid import HyperliquidClient, Nonces
from exchanges.trading.hyperliquid_sign import HyperliquidSigner
from exchanges.trading.model import CancelAck, OrderAck, OrderIntent, OrderRejected
from tests.integration.test_venue_sim import FakeWall, http, series, start_sim
from venuesim.trading_config import parse

__all__ = ["http", "series", "start_sim"]  # fixtures used here

KEY, SECRET = "clientKeyAlpha0123456789", "clientSecretAlpha0123456789"
USER = eth_account.Account.from_key("0x" + "51" * 32)
AGENT_KEY = "0x" + "52" * 32
AGENT = eth_account.Account.from_key(AGENT_KEY)
SUB = eth_account.Account.from_key("0x" + "53" * 32).address.lower()
ACCOUNTS = parse({
    "binance_usdm": [{"name": "alpha", "api_key": KEY, "secret": SECRET, "balance": "10000"}],
    "hyperliquid": {"chain": "testnet", "accounts": [
        {"address": USER.address, "balance": "10000", "agents": [AGENT.address]},
        {"address": SUB, "balance": "2000", "master": USER.address},
    ]},
})  # fmt: skip
NOW_BAR = 5  # the simulator's clock stands in this bar


async def sim_requests(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with http.get(f"{base}/_sim/requests") as resp:
        entries: list[dict[str, Any]] = await resp.json()
        return entries


async def test_binance_client_on_the_simulator_places_once_cancels_and_reads_the_account(series, start_sim, http):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[NOW_BAR], wall=FakeWall(), trading=ACCOUNTS)
    client = BinanceUsdmClient(http, BinanceCredentials(KEY, SECRET), base_url=f"{base}/binance_usdm",
                               clock_ms=sim.clock.now_ms)  # fmt: skip
    rules = await client.load_rules()
    assert set(rules) == {"BTCUSDT", "ETHUSDT"} and rules["BTCUSDT"].min_notional == Decimal(5)
    price = Decimal(bars.fields(NOW_BAR)[1])  # the bar in progress opened here
    bid = OrderIntent(event_id="bid-evt", symbol="BTCUSDT", side="buy", quantity=Decimal("0.002"),
                      price=price * Decimal("0.97"))  # fmt: skip
    cid = binance_client_order_id("bid-evt")

    placed = await client.place(bid)
    assert isinstance(placed, OrderAck) and (placed.status, placed.client_order_id, placed.recovered) == (
        "open", cid, False)  # fmt: skip
    again = await client.place(bid)  # the same order event once more (a redelivery, a restart)
    assert isinstance(again, OrderAck) and (again.venue_order_id, again.recovered) == (placed.venue_order_id, True)
    assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == [cid]
    state = await client.order("BTCUSDT", client_order_id=cid)
    assert state is not None and state.price == rules["BTCUSDT"].round_price(price * Decimal("0.97"), "BUY")

    assert await client.cancel("BTCUSDT", client_order_id=cid) == CancelAck(
        venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid, venue_order_id=placed.venue_order_id
    )
    assert await client.open_orders() == []

    bought = await client.place(OrderIntent(event_id="buy-evt", symbol="BTCUSDT", side="buy", order_type="market",
                                            quantity=Decimal("0.01"), reference_price=price))  # fmt: skip
    assert isinstance(bought, OrderAck)
    assert (bought.status, bought.filled_quantity, bought.average_price) == ("filled", Decimal("0.01"), price)
    [position] = await client.positions()
    assert (position.symbol, position.quantity, position.entry_price) == ("BTCUSDT", Decimal("0.01"), price)
    account = await client.account()
    fee = Decimal("0.01") * price * Decimal("0.0005")  # taker, VIP 0
    assert account.wallet_balance == Decimal(10000) - fee and [p.symbol for p in account.positions] == ["BTCUSDT"]

    too_much = await client.place(OrderIntent(event_id="big-evt", symbol="BTCUSDT", side="buy", order_type="market",
                                              quantity=Decimal(100), reference_price=price))  # fmt: skip
    assert isinstance(too_much, OrderRejected) and (too_much.reason, too_much.code) == ("insufficient_margin", -2019)

    key = await client.listen_key_create()
    await client.listen_key_keepalive()
    assert await client.listen_key_create() == key  # the active key, as Binance answers
    await client.listen_key_close()

    # From outside: every signed request's HMAC, recomputed with the secret; no request holds it.
    signed = 0
    for entry in await sim_requests(http, base):
        assert SECRET not in json.dumps(entry)
        total, sep, signature = entry["path"].partition("?")[2].rpartition("&signature=")
        if sep:
            signed += 1
            assert signature == hmac.new(SECRET.encode(), total.encode(), hashlib.sha256).hexdigest()
            assert dict(entry["headers"])["X-MBX-APIKEY"] == KEY
    assert signed == 11  # 4 placements, the lookup after -4116, 1 query, 1 cancel, 2 openOrders, positions, account


async def test_hyperliquid_client_on_the_simulator_places_once_modifies_and_trades_a_sub_account(
    series, start_sim, http
):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[NOW_BAR], wall=FakeWall(), trading=ACCOUNTS)
    nonces = Nonces()  # the agent signs for the user and for the sub-account: one nonce sequence
    client = HyperliquidClient(http, HyperliquidSigner.from_key(AGENT_KEY, account_address=USER.address),
                               base_url=f"{base}/hyperliquid", clock_ms=sim.clock.now_ms, nonces=nonces)  # fmt: skip
    assets = await client.load_assets()
    assert (assets["BTC"].asset, assets["ETH"].asset) == (0, 1)
    price = Decimal(bars.fields(NOW_BAR)[1])
    bid = OrderIntent(event_id="bid-evt", symbol="BTC", side="buy", quantity=Decimal("0.002"),
                      price=price * Decimal("0.97"))  # fmt: skip
    cloid = hyperliquid_cloid("bid-evt")

    placed = await client.place(bid)
    assert isinstance(placed, OrderAck) and (placed.status, placed.client_order_id) == ("open", cloid)
    again = await client.place(bid)  # "Duplicate cloid": the first order is found, not another made
    assert isinstance(again, OrderAck) and (again.venue_order_id, again.recovered) == (placed.venue_order_id, True)
    [resting] = await client.open_orders()
    assert resting.venue_order_id == placed.venue_order_id

    lower = OrderIntent(event_id="move-evt", symbol="BTC", side="buy", quantity=Decimal("0.003"),
                        price=price * Decimal("0.95"))  # fmt: skip
    moved = await client.modify(cloid, lower)
    assert isinstance(moved, OrderAck) and moved.status == "open" and moved.venue_order_id != placed.venue_order_id
    replaced = await client.order_status(cloid)
    assert replaced is not None and replaced.status == "canceled"
    assert await client.cancel_by_cloid("BTC", hyperliquid_cloid("move-evt")) == CancelAck(
        venue="hyperliquid", symbol="BTC", client_order_id=hyperliquid_cloid("move-evt"), venue_order_id=None
    )
    assert await client.open_orders() == []

    bought = await client.place(OrderIntent(event_id="buy-evt", symbol="BTC", side="buy", order_type="market",
                                            quantity=Decimal("0.002"), reference_price=price))  # fmt: skip
    assert isinstance(bought, OrderAck)
    assert (bought.status, bought.filled_quantity, bought.average_price) == ("filled", Decimal("0.002"), price)
    account = await client.account()
    assert [(p.symbol, p.quantity, p.entry_price) for p in account.positions] == [("BTC", Decimal("0.002"), price)]
    [fill] = await client.fills()
    assert (fill.venue_order_id, fill.price, fill.quantity, fill.maker) == (bought.venue_order_id, price,
                                                                            Decimal("0.002"), False)  # fmt: skip

    sub = HyperliquidClient(
        http, HyperliquidSigner.from_key(AGENT_KEY, account_address=USER.address, vault_address=SUB),
        base_url=f"{base}/hyperliquid", clock_ms=sim.clock.now_ms, nonces=nonces, assets=assets,
    )  # fmt: skip
    eth = Decimal(series["ETHUSDT"].fields(NOW_BAR)[1])
    sold = await sub.place(OrderIntent(event_id="sub-evt", symbol="ETH", side="sell", order_type="market",
                                       quantity=Decimal("0.05"), reference_price=eth))  # fmt: skip
    assert isinstance(sold, OrderAck) and sold.status == "filled"
    assert [(p.symbol, p.quantity) for p in (await sub.account()).positions] == [("ETH", Decimal("-0.05"))]
    assert [p.symbol for p in (await client.account()).positions] == ["BTC"]  # the user's own account: unchanged

    # From outside: every /exchange request's signer, recovered with the official SDK, is the agent.
    recovered = []
    for entry in await sim_requests(http, base):
        if entry["path"] != "/hyperliquid/exchange":
            continue
        assert AGENT_KEY[2:] not in entry["body"]
        sent = json.loads(entry["body"])
        recovered.append(recover_agent_or_user_from_l1_action(
            sent["action"], sent["signature"], sent["vaultAddress"], sent["nonce"], sent["expiresAfter"], False
        ).lower())  # fmt: skip
    assert recovered == [AGENT.address.lower()] * 6  # 2 placements, modify, cancel, market, sub-account
