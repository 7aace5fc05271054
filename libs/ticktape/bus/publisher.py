"""Publishing events with Nats-Msg-Id = event_id, so JetStream drops a republished duplicate.

Every message is checked against the connection's max_payload (the server's, from its INFO)
before anything is sent: an oversized event raises PayloadTooLarge naming it, instead of nats-py's
bare MaxPayloadError or, for headers that push it over, the server closing the connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

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


class PayloadTooLarge(ValueError):
    """An outgoing message does not fit in one bus message (the server's max_payload)."""

    def __init__(self, subject: str, size: int, limit: int, what: str = "message") -> None:
        super().__init__(f"{what} on {subject} is {size} bytes with headers; the bus max_payload is {limit}")
        self.subject = subject
        self.size = size
        self.limit = limit


def max_payload(js: JetStreamContext) -> int:
    """The largest message (payload plus headers) the server takes on this connection."""
    return js._nc.max_payload  # nats-py keeps the server's INFO on the client only


def message_size(payload: bytes, headers: Mapping[str, str] | None) -> int:
    """Bytes the server counts against max_payload: the payload and the encoded header block."""
    if not headers:
        return len(payload)
    head = len(b"NATS/1.0\r\n\r\n") + sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items())
    return len(payload) + head


def check_size(
    js: JetStreamContext, subject: str, payload: bytes, headers: Mapping[str, str] | None, what: str
) -> None:
    limit = max_payload(js)
    size = message_size(payload, headers)
    if size > limit:
        raise PayloadTooLarge(subject, size, limit, what)


def msg_headers(event: Event, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Nats-Msg-Id": event.event_id}
    if extra:
        headers.update(extra)
    return headers


def prepare(
    js: JetStreamContext, items: Sequence[tuple[Event, dict[str, str]]]
) -> list[tuple[str, bytes, dict[str, str]]]:
    """(subject, payload, headers) of each event; PayloadTooLarge when one does not fit."""
    prepared = []
    for ev, hdrs in items:
        subject, data, headers = subjects.for_event(ev), encode(ev), msg_headers(ev, hdrs)
        check_size(js, subject, data, headers, str(ev.__struct_config__.tag))
        prepared.append((subject, data, headers))
    return prepared


async def send_async(
    js: JetStreamContext, items: Sequence[tuple[Event, dict[str, str]]]
) -> list[asyncio.Future[PubAck]]:
    """Send the events without waiting for their acks: one future per event, in order (the caller
    waits for them, and on a failure or a timeout publishes them again with publish_batch: the
    same ids, so what was stored already is dropped). Raises PayloadTooLarge before sending any."""
    return [await js.publish_async(subject, data, headers=headers) for subject, data, headers in prepare(js, items)]


async def publish_batch(
    js: JetStreamContext,
    items: Sequence[tuple[Event, dict[str, str]]],
    *,
    retry_delay: float = 0.2,
    max_delay: float = 5.0,
    attempts: int | None = None,
    timeout: float = 10.0,
    pipelined: bool = True,
    observe: Callable[[float], None] | None = None,
) -> list[PubAck]:
    """Publish events in order and wait for every ack; retry transient failures with the same ids
    until acked (safe: duplicates are dropped). attempts=None retries for ever. Raises
    PayloadTooLarge, before sending any of them, when one does not fit, and nats.js.errors.APIError
    when JetStream refuses one (e.g. a stream limit).

    The first try is pipelined (publish_async); later tries, and every try when pipelined=False,
    publish one by one and wait for each ack. nats-py 2.16 never resolves a publish_async future
    whose ack is an error (its reply handler raises instead), so a refusal shows up there only as
    a timeout; the request-reply publish reports it.

    observe: called with the seconds from the first send to the last ack (retries included), once
    every event is acked (ServiceMetrics.publish_acked)."""
    prepared = prepare(js, items)
    delay, tries = retry_delay, 0
    started = time.perf_counter()
    while prepared:
        try:
            if pipelined and tries == 0:
                futures = [
                    await js.publish_async(subject, data, headers=headers) for subject, data, headers in prepared
                ]
                acks = list(await asyncio.wait_for(asyncio.gather(*futures), timeout=timeout))
            else:
                acks = [
                    await js.publish(subject, data, headers=headers, timeout=timeout)
                    for subject, data, headers in prepared
                ]
            if observe is not None:
                observe(time.perf_counter() - started)
            return acks
        except _TRANSIENT:
            tries += 1
            if attempts is not None and tries >= attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    return []
