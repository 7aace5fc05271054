"""Hyperliquid's WebSocket, `/hyperliquid/ws`: subscribe / unsubscribe / ping.

Subscriptions: `candle` (coin served, interval 1m: frames from the bars, see venuesim.pump and
venuesim.hyperliquid), `trades` and `l2Book` (any coin: frames only from replayed captures; the bars
hold no trades or books, so none are invented), and a `user`'s `orderUpdates`, `userFills` (with
its snapshot first), `userEvents` (channel `user`) and `userFundings` (its snapshot first) from
the simulator's trading (venuesim.hyperliquid_trading). Replies: `{"channel":"subscriptionResponse","data":
{"method":..,"subscription":..}}`, `{"channel":"pong"}`, and `{"channel":"error","data":"<text>"}`
with Hyperliquid's texts: `Invalid subscription <json>`, `Already subscribed: <json>`, `Already
unsubscribed: <json>` (the last one unconfirmed) and, beyond the cap of 1,000 subscriptions per IP
address (Hyperliquid's documented limit, counted over all of the address's connections), `Cannot
subscribe to more than 1000 channels.`. The other documented per-IP limits are enforced too
(venuesim.iplimits), with answers of our own since Hyperliquid documents none: beyond 10 open
connections an upgrade gets HTTP 429; beyond 2,000 messages in any 60 s a message is not
processed and is answered `{"channel":"error","data":"Too many messages: ..."}`. Deviations:
other subscription types and other candle intervals are answered `Invalid subscription`."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from venuesim import hyperliquid as wire
from venuesim.feed import Hub, Subscriber
from venuesim.hyperliquid_trading import USER_CHANNELS, HyperliquidTrading, channel_key
from venuesim.iplimits import IpLimits
from venuesim.market import Market
from venuesim.venues import HYPERLIQUID

if TYPE_CHECKING:
    from venuesim.injector import Injector

MAX_SUBSCRIPTIONS_PER_IP = 1000
# The stricter of the numbers Hyperliquid has published (its docs once said 100 connections).
MAX_CONNECTIONS_PER_IP = 10
MAX_MESSAGES_PER_MINUTE_PER_IP = 2000
MAX_REST_WEIGHT_PER_MINUTE_PER_IP = 1200  # POST /info (venuesim.rest_hyperliquid)
_encode = msgspec.json.Encoder().encode
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class HyperliquidWs:
    def __init__(
        self,
        market: Market,
        hub: Hub,
        heartbeat: float | None,
        injector: Injector | None = None,
        max_subscriptions: int = MAX_SUBSCRIPTIONS_PER_IP,
        limits: IpLimits | None = None,
        user_feed: HyperliquidTrading | None = None,
    ) -> None:
        self.market = market
        self.hub = hub
        self.heartbeat = heartbeat
        self.injector = injector
        self.limits = limits if limits is not None else IpLimits(max_subscriptions=max_subscriptions)
        self.max_subscriptions = self.limits.max_subscriptions
        self.user_feed = user_feed
        self.sockets: set[web.WebSocketResponse] = set()

    def routes(self, prefix: str = "/hyperliquid") -> list[web.RouteDef]:
        return [web.get(f"{prefix}/ws", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refused = self.injector.refuse_upgrade() if self.injector else None
        if refused is not None:
            return refused
        ip = request.remote or ""
        if not self.limits.connect(ip):
            limit = self.limits.max_connections
            return web.Response(status=429, text=f"Too many connections: more than {limit} from this IP")
        try:
            ws = web.WebSocketResponse(heartbeat=self.heartbeat)
            await ws.prepare(request)
        except BaseException:
            self.limits.disconnect(ip, 0)
            raise
        self.sockets.add(ws)
        tap = self.injector.connect(ws, HYPERLIQUID) if self.injector else None
        sub = Subscriber(ws, combined=False, tap=tap)
        writer = asyncio.create_task(sub.run_writer())
        try:
            async for msg in self.injector.messages(ws, tap) if self.injector and tap else ws:
                if msg.type == WSMsgType.TEXT:
                    if not self.limits.message(ip):
                        limit = self.limits.max_messages_per_minute
                        sub.push(
                            _encode(_error(f"Too many messages: more than {limit} a minute from this IP")).decode()
                        )
                        continue
                    reply = self.control(sub, ip, msg.data)
                    sub.push(_encode(reply).decode())
                    data = reply.get("data")
                    if self.user_feed is not None and isinstance(data, dict) and data.get("method") == "subscribe":
                        for frame in self.user_feed.snapshot(data["subscription"]):
                            sub.push(frame)
        finally:
            self.limits.disconnect(ip, len(sub.streams))
            self.hub.drop(sub)
            self.sockets.discard(ws)
            if self.injector:
                self.injector.disconnect(ws)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    def control(self, sub: Subscriber, ip: str, text: str) -> dict[str, Any]:
        """The reply to one client message."""
        try:
            req = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's stack
            return _error(f"Invalid message: {text}")
        method = req.get("method") if isinstance(req, dict) else None
        if method == "ping":
            return {"channel": "pong"}
        if method not in ("subscribe", "unsubscribe"):
            return _error(f"Invalid message: {text}")
        subscription = req.get("subscription")
        parsed = self.parse(subscription)
        if parsed is None:
            return _error(f"Invalid subscription {_compact(subscription)}")
        key, canonical = parsed
        if method == "subscribe":
            if key in sub.streams:
                return _error(f"Already subscribed: {_compact(canonical)}")
            if not self.limits.subscribe(ip):
                return _error(f"Cannot subscribe to more than {self.limits.max_subscriptions} channels.")
            self.hub.subscribe(sub, [key])
        else:
            if key not in sub.streams:
                return _error(f"Already unsubscribed: {_compact(canonical)}")
            self.limits.unsubscribe(ip)
            self.hub.unsubscribe(sub, [key])
        return {"channel": "subscriptionResponse", "data": {"method": method, "subscription": canonical}}

    def parse(self, subscription: Any) -> tuple[str, dict[str, Any]] | None:
        """(hub key, the subscription as Hyperliquid writes it back), or None when invalid."""
        if isinstance(subscription, dict) and subscription.get("type") in USER_CHANNELS:
            user = subscription.get("user")
            if not isinstance(user, str) or not _ADDRESS.match(user):
                return None
            canonical = {"type": subscription["type"], "user": user}
            if subscription["type"] == "userFills" and isinstance(subscription.get("aggregateByTime"), bool):
                canonical["aggregateByTime"] = subscription["aggregateByTime"]
            return channel_key(subscription["type"], user), canonical
        if not isinstance(subscription, dict) or not isinstance(subscription.get("coin"), str):
            return None
        kind, coin = subscription.get("type"), subscription["coin"]
        if kind == "candle":
            interval = subscription.get("interval")
            if interval != wire.INTERVAL or self.market.get(coin) is None:
                return None
            return wire.candle_key(coin, interval), {"type": "candle", "interval": interval, "coin": coin}
        if kind in ("trades", "l2Book"):
            return f"{kind}:{coin}", {"type": kind, "coin": coin}
        return None


def _error(text: str) -> dict[str, Any]:
    return {"channel": "error", "data": text}


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
