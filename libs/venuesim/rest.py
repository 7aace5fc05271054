"""Binance USDT-M public REST endpoints (/fapi/v1/...) served from the recorded bars at sim time.

GET /fapi/v1/klines returns only bars closed at sim time; real Binance also returns the bar in
progress as the last element. Leaving it out keeps REST consistent with the WebSocket feed, whose
in-progress frames carry no real volume."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from venuesim import binance_usdm as wire
from venuesim.clock import SimClock
from venuesim.exchange_info import exchange_info
from venuesim.market import Market

KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT = 500, 1500
_encode = msgspec.json.Encoder().encode


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


class _BadRequest(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


class Rest:
    """The REST handlers; they read the market and the clock, never change them."""

    def __init__(self, market: Market, clock: SimClock) -> None:
        self.market = market
        self.clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/fapi/v1/ping", self.ping),
            web.get("/fapi/v1/time", self.time),
            web.get("/fapi/v1/exchangeInfo", self.exchange_info),
            web.get("/fapi/v1/ticker/24hr", self.ticker_24hr),
            web.get("/fapi/v1/klines", self.klines),
        ]

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.clock.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return json_response(exchange_info(self.market, self.clock.now_ms()))

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if symbol is None:
            return json_response([self._ticker(s) for s in self.market.series])
        if self.market.get(symbol) is None:
            return json_response(wire.ERR_INVALID_SYMBOL, 400)
        return json_response(self._ticker(symbol))

    def _ticker(self, symbol: str) -> dict[str, Any]:
        return wire.ticker_24hr(self.market.series[symbol], self.clock.now_ms(), self.clock.started)

    async def klines(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            symbol = _required(query, "symbol")
            interval = _required(query, "interval")
            start = _int_param(query, "startTime")
            end = _int_param(query, "endTime")
            limit = _int_param(query, "limit")
        except _BadRequest as exc:
            return json_response(exc.body, 400)
        series = self.market.get(symbol)
        if series is None:
            return json_response(wire.ERR_INVALID_SYMBOL, 400)
        if interval != wire.INTERVAL:  # the simulator has only 1m bars
            return json_response(wire.ERR_INVALID_INTERVAL, 400)
        if limit is None:
            limit = KLINES_DEFAULT_LIMIT
        elif not 1 <= limit <= KLINES_MAX_LIMIT:
            return json_response(wire.err_invalid_value("limit"), 400)
        picked = series.closed_range(self.clock.now_ms(), start, end, limit)
        return json_response([wire.kline_row(series, i) for i in picked])


def _required(query: Any, name: str) -> str:
    value = query.get(name)
    if not value:
        raise _BadRequest(wire.err_mandatory(name))
    return str(value)


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 20:
        raise _BadRequest(wire.err_illegal_chars(name))
    return int(value)
