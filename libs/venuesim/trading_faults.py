"""Faults of the simulated venues' trading (Binance USDT-M and Hyperliquid), for proving an
execution client against the failures a real venue has. Set at a chosen moment with
POST /_sim/trading_fault (a JSON object of any of the keys below; null or 0 turns one off);
GET /_sim/trading_fault shows the settings and what each fault has done so far.

- timeout_after_accept: N, hang_s: S (default 30): the next N order placements (Binance
  POST /fapi/v1/order, a Hyperliquid `order` action) are executed, the order exists and its
  user-stream reports go out, but the answer is held back S seconds and the connection then
  closed without one: the client's request times out with the order accepted.
- latency_s: S: every order placement waits S seconds before the venue executes it (a slow
  venue: the order exists only after that, its answer and reports come after it).
- answer_delay_s: S: every order placement's answer is held back S seconds after the order was
  executed (its user-stream reports go out at once): fills arrive before the acknowledgement.
- query_delay_s: S: every query of an account's state (Binance's open orders, account and
  positions; Hyperliquid's clearinghouseState and open orders) reads the account at once and is
  answered S seconds later: a snapshot that is stale when it arrives, while the user stream goes
  on reporting what happens meanwhile.
- reorder: true: the user-stream frames of one venue step (a request, the feed crossing resting
  orders) go out in reverse order: an expiry before the fill that preceded it, a fill before its
  order's update.
- partial_fill: F (0 < F < 1): a marketable order fills only F of its size (rounded down to the
  lot, at least one lot) as a taker; the rest of a market or IOC order expires, of a GTC limit
  rests.
- replay_fills: N: each user stream (re)connection (a Binance listenKey stream, a Hyperliquid
  userFills/userEvents subscription) first gets again the last N fill frames sent on it before,
  as live frames: a reconnect that replays fills.
- throttle: N, retry_after: S (default 1): the next N trading requests (Binance's order, account,
  position and listenKey endpoints; Hyperliquid's /exchange and /info) are answered HTTP 429
  with `Retry-After: S` and not executed: a 429 storm.

Deterministic given the same requests: counts, not clocks, decide which request a fault hits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from aiohttp import web

from venuesim.feed import Hub
from venuesim.rest import json_response

KEYS = (
    "timeout_after_accept", "hang_s", "latency_s", "answer_delay_s", "query_delay_s", "reorder", "partial_fill",
    "replay_fills", "throttle", "retry_after",
)  # fmt: skip
REPLAY_KEPT = 100  # fill frames remembered per user stream
WAITED_MS = "venuesim.latency_ms"  # request key: how long latency_s held the request before its handler
_BINANCE_TRADING = ("/fapi/v1/order", "/fapi/v1/openOrders", "/fapi/v1/userTrades", "/fapi/v2/account",
                    "/fapi/v2/positionRisk", "/fapi/v1/listenKey")  # fmt: skip
_HYPERLIQUID_TRADING = ("/hyperliquid/exchange", "/hyperliquid/info")
_BINANCE_QUERIES = ("/fapi/v1/openOrders", "/fapi/v2/account", "/fapi/v2/positionRisk")
_HYPERLIQUID_QUERIES = ("clearinghouseState", "openOrders", "frontendOpenOrders")
BINANCE_429 = {"code": -1003, "msg": "Too many requests; current limit is 2400 request weight per 1 MINUTE. "
               "Please use the websocket for live updates to avoid polling the API."}  # fmt: skip


class PartialFills(Protocol):
    partial_fill: Decimal | None


@dataclasses.dataclass
class Settings:
    timeout_after_accept: int = 0
    hang_s: float = 30.0
    latency_s: float = 0.0
    answer_delay_s: float = 0.0
    query_delay_s: float = 0.0
    reorder: bool = False
    partial_fill: Decimal | None = None
    replay_fills: int = 0
    throttle: int = 0
    retry_after: float = 1.0


@dataclasses.dataclass
class Counts:
    timed_out: int = 0
    slowed: int = 0
    delayed: int = 0
    queries_delayed: int = 0
    reordered: int = 0
    replayed: int = 0
    throttled: int = 0


class TradingFaults:
    """The trading faults of one simulator: settings, counters, and the fill frames each user
    stream was sent (for replay_fills). engines: whose partial_fill the setting drives."""

    def __init__(self, engines: Sequence[PartialFills] = ()) -> None:
        self.settings = Settings()
        self.counts = Counts()
        self.engines = list(engines)
        self._sent_fills: dict[str, deque[str]] = {}

    # user streams -----------------------------------------------------------------------------

    def send(self, hub: Hub, frames: list[tuple[str, str, bool]]) -> None:
        """Publish one venue step's user-stream frames, (stream key, text, is a fill frame), in
        order, or reversed under `reorder`; remember the fill frames for replay_fills."""
        frames = [f for f in frames if hub.wanted(f[0])]
        if self.settings.reorder and len(frames) > 1:
            frames.reverse()
            self.counts.reordered += 1
        for key, text, is_fill in frames:
            if is_fill:
                self._sent_fills.setdefault(key, deque(maxlen=REPLAY_KEPT)).append(text)
            hub.publish(key, text)

    def replay(self, key: str) -> list[str]:
        """The fill frames a (re)connection to stream `key` gets again first (replay_fills)."""
        n = self.settings.replay_fills
        sent = list(self._sent_fills.get(key, ()))[-n:] if n else []
        self.counts.replayed += len(sent)
        return sent

    # requests ---------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix("/binance_usdm")
        if not (path in _BINANCE_TRADING or path in _HYPERLIQUID_TRADING):
            response: web.StreamResponse = await handler(request)
            return response
        s = self.settings
        if s.throttle > 0:
            s.throttle -= 1
            self.counts.throttled += 1
            headers = {"Retry-After": f"{s.retry_after:g}"}
            if path in _BINANCE_TRADING:
                refused = json_response(BINANCE_429, 429)
                refused.headers.update(headers)
                return refused
            return web.Response(status=429, text="null", headers=headers)
        if s.query_delay_s > 0 and await _is_account_query(request, path):
            response = await handler(request)  # the account as of now, answered later
            self.counts.queries_delayed += 1
            await asyncio.sleep(s.query_delay_s)
            return response
        placing = await _is_placement(request, path)
        if placing and s.latency_s > 0:
            self.counts.slowed += 1
            request[WAITED_MS] = int(s.latency_s * 1000)  # its timestamp is checked as of arrival
            await asyncio.sleep(s.latency_s)
        response = await handler(request)
        if not placing or response.status != 200 or not _accepted(path, response):
            return response
        if s.timeout_after_accept > 0:
            s.timeout_after_accept -= 1
            self.counts.timed_out += 1
            await asyncio.sleep(s.hang_s)
            if request.transport is not None:
                request.transport.close()  # no answer: the order exists, the client never hears
            raise web.HTTPRequestTimeout()  # nothing reaches the closed connection
        if s.answer_delay_s > 0:
            self.counts.delayed += 1
            await asyncio.sleep(s.answer_delay_s)
        return response

    # control ----------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/_sim/trading_fault", self.post), web.get("/_sim/trading_fault", self.get)]

    def describe(self) -> dict[str, Any]:
        settings = dataclasses.asdict(self.settings)
        settings["partial_fill"] = None if self.settings.partial_fill is None else str(self.settings.partial_fill)
        return {"faults": settings, "counts": dataclasses.asdict(self.counts)}

    async def get(self, request: web.Request) -> web.Response:
        return json_response(self.describe())

    async def post(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return json_response({"error": "body must be a JSON object"}, 400)
        try:
            self.apply(body)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(self.describe())

    def apply(self, body: Any) -> None:
        """Apply a POST /_sim/trading_fault body; ValueError naming the key (nothing changed)."""
        if not isinstance(body, dict) or not body:
            raise ValueError(f"expected a JSON object with some of: {', '.join(KEYS)}")
        unknown = [key for key in body if key not in KEYS]
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(KEYS)}")
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key in ("timeout_after_accept", "replay_fills", "throttle"):
                changes[key] = _count(value, key)
            elif key in ("hang_s", "latency_s", "answer_delay_s", "query_delay_s", "retry_after"):
                changes[key] = _seconds(value, key)
            elif key == "reorder":
                if not isinstance(value, bool):
                    raise ValueError(f"reorder must be true or false (got {value!r})")
                changes[key] = value
            else:
                changes[key] = _fraction(value, key)
        self.settings = dataclasses.replace(self.settings, **changes)
        for engine in self.engines:
            engine.partial_fill = self.settings.partial_fill


async def _is_placement(request: web.Request, path: str) -> bool:
    if request.method != "POST":
        return False
    if path == "/fapi/v1/order":
        return True
    if path != "/hyperliquid/exchange":
        return False
    try:
        body = json.loads(await request.read())
    except ValueError:
        return False
    action = body.get("action") if isinstance(body, dict) else None
    return isinstance(action, dict) and action.get("type") == "order"


async def _is_account_query(request: web.Request, path: str) -> bool:
    if path in _BINANCE_QUERIES:
        return request.method == "GET"
    if path != "/hyperliquid/info":
        return False
    try:
        body = json.loads(await request.read())
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") in _HYPERLIQUID_QUERIES


def _accepted(path: str, response: web.StreamResponse) -> bool:
    """Whether the answer says the venue took the order (Hyperliquid answers refusals with 200)."""
    if path != "/hyperliquid/exchange":
        return True
    body = getattr(response, "body", None)
    try:
        doc = json.loads(body) if isinstance(body, bytes) else None
    except ValueError:
        return False
    if not isinstance(doc, dict) or doc.get("status") != "ok":
        return False
    statuses = doc.get("response", {}).get("data", {}).get("statuses", [])
    return any(isinstance(s, dict) and ("resting" in s or "filled" in s) for s in statuses)


def _count(value: Any, key: str) -> int:
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise ValueError(f"{key} must be an integer >= 0 (got {value!r})")
    return value


def _seconds(value: Any, key: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
        raise ValueError(f"{key} must be a number of seconds from 0 to 600 (got {value!r})")
    return float(value)


def _fraction(value: Any, key: str) -> Decimal | None:
    if value is None or value == 0:
        return None
    try:
        number = Decimal(str(value)) if isinstance(value, int | float | str) and not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not 0 < number < 1:
        raise ValueError(f"{key} must be a fraction between 0 and 1, e.g. 0.5 (got {value!r})")
    return number
