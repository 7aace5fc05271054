"""Fault injection at run time: the open WebSockets of every venue, drops, stalls, refused
upgrades, malformed frames and skipped bars, on a schedule from the flags or on request
(POST /_sim/fault, venuesim.control). Settings and their parsing: venuesim.faults.

Periodic faults run at fixed wall-clock offsets from the moment the sim clock starts (first
subscription, or boot with --start): drops at k × drop_every, stalls at k × every, k = 1, 2, ...
A setting changed through the control endpoint restarts its schedule from that moment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from venuesim import faults
from venuesim.faults import FaultConfig
from venuesim.market import Series
from venuesim.stats import Stats

# How long a drop waits for clients to answer the close frames before carrying on.
CLOSE_WAIT_S = 1.0


class Injector:
    """The faults of one simulator: its settings (`config`), open sockets and counters."""

    def __init__(self, config: FaultConfig, stats: Stats) -> None:
        self.config = config
        self.stats = stats
        self._sockets: dict[web.WebSocketResponse, ConnTap] = {}
        self._refuse_until = 0.0
        self._stall_until = 0.0
        self._resume: asyncio.Event | None = None
        self._periodic: dict[str, asyncio.Task[None]] = {}
        self._started = False

    # connections -------------------------------------------------------------------------------

    def connect(self, ws: web.WebSocketResponse, venue: str) -> ConnTap:
        """Track an open WebSocket; returns the tap its writer and handler consult."""
        tap = self._sockets[ws] = ConnTap(self, venue)
        self.stats.connections[venue] += 1
        return tap

    def disconnect(self, ws: web.WebSocketResponse) -> None:
        tap = self._sockets.pop(ws, None)
        if tap is not None:
            self.stats.connections[tap.venue] -= 1
            tap.closed.set()

    async def messages(self, ws: web.WebSocketResponse, tap: ConnTap) -> AsyncIterator[WSMessage]:
        """The client's messages until it closes, or until a drop: then the handler itself closes
        with 1001 and waits for the client's close reply (a close from another task would end the
        TCP connection before the client can answer)."""
        dropped = asyncio.ensure_future(tap.dropped.wait())
        try:
            while True:
                receive = asyncio.ensure_future(ws.receive())
                await asyncio.wait({receive, dropped}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    await asyncio.gather(receive, return_exceptions=True)
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restart")
                    return
                msg = receive.result()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    return
                yield msg
        finally:
            dropped.cancel()

    def refuse_upgrade(self) -> web.Response | None:
        """HTTP 503 for a WebSocket upgrade while reconnects are refused, else None."""
        if _now() < self._refuse_until:
            self.stats.refused_connects += 1
            return web.Response(status=503, text="503 Service Unavailable")
        return None

    # faults --------------------------------------------------------------------------------------

    async def drop_now(self) -> None:
        """Close every WebSocket with 1001 (going away), as a venue's server restart does, then
        refuse upgrades for `refuse_reconnect` seconds."""
        self.stats.drop_events += 1
        if self.config.refuse_reconnect:
            self.refuse_now(self.config.refuse_reconnect)
        taps = list(self._sockets.values())
        self.stats.drops += len(taps)
        for tap in taps:
            tap.dropped.set()
        if taps:  # the close frames go out at once; a client that never answers cannot hold us up
            waiting = [asyncio.ensure_future(tap.closed.wait()) for tap in taps]
            _, pending = await asyncio.wait(waiting, timeout=CLOSE_WAIT_S)
            for waiter in pending:
                waiter.cancel()

    def refuse_now(self, seconds: float) -> None:
        self._refuse_until = max(self._refuse_until, _now() + seconds)

    def stall_now(self, seconds: float) -> None:
        """Send nothing to any connection for `seconds` (queued frames wait; connections stay open)."""
        self.stats.stalls += 1
        if self._resume is None:
            self._resume = asyncio.Event()
        self._resume.clear()
        until = _now() + seconds
        if until > self._stall_until:
            self._stall_until = until
            asyncio.get_running_loop().call_at(until, self._end_stall)

    def _end_stall(self) -> None:
        if self._resume is not None and _now() >= self._stall_until:
            self._resume.set()

    def stall_wait(self) -> Awaitable[Any] | None:
        if self._resume is None or self._resume.is_set():
            return None
        return self._resume.wait()

    def skip(self, series: Series, i: int) -> bool:
        """Whether bar i's WebSocket frames are withheld (counted when so)."""
        config = self.config
        if i in config.skip_indexes or series.open_times[i] in config.skip_times:
            self.stats.skipped_frames += 1
            return True
        return False

    # schedule ------------------------------------------------------------------------------------

    def start(self) -> None:
        """The sim clock started: begin the periodic faults (once)."""
        if not self._started:
            self._started = True
            self._schedule("drop_every")
            self._schedule("stall")

    def _schedule(self, name: str) -> None:
        old = self._periodic.pop(name, None)
        if old is not None:
            old.cancel()
        if not self._started:
            return
        if name == "drop_every" and self.config.drop_every:
            self._periodic[name] = asyncio.create_task(_every(self.config.drop_every, self.drop_now))
        elif name == "stall" and self.config.stall:
            seconds, every = self.config.stall
            self._periodic[name] = asyncio.create_task(_every(every, lambda: self.stall_now(seconds)))

    async def close(self) -> None:
        tasks = list(self._periodic.values())
        self._periodic.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # control -------------------------------------------------------------------------------------

    async def apply(self, body: Any) -> dict[str, Any]:
        """Apply a POST /_sim/fault body; ValueError (nothing changed) when any part is invalid."""
        changes, actions = faults.parse_control(body)
        self.config = self.config.replace(**changes)
        for name in ("drop_every", "stall"):
            if name in changes:
                self._schedule(name)
        if "refuse_now" in actions:
            self.refuse_now(actions["refuse_now"])
        if "stall_now" in actions:
            self.stall_now(actions["stall_now"])
        if actions.get("drop_now"):
            await self.drop_now()
        return {"faults": self.config.describe()}


class ConnTap:
    """One connection's view of the faults: stalls, frame counting, malformed frames in rotation,
    drops (`dropped`: close now; `closed`: the handler is done)."""

    __slots__ = ("_injector", "venue", "_data_frames", "_malformed", "dropped", "closed")

    def __init__(self, injector: Injector, venue: str) -> None:
        self._injector, self.venue = injector, venue
        self._data_frames = self._malformed = 0
        self.dropped, self.closed = asyncio.Event(), asyncio.Event()

    def stall(self) -> Awaitable[Any] | None:
        return self._injector.stall_wait()

    def after_send(self, text: str, data: bool) -> str | None:
        if not data:
            return None
        injector = self._injector
        injector.stats.frames_sent[self.venue] += 1
        if '"x":true' in text:
            injector.stats.final_kline_sent(self.venue, text)
        every = injector.config.malformed_every
        if not every:
            return None
        self._data_frames += 1
        if self._data_frames % every:
            return None
        bad = faults.malformed(text, self._malformed)
        self._malformed += 1
        injector.stats.malformed_sent += 1
        return bad


async def _every(period: float, action: Callable[[], Any]) -> None:
    loop = asyncio.get_running_loop()
    anchor, k = loop.time(), 1
    while True:
        await asyncio.sleep(max(0.0, anchor + k * period - loop.time()))
        result = action()
        if asyncio.iscoroutine(result):
            with contextlib.suppress(Exception):
                await result
        k += 1


def _now() -> float:
    return asyncio.get_running_loop().time()
