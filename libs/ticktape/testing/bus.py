"""Reading what is on the bus, for assertions in tests."""

from __future__ import annotations

from collections.abc import Sequence

from nats.js import JetStreamContext

from ticktape.bus.reader import read_range
from ticktape.events import Event
from ticktape.events.codec import decode


async def stream_events(js: JetStreamContext, stream: str, filters: Sequence[str] = (">",)) -> list[Event]:
    """Every decodable event on the stream matching filters, in stream order."""
    out: list[Event] = []
    try:
        async for msg in read_range(js, stream, list(filters)):
            out.append(decode(msg.data))
    except Exception as exc:  # stream not created yet
        if "not found" in str(exc).lower():
            return []
        raise
    return out


async def stream_messages(js: JetStreamContext, stream: str, filters: Sequence[str] = (">",)) -> list[object]:
    """Raw messages (with headers and subject), in stream order."""
    try:
        return [msg async for msg in read_range(js, stream, list(filters))]
    except Exception as exc:
        if "not found" in str(exc).lower():
            return []
        raise
