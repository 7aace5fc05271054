"""Publishing events with Nats-Msg-Id = event_id, so JetStream drops a republished duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck

from ticktape import subjects
from ticktape.events import Event
from ticktape.events.codec import encode

_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.js.errors.NoStreamResponseError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    asyncio.TimeoutError,
)


def msg_headers(event: Event, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Nats-Msg-Id": event.event_id}
    if extra:
        headers.update(extra)
    return headers


async def publish_batch(
    js: JetStreamContext,
    items: Sequence[tuple[Event, dict[str, str]]],
    *,
    retry_delay: float = 0.2,
    max_delay: float = 5.0,
    attempts: int | None = None,
) -> list[PubAck]:
    """Publish events in order (pipelined) and wait for every ack; retry transient failures with
    the same ids until acked (safe: duplicates are dropped). attempts=None retries for ever."""
    pending = list(items)
    acks: list[PubAck] = []
    delay, tries = retry_delay, 0
    while pending:
        try:
            futures = [
                await js.publish_async(subjects.for_event(ev), encode(ev), headers=msg_headers(ev, hdrs))
                for ev, hdrs in pending
            ]
            results = await asyncio.wait_for(asyncio.gather(*futures), timeout=10.0)
            acks.extend(results)
            return acks
        except _TRANSIENT:
            tries += 1
            if attempts is not None and tries >= attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    return acks
