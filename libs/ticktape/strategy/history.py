"""Bounded windows of closed bars per (venue, symbol, timeframe), handed to strategies as arrays.

Each window is a ring over a buffer twice its capacity: a bar is written once at the end, and when
the end reaches the buffer's end the last capacity-1 bars move to the front (amortised one copy
per bar), so the last n bars are always one contiguous slice and reading them copies nothing."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ticktape.events import BarClosed

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_EMPTY_F: FloatArray = np.zeros(0, np.float64)
_EMPTY_I: IntArray = np.zeros(0, np.int64)
_EMPTY_F.flags.writeable = False
_EMPTY_I.flags.writeable = False


class Bars:
    """The last closed bars of one (venue, symbol, timeframe), oldest first: open_time (int64
    ns), open, high, low, close, volume (float64). Read-only views, valid during the call."""

    __slots__ = ("open_time", "open", "high", "low", "close", "volume")

    def __init__(
        self,
        open_time: IntArray,
        open: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        volume: FloatArray,
    ) -> None:
        self.open_time = open_time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    def __len__(self) -> int:
        return len(self.open_time)


EMPTY = Bars(_EMPTY_I, _EMPTY_F, _EMPTY_F, _EMPTY_F, _EMPTY_F, _EMPTY_F)


class _Ring:
    __slots__ = ("cap", "times", "values", "start", "end")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.times: IntArray = np.zeros(2 * cap, np.int64)
        self.values: FloatArray = np.zeros((5, 2 * cap), np.float64)
        self.start = 0
        self.end = 0

    def append(self, bar: BarClosed) -> None:
        if self.end == 2 * self.cap:
            keep = self.cap - 1
            if keep:
                self.times[:keep] = self.times[self.end - keep : self.end]
                self.values[:, :keep] = self.values[:, self.end - keep : self.end]
            self.start, self.end = 0, keep
        self.times[self.end] = bar.open_time
        self.values[:, self.end] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        self.end += 1
        if self.end - self.start > self.cap:
            self.start = self.end - self.cap

    def last(self, n: int) -> Bars:
        n = min(n, self.end - self.start)
        lo, hi = self.end - n, self.end
        times = self.times[lo:hi]
        o, h, lw, c, v = (self.values[i, lo:hi] for i in range(5))
        for view in (times, o, h, lw, c, v):
            view.flags.writeable = False
        return Bars(times, o, h, lw, c, v)


class BarHistory:
    """Windows of `capacity[timeframe]` bars for every (venue, symbol) of that timeframe; a
    timeframe without capacity keeps nothing. add() the bars in stream order (the caller skips
    late and repeated bars); last() reads a window."""

    def __init__(self, capacity: Mapping[str, int]) -> None:
        self.capacity = {tf: n for tf, n in capacity.items() if n > 0}
        self._rings: dict[tuple[str, str, str], _Ring] = {}

    def keeps(self, timeframe: str) -> bool:
        return timeframe in self.capacity

    def grow(self, timeframe: str, n: int) -> None:
        """Keep at least n bars of timeframe from now on; the bars already kept stay."""
        if n <= self.capacity.get(timeframe, 0):
            return
        self.capacity[timeframe] = n
        for key, ring in self._rings.items():
            if key[2] == timeframe:
                bigger = self._rings[key] = _Ring(n)
                count = ring.end - ring.start
                bigger.times[:count] = ring.times[ring.start : ring.end]
                bigger.values[:, :count] = ring.values[:, ring.start : ring.end]
                bigger.end = count

    def series(self, timeframe: str) -> list[tuple[str, str]]:
        """The (venue, symbol) of every window of timeframe, in the order they were first seen."""
        return [(venue, symbol) for venue, symbol, tf in self._rings if tf == timeframe]

    def add(self, bar: BarClosed) -> None:
        cap = self.capacity.get(bar.timeframe)
        if cap is None:
            return
        key = (bar.venue, bar.symbol, bar.timeframe)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring(cap)
        ring.append(bar)

    def last(self, venue: str, symbol: str, timeframe: str, n: int) -> Bars:
        ring = self._rings.get((venue, symbol, timeframe))
        return EMPTY if ring is None or n <= 0 else ring.last(n)
