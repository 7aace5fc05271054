"""Hyperliquid's info endpoint, POST /hyperliquid/info, for the perp market data the bars can give:
`meta`, `metaAndAssetCtxs`, `candleSnapshot`, `allMids` (each coin's served price) and `spotMeta`
(no spot pairs, USDC only: the official SDK reads it when it starts); and for a `user`'s trading
on the simulator (venuesim.hyperliquid_trading): `clearinghouseState`, `openOrders`,
`frontendOpenOrders`, `orderStatus` (`oid`: an order id or a cloid) and `userFills`.

Errors as Hyperliquid's HTTP front end (axum) answers them: a body that is not JSON: 400
`Failed to parse the request body as JSON: ...`; JSON of the wrong shape or an unknown `type`: 422
`Failed to deserialize the JSON body into the target type: ...` (both text/plain); no JSON content
type: 415. A coin it does not list: HTTP 500 with body `null` (as third-party SDKs report for
fundingHistory; not confirmed for candleSnapshot). Deviation: only the 1m interval is served; the
other intervals Hyperliquid has get a 422 saying so.

Request weight (venuesim.iplimits), as Hyperliquid documents it: 1,200 per minute per IP; an
info request weighs 20, a candleSnapshot one more per 60 candles returned. A request while the
address's weight of the last 60 s is at the limit gets HTTP 429 (our answer: Hyperliquid
documents the limit, not the reply)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from venuesim import hyperliquid as wire
from venuesim import hyperliquid_orders
from venuesim.clock import SimClock
from venuesim.funding import FundingRates, hyperliquid_records
from venuesim.iplimits import IpLimits
from venuesim.market import Market
from venuesim.rest import json_response

if TYPE_CHECKING:
    from venuesim.hyperliquid_trading import HyperliquidTrading

_INFO_TYPES = (
    "meta", "metaAndAssetCtxs", "candleSnapshot", "allMids", "spotMeta",
    "clearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus", "userFills", "fundingHistory",
)  # fmt: skip
_USER_TYPES = ("clearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus", "userFills")
INFO_WEIGHT = 20
CANDLES_PER_EXTRA_WEIGHT = 60
FUNDING_PER_EXTRA_WEIGHT = 20  # fundingHistory: "additional rate limit weight per 20 items returned"


class _Rejected(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status, self.text = status, text


class HyperliquidRest:
    def __init__(
        self,
        market: Market,
        clock: SimClock,
        limits: IpLimits | None = None,
        trading: HyperliquidTrading | None = None,
        funding: FundingRates | None = None,
    ) -> None:
        self.funding = funding  # None: no settlement recorded, fundingHistory answers []
        self.market = market
        self.clock = clock
        self.limits = limits if limits is not None else IpLimits()
        self.trading = trading  # None: nobody trades, every user is empty
        self.candles = 0  # candles in the last candleSnapshot answer
        self.extra_weight = 0  # the last fundingHistory answer's weight beyond INFO_WEIGHT

    def routes(self, prefix: str = "/hyperliquid") -> list[web.RouteDef]:
        return [web.post(f"{prefix}/info", self.info)]

    async def info(self, request: web.Request) -> web.Response:
        ip = request.remote or ""
        if not self.limits.rest_allowed(ip):
            limit = self.limits.max_rest_weight_per_minute
            return web.Response(status=429, text=f"Too many requests: weight over {limit} a minute from this IP")
        candles = 0
        try:
            body = await _read_json(request)
            self.candles = self.extra_weight = 0
            response = self._answer(body)  # synchronous: self.candles is this request's
            candles = self.candles
        except _Rejected as exc:
            response = web.Response(status=exc.status, text=exc.text)
        self.limits.rest_spent(ip, INFO_WEIGHT + candles // CANDLES_PER_EXTRA_WEIGHT + self.extra_weight)
        return response

    def _answer(self, body: Any) -> web.Response:
        kind = _field(body, "type", str, "")
        now, started = self.clock.now_ms(), self.clock.started
        if kind == "meta":
            return json_response(wire.meta(self.market))
        if kind == "metaAndAssetCtxs":
            return json_response(wire.meta_and_asset_ctxs(self.market, now, started))
        if kind == "spotMeta":
            return json_response(hyperliquid_orders.SPOT_META)
        if kind == "allMids":
            trading = self.trading
            mids = trading.all_mids() if trading is not None else {}
            return json_response(mids)
        if kind == "fundingHistory":
            return self._funding_history(body, now)
        if kind in _USER_TYPES:
            return json_response(self._user_answer(kind, body))
        if kind != "candleSnapshot":
            expected = ", ".join(f"`{t}`" for t in _INFO_TYPES)
            raise _Rejected(422, wire.deserialize_error(f"unknown variant `{kind}`, expected one of {expected}"))
        req = _field(body, "req", dict, "")
        coin = _field(req, "coin", str, "req.")
        interval = _field(req, "interval", str, "req.")
        start = _field(req, "startTime", int, "req.")
        end = req.get("endTime")
        if interval not in wire.INTERVALS:
            raise _Rejected(422, wire.deserialize_error(f"req.interval: unknown variant `{interval}`"))
        if interval != wire.INTERVAL:
            only = f"req.interval: the simulator serves only `{wire.INTERVAL}`"
            raise _Rejected(422, wire.deserialize_error(only))
        if start < 0 or not (end is None or (type(end) is int and end >= 0)):
            raise _Rejected(422, wire.deserialize_error("req.startTime/endTime: expected u64"))
        series = self.market.get(coin)
        if series is None:
            return json_response(None, 500)
        picked = wire.snapshot_range(series, now, start, end)
        self.candles = len(picked)  # the request weight counts them
        return json_response([wire.snapshot_candle(series, i, now) for i in picked])

    def _funding_history(self, body: Any, now: int) -> web.Response:
        """fundingHistory: `coin`, `startTime` (required), `endTime`; at most 500 records from
        startTime, ascending (venuesim.funding); a coin not listed: HTTP 500 `null`."""
        coin = _field(body, "coin", str, "")
        start = _field(body, "startTime", int, "")
        end = body.get("endTime")
        if start < 0 or not (end is None or (type(end) is int and end >= 0)):
            raise _Rejected(422, wire.deserialize_error("startTime/endTime: expected u64"))
        series = self.market.get(coin)
        if series is None:
            return json_response(None, 500)
        if self.funding is None:
            return json_response([])
        records = hyperliquid_records(self.funding, series, now, start, end)
        self.extra_weight = len(records) // FUNDING_PER_EXTRA_WEIGHT
        return json_response(records)

    def _user_answer(self, kind: str, body: Any) -> Any:
        user = _field(body, "user", str, "").lower()
        trading = self.trading
        if trading is not None:
            trading.advance()
        if kind == "orderStatus":
            oid = body.get("oid")
            if not ((type(oid) is int and oid >= 0) or isinstance(oid, str)):
                raise _Rejected(422, wire.deserialize_error("oid: expected an order id or a cloid"))
            return trading.order_status(user, oid) if trading is not None else {"status": "unknownOid"}
        if kind == "clearinghouseState":
            if trading is None:
                return hyperliquid_orders.clearinghouse_state(None, {}, self.clock.now_ms())
            return trading.clearinghouse_state(user)
        if trading is None:
            return []
        if kind == "userFills":
            return trading.user_fills(user)
        return trading.open_orders(user, frontend=kind == "frontendOpenOrders")


async def _read_json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise _Rejected(415, "Expected request with `Content-Type: application/json`")
    return parse_body(await request.read())


def parse_body(raw: bytes) -> Any:
    """The JSON of a request body; _Rejected(400) when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        detail = f"expected value at line {line} column {col}"
        raise _Rejected(400, f"Failed to parse the request body as JSON: {detail}") from None
    except RecursionError:  # serde_json, axum's parser, stops at 128 levels
        raise _Rejected(400, "Failed to parse the request body as JSON: recursion limit exceeded") from None


def _field(obj: Any, name: str, kind: type, path: str) -> Any:
    if not isinstance(obj, dict):
        raise _Rejected(422, wire.deserialize_error(f"{path.rstrip('.') or 'body'}: expected a map"))
    if name not in obj:
        raise _Rejected(422, wire.deserialize_error(f"{path}missing field `{name}`"))
    value = obj[name]
    if type(value) is not kind or (kind is int and isinstance(value, bool)):
        raise _Rejected(422, wire.deserialize_error(f"{path}{name}: invalid type: expected {kind.__name__}"))
    return value
