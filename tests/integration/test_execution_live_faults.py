"""The execution gateway against the venue simulator's trading faults (venuesim.trading_faults),
per venue (Binance USDT-M, a Hyperliquid sub-account), with a real nats-server with ticktape's
authorization and the execution service in-process, as in test_execution_live_venuesim:

- an order the venue accepted whose answer never comes (the request times out) is asked for by
  client order id and never placed twice;
- a user stream that drops and, on reconnecting, is sent the fills again gives no duplicate fill;
- out-of-order reports (fills before the acknowledgement; on Binance an expiry before the fill that
  preceded it) end in the right order state, equal to the venue's;
- a 429 storm is waited out as Retry-After says, with no order lost or duplicated.

Each session then replays byte for byte (what `ticktape replay --verify` runs). "Once at the
venue" is read from the simulator's own matching engine: the orders it holds with the client id."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import BINANCE, HYPERLIQUID, Run, Venue, executing, trading_faults
from tests.support.live_venue import (
    admin_js,
    config,
    credentials_in_env,
    events_of,
    live_sim,
    reconciled,
    records,
    sim_requests,
    verify,
)
from ticktape.events import (
    AccountReconciled,
    OrderCanceled,
    OrderFilled,
    ReconciliationDifference,
    VenueFill,
    VenueOrderAccepted,
    VenueOrderCanceled,
)
from ticktape.events.codec import decode
from ticktape.testing import eventually

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(150)

VENUES = pytest.mark.parametrize("venue", [BINANCE, HYPERLIQUID], ids=["binance_usdm", "hyperliquid"])
# Quick to time out, and Binance's recvWindow short, so a lost answer is settled in seconds.
FAST = {"request_timeout_s": 1.0, "recv_window_ms": 1000, "fill_wait_s": 2.0}


def session(venue: Venue, **live: Any) -> dict[str, Any]:
    return {**config(venue.account), "execution": {"live": {**FAST, **live}}}


@contextlib.asynccontextmanager
async def trading(
    venue: Venue, series: Any, start_sim: Any, nats_auth: Any, js: Any, tmp_path: Any, **live: Any
) -> AsyncIterator[Run]:
    """The venue's live account trading on a fresh simulator under execution (live settings FAST
    and `live`), reconciled, the bars before the one in progress published."""
    sim, base, moved = await live_sim(series, start_sim)
    async with executing(Run(venue, sim, base, moved, js, session(venue, **live)), nats_auth, tmp_path) as run:
        yield run


@VENUES
async def test_an_order_accepted_then_timed_out_is_asked_for_by_client_id_and_placed_once(
    venue, series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    async with trading(venue, series, start_sim, nats_auth, admin_js, tmp_path) as run:
        # the venue takes the order and fills it, and its answer never comes: the request times out
        await trading_faults(run.base, timeout_after_accept=1, hang_s=4)
        await run.order(nats_auth, "buy", 0.002, "timed-out")
        await run.position(0.002, "the timed-out order's fill")
        [accepted] = await eventually(lambda: events_of(admin_js, VenueOrderAccepted, run.name), timeout=30,
                                      what="the order found at the venue")  # fmt: skip

    assert (await trading_faults(run.base))["counts"]["timed_out"] == 1
    [order] = await run.submitted()
    cid = venue.client_id(order.order_id)
    assert accepted.recovered and accepted.client_order_id == cid
    assert len(await venue.placements(run.base, cid)) == 1  # sent once: no second placement
    assert await venue.lookups(run.base, cid)  # asked for by its client id
    await run.once_each()
    verify(run.raw, await records(admin_js))


@VENUES
async def test_a_user_stream_drop_that_replays_fills_gives_no_duplicate_fill(
    venue, series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    async with trading(venue, series, start_sim, nats_auth, admin_js, tmp_path) as run:
        await trading_faults(run.base, replay_fills=10)
        await run.order(nats_auth, "buy", 0.004, "before-drop")
        await run.position(0.004, "the first fill")
        async with aiohttp.ClientSession() as http, http.post(f"{run.base}/_sim/fault", json={"drop_now": True}) as r:
            assert r.status == 200

        async def replayed() -> bool:
            return bool((await trading_faults(run.base))["counts"]["replayed"])

        await eventually(replayed, timeout=30, what="the reconnected user stream sent the fills again")
        await run.order(nats_auth, "sell", 0.002, "after-drop")
        await run.position(0.002, "the fill after the reconnect")

    assert len(await events_of(admin_js, VenueFill, run.name)) == 2  # the replayed fill stored once
    await run.once_each()
    verify(run.raw, await records(admin_js))


@VENUES
async def test_out_of_order_reports_end_in_the_venues_order_state(
    venue, series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    """The user stream's reports of each venue step come in reverse order and each placement's
    answer 0.6 s after them (within the 1 s request timeout). First order: filled in full, its
    fill before the answer (on Hyperliquid naming only the venue's order id, which only the
    answer ties to the order). Second: half filled and the rest expired (on Binance the expiry
    reported before the fill it followed). Each ends as the venue has it, and the gateway
    counts every order settled (a periodic reconciliation waits for a moment when none is in
    flight, and finds no difference)."""
    async with trading(venue, series, start_sim, nats_auth, admin_js, tmp_path, reconcile_every_s=2.0) as run:
        await trading_faults(run.base, reorder=True, answer_delay_s=0.6)
        await run.order(nats_auth, "buy", 0.002, "fill-first")
        await run.position(0.002, "the fill reported before its answer")
        await trading_faults(run.base, partial_fill=0.5)
        await run.order(nats_auth, "buy", 0.004, "expiry-first")
        await run.position(0.004, "the half that filled")

        async def answered() -> bool:
            return len(await events_of(admin_js, VenueOrderAccepted, run.name)) == 2

        await eventually(answered, timeout=30, what="both answers")
        before = len(await events_of(admin_js, AccountReconciled, run.name))
        await reconciled(admin_js, run.name, before + 1)  # compared with the venue after both

    counts = (await trading_faults(run.base))["counts"]
    assert counts["reordered"] >= 2 and counts["delayed"] == 2
    full, half = await run.submitted()
    log = await log_of(admin_js, run.name)
    for o in (full, half):
        [ack] = [e for e in log if isinstance(e, VenueOrderAccepted) and e.order_id == o.order_id]
        mine = [type(e).__name__ for e in log if getattr(e, "venue_order_id", None) == ack.venue_order_id]
        assert mine.index("VenueFill") < mine.index("VenueOrderAccepted"), mine  # the fill came first
    filled = {f.order_id: f.quantity for f in await events_of(admin_js, OrderFilled, run.name)}
    assert filled == {full.order_id: pytest.approx(0.002), half.order_id: pytest.approx(0.002)}
    canceled = [c.order_id for c in await events_of(admin_js, OrderCanceled, run.name)]
    [venue_end] = await events_of(admin_js, VenueOrderCanceled, run.name)
    assert venue_end.reason == "expired" and canceled == [half.order_id]  # the rest expired; closed once
    if venue.name == "binance_usdm":  # the user stream's expiry came before the fill it followed
        mine = [type(e).__name__ for e in log if getattr(e, "venue_order_id", None) == venue_end.venue_order_id]
        assert mine.index("VenueOrderCanceled") < mine.index("VenueFill"), mine
    assert await events_of(admin_js, ReconciliationDifference, run.name) == []  # the log equals the venue
    await run.once_each()
    verify(run.raw, await records(admin_js))


@VENUES
async def test_a_429_storm_is_backed_off_as_retry_after_says_and_no_order_is_lost_or_doubled(
    venue, series, start_sim, nats_auth, admin_js, credentials_in_env, tmp_path
):
    async with trading(venue, series, start_sim, nats_auth, admin_js, tmp_path) as run:
        seen = len(await sim_requests(run.base))
        await trading_faults(run.base, throttle=4, retry_after=1)
        await run.order(nats_auth, "buy", 0.002, "storm-1")
        await run.order(nats_auth, "buy", 0.002, "storm-2")
        await run.position(0.004, "both orders filled through the storm")

    assert (await trading_faults(run.base))["counts"]["throttled"] == 4
    placing = [r for r in (await sim_requests(run.base))[seen:] if _placing(r["path"])]
    # the four refused requests, each followed by the next only after Retry-After (1 s)
    times = [r["time"] for r in placing[:5]]
    assert all(b - a >= 0.95 for a, b in zip(times, times[1:], strict=False)), times
    await run.once_each()
    assert len(await events_of(admin_js, VenueOrderAccepted, run.name)) == 2
    verify(run.raw, await records(admin_js))


def _placing(path: str) -> bool:
    return path.startswith("/binance_usdm/fapi/v1/order") or path.startswith("/hyperliquid/exchange")


async def log_of(js: Any, account: str) -> list[Any]:
    """The account's events in log order."""
    return [e for e in (decode(r.data) for r in await records(js)) if getattr(e, "account", None) == account]
