"""Reconciliation on start against the venue simulator (real nats-server with ticktape's
authorization): before execution starts, the account's venue holds something the event log does
not (an order left open by hand, a position opened by hand). The gateway's start snapshot
(VenueSnapshot) shows it, the execution core publishes each difference with the resolution of the
account's `reconcile` policy and, unless one was only alerted, AccountReconciled; until then the
account's approvals are canceled "not_reconciled" and nothing reaches the venue. A clean account
reconciles and trades. `replay --verify` (ticktape.replay.verify.Verifier) re-runs the core over
the recorded snapshots and answers byte for byte."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchanges.trading.model import OrderAck, OrderIntent
from services.execution.loading import from_raw
from services.execution.service import serve
from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import binance, hyperliquid
from tests.support.live_venue import (
    BINANCE_LIVE,
    HL_LIVE,
    NOW_BAR,
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
)
from tests.support.live_venue import verify as verify_replay
from ticktape.events import (
    AccountReconciled,
    OrderCanceled,
    OrderFilled,
    PositionUpdated,
    ReconciliationDifference,
    VenueCancelRequested,
    VenueOrderCanceled,
    VenueSnapshot,
)
from ticktape.replay.records import Record
from ticktape.testing import eventually
from ticktape.testing.services import running_service

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(120)


async def by_hand_binance(base: str, intent: OrderIntent) -> OrderAck:
    """An order placed at the simulated venue by hand (not through ticktape): the log never sees it."""
    async with aiohttp.ClientSession() as http:
        client = binance(base, http)
        await client.load_rules()
        ack = await client.place(intent)
    assert isinstance(ack, OrderAck), ack
    return ack


def verify_reconciliation(raw: dict[str, Any], recs: list[Record]) -> None:
    """replay --verify over the session: the core re-run over its recorded inputs (the snapshots
    included) gives the recorded outputs byte for byte (the helper also wants fills and positions)."""
    verify_replay(raw, recs)


async def test_an_order_left_open_by_hand_is_canceled_on_start_then_the_account_trades(
    series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    price = float(btc.fields(NOW_BAR)[1])
    far = Decimal(str(round(price * 0.5, 1)))
    hand = await by_hand_binance(base, OrderIntent(event_id="by-hand-1", symbol="BTCUSDT", side="buy",
                                                   quantity=Decimal("0.01"), price=far))  # fmt: skip
    assert hand.status == "open"
    raw = config(BINANCE_LIVE)  # reconcile: default policy, unknown_orders cancel
    bars = [bar_event(btc, i, "binance_usdm", "BTCUSDT") for i in range(NOW_BAR - 2, NOW_BAR)]
    async with running_service("execution", serve, from_raw(raw), execution_common(base, nats_auth, tmp_path)):
        [done] = await reconciled(admin_js, "alpha")
        [diff] = await events_of(admin_js, ReconciliationDifference, "alpha")
        assert (diff.kind, diff.resolution, diff.venue_order_id, diff.side) == (
            "unknown_open_order", "cancel", str(hand.venue_order_id), "buy")  # fmt: skip
        assert diff.venue_quantity == pytest.approx(0.01) and done.differences == 1
        [request] = await events_of(admin_js, VenueCancelRequested, "alpha")
        assert request.venue_order_id == str(hand.venue_order_id)

        async def canceled_at_venue() -> bool:
            async with aiohttp.ClientSession() as http:
                return await binance(base, http).open_orders() == []

        await eventually(canceled_at_venue, timeout=30, what="the order left open canceled at the venue")
        [gone] = await eventually(
            lambda: events_of(admin_js, VenueOrderCanceled, "alpha"), timeout=30, what="the cancel in the log"
        )
        assert gone.venue_order_id == str(hand.venue_order_id) and gone.reason == "canceled"

        await publish(nats_auth, "market_data", bars)
        await publish(nats_auth, "risk", [approval(bars[-1], "alpha", "buy", 0.01, price, "after-reconcile")])
        [filled] = await eventually(
            lambda: events_of(admin_js, OrderFilled, "alpha"), timeout=30, what="the account trades once reconciled"
        )
        assert filled.mode == "live" and filled.quantity == pytest.approx(0.01)
    [snapshot, *_] = await events_of(admin_js, VenueSnapshot, "alpha")
    assert snapshot.reason == "start" and [o.venue_order_id for o in snapshot.open_orders] == [diff.venue_order_id]
    verify_reconciliation(raw, await records(admin_js))


async def test_an_order_left_open_by_hand_is_adopted_by_policy(
    series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    sim, base, moved = await live_sim(series, start_sim)
    price = float(moved["BTCUSDT"].fields(NOW_BAR)[1])
    far = Decimal(str(round(price * 0.5, 1)))
    hand = await by_hand_binance(base, OrderIntent(event_id="by-hand-2", symbol="BTCUSDT", side="buy",
                                                   quantity=Decimal("0.02"), price=far))  # fmt: skip
    raw = config({**BINANCE_LIVE, "reconcile": {"unknown_orders": "adopt"}})
    async with running_service("execution", serve, from_raw(raw), execution_common(base, nats_auth, tmp_path)):
        [done] = await reconciled(admin_js, "alpha")
    [diff] = await events_of(admin_js, ReconciliationDifference, "alpha")
    assert (diff.kind, diff.resolution, diff.venue_order_id) == (
        "unknown_open_order", "adopt", str(hand.venue_order_id))  # fmt: skip
    assert diff.order_id and done.differences == 1
    assert await events_of(admin_js, VenueCancelRequested) == []
    async with aiohttp.ClientSession() as http:
        [still] = await binance(base, http).open_orders()
    assert still.venue_order_id == hand.venue_order_id  # adopted: left at the venue, in the core's book
    assert not any(r["method"] == "DELETE" for r in await sim_requests(base))


async def test_a_position_opened_by_hand_is_adopted_and_then_closed_through_ticktape(
    series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    price = float(btc.fields(NOW_BAR)[1])
    market = OrderIntent(event_id="by-hand-3", symbol="BTCUSDT", side="buy", order_type="market",
                         quantity=Decimal("0.01"), reference_price=Decimal(repr(price)))  # fmt: skip
    await by_hand_binance(base, market)
    async with aiohttp.ClientSession() as http:
        [held] = await binance(base, http).positions()
    raw = config({**BINANCE_LIVE, "reconcile": {"positions": "adopt"}})
    bars = [bar_event(btc, i, "binance_usdm", "BTCUSDT") for i in range(NOW_BAR - 2, NOW_BAR)]
    async with running_service("execution", serve, from_raw(raw), execution_common(base, nats_auth, tmp_path)):
        [done] = await reconciled(admin_js, "alpha")
        diffs = {d.kind: d for d in await events_of(admin_js, ReconciliationDifference, "alpha")}
        position = diffs["position_mismatch"]
        assert (position.resolution, position.log_quantity, position.venue_quantity) == ("adopt", 0.0, 0.01)
        assert position.venue_price == pytest.approx(float(held.entry_price))
        assert diffs["balance_mismatch"].resolution == "adopt"  # the by-hand order's fee
        assert done.differences == 2
        [adopted] = await events_of(admin_js, PositionUpdated, "alpha")
        assert adopted.quantity == pytest.approx(0.01)
        await publish(nats_auth, "market_data", bars)
        await publish(nats_auth, "risk", [approval(bars[-1], "alpha", "sell", 0.01, price, "close-adopted")])

        async def flat() -> list[PositionUpdated] | None:
            found = await events_of(admin_js, PositionUpdated, "alpha")
            return found if found[-1].quantity == pytest.approx(0.0, abs=1e-12) else None

        await eventually(flat, timeout=30, what="the adopted position closed by a live order")
    async with aiohttp.ClientSession() as http:
        assert await binance(base, http).positions() == []
    verify_reconciliation(raw, await records(admin_js))


async def test_a_position_opened_by_hand_is_alerted_and_the_account_stays_blocked(
    series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    """A Hyperliquid sub-account with a short nobody in the log opened; policy positions: alert."""
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    price = float(btc.fields(NOW_BAR)[1])
    async with aiohttp.ClientSession() as http:
        client = hyperliquid(base, http)
        await client.load_assets()
        short = OrderIntent(event_id="by-hand-hl", symbol="BTC", side="sell", order_type="market",
                            quantity=Decimal("0.002"), reference_price=Decimal(repr(price)))  # fmt: skip
        ack = await client.place(short)
        assert isinstance(ack, OrderAck) and ack.status == "filled"
    raw = config(HL_LIVE)  # default policy: positions alert
    bars = [bar_event(btc, i, "hyperliquid", "BTC") for i in range(NOW_BAR - 2, NOW_BAR)]
    async with running_service("execution", serve, from_raw(raw), execution_common(base, nats_auth, tmp_path)):
        [snapshot] = await eventually(
            lambda: events_of(admin_js, VenueSnapshot, "hl-sub"), timeout=60, what="the start snapshot"
        )
        assert [(p.symbol, p.quantity) for p in snapshot.positions] == [("BTC", pytest.approx(-0.002))]

        async def differences() -> list[ReconciliationDifference] | None:
            found = await events_of(admin_js, ReconciliationDifference, "hl-sub")
            return found if any(d.kind == "position_mismatch" for d in found) else None

        found = await eventually(differences, timeout=30, what="the position difference")
        [position] = [d for d in found if d.kind == "position_mismatch"]
        assert (position.resolution, position.venue_quantity) == ("alert", pytest.approx(-0.002))
        await publish(nats_auth, "market_data", bars)
        await publish(nats_auth, "risk", [approval(bars[-1], "hl-sub", "buy", 0.002, price, "blocked")])
        [canceled] = await eventually(
            lambda: events_of(admin_js, OrderCanceled, "hl-sub"), timeout=30, what="the approval canceled"
        )
        assert canceled.reason == "not_reconciled"
    assert await events_of(admin_js, AccountReconciled, "hl-sub") == []
    placed = [r for r in await sim_requests(base) if r["path"] == "/hyperliquid/exchange"]
    assert len(placed) == 1  # the by-hand order only: nothing was sent for the blocked account
    verify_blocked(raw, await records(admin_js))


def verify_blocked(raw: dict[str, Any], recs: list[Record]) -> None:
    """replay --verify of a session without fills: every recorded output of execution re-made."""
    verify_replay(raw, recs, families=("accounts", "orders"))
