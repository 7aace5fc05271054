"""Fan-out of WebSocket frames: who subscribes to which stream, and one ordered outbox per connection.

Each frame is encoded once per stream (raw and, if anyone needs it, combined) and the same string is
queued to every subscriber; a writer task per connection drains its queue, so a slow client never
stalls the clock or the other clients. Hyperliquid connections are raw subscribers keyed by
`<channel>:<coin>[:<interval>]`. A `Tap` lets fault injection stall writes or add malformed frames."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import WSCloseCode, web

# A client this far behind is cut off, as Binance disconnects slow consumers.
MAX_BACKLOG = 500_000


class Tap(Protocol):
    """Fault injection and counting around one connection's writes (venuesim.injector)."""

    def stall(self) -> Awaitable[None] | None:
        """Something to await before the next write while sending is stalled, else None."""

    def after_send(self, text: str, data: bool) -> str | None:
        """Called after each frame is written; returns an extra (malformed) frame to write, or None."""


class Subscriber:
    """One WebSocket connection: its subscriptions, mode (raw or combined) and outbound queue."""

    def __init__(
        self, ws: web.WebSocketResponse, combined: bool, max_backlog: int = MAX_BACKLOG, tap: Tap | None = None
    ) -> None:
        self.ws = ws
        self.combined = combined
        self.streams: dict[str, None] = {}  # an ordered set: LIST_SUBSCRIPTIONS keeps subscription order
        self._queue: deque[tuple[str, bool]] = deque()
        self._wake = asyncio.Event()
        self._max_backlog = max_backlog
        self._overflowed = False
        self._tap = tap

    def push(self, text: str, data: bool = False) -> None:
        """Queue one text frame behind everything queued before it. data: a market data frame (not a
        reply to a request), which is what fault injection counts."""
        if len(self._queue) >= self._max_backlog:
            self._overflowed = True
        else:
            self._queue.append((text, data))
        self._wake.set()

    async def run_writer(self) -> None:
        """Send queued frames in order until the connection closes."""
        ws, queue, tap = self.ws, self._queue, self._tap
        while not ws.closed:
            await self._wake.wait()
            self._wake.clear()
            if self._overflowed:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"slow consumer")
                return
            try:
                while queue and not ws.closed:
                    if tap is None:
                        await ws.send_str(queue.popleft()[0])
                        continue
                    stalled = tap.stall()
                    if stalled is not None:
                        await stalled
                        continue  # re-check: the connection may have closed meanwhile
                    text, data = queue.popleft()
                    await ws.send_str(text)
                    extra = tap.after_send(text, data)
                    if extra is not None:
                        await ws.send_str(extra)
            except ConnectionError:
                return


class Hub:
    """Stream name -> subscribers. `on_subscribe` runs on every subscription (it starts the clock)."""

    def __init__(self, on_subscribe: Callable[[], None] = lambda: None) -> None:
        self._by_stream: dict[str, set[Subscriber]] = {}
        self._on_subscribe = on_subscribe

    def subscribe(self, sub: Subscriber, streams: list[str]) -> None:
        for name in streams:
            sub.streams[name] = None
            self._by_stream.setdefault(name, set()).add(sub)
        if streams:
            self._on_subscribe()

    def unsubscribe(self, sub: Subscriber, streams: list[str]) -> None:
        for name in streams:
            sub.streams.pop(name, None)
            subs = self._by_stream.get(name)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_stream[name]

    def drop(self, sub: Subscriber) -> None:
        """Forget a closed connection."""
        self.unsubscribe(sub, list(sub.streams))

    def wanted(self, stream: str) -> bool:
        """Whether anyone listens to `stream` (so the pump can skip building unwanted frames)."""
        return stream in self._by_stream

    def publish(self, stream: str, data_json: str, combined: str | None = None) -> None:
        """Send one encoded payload to every subscriber of `stream`, raw or wrapped as combined
        (`combined`: the wrapped text when already known, e.g. a recorded frame)."""
        subs = self._by_stream.get(stream)
        if not subs:
            return
        for sub in subs:
            if sub.combined:
                if combined is None:
                    combined = '{"stream":"' + stream + '","data":' + data_json + "}"
                sub.push(combined, True)
            else:
                sub.push(data_json, True)
