"""One WebSocket connection carrying up to N streams of one venue.

On every (re)connect the shard backfills its symbols from REST before it lets live frames
through (frames that arrive meanwhile wait in a queue), so bars leave in open-time order and a
reconnect leaves no gap. Reconnects back off exponentially with jitter and pass the venue's
connection-attempt limiter, so a blip over hundreds of shards is not a storm. Control messages
are paced to the venue's per-connection message rate and, where the venue counts messages per IP,
to the feed's share of that budget (one WindowLimiter for all the feed's shards); a heartbeat is
sent where the venue needs one; a connection is renewed before the venue's maximum connection age."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
from structlog.typing import FilteringBoundLogger

from exchanges.base import VenueAdapter
from ticktape.events import ShardStatus
from ticktape.ratelimit import WindowLimiter


class Shard:
    def __init__(
        self,
        index: int,
        *,
        adapter: VenueAdapter,
        ws_url: str,
        interval: str,
        trades: bool,
        session: aiohttp.ClientSession,
        on_frame: Callable[[int, bytes], Awaitable[None]],
        backfill: Callable[[list[str]], Awaitable[None]],
        limiter: WindowLimiter,  # connection attempts per window, per venue
        backoff_initial: float,
        backoff_max: float,
        log: FilteringBoundLogger,
        rng: random.Random,
        pacer: WindowLimiter | None = None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self.index = index
        self.adapter = adapter
        self.ws_url = ws_url
        self.interval = interval
        self.trades = trades
        self.session = session
        self.on_frame = on_frame
        self.backfill = backfill
        self.limiter = limiter
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.log = log
        self.rng = rng  # jitter only; never reaches a core
        self.pacer = pacer  # the venue's per-IP message budget, shared by every shard of the feed
        self.symbols: list[str] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.on_reconnect = on_reconnect  # counts reconnects in the metrics (ticktape_ws_reconnects)
        self.frames = 0
        self.last_frame_at: float | None = None
        self._rate_mark = (time.monotonic(), 0)
        self._request_id = 0
        self._send_lock = asyncio.Lock()

    def _streams(self, symbols: list[str]) -> list[str]:
        return [s for sym in symbols for s in self.adapter.streams(sym, self.interval, trades=self.trades)]

    async def run(self, stop: asyncio.Event, first_delay: float = 0.0) -> None:
        delay = self.backoff_initial
        if first_delay:
            await _sleep_or_stop(stop, first_delay)
        while not stop.is_set():
            if not self.symbols:
                await _sleep_or_stop(stop, 0.2)
                continue
            await _until_stop(stop, self.limiter.acquire())
            if stop.is_set():
                break
            try:
                await _until_stop(stop, self._session_once(stop))
                delay = self.backoff_initial
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                status = getattr(exc, "status", None)
                self.log.warning(
                    "shard connection failed",
                    venue=self.adapter.venue,
                    shard=self.index,
                    error=type(exc).__name__,
                    http_status=status,
                    detail=None if status else str(exc)[:200],
                )
            self.connected.clear()
            self.ws = None
            if stop.is_set():
                break
            self.reconnects += 1
            if self.on_reconnect is not None:
                self.on_reconnect()
            await _sleep_or_stop(stop, delay * (0.5 + self.rng.random()))
            delay = min(delay * 2, self.backoff_max)

    async def _session_once(self, stop: asyncio.Event) -> None:
        symbols = list(self.symbols)
        streams = self._streams(symbols)
        url = self.adapter.connect_url(self.ws_url, streams)
        async with self.session.ws_connect(url, heartbeat=30, max_msg_size=0) as ws:
            self.ws = ws
            opened = time.monotonic()
            self.adapter.reset(symbols)
            for message in self.adapter.on_connect_messages(streams, self._next_ids(streams)):
                await self._send(message)
            self.connected.set()
            self.log.info("shard connected", venue=self.adapter.venue, shard=self.index, symbols=len(symbols))
            queue: asyncio.Queue[bytes | None] = asyncio.Queue()
            worker = asyncio.create_task(self._drain(queue, symbols))
            keeper = asyncio.create_task(self._keepalive(ws, opened))
            try:
                async for msg in ws:
                    if stop.is_set():
                        break
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        data = msg.data.encode() if isinstance(msg.data, str) else msg.data
                        self.frames += 1
                        self.last_frame_at = time.monotonic()
                        queue.put_nowait(data)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
                    if worker.done():
                        worker.result()
            finally:
                keeper.cancel()
                if stop.is_set():  # stopping: queued frames and a running backfill are dropped (a
                    worker.cancel()  # restart backfills them), so the service exits at once
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                else:
                    queue.put_nowait(None)
                    await worker

    async def _drain(self, queue: asyncio.Queue[bytes | None], symbols: list[str]) -> None:
        await self.backfill(symbols)
        while True:
            data = await queue.get()
            if data is None:
                return
            await self.on_frame(self.index, data)

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse, opened: float) -> None:
        """Heartbeats where the venue needs them; renew before the venue's connection age cap."""
        limits = self.adapter.limits
        beat = self.adapter.heartbeat_message()
        interval = (limits.idle_timeout_s / 2) if beat and limits.idle_timeout_s else None
        max_age = (limits.max_connection_age_s - 300) if limits.max_connection_age_s else None
        while not ws.closed:
            await asyncio.sleep(min(interval or 60.0, 60.0))
            if beat and interval:
                await self._send(beat)
            if max_age and time.monotonic() - opened > max_age:
                self.log.info("renewing connection before the venue's age limit", shard=self.index)
                await ws.close()

    def _next_ids(self, streams: list[str]) -> int:
        first = self._request_id + 1
        self._request_id += max(1, len(streams))
        return first

    async def subscribe(self, symbols: list[str]) -> None:
        """Add symbols on the live connection (or on the next connect)."""
        self.symbols.extend(symbols)
        if self.ws is not None and not self.ws.closed:
            streams = self._streams(symbols)
            for message in self.adapter.subscribe_messages(streams, self._next_ids(streams)):
                await self._send(message)

    async def unsubscribe(self, symbols: list[str]) -> None:
        gone = set(symbols)
        self.symbols = [s for s in self.symbols if s not in gone]
        if self.ws is not None and not self.ws.closed:
            streams = self._streams(symbols)
            for message in self.adapter.unsubscribe_messages(streams, self._next_ids(streams)):
                await self._send(message)

    async def _send(self, message: bytes) -> None:
        """Send one control message, paced to the venue's per-connection message rate and to the
        feed's share of the venue's per-IP messages a minute (the shared pacer)."""
        rate = self.adapter.limits.messages_per_second_per_connection
        async with self._send_lock:
            if self.pacer is not None:
                await self.pacer.acquire()
            if rate:
                start, sent = self._rate_mark
                now = time.monotonic()
                if now - start >= 1.0:
                    start, sent = now, 0
                if sent >= rate:
                    await asyncio.sleep(1.0 - (now - start))
                    start, sent = time.monotonic(), 0
                self._rate_mark = (start, sent + 1)
            if self.ws is not None and not self.ws.closed:
                await self.ws.send_str(message.decode())  # venues expect text frames

    def status(self, now: float, window_frames: int, window_s: float) -> ShardStatus:
        age = None if self.last_frame_at is None else int((now - self.last_frame_at) * 1000)
        return ShardStatus(
            shard=self.index,
            connected=self.connected.is_set(),
            symbols=len(self.symbols),
            last_frame_age_ms=age,
            reconnects=self.reconnects,
            frames_per_s=round(window_frames / window_s, 3) if window_s > 0 else 0.0,
        )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _until_stop(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Await `work`, cancelled as soon as `stop` is set: a socket with no frames, a backoff, a
    REST backfill or the connection limiter never holds up a stop."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()  # its failure, for run() to handle
