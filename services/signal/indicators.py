"""Incremental indicators for the built-in strategies: one value in, the indicator out, O(1) a bar.

The recursive indicators (EMA, MACD, Wilder's RSI) depend on every value since their start, so
they are kept as running state rather than recomputed from a window (a window would make the
value depend on where it starts). They follow the conventions StockCharts documents and TA-Lib
implements: an EMA is seeded with the simple average of its first `period` values; Wilder's
averages with the simple average of the first `period` gains and losses. Windowed indicators
(Bollinger bands, Donchian channels) are computed from ctx.bars windows by the strategies."""

from __future__ import annotations

from services.signal.ema import Ema

__all__ = ["Ema", "Macd", "WilderRsi"]


class WilderRsi:
    """Wilder's relative strength index over `period` changes of the input.

    avg_gain and avg_loss start as the simple average of the first `period` gains and losses
    (losses as positive numbers), then avg = (avg * (period - 1) + x) / period. RSI = 100 * avg_gain
    / (avg_gain + avg_loss), which is 100 - 100 / (1 + RS) and 100 when avg_loss is 0; 50 when
    both are 0 (nothing moved). `value` is None until period + 1 values were fed."""

    __slots__ = ("period", "value", "avg_gain", "avg_loss", "_prev", "_count")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1 (got {period})")
        self.period = period
        self.value: float | None = None
        self.avg_gain = 0.0
        self.avg_loss = 0.0
        self._prev: float | None = None
        self._count = 0

    def update(self, x: float) -> float | None:
        """Feed one value; returns the RSI, or None while still seeding."""
        prev, self._prev = self._prev, x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        n = self.period
        if self._count < n:
            self._count += 1
            self.avg_gain += gain
            self.avg_loss += loss
            if self._count < n:
                return None
            self.avg_gain /= n
            self.avg_loss /= n
        else:
            self.avg_gain = (self.avg_gain * (n - 1) + gain) / n
            self.avg_loss = (self.avg_loss * (n - 1) + loss) / n
        total = self.avg_gain + self.avg_loss
        self.value = 50.0 if total == 0 else 100.0 * self.avg_gain / total
        return self.value


class Macd:
    """MACD line = EMA(fast) - EMA(slow) of the input; signal line = EMA(signal) of the MACD line,
    started once the MACD line exists; histogram = MACD - signal. `update` returns (macd,
    signal) once both exist, else None."""

    __slots__ = ("fast", "slow", "signal", "macd", "signal_value")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast = Ema(fast)
        self.slow = Ema(slow)
        self.signal = Ema(signal)
        self.macd: float | None = None
        self.signal_value: float | None = None

    def update(self, x: float) -> tuple[float, float] | None:
        f = self.fast.update(x)
        s = self.slow.update(x)
        if f is None or s is None:
            return None
        self.macd = f - s
        self.signal_value = self.signal.update(self.macd)
        if self.signal_value is None:
            return None
        return self.macd, self.signal_value
