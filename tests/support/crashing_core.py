"""A consumer process whose core kills the process outright (os._exit, as the OOM killer
would) on one input: `python -m tests.support.crashing_core NATS_URL CRASH_DIR EVENT_ID`.

Each 1m bar becomes a "2m" bar; the bar whose event_id is EVENT_ID ends the process with exit
status 137 while the core handles it. SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import msgspec
import nats
import structlog

from ticktape import subjects
from ticktape.bus.consumer import CoreConsumer
from ticktape.events import BarClosed, Event
from ticktape.metrics import ServiceMetrics

MAX_DELIVER = 3


class KillerCore:
    def __init__(self, poison: str) -> None:
        self.poison = poison

    def handle(self, event: Event) -> list[Event]:
        assert isinstance(event, BarClosed)
        if event.event_id == self.poison:
            os._exit(137)
        return [msgspec.structs.replace(event, timeframe="2m", event_id=event.event_id + "-2m")]


async def main(url: str, crash_dir: str, poison: str) -> None:
    nc = await nats.connect(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    consumer = CoreConsumer(
        service="crashing",
        js=nc.jetstream(),
        stream=subjects.EVENTS_STREAM,
        filter_subjects=[subjects.bars(timeframe="1m")],
        core=KillerCore(poison),
        metrics=ServiceMetrics("crashing"),
        log=structlog.get_logger(),
        max_deliver=MAX_DELIVER,
        crash_dir=Path(crash_dir),
    )
    try:
        await consumer.run(stop)
    finally:
        await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
