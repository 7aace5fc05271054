"""Counters the simulator exposes at GET /_sim/stats so tests can observe what it did."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

from venuesim.clock import SimClock
from venuesim.iplimits import IpLimits
from venuesim.venues import ALL

BURSTS_KEPT = 1440  # a sim day of minutes per venue
_OPEN_TIME = '"k":{"t":'


@dataclasses.dataclass
class Stats:
    """frames_sent: market data frames written per venue (bar frames and replayed capture frames,
    not replies to requests, not malformed frames). capture_frames: capture lines replayed per
    venue (sent to nobody when nobody subscribed). drops: connections closed by the drop fault;
    drop_events: times it fired. skipped_frames: bar frames withheld by the skip-minutes fault.
    bursts: per venue and bar minute (open time, ms), the wall time (epoch s, time.time()) at which
    the first and the last final kline frame (`"x":true`) of that minute finished being written to a
    WebSocket, and how many were written: when the minute-boundary burst started and ended being
    sent (Binance kline frames only; the last BURSTS_KEPT minutes per venue). ip_limits: per venue
    that enforces per-IP limits, the limits, the peaks reached and the refusals (venuesim.iplimits)."""

    frames_sent: Counter[str] = dataclasses.field(default_factory=Counter)
    capture_frames: Counter[str] = dataclasses.field(default_factory=Counter)
    connections: Counter[str] = dataclasses.field(default_factory=Counter)
    drops: int = 0
    drop_events: int = 0
    malformed_sent: int = 0
    refused_connects: int = 0
    stalls: int = 0
    skipped_frames: int = 0
    bursts: dict[str, dict[int, list[float]]] = dataclasses.field(default_factory=dict)
    ip_limits: dict[str, IpLimits] = dataclasses.field(default_factory=dict)

    def final_kline_sent(self, venue: str, text: str) -> None:
        """A final kline frame was just written: count it in its minute's burst."""
        start = text.find(_OPEN_TIME)
        if start < 0:
            return
        start += len(_OPEN_TIME)
        try:
            open_ms = int(text[start : text.index(",", start)])
        except ValueError:
            return
        now = time.time()
        minutes = self.bursts.setdefault(venue, {})
        burst = minutes.get(open_ms)
        if burst is None:
            minutes[open_ms] = [now, now, 1]
            if len(minutes) > BURSTS_KEPT:
                del minutes[next(iter(minutes))]
        else:
            burst[1] = now
            burst[2] += 1

    def snapshot(self, clock: SimClock) -> dict[str, Any]:
        return {
            "sim_time_ms": clock.now_ms(),
            "clock_started": clock.started,
            "frames_sent": {venue: self.frames_sent[venue] for venue in ALL},
            "capture_frames": {venue: self.capture_frames[venue] for venue in ALL},
            "connections": {venue: self.connections[venue] for venue in ALL},
            "drops": self.drops,
            "drop_events": self.drop_events,
            "malformed_sent": self.malformed_sent,
            "refused_connects": self.refused_connects,
            "stalls": self.stalls,
            "skipped_frames": self.skipped_frames,
            "ip_limits": {venue: limits.snapshot() for venue, limits in self.ip_limits.items()},
            "bursts": {
                venue: [
                    {"open_time": t, "burst_started_wall": b[0], "burst_finished_wall": b[1], "frames": b[2]}
                    for t, b in sorted(minutes.items())
                ]
                for venue, minutes in self.bursts.items()
            },
        }
