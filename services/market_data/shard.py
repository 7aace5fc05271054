"""One WebSocket connection carrying up to N symbols' kline streams.

On every (re)connect the shard backfills its symbols from REST before it lets live frames
through (frames that arrive meanwhile wait in a queue), so bars leave in open-time order and a
reconnect leaves no gap. Reconnects back off exponentially with jitter so that a blip over
hundreds of shards does not become a connection storm."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import aiohttp

from services.market_data.binance import combined_stream_url, kline_stream


class Shard:
    def __init__(
        self,
        index: int,
        *,
        ws_url: str,
        interval: str,
        session: aiohttp.ClientSession,
        on_frame: Callable[[int, bytes], Awaitable[None]],
        backfill: Callable[[list[str]], Awaitable[None]],
        backoff_initial: float,
        backoff_max: float,
        log: object,
        rng: random.Random,
    ) -> None:
        self.index = index
        self.ws_url = ws_url
        self.interval = interval
        self.session = session
        self.on_frame = on_frame
        self.backfill = backfill
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.log = log
        self.rng = rng  # jitter only; never reaches a core
        self.symbols: list[str] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._request_id = 0

    async def run(self, stop: asyncio.Event, first_delay: float = 0.0) -> None:
        delay = self.backoff_initial
        if first_delay:
            await _sleep_or_stop(stop, first_delay)
        while not stop.is_set():
            if not self.symbols:
                await _sleep_or_stop(stop, 0.2)
                continue
            try:
                await self._session_once(stop)
                delay = self.backoff_initial
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                self.log.warning("shard connection failed", shard=self.index, error=repr(exc))
            self.connected.clear()
            self.ws = None
            if stop.is_set():
                break
            self.reconnects += 1
            await _sleep_or_stop(stop, delay * (0.5 + self.rng.random()))
            delay = min(delay * 2, self.backoff_max)

    async def _session_once(self, stop: asyncio.Event) -> None:
        streams = [kline_stream(s, self.interval) for s in self.symbols]
        url = combined_stream_url(self.ws_url, streams)
        async with self.session.ws_connect(url, heartbeat=30, max_msg_size=0) as ws:
            self.ws = ws
            self.connected.set()
            self.log.info("shard connected", shard=self.index, symbols=len(self.symbols))
            queue: asyncio.Queue[bytes | None] = asyncio.Queue()
            worker = asyncio.create_task(self._drain(queue, list(self.symbols)))
            try:
                async for msg in ws:
                    if stop.is_set():
                        break
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        data = msg.data.encode() if isinstance(msg.data, str) else msg.data
                        queue.put_nowait(data)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
                    if worker.done():
                        worker.result()
            finally:
                queue.put_nowait(None)
                await worker

    async def _drain(self, queue: asyncio.Queue[bytes | None], symbols: list[str]) -> None:
        await self.backfill(symbols)
        while True:
            data = await queue.get()
            if data is None:
                return
            await self.on_frame(self.index, data)

    async def subscribe(self, symbols: list[str]) -> None:
        """Add symbols on the live connection (or on the next connect)."""
        self.symbols.extend(symbols)
        await self._send("SUBSCRIBE", symbols)

    async def unsubscribe(self, symbols: list[str]) -> None:
        self.symbols = [s for s in self.symbols if s not in set(symbols)]
        await self._send("UNSUBSCRIBE", symbols)

    async def _send(self, method: str, symbols: list[str]) -> None:
        if self.ws is None or self.ws.closed or not symbols:
            return
        self._request_id += 1
        params = [kline_stream(s, self.interval) for s in symbols]
        await self.ws.send_json({"method": method, "params": params, "id": self._request_id})


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
