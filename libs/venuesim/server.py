"""The venue simulator as one aiohttp application: three venues' REST and WebSocket on one port,
one clock, one bar pump per venue, capture replays, fault injection.

Routes: Binance USDT-M at the root (/fapi/v1/..., /fapi/v2/..., /stream, /ws) and the same venue
under /binance_usdm; Binance spot under /binance_spot (/api/v3/..., /stream, /ws); Hyperliquid under
/hyperliquid (POST /info, POST /exchange, /ws); the simulator's own /_sim/fault, /_sim/stats,
/_sim/trading_fault (venuesim.trading_faults) and /_sim/requests. Trading (venuesim.trading) runs
on Binance USDT-M and Hyperliquid for the accounts of a TradingConfig, with one matcher task per
venue that fills resting orders as the feed moves."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from aiohttp import WSCloseCode, web

from venuesim.bars import BarSeries
from venuesim.clock import SimClock
from venuesim.control import Control
from venuesim.exchange_hyperliquid import HyperliquidExchange
from venuesim.faults import FaultConfig
from venuesim.feed import Hub
from venuesim.funding import FundingRates
from venuesim.hyperliquid import CandleFrames
from venuesim.hyperliquid_trading import HyperliquidTrading, hyperliquid_instruments
from venuesim.injector import Injector
from venuesim.iplimits import IpLimits
from venuesim.market import Market
from venuesim.pump import BarFrames, KlineFrames, run_pump
from venuesim.replay import CaptureError, capture_start_ns, run_replay
from venuesim.requestlog import RequestLog
from venuesim.rest import Rest
from venuesim.rest_binance_trading import BinanceTrading, binance_instruments
from venuesim.rest_hyperliquid import HyperliquidRest
from venuesim.rest_spot import SpotRest
from venuesim.stats import Stats
from venuesim.trading import Engine
from venuesim.trading_config import TradingConfig
from venuesim.trading_faults import TradingFaults
from venuesim.venues import ALL, BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID, VenueSeries, venue_series
from venuesim.ws import WsEndpoint
from venuesim.ws_hyperliquid import (
    MAX_CONNECTIONS_PER_IP,
    MAX_MESSAGES_PER_MINUTE_PER_IP,
    MAX_REST_WEIGHT_PER_MINUTE_PER_IP,
    MAX_SUBSCRIPTIONS_PER_IP,
    HyperliquidWs,
)


class VenueSim:
    """Simulated venues over recorded bars.

    series: symbol -> bars served on every venue (Hyperliquid by coin); venues: bars per venue
    instead (venuesim.venues.load_venues). start_ms=None: the clock waits for the first WebSocket
    subscription on any venue, then runs from the earliest bar's open, so a slow-booting client still
    sees every bar live. Otherwise it runs from start_ms as soon as the app starts. Each venue's bar
    frames start with its first subscription (bars closed before are REST's). heartbeat: seconds
    between server pings (None: no pings). wall: the monotonic wall clock in seconds, injectable so
    tests can set sim time exactly. captures: (venue, file) raw captures to replay. faults: see
    venuesim.faults. hl_max_subscriptions, hl_max_connections, hl_max_messages_per_minute,
    hl_max_rest_weight_per_minute:
    Hyperliquid's per-IP limits (None: not enforced), see venuesim.iplimits; GET /_sim/stats shows
    the peaks reached and the refusals under ip_limits.hyperliquid. trading: who may trade with
    what (venuesim.trading_config; None: nobody, every signed request is refused). funding: the
    recorded rates its perpetual venues' funding histories serve (venuesim.funding; None: none)."""

    def __init__(
        self,
        series: dict[str, BarSeries] | None = None,
        *,
        venues: VenueSeries | None = None,
        speed: float = 1.0,
        start_ms: int | None = None,
        heartbeat: float | None = 30.0,
        wall: Callable[[], float] = time.monotonic,
        captures: Sequence[tuple[str, Path]] = (),
        faults: FaultConfig | None = None,
        hl_max_subscriptions: int | None = MAX_SUBSCRIPTIONS_PER_IP,
        hl_max_connections: int | None = MAX_CONNECTIONS_PER_IP,
        hl_max_messages_per_minute: int | None = MAX_MESSAGES_PER_MINUTE_PER_IP,
        hl_max_rest_weight_per_minute: int | None = MAX_REST_WEIGHT_PER_MINUTE_PER_IP,
        trading: TradingConfig | None = None,
        funding: FundingRates | None = None,
    ) -> None:
        venues = venues if venues is not None else venue_series(series or {})
        self.markets = {venue: Market(venues.get(venue, {})) for venue in ALL}
        served = [m for m in self.markets.values() if m.series]
        if not served:
            raise ValueError("no bars to serve")
        self.market = self.markets[BINANCE_USDM]
        t0 = start_ms if start_ms is not None else min(m.earliest_open() for m in served)
        self.clock = SimClock(t0, speed, wall)
        self._start_at_boot = start_ms is not None
        self._started: asyncio.Event | None = None
        self.stats = Stats()
        self.injector = Injector(faults or FaultConfig(), self.stats)
        self.hubs = {venue: Hub(on_subscribe=functools.partial(self._on_subscribe, venue)) for venue in ALL}
        self._venue_started: dict[str, asyncio.Event] = {}
        self._venue_from: dict[str, int] = {}  # sim ms of each venue's first subscription
        self.hub = self.hubs[BINANCE_USDM]
        self.captures = _group_captures(captures)
        self._capture_starts = {venue: capture_start_ns(venue, paths) for venue, paths in self.captures.items()}

        self.rest = Rest(self.market, self.clock, funding)
        config = trading or TradingConfig()
        self._wakes = {venue: asyncio.Event() for venue in (BINANCE_USDM, HYPERLIQUID)}
        binance_engine = Engine(
            self.market, binance_instruments(self.market), config.binance_fees,
            accounts={a.name: a.balance for a in config.binance}, leverage=config.leverage,
        )  # fmt: skip
        hl_market = self.markets[HYPERLIQUID]
        hl_engine = Engine(
            hl_market, hyperliquid_instruments(hl_market), config.hl_fees,
            accounts={a.address: a.balance for a in config.hyperliquid}, leverage=config.leverage, client_ids="all",
        )  # fmt: skip
        self.trading_faults = TradingFaults([binance_engine, hl_engine])
        self.binance_trading = BinanceTrading(
            binance_engine, self.clock, config.binance, self.hub, wake=self._wakes[BINANCE_USDM].set,
            faults=self.trading_faults, funding=funding,
        )  # fmt: skip
        self.hl_trading = HyperliquidTrading(
            hl_engine, self.clock, config.hyperliquid, self.hubs[HYPERLIQUID], mainnet=config.hl_mainnet,
            wake=self._wakes[HYPERLIQUID].set, faults=self.trading_faults, funding=funding,
        )  # fmt: skip
        self.requests = RequestLog()
        self.ws = WsEndpoint(
            self.hub, heartbeat, BINANCE_USDM, self.injector, on_open=self.binance_trading.user_stream_opened
        )
        spot_ws = WsEndpoint(self.hubs[BINANCE_SPOT], heartbeat, BINANCE_SPOT, self.injector)
        hl_limits = IpLimits(
            max_connections=hl_max_connections,
            max_subscriptions=hl_max_subscriptions,
            max_messages_per_minute=hl_max_messages_per_minute,
            max_rest_weight_per_minute=hl_max_rest_weight_per_minute,
        )
        self.stats.ip_limits[HYPERLIQUID] = hl_limits
        hl_ws = HyperliquidWs(
            self.markets[HYPERLIQUID],
            self.hubs[HYPERLIQUID],
            heartbeat,
            self.injector,
            limits=hl_limits,
            user_feed=self.hl_trading,
        )
        self._endpoints = (self.ws, spot_ws, hl_ws)
        self.app = web.Application(
            middlewares=[self.requests.middleware, self._venue_date, self.trading_faults.middleware]
        )
        self.app.add_routes(
            self.rest.routes() + self.ws.routes()  # the root stays Binance USDT-M, as before venues existed
            + self.binance_trading.routes()
            + self.rest.routes("/binance_usdm") + self.ws.routes("/binance_usdm")
            + self.binance_trading.routes("/binance_usdm")
            + SpotRest(self.markets[BINANCE_SPOT], self.clock).routes("/binance_spot")
            + spot_ws.routes("/binance_spot")
            + HyperliquidRest(
                self.markets[HYPERLIQUID], self.clock, hl_limits, self.hl_trading, funding
            ).routes("/hyperliquid")
            + HyperliquidExchange(self.hl_trading, hl_limits).routes("/hyperliquid")
            + hl_ws.routes("/hyperliquid")
            + Control(self.injector, self.stats, self.clock).routes()
            + self.trading_faults.routes()
            + self.requests.routes()
        )  # fmt: skip
        self.app.cleanup_ctx.append(self._lifecycle)
        self.app.on_shutdown.append(self._close_sockets)

    @web.middleware
    async def _venue_date(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Stamp HTTP Date with the venue's (simulated) clock, as a real venue's server does with
        its own: Hyperliquid has no time endpoint, so clients read the time from Date."""
        response = await handler(request)
        if not response.prepared:
            response.headers["Date"] = email.utils.formatdate(self.clock.now_ms() / 1000, usegmt=True)
        return response

    def runner(self) -> web.AppRunner:
        """An AppRunner for this app (call `setup()`, then add a site)."""
        # /stream?streams= with 1,024 streams (Binance's per-connection maximum) is a ~20 KB request
        # line, beyond aiohttp's default limit of 8 KB.
        return web.AppRunner(self.app, handle_signals=False, access_log=None, max_line_size=64 * 1024)

    def start_clock(self) -> None:
        """Start the sim clock (idempotent), release the pumps and replays, start periodic faults."""
        self.clock.start()
        for wake in self._wakes.values():
            wake.set()  # the matchers' waits were against a frozen clock
        if self._started is not None:
            self._started.set()
            self.injector.start()

    def _on_subscribe(self, venue: str) -> None:
        self.start_clock()
        if venue not in self._venue_from:
            self._venue_from[venue] = self.clock.now_ms()
            self._venue_started[venue].set()

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self._started = started = asyncio.Event()
        self._venue_started = {venue: asyncio.Event() for venue in ALL}
        if self._start_at_boot or self.clock.started:
            self.start_clock()
        frames: dict[str, BarFrames] = {
            BINANCE_USDM: KlineFrames(),
            BINANCE_SPOT: KlineFrames(),
            HYPERLIQUID: CandleFrames(),
        }
        tasks = [
            asyncio.create_task(
                run_pump(
                    self.markets[venue], self.clock, self.hubs[venue], self._venue_started[venue], frames[venue],
                    self.injector.skip, functools.partial(self._venue_from.__getitem__, venue),
                )
            )
            for venue in ALL
        ]  # fmt: skip
        for trader in (self.binance_trading, self.hl_trading):
            tasks.append(asyncio.create_task(run_matcher(trader, self.clock, self._wakes[trader.venue])))
        for venue, paths in self.captures.items():
            start_ns = self._capture_starts[venue]
            tasks.append(
                asyncio.create_task(
                    run_replay(venue, paths, start_ns, self.clock, self.hubs[venue], started, self.stats)
                )
            )
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.injector.close()

    async def _close_sockets(self, app: web.Application) -> None:
        sockets = [ws for endpoint in self._endpoints for ws in list(endpoint.sockets)]
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )


MATCHER_MIN_WAIT_S = 0.001


async def run_matcher(trader: BinanceTrading | HyperliquidTrading, clock: SimClock, wake: asyncio.Event) -> None:
    """Fill a venue's resting orders as the feed crosses them (and book funding settlements):
    sleep until the trader's next event (a bar event of a symbol with resting orders, a
    settlement) or until woken (an order rested, the clock started), then let the trader match
    and push what happened."""
    while True:
        due = trader.next_event_ms()
        wait = None if due is None else clock.wall_seconds_until(due)
        if wait is None or wait > 0:
            timeout = None if wait is None or wait == float("inf") else max(wait, MATCHER_MIN_WAIT_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
        wake.clear()
        trader.advance()
        await asyncio.sleep(0)


def _group_captures(captures: Sequence[tuple[str, Path]]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for venue, path in captures:
        if venue not in ALL:
            raise CaptureError(f"{path}: unknown venue {venue!r}; expected one of {', '.join(ALL)}")
        out.setdefault(venue, []).append(Path(path))
    return out


async def serve(sim: VenueSim, host: str, port: int, out: TextIO = sys.stdout) -> None:
    """Listen on host:port (0 = any free port), print the listening line, run until SIGINT/SIGTERM."""
    runner = sim.runner()
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            print(f"venue-sim listening on http://{host}:{runner.addresses[0][1]}", file=out, flush=True)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        await runner.cleanup()
