"""Replay of raw captures to a venue's WebSocket clients, paced by the recorded receive times.

All capture files of one venue share one timeline: the venue's earliest recorded frame is sent when
the sim clock starts, and a frame recorded d ns later is sent when d / 1e6 sim ms have passed
(wall time d / speed), so files of consecutive days or of several symbols interleave as recorded.
Each frame goes, byte for byte, to every client subscribed to its stream and to nobody else."""

from __future__ import annotations

import asyncio
import heapq
from pathlib import Path

from venuesim.capture import first_frame_ns, read_capture
from venuesim.clock import SimClock
from venuesim.feed import Hub
from venuesim.stats import Stats

# Frames handled between yields to the event loop when replay is behind schedule.
_BATCH = 500


class CaptureError(ValueError):
    """A capture file cannot be replayed; the message names it."""


def capture_start_ns(venue: str, paths: list[Path]) -> int:
    """The receive time the venue's replay starts from; CaptureError when a file has no frame."""
    starts = []
    for path in paths:
        try:
            start = first_frame_ns(path, venue)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise CaptureError(f"{path}: cannot read ({exc})") from None
        if start is None:
            raise CaptureError(f"{path}: no `<receive_ns> <json frame>` lines for {venue}")
        starts.append(start)
    return min(starts)


async def run_replay(
    venue: str, paths: list[Path], start_ns: int, clock: SimClock, hub: Hub, started: asyncio.Event, stats: Stats
) -> None:
    """Publish every frame of `paths` when its time comes; returns after the last one."""
    await started.wait()
    frames = heapq.merge(*(read_capture(path, venue) for path in paths), key=lambda f: f.recv_ns)
    t0 = clock.t0_ms
    behind = 0
    for frame in frames:
        wait = clock.wall_seconds_until(t0 + (frame.recv_ns - start_ns) / 1e6)
        if wait > 0:
            await asyncio.sleep(wait)
            behind = 0
        else:
            behind += 1
            if behind % _BATCH == 0:
                await asyncio.sleep(0)
        stats.capture_frames[venue] += 1
        hub.publish(frame.key, frame.payload, frame.combined)
