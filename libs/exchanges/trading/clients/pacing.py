"""Client-side rate limiting for the execution clients: sliding windows that never let more than a
venue's documented limit through (exchanges.trading.ratelimit says what each request costs), and
a backoff gate that a 429 or 418 closes for the venue's Retry-After, or for an exponential backoff
when it gives none.

A Pacer is one venue's per-IP budget in this process: every client of that venue (one per
account) shares it, so accounts trading side by side never exceed the IP's request weight
together. Windows that are per account (Binance's order counts) belong to that account's client.
`acquire` waits until every window it is given has room at the same moment, then takes them all
(no await in between, so the check and the taking are one step on the event loop).

The clock and sleep are injectable, so a test runs minutes of pacing in no time."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from exchanges.trading.ratelimit import (
    BINANCE_USDM_ORDERS_PER_10S,
    BINANCE_USDM_ORDERS_PER_MINUTE,
    BINANCE_USDM_REQUEST_WEIGHT_PER_MINUTE,
    HYPERLIQUID_WEIGHT_PER_MINUTE,
)

__all__ = ["Backoff", "Pacer", "RateLimitWait", "Window", "binance_order_windows", "binance_pacer", "hyperliquid_pacer"]

Clock = Callable[[], float]
_TOLERANCE_S = 1e-9
Sleep = Callable[[float], Awaitable[None]]


class RateLimitWait(Exception):
    """Going on would mean waiting `wait_s` seconds, beyond the caller's deadline. reason: the
    reason code of what closes the way ("ip_banned" after a 418, else "rate_limited")."""

    def __init__(self, what: str, wait_s: float, reason: str = "rate_limited") -> None:
        super().__init__(f"{what}: {wait_s:.1f}s to wait")
        self.what = what
        self.wait_s = wait_s
        self.reason = reason


class Window:
    """At most `limit` units in any `window_s` seconds (a sliding window: a bucket refilled once a
    window could let twice the limit through across its boundary)."""

    def __init__(self, name: str, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"{name}: limit must be >= 1 and window_s > 0")
        self.name, self.limit, self.window_s = name, limit, window_s
        self._spent: deque[tuple[float, int]] = deque()
        self._used = 0

    def _expire(self, now: float) -> None:
        # within a nanosecond counts as out: now + (at + window - now) can fall short in floats
        while self._spent and now - self._spent[0][0] >= self.window_s - _TOLERANCE_S:
            self._used -= self._spent.popleft()[1]

    def used(self, now: float) -> int:
        self._expire(now)
        return self._used

    def wait_s(self, units: int, now: float) -> float:
        """Seconds until `units` more fit (0: now). A request heavier than the whole limit waits
        for an empty window, then goes (the venue would refuse it anyway; better once than never)."""
        self._expire(now)
        if units <= 0 or self._used + units <= self.limit:
            return 0.0
        free, waited = self.limit - self._used, 0.0
        for at, spent in self._spent:  # oldest first: the time until enough has left the window
            free += spent
            waited = at + self.window_s - now
            if free >= units:
                break
        return max(waited, 0.0)

    def take(self, units: int, now: float) -> None:
        """Count `units` as spent at `now` (also after the fact: weight an answer adds)."""
        if units > 0:
            self._spent.append((now, units))
            self._used += units


class Backoff:
    """Closed after a refusal: for the venue's Retry-After when it sent one, else for base_s
    doubling with each refusal in a row (at most max_s); a success resets the doubling."""

    def __init__(self, base_s: float = 1.0, max_s: float = 60.0) -> None:
        self.base_s, self.max_s = base_s, max_s
        self._until = 0.0
        self.strikes = 0
        self.refusals = 0
        self.reason = "rate_limited"  # the reason code of the refusal that closed the gate last

    def closed_for(self, now: float) -> float:
        return max(0.0, self._until - now)

    def refused(self, now: float, retry_after_s: float | None = None, reason: str = "rate_limited") -> float:
        """Close the gate; returns for how long."""
        self.refusals += 1
        self.reason = reason
        if retry_after_s is not None and retry_after_s >= 0:
            wait = float(retry_after_s)
        else:
            wait = min(self.max_s, self.base_s * 2**self.strikes)
        self.strikes += 1
        self._until = max(self._until, now + wait)
        return wait

    def succeeded(self) -> None:
        self.strikes = 0


class Pacer:
    """One venue's per-IP budget: the request weight window and the backoff gate, shared by every
    client of the venue in this process."""

    def __init__(
        self,
        venue: str,
        weight: Window,
        *,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.venue = venue
        self.weight = weight
        self.backoff = backoff or Backoff()
        self.clock, self.sleep = clock, sleep
        self.waited_s = 0.0  # how long acquire has waited in all (for metrics and tests)

    async def acquire(self, costs: Sequence[tuple[Window, int]], *, deadline: float | None = None) -> None:
        """Wait until the gate is open and every (window, units) fits, then take them all.
        deadline: a clock() reading; RateLimitWait instead of waiting past it."""
        while True:
            now = self.clock()
            gate = self.backoff.closed_for(now)
            waits = [(gate, "backoff after a refusal")]
            waits += [(w.wait_s(units, now), w.name) for w, units in costs]
            wait, what = max(waits, key=lambda item: item[0])
            if wait <= 0:
                for w, units in costs:
                    w.take(units, now)
                return
            if deadline is not None and now + wait > deadline:
                raise RateLimitWait(what, wait, self.backoff.reason if gate >= wait else "rate_limited")
            self.waited_s += wait
            await self.sleep(wait)

    def charge(self, units: int) -> None:
        """Weight an answer adds after the fact (Hyperliquid's per-item weights)."""
        self.weight.take(units, self.clock())

    def refused(self, retry_after_s: float | None, reason: str = "rate_limited") -> float:
        """A 429/418: close the gate for every client of this venue."""
        return self.backoff.refused(self.clock(), retry_after_s, reason)

    def succeeded(self) -> None:
        self.backoff.succeeded()


def binance_pacer(
    weight_per_minute: int = BINANCE_USDM_REQUEST_WEIGHT_PER_MINUTE,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> Pacer:
    """Binance USDT-M's per-IP request weight (2400 a minute; pass execution's share of the IP
    budget, exchanges.budget.ip_budget(...).rest_weight_per_minute, when other roles share it)."""
    return Pacer("binance_usdm", Window("request weight per minute", weight_per_minute, 60.0), clock=clock, sleep=sleep)


def binance_order_windows(
    per_10s: int = BINANCE_USDM_ORDERS_PER_10S, per_minute: int = BINANCE_USDM_ORDERS_PER_MINUTE
) -> tuple[Window, Window]:
    """One account's order count windows: 300 per 10 s and 1200 per minute."""
    return Window("orders per 10 s", per_10s, 10.0), Window("orders per minute", per_minute, 60.0)


def hyperliquid_pacer(
    weight_per_minute: int = HYPERLIQUID_WEIGHT_PER_MINUTE,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> Pacer:
    """Hyperliquid's per-IP REST weight: 1200 a minute over /info and /exchange together."""
    return Pacer("hyperliquid", Window("weight per minute", weight_per_minute, 60.0), clock=clock, sleep=sleep)


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (delta-seconds; an HTTP date is not used by these venues)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
