"""Market-data core: Binance kline frames and REST backfill in, each closed bar out exactly once.

Pure: no I/O and no clock; the shell passes ts_init (and now_ms for backfill) in. Per symbol the
core keeps the open time of the last bar it published (a high-water mark), so a bar is never
emitted twice and bars leave in open-time order, as strategies folding EMAs need. After a
(re)connect the shell should backfill a symbol from `backfill_start_ms` before feeding its live
frames: a live bar published first would make the older backfilled bars look stale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ticktape import ids
from ticktape.clock import NS_PER_MS, TIMEFRAME_NS
from ticktape.events import BarClosed

from services.market_data.binance import FrameError, Kline, parse_frame, parse_rest_klines

# The core consumes nothing from the bus; the shell follows the universe itself.
FILTER_SUBJECTS: tuple[str, ...] = ()


class MarketDataCore:
    """Turns one venue's kline stream of one timeframe into BarClosed events."""

    def __init__(self, venue: str, timeframe: str = "1m") -> None:
        if timeframe not in TIMEFRAME_NS:
            raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_NS)}")
        self.venue = venue
        self.timeframe = timeframe
        self._tf_ns = TIMEFRAME_NS[timeframe]
        self._last: dict[str, int] = {}  # symbol -> open_time (ns) of the last published bar

    def on_frame(self, raw: bytes | str, ts_init: int) -> list[BarClosed]:
        """The bar closed by this WebSocket frame, if any; [] for open bars, acks and repeats.

        Raises FrameError for a malformed frame (the shell counts and dead-letters it)."""
        kline = parse_frame(raw)
        if kline is None or not kline.closed:
            return []
        if kline.interval != self.timeframe:
            raise FrameError(f"kline interval {kline.interval!r} is not this core's {self.timeframe!r}")
        bar = self._publish(kline, ts_init, backfilled=False)
        return [] if bar is None else [bar]

    def on_rest_klines(self, symbol: str, rows: bytes | list[Any], ts_init: int,
                       now_ms: int) -> list[BarClosed]:
        """Backfill from GET /fapi/v1/klines rows: bars closed before now_ms and newer than the
        last published one, oldest first, marked backfilled."""
        klines = sorted(parse_rest_klines(rows, symbol, self.timeframe), key=lambda k: k.open_time)
        out = []
        for kline in klines:
            if kline.close_time >= now_ms:
                break  # the bar still forming (Binance returns it last)
            bar = self._publish(kline, ts_init, backfilled=True)
            if bar is not None:
                out.append(bar)
        return out

    def seed_last(self, symbol: str, open_time_ns: int) -> None:
        """Mark bars up to open_time_ns as already published (e.g. read back from the stream)."""
        if open_time_ns > self._last.get(symbol, -1):
            self._last[symbol] = open_time_ns

    def last_open_time(self, symbol: str) -> int | None:
        """Open time (ns) of the last bar published for symbol, or None if none yet."""
        return self._last.get(symbol)

    def backfill_start_ms(self, symbol: str) -> int | None:
        """REST startTime (ms) of the first bar not yet published; None when nothing is known,
        so the shell fetches the most recent `backfill_limit` bars instead."""
        last = self._last.get(symbol)
        return None if last is None else (last + self._tf_ns) // NS_PER_MS

    def symbols(self) -> Iterable[str]:
        return self._last.keys()

    def _publish(self, k: Kline, ts_init: int, *, backfilled: bool) -> BarClosed | None:
        open_ns = k.open_time * NS_PER_MS
        if open_ns <= self._last.get(k.symbol, -1):
            return None
        self._last[k.symbol] = open_ns
        return BarClosed(
            event_id=ids.bar_id(self.venue, k.symbol, self.timeframe, open_ns),
            ts_event=k.close_time * NS_PER_MS,
            ts_init=ts_init,
            venue=self.venue,
            symbol=k.symbol,
            timeframe=self.timeframe,
            open_time=open_ns,
            close_time=k.close_time * NS_PER_MS,
            open=k.open,
            high=k.high,
            low=k.low,
            close=k.close,
            volume=k.volume,
            quote_volume=k.quote_volume,
            trades=k.trades,
            taker_buy_volume=k.taker_buy_volume,
            taker_buy_quote_volume=k.taker_buy_quote_volume,
            backfilled=backfilled,
        )
