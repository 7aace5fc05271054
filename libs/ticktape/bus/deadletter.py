"""Dead letters: input that cannot be processed goes to dlq.<service>, never dropped, and never
so large that publishing it fails.

A dead letter always records the input's length and sha256. It inlines the input (base64) only
up to `inline_bytes` (64 KiB by default): a 1 MB poison message, base64-encoded, would exceed the
server's max_payload itself, fail to publish and take the service down with it. A larger input
is kept whole in a JetStream object store bucket (provisioned with the streams, with a size
limit) under its sha256, and the letter names it in `payload_ref`. Storing out of band is best
effort: when it fails (bucket full or missing, no permission), the bounded letter is published
anyway, and the input itself is still in its stream."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from ticktape import ids, subjects
from ticktape.bus.publisher import PayloadTooLarge, max_payload, message_size, msg_headers, publish_batch
from ticktape.events import DeadLettered
from ticktape.events.codec import encode
from ticktape.metrics import ServiceMetrics

INLINE_BYTES = 64 * 1024
HEADERS_BYTES = 8 * 1024  # names and values of the input's headers kept, in all
HEADER_VALUE_CHARS = 1024
ERROR_CHARS = 2000
DLQ_PAYLOADS_BUCKET = "TICKTAPE_DLQ_PAYLOADS"
_STORE_RETRY_S = 30.0  # after the object store failed, letters go without it for this long


def dead_letter(
    *,
    service: str,
    source: str,
    error: str,
    payload: bytes,
    ts_ns: int,
    stream_seq: int | None = None,
    headers: dict[str, str] | None = None,
    causation_id: str | None = None,
    inline_bytes: int = INLINE_BYTES,
    payload_ref: str | None = None,
    delivery: int | None = None,
    max_bytes: int | None = None,
) -> DeadLettered:
    """A bounded DeadLettered event whose id is derived from the input, so a redelivered poison
    message is dead-lettered once. max_bytes: the bus limit the encoded letter (with its
    Nats-Msg-Id header) must fit in; the inline payload, then the headers, give way first."""
    payload = bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()

    def letter(inline: bytes, kept: dict[str, str]) -> DeadLettered:
        return DeadLettered(
            event_id=ids.derive("dlq", service, source, stream_seq, digest),
            ts_event=ts_ns,
            ts_init=ts_ns,
            causation_id=causation_id,
            service=service,
            source=source,
            error=error[:ERROR_CHARS],
            payload_b64=base64.b64encode(inline).decode(),
            stream_seq=stream_seq,
            headers=kept,
            payload_size=len(payload),
            payload_sha256=digest,
            payload_truncated=len(inline) < len(payload),
            payload_ref=payload_ref,
            delivery=delivery,
        )

    kept = _bounded_headers(headers)
    out = letter(payload[: max(0, inline_bytes)], kept)
    if max_bytes is None:
        return out
    size = 0
    for inline, hdrs in ((payload[: max(0, inline_bytes)], kept), (b"", kept), (b"", {})):  # payload gives way first
        out = letter(inline, hdrs)
        size = message_size(encode(out), msg_headers(out))
        if size <= max_bytes:
            return out
    raise PayloadTooLarge(subjects.dead_letter(service), size, max_bytes, "dead letter")


def _bounded_headers(headers: dict[str, str] | None) -> dict[str, str]:
    """The input's headers without credentials, each value and the whole cut to a bound."""
    out: dict[str, str] = {}
    budget = HEADERS_BYTES
    for key, value in sorted((headers or {}).items()):
        if key.lower() == "authorization":
            continue
        key, value = key[:256], value[:HEADER_VALUE_CHARS]
        cost = len(key.encode()) + len(value.encode()) + 4
        if cost > budget:
            break
        out[key] = value
        budget -= cost
    return out


class DeadLetters:
    """Sends one service's dead letters: the whole input to the object store when it does not
    fit inline, then the bounded letter to dlq.<service>. `send` never raises for a letter it
    could not publish (it logs, counts `errors{kind="dead_letter"}` and returns False): the
    caller goes on and terminates the input, which stays in its stream and the audit log."""

    def __init__(
        self,
        js: JetStreamContext,
        service: str,
        metrics: ServiceMetrics,
        log: Any,
        *,
        bucket: str = DLQ_PAYLOADS_BUCKET,
        inline_bytes: int = INLINE_BYTES,
        store_timeout: float = 10.0,
    ) -> None:
        self.js = js
        self.service = service
        self.metrics = metrics
        self.log = log
        self.bucket = bucket
        self.inline_bytes = inline_bytes
        self.store_timeout = store_timeout
        self._store: ObjectStore | None = None
        self._store_down_until = 0.0

    async def send(
        self,
        *,
        source: str,
        error: str,
        payload: bytes,
        ts_ns: int,
        stream_seq: int | None = None,
        headers: dict[str, str] | None = None,
        causation_id: str | None = None,
        delivery: int | None = None,
    ) -> bool:
        payload = bytes(payload)
        ref = await self.store(payload) if len(payload) > self.inline_bytes else None
        try:
            letter = dead_letter(
                service=self.service,
                source=source,
                error=error,
                payload=payload,
                ts_ns=ts_ns,
                stream_seq=stream_seq,
                headers=headers,
                causation_id=causation_id,
                inline_bytes=self.inline_bytes,
                payload_ref=ref,
                delivery=delivery,
                max_bytes=max_payload(self.js),
            )
            await publish_batch(self.js, [(letter, {})])
        except (PayloadTooLarge, nats.errors.Error) as exc:  # transient failures are retried inside
            self.metrics.error("dead_letter")
            self.log.error(
                "dead letter not published; the input stays in its stream",
                source=source,
                stream_seq=stream_seq,
                error=repr(exc),
            )
            return False
        self.metrics.dead_lettered()
        return True

    async def store(self, payload: bytes) -> str | None:
        """Keep `payload` whole in the bucket under its sha256 (once); `<bucket>/<sha256>`, or
        None when the store is unavailable (then tried again after a pause, not per letter)."""
        if time.monotonic() < self._store_down_until:
            return None
        name = hashlib.sha256(payload).hexdigest()
        try:
            async with asyncio.timeout(self.store_timeout):
                if self._store is None:
                    self._store = await self.js.object_store(self.bucket)
                try:
                    info = await self._store.get_info(name)
                    stored = info.size == len(payload)
                except NotFoundError:
                    stored = False
                if not stored:
                    await self._store.put(name, payload)
                    self.metrics.dlq_payload_stored()
        except (TimeoutError, nats.errors.Error) as exc:
            self._store = None
            self._store_down_until = time.monotonic() + _STORE_RETRY_S
            self.metrics.error("dlq_payload_store")
            self.log.warning(
                "dead-letter payload not stored out of band; the letter keeps its first bytes and hash",
                bucket=self.bucket,
                size=len(payload),
                error=repr(exc),
            )
            return None
        return f"{self.bucket}/{name}"
