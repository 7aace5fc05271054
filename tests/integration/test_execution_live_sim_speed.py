"""The venue gateway keeps a simulator's time at a speed other than 1 (real nats-server with
ticktape's authorization, execution in-process), per venue: the simulator runs from its
recorded bars (2018) at --speed 30, thirty simulated seconds per wall second. The gateway learns
its time and pace (GET /fapi/v1/time and GET /_sim/clock), so an order placed long after the
gateway measured the clock is still stamped within Binance's recvWindow (which bounds wall-clock
delay: venuesim.rest_binance_trading), and the venue times the gateway puts on its events (an
order's acceptance) agree with the venue's own (the fill's trade time). Measured with the wall
clock's pace instead, the clock falls 29 s behind per wall second: Binance refuses the late
order (-1021) and the acceptance is stamped minutes before its fill. The session replays byte
for byte."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import aiohttp
import eth_account
import pytest

from services.execution.loading import from_raw
from services.execution.service import serve
from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import BINANCE, HYPERLIQUID, Venue
from tests.support.live_venue import (
    admin_js,
    approval,
    bar_event,
    config,
    credentials_in_env,
    events_of,
    execution_common,
    publish,
    reconciled,
    records,
    sim_accounts,
    verify,
)
from ticktape.clock import NS_PER_MS
from ticktape.events import VenueFill, VenueOrderAccepted, VenueOrderRejected
from ticktape.testing import eventually
from ticktape.testing.services import running_service

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(150)

# Hyperliquid nonces are drawn per signer for the whole process (exchanges.trading.clients.
# hyperliquid.SHARED_NONCES), and other tests sign at simulators on today's clock: this one's
# agent wallet is its own, so its nonces follow the 2018 clock of this simulator.
AGENT_KEY = "0x" + "64" * 32
AGENT_ENV = "TT_LIVE_TEST_HL_SPEED_AGENT_KEY"
ACCOUNTS = sim_accounts(eth_account.Account.from_key(AGENT_KEY).address)
SPEED_HL = Venue(
    HYPERLIQUID.name, {**HYPERLIQUID.account, "wallet_key_env": AGENT_ENV}, HYPERLIQUID.symbol, (AGENT_KEY,)
)
VENUES = pytest.mark.parametrize("venue", [BINANCE, SPEED_HL], ids=["binance_usdm", "hyperliquid"])
SPEED = 30.0
LATER_MS = 6 * 60_000  # simulated time between the two orders (12 wall seconds)
AGREE_MS = 60_000  # an acceptance's venue time within a simulated minute (2 wall s) of its fill's


async def sim_now_ms(base: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_sim/clock") as resp:
        return int((await resp.json())["now_ms"])


async def trade(nats_auth: Any, base: str, btc: Any, venue: Venue, side: str, qty: float, name: str) -> None:
    """An approval at the price of the bar in progress at the simulator now."""
    i = bisect_right(btc.open_times, await sim_now_ms(base)) - 1
    bar = bar_event(btc, max(i - 1, 0), venue.name, venue.symbol)
    price = float(btc.fields(i)[1])
    await publish(nats_auth, "risk", [approval(bar, venue.account["name"], side, qty, price, name)])


@VENUES
async def test_the_gateway_keeps_the_simulators_time_at_speed_30(
    venue: Venue,
    series: Any,
    start_sim: Any,
    nats_auth: Any,
    admin_js: Any,
    credentials_in_env: None,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(AGENT_ENV, AGENT_KEY)
    sim, base = await start_sim(series, speed=SPEED, trading=ACCOUNTS, heartbeat=None)
    btc, name = series["BTCUSDT"], venue.account["name"]
    raw = config(venue.account)
    common = execution_common(base, nats_auth, tmp_path)

    async def fills(n: int) -> list[VenueFill] | None:
        found = await events_of(admin_js, VenueFill, name)
        return found if len(found) >= n else None

    async with running_service("execution", serve, from_raw(raw), common):
        await reconciled(admin_js, name)
        await trade(nats_auth, base, btc, venue, "buy", 0.004, "speed-first")
        [first] = await eventually(lambda: fills(1), timeout=30, what="the first order filled")
        later = first.ts_event // NS_PER_MS + LATER_MS

        async def moved_on() -> bool:
            return await sim_now_ms(base) >= later

        await eventually(moved_on, timeout=60, what="the simulator's clock six minutes on")
        await trade(nats_auth, base, btc, venue, "sell", 0.002, "speed-later")
        await eventually(
            lambda: _answered(admin_js, name, 2), timeout=30, what="the later order answered"
        )  # fmt: skip
        assert await events_of(admin_js, VenueOrderRejected, name) == []  # stamped within recvWindow
        _, second = await eventually(lambda: fills(2), timeout=30, what="the later order filled")

    assert second.ts_event - first.ts_event >= LATER_MS * NS_PER_MS  # the venue's times: its clock ran on
    accepted = {a.venue_order_id: a for a in await events_of(admin_js, VenueOrderAccepted, name)}
    for fill in (first, second):
        gap_ms = abs(accepted[fill.venue_order_id].ts_event - fill.ts_event) // NS_PER_MS
        assert gap_ms <= AGREE_MS, (fill.fill_id, gap_ms)  # the gateway's venue time is the venue's
    verify(raw, await records(admin_js))


async def _answered(js: Any, account: str, n: int) -> bool:
    answers = await events_of(js, VenueOrderAccepted, account) + await events_of(js, VenueOrderRejected, account)
    return len(answers) >= n
