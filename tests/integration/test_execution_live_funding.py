"""Funding on a live account comes from its venue, per venue: the simulator (with recorded
Hyperliquid rates) books each settlement on the open positions and reports it (Hyperliquid's
userFundings channel; Binance's ACCOUNT_UPDATE FUNDING_FEE, then GET /fapi/v1/income for the
records); the execution gateway publishes it as VenueFunding, the core adds it to the position's and the account's
funding, and the wallet the log implies stays equal to the venue's (a periodic reconciliation
finds no difference). The session replays byte for byte.

The simulator's clock starts 45 s before a settlement (Hyperliquid settles every hour, Binance
every 8 hours), its bars moved there; the gateway signs on the venue's clock as it measures it, as against any venue."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.test_funding_venuesim import CASSETTE
from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import BINANCE, HYPERLIQUID, Run, executing
from tests.support.live_venue import (
    NOW_BAR,
    SIM_ACCOUNTS,
    admin_js,
    config,
    credentials_in_env,
    events_of,
    records,
    verify,
)
from ticktape.events import AccountReconciled, AccountUpdated, PositionUpdated, ReconciliationDifference, VenueFunding
from ticktape.testing import eventually
from venuesim.bars import align
from venuesim.funding import BINANCE_INTERVAL_MS, HYPERLIQUID_INTERVAL_MS, load_rates

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(150)

BEFORE_SETTLEMENT_MS = 45_000


@pytest.mark.parametrize(
    ("venue", "interval_ms"),
    [(BINANCE, BINANCE_INTERVAL_MS), (HYPERLIQUID, HYPERLIQUID_INTERVAL_MS)],
    ids=["binance_usdm", "hyperliquid"],
)
async def test_funding_reaches_the_live_position_and_account_from_the_venue(
    series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path, venue, interval_ms
):
    settle_ms = (time.time_ns() // 1_000_000 // interval_ms + 1) * interval_ms
    start_ms = settle_ms - BEFORE_SETTLEMENT_MS
    moved = align(series, earliest=start_ms - start_ms % 60_000 - NOW_BAR * 60_000)
    rates = load_rates(CASSETTE)
    sim, base = await start_sim(
        moved, start_ms=start_ms, speed=1.0, trading=SIM_ACCOUNTS, heartbeat=None, funding=rates
    )
    btc = moved["BTCUSDT"]
    raw: dict[str, Any] = {**config(venue.account), "execution": {"live": {"reconcile_every_s": 2.0}}}
    name = venue.account["name"]

    async with executing(Run(venue, sim, base, moved, admin_js, raw), nats_auth, tmp_path) as run:
        await run.order(nats_auth, "sell", 0.003, "short")

        async def short() -> bool:
            found = await events_of(admin_js, PositionUpdated, name)
            return bool(found) and found[-1].quantity == pytest.approx(-0.003)

        await eventually(short, timeout=30, what="the short filled before the settlement")
        assert sim.clock.now_ms() < settle_ms, "the order came too late to be held at the settlement"
        [paid] = await eventually(lambda: events_of(admin_js, VenueFunding, name), timeout=60,
                                  what="the settlement booked by the venue")  # fmt: skip

        async def compared_after() -> bool:  # a periodic reconciliation after the funding
            done = await events_of(admin_js, AccountReconciled, name)
            return bool(done) and done[-1].ts_init > paid.ts_init

        await eventually(compared_after, timeout=30, what="a reconciliation after the funding")

    # what the venue booked: -size x mark x rate, the rate recorded for that hour
    rate = Decimal(rates.rate_at(settle_ms, interval_ms).rate)
    assert btc.open_times[NOW_BAR + 1] == settle_ms
    mark = Decimal(btc.fields(NOW_BAR + 1)[1])  # the price served at the settlement: that bar's open
    assert paid.funding_time == settle_ms * 1_000_000
    if venue.name == "hyperliquid":  # Binance's income record names neither the position nor the rate
        assert paid.quantity == pytest.approx(-0.003) and paid.rate == pytest.approx(float(rate))
    assert paid.amount == pytest.approx(float(Decimal("0.003") * mark * rate), abs=1e-6)
    [position] = [p for p in await events_of(admin_js, PositionUpdated, name) if p.causation_id == paid.event_id]
    assert (position.quantity, position.funding) == (pytest.approx(-0.003), pytest.approx(paid.amount))
    [account] = [a for a in await events_of(admin_js, AccountUpdated, name) if a.causation_id == paid.event_id]
    assert account.funding == pytest.approx(paid.amount)
    # the log's wallet (with the funding) is the venue's: no balance difference at reconciliation
    assert await events_of(admin_js, ReconciliationDifference, name) == []
    assert len(await events_of(admin_js, VenueFunding, name)) == 1
    verify(raw, await records(admin_js))
