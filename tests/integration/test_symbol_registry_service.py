"""The symbol-registry service in-process on a real nats-server and PostgreSQL, against the venue
simulator (in-process, free port, real OctoBot 1m bars): one universe per venue is published and
stored, and a venue whose endpoint fails is retried without holding up the others."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from services.symbol_registry import store
from services.symbol_registry.config import SymbolRegistryConfig, VenueUniverseConfig
from services.symbol_registry.service import serve
from ticktape import ids, subjects
from ticktape.clock import NS_PER_MS
from ticktape.events import UniverseUpdated
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.data import shared_data
from ticktape.testing.services import common_settings, running_service
from ticktape.venues import ALL, BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID
from venuesim.bars import BarSeries, load_dir
from venuesim.convert import convert_path
from venuesim.server import VenueSim

TOP_N = 2  # of ADAUSDT, BTCUSDT and ETHUSDT: the ranking has to leave ADA out
EXPECTED = {BINANCE_USDM: ("BTCUSDT", "ETHUSDT"), BINANCE_SPOT: ("BTCUSDT", "ETHUSDT"), HYPERLIQUID: ("BTC", "ETH")}
CONFIG = SymbolRegistryConfig(venues=tuple(VenueUniverseConfig(venue=v, top_n=TOP_N) for v in ALL))

Fault = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BarSeries]:
    """ADAUSDT, BTCUSDT and ETHUSDT: every OctoBot capture, converted to Binance's CSV layout."""
    out: Path = tmp_path_factory.mktemp("bars")
    convert_path(shared_data("octobot"), out)
    return load_dir(out)


class Sim:
    """The simulator on a free port with switchable faults: path prefix -> replacement handler."""

    def __init__(self, bars: dict[str, BarSeries]) -> None:
        self.faults: dict[str, Fault] = {}
        self.sim = VenueSim(bars)  # clock not started: tickers cover each symbol's first 24h of bars
        self.sim.app.middlewares.append(self._faulty)
        self.url = ""

    @web.middleware
    async def _faulty(self, request: web.Request, handler: Fault) -> web.StreamResponse:
        for prefix, fault in self.faults.items():
            if request.path.startswith(prefix):
                return await fault(request)
        return await handler(request)


@pytest.fixture
async def sim(bars: dict[str, BarSeries]) -> AsyncIterator[Sim]:
    sim = Sim(bars)
    runner = sim.sim.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sim.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield sim
    await runner.cleanup()


async def unavailable(request: web.Request) -> web.Response:
    return web.Response(status=503, text="maintenance")


async def garbage(request: web.Request) -> web.Response:
    return web.json_response({"universe": "not a list"})


async def universes(rt: Any) -> dict[str, list[UniverseUpdated]]:
    events = await stream_events(rt.js, rt.common.nats.stream, [subjects.ALL_UNIVERSES])
    out: dict[str, list[UniverseUpdated]] = {}
    for event in events:
        assert isinstance(event, UniverseUpdated)
        out.setdefault(event.venue, []).append(event)
    return out


def binance_as_of_ns(bars: dict[str, BarSeries]) -> int:
    """The newest ticker closeTime: the close of the last bar in any symbol's first 24h."""
    return max(s.open_times[-1] + 59_999 for s in bars.values()) * NS_PER_MS


async def test_every_venue_publishes_and_stores_its_own_universe(
    sim: Sim, bars: dict[str, BarSeries], nats_url: str, pg_dsn: str
) -> None:
    common = common_settings(nats_url, pg_dsn, venue_sim=sim.url)
    async with running_service("symbol_registry", serve, CONFIG, common) as rt:
        got = await eventually(lambda: _all_venues(rt), what="a universe from every venue")
        assert rt.metrics.value("ticktape_errors", kind="refresh") == 0
    assert {venue: tuple(e.symbols for e in events) for venue, events in got.items()} == {
        venue: (symbols,) for venue, symbols in EXPECTED.items()
    }

    for venue in (BINANCE_USDM, BINANCE_SPOT):
        event = got[venue][0]
        assert event.as_of == event.ts_event == binance_as_of_ns(bars)
        assert event.quote_asset == "USDT"
        assert [m.quote_volume for m in event.members] == pytest.approx(
            [math.fsum(bars[s].quote_volumes) for s in EXPECTED[venue]]
        )
    hl = got[HYPERLIQUID][0]
    assert hl.quote_asset == "USDC"
    # every venue's trading rules, from the simulator's exchangeInfo filters and meta szDecimals
    for event in (got[BINANCE_USDM][0], got[BINANCE_SPOT][0]):
        assert all(m.tick_size > 0 and m.lot_size > 0 and m.min_notional > 0 for m in event.members)
    assert all(m.lot_size > 0 and m.min_notional > 0 for m in hl.members)
    # the response's Date header: the venue's clock, which in the simulator is the sim clock (not
    # started yet: the earliest bar's open), at second precision
    earliest_ms = min(s.open_times[0] for s in bars.values())
    assert hl.as_of == earliest_ms // 1000 * 1000 * NS_PER_MS
    for event in (e for events in got.values() for e in events):
        assert event.event_id == ids.derive("universe", event.venue, event.as_of, *event.symbols)
        assert event.added == event.symbols and event.removed == ()

    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        for venue, (event,) in got.items():
            ranked = [(m.symbol, m.rank, m.quote_volume) for m in event.members]
            assert [(m.symbol, m.rank, m.quote_volume) for m in await store.current_universe(conn, venue)] == ranked
            assert await store.history(conn, venue) == [event]


async def _all_venues(rt: Any) -> dict[str, list[UniverseUpdated]] | None:
    got = await universes(rt)
    return got if set(got) == set(ALL) else None


@pytest.mark.parametrize(
    ("broken", "prefix", "fault"),
    [
        (BINANCE_SPOT, "/binance_spot/api/v3/ticker/24hr", unavailable),  # HTTP error
        (HYPERLIQUID, "/hyperliquid/info", garbage),  # a payload the adapter rejects
    ],
)
async def test_a_failing_venue_is_counted_and_retried_while_the_others_publish(
    sim: Sim, nats_url: str, pg_dsn: str, broken: str, prefix: str, fault: Fault
) -> None:
    sim.faults[prefix] = fault
    common = common_settings(nats_url, pg_dsn, venue_sim=sim.url)
    async with running_service("symbol_registry", serve, CONFIG, common) as rt:
        healthy = set(ALL) - {broken}

        async def others_published_and_broken_retried() -> bool:
            got = await universes(rt)
            return set(got) == healthy and rt.metrics.value("ticktape_errors", kind="refresh") >= 2

        await eventually(others_published_and_broken_retried, what=f"the others to publish while {broken} fails")
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            assert await store.history(conn, broken) == []
            assert await store.current_universe(conn, broken) == ()

        del sim.faults[prefix]  # the venue recovers: the next retry publishes it
        got = await eventually(lambda: _all_venues(rt), timeout=15, what=f"{broken} to publish once it recovers")
        assert got[broken][0].symbols == EXPECTED[broken]
        assert all(len(events) == 1 for events in got.values())  # the healthy ones wait for their interval
