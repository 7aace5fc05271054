"""Binance market-stream WebSocket endpoints and their live control protocol.

Paths: `/stream?streams=a/b` (combined: `{"stream":..,"data":..}`), `/ws` and `/ws/a/b` (raw payloads),
also under a venue prefix (`/binance_spot/stream`, ...). Requests: SUBSCRIBE, UNSUBSCRIBE,
LIST_SUBSCRIPTIONS, SET_PROPERTY/GET_PROPERTY `combined`, with Binance's error objects
`{"error":{"code":..,"msg":..},"id":..}`. As on Binance, any stream name is accepted; data comes for
`<symbol>@kline_1m` of a served symbol (lower case) and for the streams of replayed captures. Stream
caps (1,024 per connection) are not enforced."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from venuesim.feed import Hub, Subscriber

if TYPE_CHECKING:
    from venuesim.injector import Injector

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_encode = msgspec.json.Encoder().encode


class WsEndpoint:
    """aiohttp handler for the stream endpoints; tracks open sockets so shutdown can close them."""

    def __init__(
        self,
        hub: Hub,
        heartbeat: float | None,
        venue: str = "binance_usdm",
        injector: Injector | None = None,
        on_open: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self.hub = hub
        self.heartbeat = heartbeat
        self.venue = venue
        self.injector = injector
        self.on_open = on_open  # frames a connection gets first for its path's streams (a user stream's)
        self.sockets: set[web.WebSocketResponse] = set()

    def routes(self, prefix: str = "") -> list[web.RouteDef]:
        return [
            web.get(f"{prefix}/stream", self.handle_combined),
            web.get(f"{prefix}/ws", self.handle),
            web.get(prefix + "/ws/{streams:.+}", self.handle),
        ]

    async def handle_combined(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, combined=True)

    async def handle(self, request: web.Request, combined: bool = False) -> web.StreamResponse:
        raw = request.query.get("streams", "") if combined else request.match_info.get("streams", "")
        streams = [s for s in raw.split("/") if s]
        refused = self.injector.refuse_upgrade() if self.injector else None
        if refused is not None:
            return refused
        # heartbeat: aiohttp pings every `heartbeat` s and drops a client that does not pong in time,
        # like Binance's server pings; client pings get a pong automatically.
        ws = web.WebSocketResponse(heartbeat=self.heartbeat)
        await ws.prepare(request)
        self.sockets.add(ws)
        tap = self.injector.connect(ws, self.venue) if self.injector else None
        sub = Subscriber(ws, combined, tap=tap)
        writer = asyncio.create_task(sub.run_writer())
        try:
            self.hub.subscribe(sub, streams)
            for frame in self.on_open(streams) if self.on_open is not None else ():
                sub.push(frame, True)
            async for msg in self.injector.messages(ws, tap) if self.injector and tap else ws:
                if msg.type == WSMsgType.TEXT:
                    sub.push(_encode(self.control(sub, msg.data)).decode())
        finally:
            self.hub.drop(sub)
            self.sockets.discard(ws)
            if self.injector:
                self.injector.disconnect(ws)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    def control(self, sub: Subscriber, text: str) -> dict[str, Any]:
        """Answer one live request (the response is queued behind frames already queued)."""
        try:
            req = json.loads(text)
        except ValueError as exc:
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            return _error(3, f"Invalid JSON: expected value at line {line} column {col}", None)
        except RecursionError:  # serde_json, Binance's parser, stops at 128 levels
            return _error(3, "Invalid JSON: recursion limit exceeded", None)
        if not isinstance(req, dict) or "method" not in req:
            return _error(2, "Invalid request: missing field `method`", None)
        req_id = req.get("id")
        if not (req_id is None or (isinstance(req_id, int) and not isinstance(req_id, bool) and req_id >= 0)
                or (isinstance(req_id, str) and len(req_id) <= 36 and req_id.isalnum())):  # fmt: skip
            return _error(2, "Invalid request: request ID must be an unsigned integer", None)
        method, params = req["method"], req.get("params", [])
        if method not in _METHODS:
            return _error(2, f"Invalid request: unknown variant `{method}`, expected one of "
                             + ", ".join(f"`{m}`" for m in _METHODS), req_id)  # fmt: skip
        if not isinstance(params, list):
            return _error(2, "Invalid request: invalid type: params must be an array", req_id)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) and "@" in p for p in params):
                return _error(2, "Invalid request: invalid stream name", req_id)
            (self.hub.subscribe if method == "SUBSCRIBE" else self.hub.unsubscribe)(sub, params)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(sub.streams), "id": req_id}
        return _property(sub, method, params, req_id)


def _property(sub: Subscriber, method: str, params: list[Any], req_id: Any) -> dict[str, Any]:
    if not params or not isinstance(params[0], str):
        return _error(2, "Invalid request: property name must be a string", req_id)
    if params[0] != "combined":
        return _error(0, "Unknown property", req_id)
    if method == "GET_PROPERTY":
        return {"result": sub.combined, "id": req_id}
    if len(params) != 2 or not isinstance(params[1], bool):
        return _error(1, "Invalid value type: expected Boolean", req_id)
    sub.combined = params[1]
    return {"result": None, "id": req_id}


def _error(code: int, msg: str, req_id: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": req_id}
