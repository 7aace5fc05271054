"""Perpetual funding: each perp venue's funding history polled for the feed's symbols, every new
settlement published once as a FundingRate on md.funding.<venue>.<symbol>.

Per symbol the poller keeps the time of the last settlement it published (seeded from the
stream's last message on the symbol's subject, so a restart publishes nothing twice) and asks the
venue only for later ones; a symbol with none in the stream starts funding_lookback_s before the
venue's time. Event ids derive from (venue, symbol, funding time), so a re-poll that does publish
a settlement again is dropped by JetStream's duplicate window, and the execution core ignores a
settlement at or before the last it applied. funding_events is the pure part."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import aiohttp
from nats.js.errors import NotFoundError

from exchanges.base import FrameError
from exchanges.funding import FundingRecord, funding_request, parse_funding
from services.market_data.feed import VenueFeed
from ticktape import ids, subjects
from ticktape.clock import NS_PER_MS
from ticktape.events import FundingRate
from ticktape.events.codec import DecodeError, decode


def funding_event_id(venue: str, symbol: str, time_ms: int) -> str:
    return ids.derive("md.funding", venue, symbol, time_ms)


def funding_events(venue: str, records: Sequence[FundingRecord], *, after_ms: int, ts_init: int) -> list[FundingRate]:
    """The records after after_ms as events, oldest first (pure)."""
    return [
        FundingRate(
            event_id=funding_event_id(venue, r.symbol, r.time_ms),
            ts_event=r.time_ms * NS_PER_MS,
            ts_init=ts_init,
            venue=venue,
            symbol=r.symbol,
            funding_time=r.time_ms * NS_PER_MS,
            rate=r.rate,
            mark_price=r.mark_price,
        )
        for r in sorted(records, key=lambda r: r.time_ms)
        if r.time_ms > after_ms
    ]


class FundingPoller:
    """Polls one feed's venue (services.market_data.feed.VenueFeed: its REST URL, request pacing
    and publisher) every interval_s."""

    def __init__(self, feed: VenueFeed, interval_s: float, lookback_s: float) -> None:
        self.feed = feed
        self.interval_s = interval_s
        self.lookback_ms = int(lookback_s * 1000)
        self.last_ms: dict[str, int] = {}  # symbol -> time of the last settlement published

    @property
    def venue(self) -> str:
        return self.feed.venue

    def symbols(self) -> list[str]:
        return sorted({s for shard in self.feed.shards for s in shard.symbols})

    async def run(self) -> None:
        stop = self.feed.rt.stop
        while not stop.is_set():
            symbols = self.symbols()
            if symbols:
                try:
                    await self.poll(symbols)
                except (aiohttp.ClientError, TimeoutError, OSError, FrameError) as exc:  # the next round asks again
                    self.feed.rt.log.warning(
                        "funding poll failed", venue=self.venue, error=type(exc).__name__, detail=str(exc)[:200]
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s if symbols else 0.2)

    async def poll(self, symbols: Sequence[str]) -> int:
        """One round over `symbols`; returns how many settlements were published."""
        feed = self.feed
        now_ms = await feed._server_time_ms()
        published = 0
        for symbol in symbols:
            after = await self._last(symbol)
            start = after + 1 if after is not None else now_ms - self.lookback_ms
            body = await feed._http(funding_request(self.venue, feed.rest_url, symbol, start_ms=start))
            try:
                records = parse_funding(self.venue, body, symbol)
            except FrameError as exc:
                feed.rt.metrics.rejected("malformed_funding")
                feed.rt.log.warning("funding history refused", venue=self.venue, symbol=symbol, error=str(exc))
                continue
            events = funding_events(self.venue, records, after_ms=start - 1, ts_init=time.time_ns())
            for event in events:
                await feed.publisher.publish(event)
            if events:
                self.last_ms[symbol] = events[-1].funding_time // NS_PER_MS
                published += len(events)
        await feed.publisher.flush()
        return published

    async def _last(self, symbol: str) -> int | None:
        if symbol in self.last_ms:
            return self.last_ms[symbol]
        rt = self.feed.rt
        try:
            raw = await rt.js.get_last_msg(rt.common.nats.stream, subjects.funding(self.venue, symbol))
        except NotFoundError:
            return None
        try:
            event = decode(raw.data or b"")
        except DecodeError:
            return None
        if isinstance(event, FundingRate):
            self.last_ms[symbol] = event.funding_time // NS_PER_MS
            return self.last_ms[symbol]
        return None
