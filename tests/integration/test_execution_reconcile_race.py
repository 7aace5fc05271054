"""Reconciliation racing the user stream, against the venue simulator (real nats-server with
ticktape's authorization, execution in-process), per venue: the simulator answers every query of
the account's state (venuesim.trading_faults query_delay_s) seconds after it read the account, and
an order is placed and filled right after a periodic snapshot read the positions. Its answer and
fill are in the log before the snapshot, which does not reflect them: the race. With the account
set to adopt positions and balances, a comparison of that snapshot with the log would adopt the
stale position (and the next snapshot adopt the real one back). The gateway's snapshot names the
last venue report it had read back before asking (last_report_id); the core leaves the position
and the balance to the next snapshot, which agrees: no difference at all, the position the
venue's, and the session replays byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import BINANCE, HYPERLIQUID, Run, Venue, executing, trading_faults
from tests.support.live_venue import (
    admin_js,
    config,
    credentials_in_env,
    events_of,
    live_sim,
    records,
    sim_requests,
    verify,
)
from ticktape.events import AccountReconciled, ReconciliationDifference, VenueFill, VenueSnapshot
from ticktape.events.codec import decode
from ticktape.testing import eventually

__all__ = ["admin_js", "credentials_in_env", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(150)

VENUES = pytest.mark.parametrize("venue", [BINANCE, HYPERLIQUID], ids=["binance_usdm", "hyperliquid"])
QUERY_DELAY_S = 4.0  # how stale each answer about the account is; the order is through in well under
ADOPT = {"unknown_orders": "cancel", "positions": "adopt", "balances": "adopt"}


def _positions_query(entry: dict[str, Any]) -> bool:
    """A request that reads the account's positions: Binance's positionRisk, Hyperliquid's
    clearinghouseState."""
    if entry["path"].startswith("/binance_usdm/fapi/v2/positionRisk"):
        return True
    if entry["path"] != "/hyperliquid/info":
        return False
    return json.loads(entry["body"] or "{}").get("type") == "clearinghouseState"


async def _positions_queries(base: str) -> int:
    return sum(_positions_query(e) for e in await sim_requests(base))


@VENUES
async def test_a_fill_reported_while_the_venue_is_asked_is_left_to_the_next_snapshot(
    venue: Venue, series: Any, start_sim: Any, nats_auth: Any, admin_js: Any, credentials_in_env: None, tmp_path: Any
) -> None:
    sim, base, moved = await live_sim(series, start_sim)
    live = {"request_timeout_s": 3 * QUERY_DELAY_S, "reconcile_every_s": 1.0}
    raw = {**config({**venue.account, "reconcile": ADOPT}), "execution": {"live": live}}
    async with executing(Run(venue, sim, base, moved, admin_js, raw), nats_auth, tmp_path) as run:
        await trading_faults(base, query_delay_s=QUERY_DELAY_S)
        asked = await _positions_queries(base)
        # a periodic snapshot has read the positions and its answer is held back: trade now
        await eventually(lambda: _more(base, asked), timeout=30, what="a snapshot reading the positions")
        await run.order(nats_auth, "buy", 0.002, "during-snapshot")
        await run.position(0.002, "the order filled while the snapshot was being answered")

        async def stale_snapshot() -> VenueSnapshot | None:
            """The first snapshot stored after the fill, once it is there."""
            log = [decode(r.data) for r in await records(admin_js)]
            kinds = [(type(e), getattr(e, "account", None)) for e in log]
            if (VenueFill, run.name) not in kinds:
                return None
            after = log[kinds.index((VenueFill, run.name)) :]
            return next((e for e in after if isinstance(e, VenueSnapshot) and e.account == run.name), None)

        stale = await eventually(stale_snapshot, timeout=45, what="the snapshot stored after the fill")
        assert stale.positions == ()  # the race: asked before the fill, stored after it
        assert stale.last_report_id is not None

        async def pass_of(snapshot_id: str) -> AccountReconciled | None:
            found = [r for r in await events_of(admin_js, AccountReconciled, run.name) if r.snapshot_id == snapshot_id]
            return found[0] if found else None

        first = await eventually(lambda: pass_of(stale.event_id), timeout=30, what="its reconciliation")
        assert first.differences == 0 and isinstance(first.deferred, int) and first.deferred >= 1

        async def agreeing() -> AccountReconciled | None:
            """A later snapshot that holds the position, reconciled."""
            for snap in await events_of(admin_js, VenueSnapshot, run.name):
                if [p.quantity for p in snap.positions] == [pytest.approx(0.002)]:
                    return await pass_of(snap.event_id)
            return None

        later = await eventually(agreeing, timeout=60, what="a snapshot that reflects the fill")
        assert later.differences == 0
        await trading_faults(base, query_delay_s=0)

    assert await events_of(admin_js, ReconciliationDifference, run.name) == []  # nothing adopted, twice or once
    await run.once_each()  # one order, one fill, the log's position the venue's
    verify(raw, await records(admin_js))


async def _more(base: str, than: int) -> bool:
    return await _positions_queries(base) > than
