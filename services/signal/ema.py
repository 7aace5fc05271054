"""Incremental exponential moving average, seeded with the simple average of its first values."""

from __future__ import annotations


class Ema:
    """EMA with alpha = 2 / (period + 1).

    The first `period` values only accumulate; the EMA's first value is their simple average
    (the usual TA-Lib style seed, so the start does not depend on whichever value came first).
    After that: ema = alpha * x + (1 - alpha) * ema. `value` is None until warmed up."""

    __slots__ = ("period", "alpha", "value", "_count", "_sum")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1 (got {period})")
        self.period = period
        self.alpha = 2.0 / (period + 1)
        self.value: float | None = None
        self._count = 0
        self._sum = 0.0

    def update(self, x: float) -> float | None:
        """Feed one value; returns the EMA, or None while still seeding."""
        if self.value is None:
            self._sum += x
            self._count += 1
            if self._count == self.period:
                self.value = self._sum / self.period
        else:
            self.value = self.alpha * x + (1.0 - self.alpha) * self.value
        return self.value
