"""The simulated exchange clock: sim_time = t0 + wall_elapsed × speed, frozen at t0 until started."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Simulated time in epoch ms. `wall` is injectable (seconds, monotonic) so tests need no sleeps."""

    def __init__(self, t0_ms: int, speed: float = 1.0, wall: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        self.t0_ms = t0_ms
        self.speed = speed
        self._wall = wall
        self._wall0: float | None = None

    @property
    def started(self) -> bool:
        return self._wall0 is not None

    def start(self) -> bool:
        """Start running from t0 now; returns False (and changes nothing) if already started."""
        if self._wall0 is not None:
            return False
        self._wall0 = self._wall()
        return True

    def now_ms(self) -> int:
        """Current sim time; t0 until the clock is started."""
        if self._wall0 is None:
            return self.t0_ms
        return self.t0_ms + int((self._wall() - self._wall0) * 1000.0 * self.speed)

    def wall_seconds_until(self, sim_ms: float) -> float:
        """Wall seconds until sim time reaches `sim_ms` (0 if already there; inf if not started)."""
        if self._wall0 is None:
            return float("inf")
        wall_at = self._wall0 + (sim_ms - self.t0_ms) / (1000.0 * self.speed)
        return max(0.0, wall_at - self._wall())
