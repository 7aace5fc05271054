"""The symbol registry keeps each venue's universe within market data's share of the venue's
per-IP budget (venues.<venue>): over it, the best-ranked symbols that fit are published, stored,
and reported with a UniverseTrimmed on symbols.trimmed.<venue>. Real nats-server, PostgreSQL and
the venue simulator (real OctoBot bars: ADA, BTC and ETH)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from aiohttp import web

from services.symbol_registry import store
from services.symbol_registry.config import SymbolRegistryConfig, VenueUniverseConfig
from services.symbol_registry.service import serve
from ticktape.config import IpBudgetShares, IpLimitOverrides, VenueSettings, VenuesSettings
from ticktape.events import UniverseTrimmed, UniverseUpdated
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.data import shared_data
from ticktape.testing.services import common_settings, running_service
from ticktape.venues import HYPERLIQUID
from venuesim.bars import load_dir
from venuesim.convert import convert_path
from venuesim.server import VenueSim

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def sim_url(tmp_path: Path):
    convert_path(shared_data("octobot"), tmp_path)
    runner = VenueSim(load_dir(tmp_path)).runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_top_n_over_market_datas_budget_publishes_what_fits_and_the_trimmed_event(
    sim_url: str, nats_url: str, pg_dsn: str
) -> None:
    shares = IpBudgetShares(market_data=0.9, symbol_registry=0.1, execution=0.0)
    limits = IpLimitOverrides(subscriptions_per_ip=3)  # x 0.9 = 2 for market data; 3 symbols need 3
    venues = VenuesSettings(hyperliquid=VenueSettings(ip_budget=shares, limits=limits))
    common = common_settings(nats_url, pg_dsn, venue_sim=sim_url, venues=venues)
    config = SymbolRegistryConfig(venues=(VenueUniverseConfig(venue=HYPERLIQUID, top_n=3),))
    async with running_service("symbol_registry", serve, config, common) as rt:

        async def published():
            events = await stream_events(rt.js, rt.common.nats.stream, ["symbols.>"])
            return events if any(isinstance(e, UniverseTrimmed) for e in events) else None

        events = await eventually(published, what="a trimmed universe")
    (universe,) = [e for e in events if isinstance(e, UniverseUpdated)]
    (trimmed,) = [e for e in events if isinstance(e, UniverseTrimmed)]
    assert len(universe.symbols) == 2 and universe.top_n == 2
    assert trimmed.kept == universe.symbols and len(trimmed.wanted) == 3
    assert trimmed.wanted[:2] == universe.symbols and trimmed.dropped == trimmed.wanted[2:]
    assert (trimmed.service, trimmed.limit, trimmed.limit_value) == ("symbol_registry", "subscriptions_per_ip", 2)
    assert trimmed.causation_id == universe.event_id
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        stored = await store.current_universe(conn, HYPERLIQUID)
        assert tuple(m.symbol for m in stored) == universe.symbols
