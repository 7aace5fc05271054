"""Live execution end to end against the venue simulator (libs/venuesim, in-process on a free port)
and a real nats-server with ticktape's authorization: the execution service (core and venue
gateway, each publishing with execution's own credential) trades a live account at the simulated
venue while a paper account beside it paper-trades.

Approvals are published with risk's credential as risk publishes them. The simulator serves real
converted 1m bars (OctoBot) moved onto the present minute, its clock running at the wall clock's
pace from now, so the gateway signs with the wall clock exactly as against a real venue. Shown:
orders are signed and accepted (every Binance HMAC recomputed, every Hyperliquid signer recovered
with the official SDK, from GET /_sim/requests), fills arrive over the user stream and become
VenueFill events then OrderFilled/PositionUpdated/AccountUpdated, the positions and the wallet
equal the simulator's account, the paper account's orders never reach the venue, no credential
is in any event or log line, and re-running the execution core over the recorded stream
(ticktape.replay.verify.Verifier, what `ticktape replay --verify` runs) gives the recorded
outputs byte for byte."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp
import pytest
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action
from nats.js import JetStreamContext

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from services.execution.loading import from_raw
from services.execution.service import serve
from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import binance, hyperliquid
from tests.support.live_venue import (
    AGENT,
    AGENT_KEY,
    BINANCE_LIVE,
    HL_LIVE,
    KEY,
    NOW_BAR,
    PAPER,
    SECRET,
    SIM_ACCOUNTS,
    SUB,
    admin_js,
    approval,
    bar_event,
    config,
    credentials_in_env,
    events_of,
    execution_common,
    live_sim,
    publish,
    reconciled,
    records,
    sim_requests,
    verify,
)
from ticktape.clock import NS_PER_MS
from ticktape.events import (
    AccountUpdated,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    VenueFill,
    VenueOrderAccepted,
)
from ticktape.replay.records import Record
from ticktape.testing import eventually
from ticktape.testing.services import running_service

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(120)


def no_secret_anywhere(recs: list[Record], captured: str, *secrets: str) -> None:
    for rec in recs:
        blob = rec.data + json.dumps(rec.headers).encode() + rec.subject.encode()
        assert not any(s.encode() in blob for s in secrets), rec.subject
    assert not any(s in captured for s in secrets), "a credential in the service's output"


async def test_binance_live_account_trades_at_the_simulator_and_replays_byte_for_byte(
    series, start_sim, nats_auth, admin_js, credentials_in_env, capfd, tmp_path
):
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    raw = config(BINANCE_LIVE, PAPER)
    common = execution_common(base, nats_auth, tmp_path)
    bars = [bar_event(btc, i, "binance_usdm", "BTCUSDT") for i in range(NOW_BAR - 2, NOW_BAR)]
    price = float(btc.fields(NOW_BAR)[1])  # the open of the bar in progress: what a market order fills at

    async with running_service("execution", serve, from_raw(raw), common):
        await reconciled(admin_js, "alpha")
        await publish(nats_auth, "market_data", bars)
        await publish(nats_auth, "risk", [
            approval(bars[-1], "alpha", "buy", 0.01, price, "buy"),
            approval(bars[-1], "paper-main", "buy", 0.01, price, "paper-buy"),
        ])  # fmt: skip

        async def live_fills(n: int) -> list[OrderFilled] | None:
            found = [f for f in await events_of(admin_js, OrderFilled, "alpha") if f.mode == "live"]
            return found if len(found) >= n else None

        await eventually(lambda: live_fills(1), timeout=30, what="the live buy filled over the user stream")
        await publish(nats_auth, "risk", [approval(bars[-1], "alpha", "sell", 0.004, price, "sell")])
        await eventually(lambda: live_fills(2), timeout=30, what="the live sell filled")
        await publish(nats_auth, "market_data", [bar_event(btc, NOW_BAR, "binance_usdm", "BTCUSDT")])
        await eventually(lambda: events_of(admin_js, OrderFilled, "paper-main"), timeout=30, what="the paper fill")

        async def settled() -> list[PositionUpdated] | None:
            found = await events_of(admin_js, PositionUpdated, "alpha")
            return found if found and found[-1].quantity == pytest.approx(0.006) else None

        [*_, position] = await eventually(settled, timeout=30, what="the live position at 0.006")

    # the simulator's account, read with the venue's own API, is what the events say
    async with aiohttp.ClientSession() as http:
        client = binance(base, http)
        [venue_position] = await client.positions()
        venue_account = await client.account()
    assert (venue_position.symbol, float(venue_position.quantity)) == ("BTCUSDT", pytest.approx(position.quantity))
    assert float(venue_position.entry_price) == pytest.approx(position.avg_price, rel=1e-9)
    [*_, account] = await events_of(admin_js, AccountUpdated, "alpha")
    wallet = account.initial_equity + account.realized_pnl - account.fees_paid
    assert float(venue_account.wallet_balance) == pytest.approx(wallet, abs=1e-6)

    fills = await events_of(admin_js, VenueFill, "alpha")
    accepted = await events_of(admin_js, VenueOrderAccepted, "alpha")
    submitted = [o for o in await events_of(admin_js, OrderSubmitted) if o.mode == "live"]
    assert len(fills) == 2 and len(accepted) == 2 and len(submitted) == 2
    assert {a.client_order_id for a in accepted} == {o.client_order_id for o in submitted}
    live_fills_ = {f.order_id: f for f in await events_of(admin_js, OrderFilled, "alpha")}
    for f in fills:
        [order] = [o for o in submitted if o.client_order_id == f.client_order_id]
        assert (live_fills_[order.order_id].price, live_fills_[order.order_id].fee) == (f.price, f.fee)

    # every order request signed right, only the live account's orders sent, each once
    requests = await sim_requests(base)
    orders = [r for r in requests if r["method"] == "POST" and r["path"].split("?")[0].endswith("/fapi/v1/order")]
    sent_ids = [dict(p.split("=", 1) for p in r["path"].split("?")[1].split("&"))["newClientOrderId"] for r in orders]
    assert sorted(sent_ids) == sorted(o.client_order_id for o in submitted)
    paper_orders = [o for o in await events_of(admin_js, OrderSubmitted) if o.account == "paper-main"]
    assert paper_orders and all(o.order_id not in json.dumps(requests) for o in paper_orders)
    for entry in requests:
        assert SECRET not in json.dumps(entry)
        total, sep, signature = entry["path"].partition("?")[2].rpartition("&signature=")
        if sep:
            assert signature == hmac.new(SECRET.encode(), total.encode(), hashlib.sha256).hexdigest()

    recs = await records(admin_js)
    no_secret_anywhere(recs, "".join(capfd.readouterr()), KEY, SECRET)
    verify(raw, recs)


async def test_hyperliquid_sub_account_trades_at_the_simulator_and_replays_byte_for_byte(
    series, start_sim, nats_auth, admin_js, credentials_in_env, capfd, tmp_path
):
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    raw = config(HL_LIVE)
    common = execution_common(base, nats_auth, tmp_path)
    bars = [bar_event(btc, i, "hyperliquid", "BTC") for i in range(NOW_BAR - 2, NOW_BAR)]
    price = float(btc.fields(NOW_BAR)[1])

    async with running_service("execution", serve, from_raw(raw), common):
        await reconciled(admin_js, "hl-sub")
        await publish(nats_auth, "market_data", bars)
        await publish(nats_auth, "risk", [approval(bars[-1], "hl-sub", "sell", 0.003, price, "hl-sell")])

        async def filled() -> list[PositionUpdated] | None:
            found = await events_of(admin_js, PositionUpdated, "hl-sub")
            return found if found and found[-1].quantity == pytest.approx(-0.003) else None

        await eventually(filled, timeout=30, what="the short filled over the user stream")
        # the venue drops the user stream; on reconnect its userFills snapshot sends the fill again:
        # the same id, stored once (JetStream's duplicate window), applied once
        async with aiohttp.ClientSession() as http, http.post(f"{base}/_sim/fault", json={"drop_now": True}) as r:
            assert r.status == 200
        await eventually(lambda: _upgrades(base, 2), timeout=30, what="the user stream connected again")
        await publish(nats_auth, "risk", [approval(bars[-1], "hl-sub", "buy", 0.002, price, "hl-buy")])

        async def reduced() -> list[PositionUpdated] | None:
            found = await events_of(admin_js, PositionUpdated, "hl-sub")
            return found if found and found[-1].quantity == pytest.approx(-0.001) else None

        [*_, position] = await eventually(reduced, timeout=30, what="the buy-back filled after the reconnect")
        await publish(nats_auth, "market_data", [bar_event(btc, NOW_BAR, "hyperliquid", "BTC")])
        await eventually(
            lambda: _marked(admin_js, bars[-1].close_time), timeout=30, what="the position marked to the next bar"
        )

    async with aiohttp.ClientSession() as http:
        state = await hyperliquid(base, http).account()
    [venue_position] = state.positions
    assert (venue_position.symbol, float(venue_position.quantity)) == ("BTC", pytest.approx(position.quantity))
    assert float(venue_position.entry_price) == pytest.approx(position.avg_price, rel=1e-9)

    fills = await events_of(admin_js, VenueFill, "hl-sub")
    orders = [o for o in await events_of(admin_js, OrderSubmitted) if o.account == "hl-sub"]
    assert [f.client_order_id for f in fills] == [o.client_order_id for o in orders]  # one fill each, no repeat
    assert [(f.side, f.quantity, f.liquidity, f.fee_asset) for f in fills] == [
        ("sell", 0.003, "taker", "USDC"), ("buy", 0.002, "taker", "USDC")]  # fmt: skip
    assert len(await events_of(admin_js, OrderFilled, "hl-sub")) == 2
    recovered = []
    for entry in await sim_requests(base):
        if entry["path"] != "/hyperliquid/exchange":
            continue
        assert AGENT_KEY[2:] not in entry["body"]
        sent = json.loads(entry["body"])
        assert sent["vaultAddress"] == SUB
        recovered.append(recover_agent_or_user_from_l1_action(
            sent["action"], sent["signature"], sent["vaultAddress"], sent["nonce"], sent["expiresAfter"], False
        ).lower())  # fmt: skip
    assert recovered == [AGENT.address.lower()] * 2

    recs = await records(admin_js)
    no_secret_anywhere(recs, "".join(capfd.readouterr()), AGENT_KEY, AGENT_KEY[2:])
    verify(raw, recs)


async def _upgrades(base: str, n: int) -> bool:
    return sum(r["path"] == "/hyperliquid/ws" for r in await sim_requests(base)) >= n


async def _marked(js: JetStreamContext, after_ns: int) -> bool:
    return any(p.ts_event > after_ns for p in await events_of(js, PositionUpdated, "hl-sub"))


async def test_paper_accounts_never_send_a_request_to_the_venue(series, start_sim, nats_auth, admin_js, tmp_path):
    """Paper accounts (one at a venue with live endpoints configured, one at every venue) trade
    with the venue URLs pointed at the simulator, whose request log records every request it gets:
    none arrives, not even a listenKey or a rules query."""
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    at_binance = {"name": "paper-binance", "venue": "binance_usdm", "network": "mainnet", "strategies": ["*"]}
    raw = {"accounts": [at_binance, PAPER]}
    common = execution_common(base, nats_auth, tmp_path)
    bars = [bar_event(btc, i, "binance_usdm", "BTCUSDT") for i in range(NOW_BAR - 1, NOW_BAR + 1)]
    async with running_service("execution", serve, from_raw(raw), common):
        await publish(nats_auth, "market_data", bars[:1])
        await publish(nats_auth, "risk", [
            approval(bars[0], "paper-binance", "buy", 0.01, bars[0].close, "pb"),
            approval(bars[0], "paper-main", "sell", 0.01, bars[0].close, "pm"),
        ])  # fmt: skip
        await publish(nats_auth, "market_data", bars[1:])

        async def both_filled() -> bool:
            return {f.account for f in await events_of(admin_js, OrderFilled)} == {"paper-binance", "paper-main"}

        await eventually(both_filled, timeout=30, what="both paper orders filled")
    orders = await events_of(admin_js, OrderSubmitted)
    assert len(orders) == 2 and all(o.mode == "paper" for o in orders)
    assert await sim_requests(base) == []
    async with aiohttp.ClientSession() as http, http.get(f"{base}/binance_usdm/fapi/v1/time") as resp:
        assert resp.status == 200
    assert [r["path"] for r in await sim_requests(base)] == ["/binance_usdm/fapi/v1/time"]  # the recorder records


async def test_orders_are_signed_on_the_venues_clock_when_it_is_not_this_hosts(
    series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    """The simulator as `ticktape venue-sim` runs it (at --speed 1): its clock runs from its recorded
    bars (2018), not the wall clock. The gateway measures the venue's clock (GET /fapi/v1/time), so
    Binance's timestamps fall within its recvWindow and the order is accepted and filled."""
    sim, base = await start_sim(series, speed=1.0, trading=SIM_ACCOUNTS, heartbeat=None)
    btc = series["BTCUSDT"]
    common = execution_common(base, nats_auth, tmp_path)
    bar = bar_event(btc, 0, "binance_usdm", "BTCUSDT")
    async with running_service("execution", serve, from_raw(config(BINANCE_LIVE)), common):
        await reconciled(admin_js, "alpha")
        await publish(nats_auth, "risk", [approval(bar, "alpha", "buy", 0.01, bar.open, "old-clock")])
        [fill] = await eventually(
            lambda: events_of(admin_js, VenueFill, "alpha"), timeout=30, what="the order filled at the venue"
        )
    assert abs(fill.ts_event - btc[0].open_time * NS_PER_MS) < 600 * 10**9  # the venue's time: its bars', not now
    assert time.time_ns() - fill.ts_event > 365 * 86_400 * 10**9
    async with aiohttp.ClientSession() as http:
        [held] = await BinanceUsdmClient(
            http, BinanceCredentials(KEY, SECRET), base_url=f"{base}/binance_usdm", clock_ms=sim.clock.now_ms
        ).positions()
    assert float(held.quantity) == 0.01 == fill.quantity
