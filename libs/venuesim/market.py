"""The served market: each symbol's bars with synthetic trade ids and the "what has closed by now" queries."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from decimal import Decimal
from itertools import accumulate

from venuesim.bars import MINUTE_MS, BarSeries

DAY_MS = 86_400_000


class Series:
    """One symbol's bars, as served: trade ids, precision and time-window queries."""

    def __init__(self, symbol: str, bars: BarSeries) -> None:
        self.symbol = symbol
        self.bars = bars
        self.open_times = bars.open_times
        # Bars carry trade counts but not ids; number the trades 1, 2, 3... across the series so
        # f/L and the ticker's firstId/lastId increase like real ids. first_ids[i] is the id of bar
        # i's first trade; first_ids[n] is one past the last trade.
        self.first_ids = array("q", accumulate(bars.trades, initial=1))
        self._precision: tuple[int, int, int] | None = None

    def trade_ids(self, i: int) -> tuple[int, int]:
        """(first, last) trade id of bar i; Binance sends (-1, -1) for a bar without trades."""
        first, end = self.first_ids[i], self.first_ids[i + 1]
        return (first, end - 1) if end > first else (-1, -1)

    def precision(self) -> tuple[int, int, int]:
        """(price, quantity, quote) decimals seen in the data, ignoring trailing zeros; computed once."""
        if self._precision is None:
            price = qty = quote = 0
            for line in self.bars.lines:
                _, o, h, lo, c, v, _, q, *_ = line.split(",")
                price = max(price, decimals(o), decimals(h), decimals(lo), decimals(c))
                qty, quote = max(qty, decimals(v)), max(quote, decimals(q))
            self._precision = (price, qty, quote)
        return self._precision

    def closed_count(self, now_ms: int) -> int:
        """How many bars have closed by `now_ms` (a bar is closed once now > its close_time)."""
        return bisect_right(self.open_times, now_ms - MINUTE_MS)

    def closed_range(self, now_ms: int, start: int | None, end: int | None, limit: int) -> range:
        """Indexes of closed bars as Binance selects klines: from startTime forward, else the latest
        `limit` up to endTime (or now)."""
        hi = self.closed_count(now_ms)
        if end is not None:
            hi = min(hi, bisect_right(self.open_times, end))
        if start is not None:
            lo = bisect_left(self.open_times, start)
            return range(lo, max(lo, min(hi, lo + limit)))
        return range(max(0, hi - limit), hi)

    def window_24h(self, now_ms: int, started: bool) -> range:
        """Bars of the rolling 24h window ending at now: closed bars opened at or after now - 24h.

        Before the clock has started, or before any bar has closed, this is the first 24h of data so
        that a client booting first still sees a realistic ticker (e.g. for volume ranking)."""
        hi = self.closed_count(now_ms) if started else 0
        if hi == 0:
            return range(0, bisect_left(self.open_times, self.open_times[0] + DAY_MS))
        return range(bisect_left(self.open_times, now_ms - DAY_MS), hi)


def decimals(text: str) -> int:
    """Significant decimals of a number's text ("1.2300" -> 2, "5e-7" -> 7)."""
    if "e" in text or "E" in text:
        exp = Decimal(text).normalize().as_tuple().exponent
        return max(0, -exp) if isinstance(exp, int) else 0
    return len(text.partition(".")[2].rstrip("0"))


class Market:
    """All served symbols, keyed by upper-case symbol, in symbol order."""

    def __init__(self, series: dict[str, BarSeries]) -> None:
        self.series = {symbol: Series(symbol, bars) for symbol, bars in sorted(series.items()) if len(bars)}

    def get(self, symbol: str) -> Series | None:
        return self.series.get(symbol)

    def earliest_open(self) -> int:
        return min(s.open_times[0] for s in self.series.values())
