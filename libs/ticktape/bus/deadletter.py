"""Dead letters: input that cannot be processed is kept whole on dlq.<service>, never dropped."""

from __future__ import annotations

import base64
import hashlib

from ticktape import ids
from ticktape.events import DeadLettered


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
) -> DeadLettered:
    """A DeadLettered event whose id is derived from the input, so a redelivered poison message
    is dead-lettered once."""
    digest = hashlib.sha256(payload).hexdigest()
    return DeadLettered(
        event_id=ids.derive("dlq", service, source, stream_seq, digest),
        ts_event=ts_ns,
        ts_init=ts_ns,
        causation_id=causation_id,
        service=service,
        source=source,
        error=error[:2000],
        payload_b64=base64.b64encode(payload).decode(),
        stream_seq=stream_seq,
        headers={k: v for k, v in (headers or {}).items() if k.lower() != "authorization"},
    )
