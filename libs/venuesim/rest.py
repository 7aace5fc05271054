"""Binance USDT-M public REST endpoints (/fapi/v1/...) served from the recorded bars at sim time.

`Rest.routes(prefix)` mounts them under a path prefix too (`/binance_usdm/fapi/v1/...`); spot
subclasses this (venuesim.rest_spot).

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
from venuesim.funding import FundingRates, binance_records
from venuesim.market import Market, Series

KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT = 500, 1500
FUNDING_DEFAULT_LIMIT, FUNDING_MAX_LIMIT = 100, 1000
_encode = msgspec.json.Encoder().encode


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


class _BadRequest(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


class Rest:
    """The REST handlers; they read the market and the clock, never change them."""

    PATH = "/fapi/v1"
    MAX_LIMIT = KLINES_MAX_LIMIT

    def __init__(self, market: Market, clock: SimClock, funding: FundingRates | None = None) -> None:
        self.market = market
        self.clock = clock
        self.funding = funding  # None: no settlement recorded, GET /fapi/v1/fundingRate answers []

    def routes(self, prefix: str = "") -> list[web.RouteDef]:
        base = prefix + self.PATH
        return [
            web.get(f"{base}/ping", self.ping),
            web.get(f"{base}/time", self.time),
            web.get(f"{base}/exchangeInfo", self.exchange_info),
            web.get(f"{base}/ticker/24hr", self.ticker_24hr),
            web.get(f"{base}/klines", self.klines),
            *([web.get(f"{base}/fundingRate", self.funding_rate)] if self.PATH == "/fapi/v1" else []),
        ]

    def exchange_info_doc(self) -> dict[str, Any]:
        return exchange_info(self.market, self.clock.now_ms())

    def ticker(self, series: Series) -> dict[str, Any]:
        return wire.ticker_24hr(series, self.clock.now_ms(), self.clock.started)

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.clock.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return json_response(self.exchange_info_doc())

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if symbol is None:
            return json_response([self.ticker(s) for s in self.market.series.values()])
        series = self.market.get(symbol)
        if series is None:
            return json_response(wire.ERR_INVALID_SYMBOL, 400)
        return json_response(self.ticker(series))

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
        elif not 1 <= limit <= self.MAX_LIMIT:
            return json_response(wire.err_invalid_value("limit"), 400)
        picked = series.closed_range(self.clock.now_ms(), start, end, limit)
        return json_response([wire.kline_row(series, i) for i in picked])

    async def funding_rate(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/fundingRate: symbol (optional: every symbol), startTime, endTime, limit
        (default 100, max 1000); from startTime forward, else the latest `limit`; ascending.
        Settlements from venuesim.funding (none without recorded rates)."""
        query = request.query
        try:
            start = _int_param(query, "startTime")
            end = _int_param(query, "endTime")
            limit = _int_param(query, "limit")
        except _BadRequest as exc:
            return json_response(exc.body, 400)
        if limit is None:
            limit = FUNDING_DEFAULT_LIMIT
        elif not 1 <= limit <= FUNDING_MAX_LIMIT:
            return json_response(wire.err_invalid_value("limit"), 400)
        symbol = query.get("symbol")
        if symbol is not None:
            one = self.market.get(symbol)
            if one is None:
                return json_response(wire.ERR_INVALID_SYMBOL, 400)
            served = [one]
        else:
            served = list(self.market.series.values())
        if self.funding is None:
            return json_response([])
        now = self.clock.now_ms()
        rows = [r for s in served for r in binance_records(self.funding, s, now, start, end, limit)]
        rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
        return json_response(rows[:limit] if start is not None else rows[-limit:])


def _required(query: Any, name: str) -> str:
    value = query.get(name)
    if not value:
        raise _BadRequest(wire.err_mandatory(name))
    return str(value)


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 20:  # "²".isdigit(), but int("²") fails
        raise _BadRequest(wire.err_illegal_chars(name))
    return int(value)
