"""Periodic reconciliation against the venue simulator (real nats-server with ticktape's
authorization): with `execution.live.reconcile_every_s: 2`, the gateway queries the venue again
after the start snapshot (VenueSnapshot reason "periodic") and the execution core reconciles each
(AccountReconciled reason "periodic"). A difference made by hand at the venue between two passes
(an order placed there directly, outside ticktape) is found by the next periodic pass, published
as a ReconciliationDifference and resolved by the account's policy (default: cancel at the venue).
`replay --verify` (ticktape.replay.verify.Verifier) re-runs the core over the recorded snapshots
byte for byte."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nats.js import JetStreamContext

from exchanges.trading.model import OrderIntent
from services.execution.loading import from_raw
from services.execution.service import serve
from tests.integration.test_execution_reconcile_venuesim import by_hand_binance, verify_blocked
from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import binance
from tests.support.live_venue import (
    BINANCE_LIVE,
    NOW_BAR,
    admin_js,
    config,
    credentials_in_env,
    events_of,
    execution_common,
    live_sim,
    records,
    sim_requests,
)
from ticktape.events import (
    AccountReconciled,
    ReconciliationDifference,
    VenueCancelRequested,
    VenueOrderCanceled,
    VenueSnapshot,
)
from ticktape.testing import eventually
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.services import running_service

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(120)

EVERY_S = 2.0


async def test_a_periodic_pass_finds_an_order_placed_at_the_venue_by_hand_and_cancels_it(
    series: Any,
    start_sim: Any,
    nats_auth: AuthorizedNats,
    admin_js: JetStreamContext,
    credentials_in_env: None,
    tmp_path: Path,
) -> None:
    sim, base, moved = await live_sim(series, start_sim)
    price = float(moved["BTCUSDT"].fields(NOW_BAR)[1])
    raw = {**config(BINANCE_LIVE), "execution": {"live": {"reconcile_every_s": EVERY_S}}}
    assert from_raw(raw).live.reconcile_every_s == EVERY_S

    async def passes(reason: str, n: int) -> list[AccountReconciled] | None:
        done = [r for r in await events_of(admin_js, AccountReconciled, "alpha") if r.reason == reason]
        return done if len(done) >= n else None

    async with running_service("execution", serve, from_raw(raw), execution_common(base, nats_auth, tmp_path)):
        [start] = await eventually(lambda: passes("start", 1), timeout=60, what="reconciled on start")
        assert start.differences == 0
        # a second snapshot, and its reconciliation, after start: the periodic pass runs, finding nothing
        [first, *_] = await eventually(lambda: passes("periodic", 1), timeout=30, what="a periodic pass")
        assert first.differences == 0
        assert await events_of(admin_js, ReconciliationDifference, "alpha") == []

        # between two passes, an order placed at the venue directly (the log never sees it)
        far = Decimal(str(round(price * 0.5, 1)))
        hand = await by_hand_binance(base, OrderIntent(event_id="by-hand-periodic", symbol="BTCUSDT", side="buy",
                                                       quantity=Decimal("0.01"), price=far))  # fmt: skip
        assert hand.status == "open"
        [diff] = await eventually(
            lambda: events_of(admin_js, ReconciliationDifference, "alpha"), timeout=30, what="the difference found"
        )
        assert (diff.kind, diff.resolution, diff.venue_order_id, diff.side) == (
            "unknown_open_order", "cancel", str(hand.venue_order_id), "buy")  # fmt: skip
        assert diff.venue_quantity == pytest.approx(0.01)
        snapshots = {s.event_id: s for s in await events_of(admin_js, VenueSnapshot, "alpha")}
        found_in = snapshots[diff.snapshot_id]
        assert found_in.reason == "periodic"
        assert [o.venue_order_id for o in found_in.open_orders] == [str(hand.venue_order_id)]

        async def resolved() -> AccountReconciled | None:
            for r in await events_of(admin_js, AccountReconciled, "alpha"):
                if r.snapshot_id == diff.snapshot_id:
                    return r
            return None

        done = await eventually(resolved, timeout=30, what="the periodic pass's AccountReconciled")
        assert (done.reason, done.differences) == ("periodic", 1)
        [request] = await events_of(admin_js, VenueCancelRequested, "alpha")
        assert request.venue_order_id == str(hand.venue_order_id) and request.reason

        async def canceled_at_venue() -> bool:
            async with aiohttp.ClientSession() as http:
                return await binance(base, http).open_orders() == []

        await eventually(canceled_at_venue, timeout=30, what="the by-hand order canceled at the venue")
        [gone] = await eventually(
            lambda: events_of(admin_js, VenueOrderCanceled, "alpha"), timeout=30, what="the cancel in the log"
        )
        assert gone.venue_order_id == str(hand.venue_order_id)

        # a later pass agrees with the venue again: no new difference
        so_far = len(await passes("periodic", 0) or [])
        [*_, clean] = await eventually(lambda: passes("periodic", so_far + 1), timeout=30,
                                       what="a periodic pass after the cancel")  # fmt: skip
        assert clean.differences == 0
    assert len(await events_of(admin_js, ReconciliationDifference, "alpha")) == 1
    deletes = [r for r in await sim_requests(base) if r["method"] == "DELETE"]
    assert len(deletes) == 1  # canceled once, by the periodic pass's resolution
    verify_blocked(raw, await records(admin_js))
