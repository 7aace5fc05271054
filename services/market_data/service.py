"""The market-data shell: follows the universe, runs the shards, publishes each closed bar once.

Bars are published with Nats-Msg-Id = bar id (venue, symbol, timeframe, open time); after a
restart the core is seeded with each symbol's last bar read back from the stream, so a bar is
never published twice, and the gap since then is backfilled from REST."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace

from ticktape import config as cfg
from ticktape import runtime, subjects, telemetry
from ticktape.bus.deadletter import dead_letter
from ticktape.bus.publisher import publish_batch
from ticktape.events import BarClosed, UniverseUpdated
from ticktape.events.codec import DecodeError, decode

from services.market_data.binance import FrameError, klines_url
from services.market_data.config import MarketDataConfig
from services.market_data.core import MarketDataCore
from services.market_data.shard import Shard


def load(raw: dict[str, Any]) -> MarketDataConfig:
    return cfg.load_section("market_data", MarketDataConfig, raw)


def venue_urls(common: cfg.CommonSettings, config: MarketDataConfig) -> tuple[str, str]:
    """(rest, ws) base URLs; --venue-sim points both at the simulator."""
    if common.venue_sim:
        rest = common.venue_sim.rstrip("/")
        return rest, "ws" + rest[len("http"):] if rest.startswith("http") else rest
    return config.rest_url, config.ws_url


class MarketDataShell:
    def __init__(self, rt: runtime.Runtime, config: MarketDataConfig, session: aiohttp.ClientSession) -> None:
        self.rt = rt
        self.config = config
        self.session = session
        self.core = MarketDataCore(config.venue, config.timeframe)
        self.rest_url, self.ws_url = venue_urls(rt.common, config)
        self.shards: list[Shard] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.tracer = trace.get_tracer("ticktape.market_data")
        self.rng = random.Random(0)
        self.seeded: set[str] = set()

    async def run(self) -> None:
        sub = await self.rt.js.subscribe(
            subjects.universe(self.config.venue), stream=self.rt.common.nats.stream,
            ordered_consumer=True, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        )
        try:
            while not self.rt.stop.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except Exception:  # nats TimeoutError: nothing new
                    continue
                try:
                    event = decode(msg.data)
                except DecodeError as exc:
                    self.rt.metrics.rejected("undecodable")
                    self.rt.log.warning("undecodable universe message ignored", error=str(exc))
                    continue
                if isinstance(event, UniverseUpdated):
                    await self.set_universe(list(event.symbols))
        finally:
            await sub.unsubscribe()
            for task in self.tasks:
                await asyncio.gather(task, return_exceptions=True)

    async def set_universe(self, symbols: list[str]) -> None:
        current = {s for shard in self.shards for s in shard.symbols}
        wanted = set(symbols)
        removed = sorted(current - wanted)
        added = [s for s in symbols if s not in current]
        self.rt.log.info("universe", symbols=len(symbols), added=len(added), removed=len(removed))
        for shard in self.shards:
            gone = [s for s in shard.symbols if s in set(removed)]
            if gone:
                await shard.unsubscribe(gone)
        per = self.config.streams_per_connection
        for symbol in added:
            await self._seed(symbol)
        while added:
            shard = next((s for s in self.shards if len(s.symbols) < per), None) or self._new_shard()
            take, added = added[: per - len(shard.symbols)], added[per - len(shard.symbols):]
            await shard.subscribe(take)

    def _new_shard(self) -> Shard:
        shard = Shard(
            len(self.shards), ws_url=self.ws_url, interval=self.config.timeframe, session=self.session,
            on_frame=self.on_frame, backfill=self.backfill,
            backoff_initial=self.config.reconnect_backoff_initial_s,
            backoff_max=self.config.reconnect_backoff_max_s, log=self.rt.log, rng=self.rng,
        )
        self.shards.append(shard)
        # stagger first connects so hundreds of shards do not all dial at once
        first_delay = 0.05 * shard.index
        self.tasks.append(asyncio.create_task(shard.run(self.rt.stop, first_delay)))
        return shard

    async def _seed(self, symbol: str) -> None:
        """Seed the core with the last bar already in the stream (restart without duplicates)."""
        if symbol in self.seeded:
            return
        self.seeded.add(symbol)
        subject = subjects.bar(self.config.venue, symbol, self.config.timeframe)
        try:
            raw = await self.rt.js.get_last_msg(self.rt.common.nats.stream, subject)
        except NotFoundError:
            return
        event = decode(raw.data)
        if isinstance(event, BarClosed):
            self.core.seed_last(symbol, event.open_time)

    async def on_frame(self, shard: int, data: bytes) -> None:
        self.rt.metrics.received()
        try:
            bars = self.core.on_frame(data, time.time_ns())
        except FrameError as exc:
            self.rt.metrics.rejected("malformed_frame")
            self.rt.log.warning("malformed exchange frame dead-lettered", shard=shard, error=str(exc))
            letter = dead_letter(service=self.rt.name, source=f"ws:{self.config.venue}:shard{shard}",
                                 error=str(exc), payload=data, ts_ns=time.time_ns())
            await publish_batch(self.rt.js, [(letter, {})])
            self.rt.metrics.dead_lettered()
            return
        await self.publish(bars)

    async def publish(self, bars: list[BarClosed]) -> None:
        items = []
        for bar in bars:
            with self.tracer.start_as_current_span(
                "market_data bar closed", kind=trace.SpanKind.PRODUCER,
                attributes={"ticktape.event_id": bar.event_id, "ticktape.symbol": bar.symbol},
            ):
                items.append((bar, telemetry.inject({})))
        if items:
            await publish_batch(self.rt.js, items)
            self.rt.metrics.published(len(items))

    async def backfill(self, symbols: list[str]) -> None:
        """Fetch and publish, oldest first, every closed bar missed since the last published."""
        server_ms = await self._server_time_ms()
        for symbol in symbols:
            start = self.core.backfill_start_ms(symbol)
            while start is not None:
                url = klines_url(self.rest_url, symbol, self.config.timeframe, start_ms=start,
                                 limit=self.config.backfill_limit)
                async with self.session.get(url) as resp:
                    resp.raise_for_status()
                    rows = await resp.read()
                bars = self.core.on_rest_klines(symbol, rows, time.time_ns(), server_ms)
                await self.publish(bars)
                if bars:
                    self.rt.log.info("backfilled", symbol=symbol, bars=len(bars))
                if len(bars) < self.config.backfill_limit - 1:
                    break
                start = self.core.backfill_start_ms(symbol)

    async def _server_time_ms(self) -> int:
        async with self.session.get(f"{self.rest_url}/fapi/v1/time") as resp:
            resp.raise_for_status()
            return int((await resp.json())["serverTime"])


async def serve(rt: runtime.Runtime, config: MarketDataConfig) -> None:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await MarketDataShell(rt, config, session).run()


def main() -> None:
    runtime.run("market_data", load, serve)
