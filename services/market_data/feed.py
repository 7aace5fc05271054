"""One venue's feed: follows its universe, spreads symbols over shards, publishes closed bars
(and aggregates, and optionally trades) exactly once, repairs gaps from REST, reports health."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import nats.errors
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace

from exchanges import adapter_for, budget
from exchanges.base import FrameError, HttpRequest
from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.core import MarketDataCore
from services.market_data.shard import Shard
from ticktape import config as cfg
from ticktape import ids, runtime, subjects, telemetry
from ticktape.bus.atomic import Publisher
from ticktape.bus.deadletter import dead_letter
from ticktape.bus.publisher import max_payload
from ticktape.events import BarClosed, BarRejected, MarketDataStatus, TradeTick, UniverseUpdated
from ticktape.events.codec import DecodeError, decode
from ticktape.ratelimit import WindowLimiter

# The simulator serves each venue under /<venue>; Hyperliquid's socket lives at /ws below it.
SIM_WS_SUFFIX = {"hyperliquid": "/ws"}


def venue_urls(venue_sim: str | None, vcfg: VenueFeedConfig, rest: str, ws: str) -> tuple[str, str]:
    if venue_sim:
        base = venue_sim.rstrip("/") + "/" + vcfg.venue
        ws_base = "ws" + base[len("http") :] if base.startswith("http") else base
        return base, ws_base + SIM_WS_SUFFIX.get(vcfg.venue, "")
    return vcfg.rest_url or rest, vcfg.ws_url or ws


class VenueFeed:
    def __init__(
        self,
        rt: runtime.Runtime,
        config: MarketDataConfig,
        vcfg: VenueFeedConfig,
        session: aiohttp.ClientSession,
        publisher: Publisher,
    ) -> None:
        self.rt = rt
        self.config = config
        self.vcfg = vcfg
        self.session = session
        self.publisher = publisher
        self.adapter = adapter_for(vcfg.venue)
        self.core = MarketDataCore(self.adapter, config.timeframe, aggregate=config.aggregate, checks=config.bar_checks)
        self.rest_url, self.ws_url = venue_urls(
            rt.common.venue_sim, vcfg, self.adapter.default_rest_url, self.adapter.default_ws_url
        )
        try:  # market data's share of the venue's per-IP limits (the shared `venues` config)
            self.budget = budget.ip_budget(vcfg.venue, rt.common.venues.of(vcfg.venue), "market_data")
        except ValueError as exc:
            rt.log.error(str(cfg.ConfigError(str(exc))))
            raise SystemExit(cfg.EXIT_CONFIG) from None
        self.limiter = WindowLimiter(self.budget.connection_attempts, self.budget.connection_window_s)
        # One pacer for every shard of this venue: the venue counts messages per IP, not per socket.
        self.pacer = WindowLimiter(self.budget.messages_per_minute, 60.0)
        self.rest_pacer = WindowLimiter(self.budget.rest_weight_per_minute, 60.0)  # request weight
        self.plan: budget.UniversePlan | None = None
        self.backfill_limit = min(config.backfill_limit, self.adapter.limits.backfill_max_rows)
        self.shards: list[Shard] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.tracer = trace.get_tracer("ticktape.market_data")
        self.rng = random.Random(hash(vcfg.venue) & 0xFFFF)
        self.seeded: set[str] = set()
        self._status_mark: dict[int, tuple[float, int]] = {}
        self._date_header: str | None = None
        self._trade_subjects: dict[str, str] = {}
        # Roll-ups (5m..1d) of live frames wait until every followed symbol's 1m bar of their
        # minute is out (see publish_later), so a window-closing minute's 1m bars are not queued
        # behind up to five roll-ups each on the way to JetStream.
        self._later: list[BarClosed] = []
        self._later_symbols: set[str] = set()
        self._minute = -1  # open time (ns) of the newest live 1m bar published
        self._minute_symbols: set[str] = set()  # symbols whose 1m bar of that minute is out
        self.dead_letters = runtime.dead_letters(rt)  # its object store keeps frames too large to inline

    @property
    def venue(self) -> str:
        return self.vcfg.venue

    async def run(self) -> None:
        await self.warm()
        sub = await self.rt.js.subscribe(
            subjects.universe(self.venue),
            stream=self.rt.common.nats.stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        )
        try:
            while not self.rt.stop.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except nats.errors.Error:  # TimeoutError: nothing new; reconnecting: the ordered consumer resumes
                    continue
                try:
                    event = subjects.decode_on(msg.subject, msg.data)  # a universe, on its own subject
                except DecodeError as exc:
                    self.rt.metrics.rejected("undecodable")
                    self.rt.log.warning("undecodable universe message ignored", error=str(exc))
                    continue
                if isinstance(event, UniverseUpdated):
                    await self.set_universe(await self.within_budget(event))
        finally:
            for task in self.tasks:  # the shards end on rt.stop, at once: cancelled
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await sub.unsubscribe()

    async def warm(self) -> None:
        """Restart: re-read the venue's recent 1m bars from the stream (at least since the start
        of the longest aggregate window) to seed what was published and rebuild open windows."""
        from ticktape.bus.reader import read_range

        last = (await self.rt.js.stream_info(self.rt.common.nats.stream)).state.last_seq
        if not last:
            return
        bars: list[BarClosed] = []
        async for msg in read_range(
            self.rt.js,
            self.rt.common.nats.stream,
            [subjects.bars(self.venue, "*", self.config.timeframe)],
            start_time_s=time.time() - 26 * 3600,
        ):
            try:
                event = subjects.decode_on(msg.subject, msg.data)
            except DecodeError as exc:  # dead-lettered by its consumers; not a bar to warm from
                self.rt.metrics.rejected("undecodable")
                self.rt.log.warning("undecodable bar skipped while warming", subject=msg.subject, error=str(exc))
                continue
            if isinstance(event, BarClosed):
                bars.append(event)
        self.core.warm(bars)
        self.seeded.update(b.symbol for b in bars)
        if bars:
            self.rt.log.info("warmed from the stream", venue=self.venue, bars=len(bars))

    async def within_budget(self, universe: UniverseUpdated) -> list[str]:
        """The symbols of `universe` that fit market data's share of the venue's per-IP budget
        (exchanges.budget.plan_universe): all of them, or the best-ranked ones with a
        UniverseTrimmed published on md.trimmed.<venue>; with venues.<venue>.on_exceed: refuse,
        a config error that stops the service (exit 78)."""
        per_symbol = 2 if self.vcfg.trades else 1  # the shards' streams: a kline stream, and trades
        plan = budget.plan_universe(
            self.budget,
            universe.symbols,
            streams_per_symbol=per_symbol,
            streams_per_connection=self.vcfg.streams_per_connection,
        )
        self.plan = plan
        if plan.decision == "refused":
            key = "symbol_registry.venues[].top_n"
            self.rt.log.error(str(cfg.ConfigError(budget.refusal(plan, self.budget, key))))
            raise SystemExit(cfg.EXIT_CONFIG)
        if plan.decision == "trimmed":
            event = budget.trimmed_event(
                plan, service="market_data", universe_id=universe.event_id, ts=universe.ts_event
            )
            self.rt.log.warning(
                "universe trimmed to the venue's per-IP budget",
                venue=self.venue,
                wanted=len(plan.wanted),
                kept=len(plan.kept),
                limit=plan.bound,
                limit_value=plan.bound_value,
            )
            await self.publisher.publish(event)
            await self.publisher.flush()
            self.rt.metrics.universe_trimmed(self.venue, len(plan.wanted) - len(plan.kept))
        return list(plan.kept)

    async def set_universe(self, symbols: list[str]) -> None:
        current = {s for shard in self.shards for s in shard.symbols}
        wanted = set(symbols)
        removed = sorted(current - wanted)
        added = [s for s in symbols if s not in current]
        self.rt.log.info("universe", venue=self.venue, symbols=len(symbols), added=len(added), removed=len(removed))
        for shard in self.shards:
            gone = [s for s in shard.symbols if s in set(removed)]
            if gone:
                await shard.unsubscribe(gone)
        per = self.vcfg.streams_per_connection // (2 if self.vcfg.trades else 1) or 1
        for symbol in added:
            await self._seed(symbol)
        while added:
            shard = next((s for s in self.shards if len(s.symbols) < per), None) or self._new_shard()
            take, added = added[: per - len(shard.symbols)], added[per - len(shard.symbols) :]
            if shard.connected.is_set():
                # on a live connection: history first, then the live stream (a minute that closes
                # in between is a gap the core holds and repairs)
                await self.backfill(take)
            await shard.subscribe(take)

    def _new_shard(self) -> Shard:
        shard = Shard(
            len(self.shards),
            adapter=self.adapter,
            ws_url=self.ws_url,
            interval=self.config.timeframe,
            trades=self.vcfg.trades,
            session=self.session,
            on_frame=self.on_frame,
            backfill=self.backfill,
            limiter=self.limiter,
            backoff_initial=self.config.reconnect_backoff_initial_s,
            backoff_max=self.config.reconnect_backoff_max_s,
            log=self.rt.log,
            rng=self.rng,
            pacer=self.pacer,
            on_reconnect=self.rt.metrics.ws_reconnect_counter(self.venue, len(self.shards)).inc,
        )
        self.shards.append(shard)
        self.rt.metrics.shard_connected(self.venue, shard.index, shard.connected.is_set)
        # stagger first connects so hundreds of shards do not all dial at once
        self.tasks.append(asyncio.create_task(shard.run(self.rt.stop, 0.05 * shard.index)))
        return shard

    async def _seed(self, symbol: str) -> None:
        """Seed the core with the last bar already in the stream (restart without duplicates)."""
        if symbol in self.seeded:
            return
        self.seeded.add(symbol)
        subject = subjects.bar(self.venue, symbol, self.config.timeframe)
        try:
            raw = await self.rt.js.get_last_msg(self.rt.common.nats.stream, subject)
        except NotFoundError:
            return
        event = decode(raw.data or b"")  # nats-py gives None for an empty payload
        if isinstance(event, BarClosed):
            self.core.seed_last(symbol, event.open_time, event.close)

    async def on_frame(self, shard: int, data: bytes) -> None:
        self.rt.metrics.received()
        try:
            events = self.core.on_frame(data, time.time_ns())
        except FrameError as exc:
            await self._reject_frame(shard, data, str(exc))
            return
        if self.core.aggregator is None:
            await self.publish(events)
        else:
            await self._publish_base_now(events)
        for symbol in self.core.gaps():
            self.rt.log.info("gap: backfilling before the held live bar", venue=self.venue, symbol=symbol)
            await self.backfill([symbol])
            await self.publish(self.core.release(symbol))

    async def _publish_base_now(self, events: Sequence[BarClosed | BarRejected | TradeTick]) -> None:
        """Publish a live frame's events but its roll-ups, which wait in _later; once every
        followed symbol's 1m bar of the minute is out, the roll-ups follow."""
        now: list[BarClosed | BarRejected | TradeTick] = []
        later: list[BarClosed] = []
        base = self.config.timeframe
        for event in events:
            if isinstance(event, BarClosed) and event.timeframe != base:
                later.append(event)
            else:
                now.append(event)
                if isinstance(event, BarClosed):
                    if event.open_time > self._minute:
                        self._minute = event.open_time
                        self._minute_symbols.clear()
                    if event.open_time == self._minute:
                        self._minute_symbols.add(event.symbol)
        await self.publish(now)
        self._later.extend(later)  # after their 1m bar is sent: the flusher may publish them any time
        self._later_symbols.update(bar.symbol for bar in later)
        if self._later and len(self._minute_symbols) >= sum(len(shard.symbols) for shard in self.shards):
            await asyncio.sleep(0)  # the publisher's sender takes the 1m bars before the roll-ups are encoded
            await self.publish_later()

    async def publish_later(self) -> None:
        """Publish the queued roll-ups. Also called by the service's flusher every 0.2 s (a
        symbol whose 1m bar never came holds them that long at most) and at stop."""
        later, self._later = self._later, []
        self._later_symbols.clear()
        if later:
            await self.publish(later)

    async def _reject_frame(self, shard: int, data: bytes, error: str) -> None:
        self.rt.metrics.rejected("malformed_frame")
        self.rt.log.warning("malformed exchange frame dead-lettered", venue=self.venue, shard=shard, error=error)
        now = time.time_ns()
        # As the bus consumers do: a frame over the inline bound is kept whole in the dead-letter
        # object store (best effort) and the letter names it; the letter itself (first bytes, size,
        # sha256) goes through the pipelined publisher, in order with the bars.
        letters = self.dead_letters
        ref = await letters.store(data) if len(data) > letters.inline_bytes else None
        letter = dead_letter(
            service=self.rt.name,
            source=f"ws:{self.venue}:shard{shard}",
            error=error,
            payload=data,
            ts_ns=now,
            stream_seq=None,
            inline_bytes=letters.inline_bytes,
            payload_ref=ref,
            max_bytes=max_payload(self.rt.js),
        )
        await self.publisher.publish(letter)
        self.rt.metrics.dead_lettered()

    async def publish(self, events: Sequence[BarClosed | BarRejected | TradeTick]) -> None:
        await self._publish_later_of(events)
        await self._send(events)

    async def _publish_later_of(self, events: Sequence[BarClosed | BarRejected | TradeTick]) -> None:
        """A symbol's queued roll-ups go before its next bar (backfill, catch-up after a stall)."""
        if self._later_symbols and any(e.symbol in self._later_symbols for e in events):
            await self.publish_later()

    async def _send(self, events: Sequence[BarClosed | BarRejected | TradeTick]) -> None:
        for event in events:
            if isinstance(event, BarRejected):
                self.rt.metrics.rejected("invalid_bar")
                self.rt.log.warning(
                    "venue bar rejected",
                    venue=self.venue,
                    symbol=event.symbol,
                    open_time=event.open_time,
                    reason=event.reason,
                    detail=event.detail,
                )
                await self.publisher.publish(event)
            elif isinstance(event, BarClosed):  # bars start traces; trades are too many to trace
                with self.tracer.start_as_current_span(
                    "market_data publish md.bar.closed",
                    kind=trace.SpanKind.PRODUCER,
                    attributes={
                        "ticktape.event_id": event.event_id,
                        "ticktape.symbol": event.symbol,
                        "ticktape.timeframe": event.timeframe,
                    },
                ):
                    await self.publisher.publish(event, telemetry.inject({}))
                self.rt.metrics.bar_published(self.venue, event.close_time)
            else:
                subject = self._trade_subjects.get(event.symbol)
                if subject is None:
                    subject = self._trade_subjects[event.symbol] = subjects.trade(self.venue, event.symbol)
                await self.publisher.publish(event, subject=subject)
        self.rt.metrics.published(len(events))

    async def backfill(self, symbols: list[str]) -> None:
        """Fetch and publish, oldest first, every closed bar missed since the last published; a
        symbol with no history gets the most recent backfill_limit bars (a late start is a gap
        too, and strategies warm up on them)."""
        now_ms = await self._server_time_ms()
        for symbol in symbols:
            while True:
                start = self.core.backfill_start_ms(symbol)
                request = self.core.backfill_request(self.rest_url, symbol, limit=self.backfill_limit, now_ms=now_ms)
                body = await self._http(request)
                bars = self.core.on_backfill(symbol, body, time.time_ns(), now_ms)
                if bars:
                    await self.publish(bars)
                    self.rt.log.info("backfilled", venue=self.venue, symbol=symbol, bars=len(bars))
                if self.core.backfill_start_ms(symbol) == start:  # nothing new (or only refused bars)
                    break

    async def _http(self, request: HttpRequest) -> bytes:
        await self.rest_pacer.acquire(self.adapter.request_weight(request))
        kwargs: dict[str, Any] = {}
        if request.body is not None:
            kwargs = {"data": request.body, "headers": {"Content-Type": "application/json"}}
        async with self.session.request(request.method, request.url, **kwargs) as resp:
            resp.raise_for_status()
            self._date_header = resp.headers.get("Date")
            return await resp.read()

    async def _server_time_ms(self) -> int:
        request = self.adapter.server_time_request(self.rest_url)
        if request is not None:
            return self.adapter.parse_server_time(await self._http(request))
        # Hyperliquid has no time endpoint: the HTTP Date of an /info answer (second precision)
        import email.utils

        await self._http(self.adapter.universe_requests(self.rest_url)[0])
        date = self._date_header
        return int(email.utils.parsedate_to_datetime(date).timestamp() * 1000) if date else int(time.time() * 1000)

    def status(self) -> MarketDataStatus:
        now, now_ns = time.monotonic(), time.time_ns()
        shards = []
        for shard in self.shards:
            since, frames = self._status_mark.get(shard.index, (now, shard.frames))
            shards.append(shard.status(now, shard.frames - frames, now - since))
            self._status_mark[shard.index] = (now, shard.frames)
        return MarketDataStatus(
            event_id=ids.derive("md.status", self.venue, now_ns),
            ts_event=now_ns,
            ts_init=now_ns,
            venue=self.venue,
            shards=tuple(shards),
        )
