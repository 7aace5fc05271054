"""Pure aggregation of closed 1m bars into 5m, 15m, 1h, 4h and 1d bars.

Windows are aligned to UTC epoch boundaries ([k*tf, (k+1)*tf) in ns since the epoch, so 4h bars
open at 00:00, 04:00, ... UTC and 1d bars at 00:00 UTC). An aggregated bar is emitted once,
only when closed, at the first of:
  - the 1m bar of the window's last minute arrives: the window holds every minute received;
  - a 1m bar at or beyond the window's end arrives (the last minutes never came, a gap): the
    window holds the minutes received in it, the missing ones are simply absent (no fill), so
    open is the first present minute's open and close the last present minute's close.
A window in which no 1m bar arrived produces no bar. The 1m bar that closes a window is its
causation_id, and its ts_init is reused (times come from the input, never a clock).

Fields: open = first open, close = last close, high/low = max/min, volume, quote_volume,
trades and both taker volumes summed left to right in time order (so the float result is a
function of the input alone), open_time/close_time of the window (close_time = end - 1ms, as
Binance reports it), ts_event = close_time, backfilled = any component backfilled, event_id =
ids.bar_id(venue, symbol, timeframe, open_time).

Out-of-order and duplicate input: per (venue, symbol) 1m bars are accepted only with strictly
increasing open times. A bar at or before the last accepted minute is dropped without touching
state (a duplicate, or too late: the windows it belongs to may have been emitted already).
Emission order for one input bar: timeframes shortest first; within a timeframe the window a gap
closed comes before the window the bar completes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ticktape import ids
from ticktape.clock import NS_PER_MS, TIMEFRAME_NS
from ticktape.events import BarClosed

DEFAULT_TIMEFRAMES: tuple[str, ...] = ("5m", "15m", "1h", "4h", "1d")


class _Window:
    """The running aggregate of one open window."""

    __slots__ = (
        "start",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trades",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "backfilled",
    )

    def __init__(self, start: int, bar: BarClosed) -> None:
        self.start = start
        self.open = bar.open
        self.high = bar.high
        self.low = bar.low
        self.close = bar.close
        self.volume = bar.volume
        self.quote_volume = bar.quote_volume
        self.trades = bar.trades
        self.taker_buy_volume = bar.taker_buy_volume
        self.taker_buy_quote_volume = bar.taker_buy_quote_volume
        self.backfilled = bar.backfilled

    def add(self, bar: BarClosed) -> None:
        if bar.high > self.high:
            self.high = bar.high
        if bar.low < self.low:
            self.low = bar.low
        self.close = bar.close
        self.volume += bar.volume
        self.quote_volume += bar.quote_volume
        self.trades += bar.trades
        self.taker_buy_volume += bar.taker_buy_volume
        self.taker_buy_quote_volume += bar.taker_buy_quote_volume
        self.backfilled = self.backfilled or bar.backfilled


class BarAggregator:
    """Closed base-timeframe bars in, closed higher-timeframe bars out, each exactly once."""

    def __init__(self, timeframes: Sequence[str] = DEFAULT_TIMEFRAMES, *, base: str = "1m") -> None:
        if base not in TIMEFRAME_NS:
            raise ValueError(f"unknown base timeframe {base!r}; known: {', '.join(TIMEFRAME_NS)}")
        base_ns = TIMEFRAME_NS[base]
        tfs: list[tuple[str, int]] = []
        for tf in timeframes:
            ns = TIMEFRAME_NS.get(tf)
            if ns is None:
                raise ValueError(f"unknown timeframe {tf!r}; known: {', '.join(TIMEFRAME_NS)}")
            if ns <= base_ns or ns % base_ns:
                raise ValueError(f"timeframe {tf!r} is not a multiple of the base {base!r} above it")
            if all(tf != t for t, _ in tfs):
                tfs.append((tf, ns))
        self.base = base
        self._base_ns = base_ns
        self._tfs = tuple(sorted(tfs, key=lambda t: t[1]))
        self.timeframes: tuple[str, ...] = tuple(tf for tf, _ in self._tfs)
        self._last: dict[tuple[str, str], int] = {}  # (venue, symbol) -> last accepted open time
        self._open: dict[tuple[str, str], list[_Window | None]] = {}

    def on_bar(self, bar: BarClosed) -> list[BarClosed]:
        """The aggregated bars this base bar closes ([] for most bars, duplicates and late bars).
        Raises ValueError for a bar of another timeframe or one not aligned to it."""
        if bar.timeframe != self.base:
            raise ValueError(f"aggregator takes {self.base} bars (got a {bar.timeframe} bar)")
        t = bar.open_time
        if t % self._base_ns:
            raise ValueError(f"{self.base} bar open_time {t} is not on a {self.base} boundary")
        key = (bar.venue, bar.symbol)
        last = self._last.get(key)
        if last is not None and t <= last:
            return []
        self._last[key] = t
        windows = self._open.get(key)
        if windows is None:
            windows = self._open[key] = [None] * len(self._tfs)
        out: list[BarClosed] = []
        minute_end = t + self._base_ns
        for i, (tf, ns) in enumerate(self._tfs):
            start = t - t % ns
            w = windows[i]
            if w is not None and w.start != start:  # a gap: the bar is beyond w's end
                out.append(_emit(w, bar, tf, ns))
                w = None
            if w is None:
                w = _Window(start, bar)
            else:
                w.add(bar)
            if minute_end == start + ns:  # the window's last minute
                out.append(_emit(w, bar, tf, ns))
                w = None
            windows[i] = w
        return out

    def warm(self, bars: Iterable[BarClosed]) -> None:
        """Rebuild state after a restart from base bars already published, outputs discarded
        (they were published). Feed at least the bars since the longest window's start."""
        for bar in bars:
            self.on_bar(bar)

    def last_open_time(self, venue: str, symbol: str) -> int | None:
        return self._last.get((venue, symbol))


def _emit(w: _Window, cause: BarClosed, tf: str, ns: int) -> BarClosed:
    close_time = w.start + ns - NS_PER_MS
    return BarClosed(
        event_id=ids.bar_id(cause.venue, cause.symbol, tf, w.start),
        ts_event=close_time,
        ts_init=cause.ts_init,
        causation_id=cause.event_id,
        correlation_id=cause.correlation_id,
        venue=cause.venue,
        symbol=cause.symbol,
        timeframe=tf,
        open_time=w.start,
        close_time=close_time,
        open=w.open,
        high=w.high,
        low=w.low,
        close=w.close,
        volume=w.volume,
        quote_volume=w.quote_volume,
        trades=w.trades,
        taker_buy_volume=w.taker_buy_volume,
        taker_buy_quote_volume=w.taker_buy_quote_volume,
        backfilled=w.backfilled,
    )
