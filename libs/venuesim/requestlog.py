"""Every request the simulator received, verbatim, for checks made from outside: GET /_sim/requests
returns them oldest first as `{"method", "path" (with the raw query string), "headers" ([name,
value] pairs as sent), "body" (text), "time" (when it arrived: host epoch seconds)}`, so a test
can recompute a Binance HMAC or recover a Hyperliquid signer independently of the simulator's own
checks. The simulator's own /_sim/ requests are not recorded; the last `max_kept` are kept."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from aiohttp import web

from venuesim.rest import json_response

MAX_KEPT = 10_000


class RequestLog:
    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_kept)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_sim/"):
            body = await request.read() if request.body_exists else b""
            self.entries.append({
                "method": request.method,
                "path": request.raw_path,
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
                "body": body.decode("utf-8", errors="replace"),
                "time": time.time(),
            })  # fmt: skip
        response: web.StreamResponse = await handler(request)
        return response

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/_sim/requests", self.get)]

    async def get(self, request: web.Request) -> web.Response:
        return json_response(list(self.entries))
