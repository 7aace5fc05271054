"""The venue simulator as one aiohttp application: REST and WebSocket on one port, one clock, one pump."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import AsyncIterator, Callable, TextIO

from aiohttp import WSCloseCode, web

from venuesim.bars import BarSeries
from venuesim.clock import SimClock
from venuesim.feed import Hub
from venuesim.market import Market
from venuesim.pump import run_pump
from venuesim.rest import Rest
from venuesim.ws import WsEndpoint


class VenueSim:
    """A simulated Binance USDT-M venue over `series` (symbol -> bars).

    start_ms=None: the clock waits for the first WebSocket subscription, then runs from the earliest
    bar's open, so a slow-booting client still sees every bar live. Otherwise it runs from start_ms
    as soon as the app starts. heartbeat: seconds between server pings (None: no pings). wall: the
    monotonic wall clock in seconds, injectable so tests can set sim time exactly."""

    def __init__(
        self,
        series: dict[str, BarSeries],
        *,
        speed: float = 1.0,
        start_ms: int | None = None,
        heartbeat: float | None = 30.0,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = Market(series)
        if not self.market.series:
            raise ValueError("no bars to serve")
        t0 = start_ms if start_ms is not None else self.market.earliest_open()
        self.clock = SimClock(t0, speed, wall)
        self._start_at_boot = start_ms is not None
        self._started: asyncio.Event | None = None
        self.hub = Hub(on_subscribe=self.start_clock)
        self.rest = Rest(self.market, self.clock)
        self.ws = WsEndpoint(self.hub, heartbeat)
        self.app = web.Application()
        self.app.add_routes(self.rest.routes() + self.ws.routes())
        self.app.cleanup_ctx.append(self._lifecycle)
        self.app.on_shutdown.append(self._close_sockets)

    def runner(self) -> web.AppRunner:
        """An AppRunner for this app (call `setup()`, then add a site)."""
        # /stream?streams= with 1,024 streams (Binance's per-connection maximum) is a ~20 KB request
        # line, beyond aiohttp's default limit of 8 KB.
        return web.AppRunner(self.app, handle_signals=False, access_log=None, max_line_size=64 * 1024)

    def start_clock(self) -> None:
        """Start the sim clock (idempotent) and release the pump."""
        self.clock.start()
        if self._started is not None:
            self._started.set()

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self._started = asyncio.Event()
        if self._start_at_boot or self.clock.started:
            self.start_clock()
        pump = asyncio.create_task(run_pump(self.market, self.clock, self.hub, self._started))
        yield
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump

    async def _close_sockets(self, app: web.Application) -> None:
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in list(self.ws.sockets)),
            return_exceptions=True,
        )


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
