"""The served market: each symbol's bars with synthetic trade ids and the "what has closed by now" queries."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal

from venuesim.bars import Bar

DAY_MS = 86_400_000


@dataclass(slots=True)
class Series:
    """One symbol's bars, their open times (for bisect) and synthetic first trade ids."""

    symbol: str
    bars: list[Bar]
    open_times: list[int] = field(init=False)
    first_ids: list[int] = field(init=False)
    _precision: tuple[int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.open_times = [b.open_time for b in self.bars]
        # Bars carry trade counts but not ids; number trades 1, 2, 3... across the series so f/L
        # and the ticker's firstId/lastId increase monotonically like the real ones.
        ids, next_id = [], 1
        for bar in self.bars:
            ids.append(next_id)
            next_id += bar.trades
        self.first_ids = ids

    def precision(self) -> tuple[int, int]:
        """(price, quantity) decimals seen in the data, ignoring trailing zeros; computed once."""
        if self._precision is None:
            prices = max(decimals(t) for b in self.bars for t in (b.open, b.high, b.low, b.close))
            self._precision = (prices, max(decimals(b.volume) for b in self.bars))
        return self._precision

    def trade_ids(self, index: int) -> tuple[int, int]:
        """(first, last) trade id of bar `index`; Binance sends (-1, -1) for a bar without trades."""
        trades = self.bars[index].trades
        if trades == 0:
            return -1, -1
        first = self.first_ids[index]
        return first, first + trades - 1

    def closed_count(self, now_ms: int) -> int:
        """How many bars have closed by `now_ms` (a bar is closed once now > its close_time)."""
        return bisect_right(self.open_times, now_ms - 60_000)

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
        """Bars of the rolling 24h window ending at now (closed bars only).

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
    """All served symbols, keyed by upper-case symbol."""

    def __init__(self, series: dict[str, list[Bar]]) -> None:
        self.series = {symbol: Series(symbol, bars) for symbol, bars in series.items() if bars}

    def get(self, symbol: str) -> Series | None:
        return self.series.get(symbol)

    def earliest_open(self) -> int:
        return min(s.open_times[0] for s in self.series.values())
