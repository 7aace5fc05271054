"""Clocks. Cores never read time; shells choose a clock once at start-up (LiveClock in services,
ManualClock in replay and tests) and pass timestamps in through events.

Cores import this module for its units, so it never reads the wall clock itself: LiveClock lives
with the service shells, in ticktape.runtime (the core purity gate checks this module)."""

from __future__ import annotations

from typing import Protocol

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
MINUTE_NS = 60 * NS_PER_S


class Clock(Protocol):
    def now_ns(self) -> int: ...


class ManualClock:
    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def set(self, ts_ns: int) -> None:
        self._now = ts_ns

    def advance(self, delta_ns: int) -> None:
        self._now += delta_ns


TIMEFRAME_NS: dict[str, int] = {
    "1m": MINUTE_NS,
    "5m": 5 * MINUTE_NS,
    "15m": 15 * MINUTE_NS,
    "1h": 60 * MINUTE_NS,
    "4h": 240 * MINUTE_NS,
    "1d": 1440 * MINUTE_NS,
}


def ms_to_ns(ms: int) -> int:
    return ms * NS_PER_MS
