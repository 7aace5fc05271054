"""Counters the simulator exposes at GET /_sim/stats so tests can observe what it did."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from venuesim.clock import SimClock
from venuesim.venues import ALL


@dataclasses.dataclass
class Stats:
    """frames_sent: market data frames written per venue (bar frames and replayed capture frames,
    not replies to requests, not malformed frames). capture_frames: capture lines replayed per
    venue (sent to nobody when nobody subscribed). drops: connections closed by the drop fault;
    drop_events: times it fired. skipped_frames: bar frames withheld by the skip-minutes fault."""

    frames_sent: Counter[str] = dataclasses.field(default_factory=Counter)
    capture_frames: Counter[str] = dataclasses.field(default_factory=Counter)
    connections: Counter[str] = dataclasses.field(default_factory=Counter)
    drops: int = 0
    drop_events: int = 0
    malformed_sent: int = 0
    refused_connects: int = 0
    stalls: int = 0
    skipped_frames: int = 0

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
        }
