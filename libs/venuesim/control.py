"""The simulator's own endpoints for tests: POST /_sim/fault (fault injection at a chosen moment,
see venuesim.injector for the keys) and GET /_sim/stats (venuesim.stats)."""

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
        return [web.post("/_sim/fault", self.fault), web.get("/_sim/stats", self.get_stats)]

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
