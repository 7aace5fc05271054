"""The simulator's own endpoints for tests: POST /_sim/fault (fault injection at a chosen moment,
see venuesim.injector for the keys), GET /_sim/stats (venuesim.stats) and GET /_sim/clock: the
simulated clock as a client needs it to keep time with it, `{"now_ms", "speed", "started"}`
(simulated ms per wall ms once started; frozen at now_ms before): a real venue's clock runs at
the wall clock's pace, so its clients learn only its offset (Binance's GET /fapi/v1/time), while
a simulator at --speed X runs X times faster, which a client cannot tell from one reading."""

from __future__ import annotations

from aiohttp import web

from venuesim.clock import SimClock
from venuesim.injector import Injector
from venuesim.rest import json_response
from venuesim.stats import Stats


class Control:
    def __init__(self, injector: Injector, stats: Stats, clock: SimClock) -> None:
        self.injector = injector
        self.stats = stats
        self.clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/fault", self.fault),
            web.get("/_sim/stats", self.get_stats),
            web.get("/_sim/clock", self.get_clock),
        ]

    async def fault(self, request: web.Request) -> web.Response:
        """Body: any of drop_every, stall ("S@E"), malformed_every, skip_minutes, refuse_reconnect
        (settings, spelled as the flags; null disables) and drop_now (true), stall_now, refuse_now
        (seconds): actions taken before answering. 400 {"error": ...} changes nothing."""
        try:
            body = await request.json()
        except ValueError:
            return json_response({"error": "body must be a JSON object"}, 400)
        try:
            return json_response(await self.injector.apply(body))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)

    async def get_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats.snapshot(self.clock))

    async def get_clock(self, request: web.Request) -> web.Response:
        return json_response({"now_ms": self.clock.now_ms(), "speed": self.clock.speed, "started": self.clock.started})
