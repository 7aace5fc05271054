"""A sliding-window rate limiter for a venue's per-IP budgets (exchanges.budget), shared by every
task of a process that spends the same budget: connection attempts, WebSocket messages, REST
request weight.

A sliding window and not a token bucket: a bucket that holds a window's worth of tokens and
refills a window's worth per window lets up to twice the limit through in some windows; this
never lets more than `limit` units through in any `window_s`."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class WindowLimiter:
    """At most `limit` units in any `window_s`; `limit` None or 0: unlimited. acquire(n) waits
    until n more units fit (a single request heavier than the whole limit waits for an empty
    window, then goes: the venue would refuse it anyway, better once than never). `acquired`
    counts the units granted."""

    def __init__(
        self,
        limit: int | None,
        window_s: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit, self.window_s = limit, window_s
        self.clock, self.sleep = clock, sleep  # injectable, so a test runs a minute in no time
        self._spent: deque[tuple[float, int]] = deque()  # (time, units), oldest first
        self._in_window = 0
        self._lock = asyncio.Lock()  # first come, first served
        self.acquired = 0

    @property
    def count(self) -> int | None:
        return self.limit

    async def acquire(self, units: int = 1) -> None:
        if self.limit and self.window_s:
            async with self._lock:
                while True:
                    now = self.clock()
                    while self._spent and now - self._spent[0][0] >= self.window_s:
                        self._in_window -= self._spent.popleft()[1]
                    if self._in_window + units <= self.limit or not self._spent:
                        self._spent.append((now, units))
                        self._in_window += units
                        break
                    await self.sleep(self.window_s - (now - self._spent[0][0]) + 0.01)
        self.acquired += units
