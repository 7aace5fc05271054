"""Republish a recording's market data (bars and control events) into a running stack, paced by
event time: an event whose ts_event is t after the first one is published t / speed seconds
after it (speed 0: as fast as possible), so live services process it as if it were live.

Messages keep their recorded headers, Nats-Msg-Id included. On a stream that already holds them
(within its duplicate window) JetStream drops them as duplicates, and cores ignore bars that are
not newer than the last they saw per symbol: republish into a fresh stack or stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.js import JetStreamContext

from ticktape.events.codec import DecodeError, decode
from ticktape.replay.records import Record
from ticktape.replay.whatif import is_input


@dataclass
class Republished:
    published: int = 0
    duplicates: int = 0
    skipped: int = 0


async def republish(
    js: JetStreamContext,
    records: AsyncIterator[Record],
    *,
    speed: float,
    with_history: bool = False,
    on_message: Callable[[], None] | None = None,
    window: int = 256,
) -> Republished:
    """Publish the session's inputs (with_history: also those before it) in recorded order."""
    result = Republished()
    pending: list[asyncio.Future] = []
    t0: int | None = None
    m0 = 0.0
    async for rec in records:
        if on_message:
            on_message()
        if not is_input(rec.subject) or not (rec.in_session or with_history):
            result.skipped += 1
            continue
        try:
            ts = decode(rec.data).ts_event
        except DecodeError:
            result.skipped += 1
            continue
        if speed > 0:
            if t0 is None:
                t0, m0 = ts, time.monotonic()
            delay = m0 + (ts - t0) / 1e9 / speed - time.monotonic()
            if delay > 0:
                await _settle(pending, result)
                await asyncio.sleep(delay)
        pending.append(await js.publish_async(rec.subject, rec.data, headers=dict(rec.headers)))
        if len(pending) >= window:
            await _settle(pending, result)
    await _settle(pending, result)
    return result


async def _settle(pending: list[asyncio.Future], result: Republished) -> None:
    for ack in await asyncio.gather(*pending):
        if ack.duplicate:
            result.duplicates += 1
        else:
            result.published += 1
    pending.clear()
