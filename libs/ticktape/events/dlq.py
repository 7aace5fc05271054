"""Dead letters: input that could not be processed, kept whole so nothing is lost."""

from __future__ import annotations

from ticktape.events.envelope import Envelope


class DeadLettered(Envelope, frozen=True, kw_only=True, tag="dlq.dead_lettered"):
    """`payload_b64` is the raw input; `source` is where it came from (a bus subject or an
    exchange stream); `error` says what was wrong with it."""

    service: str
    source: str
    error: str
    payload_b64: str
    stream_seq: int | None = None
    headers: dict[str, str] = {}
