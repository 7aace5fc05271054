"""Dead letters: input that could not be processed, kept so nothing is lost."""

from __future__ import annotations

from ticktape.events.envelope import Envelope


class DeadLettered(Envelope, frozen=True, kw_only=True, tag="dlq.dead_lettered"):
    """`payload_b64` is the raw input, or its first bytes when `payload_truncated` (a dead letter
    must fit in one bus message); `payload_size` and `payload_sha256` (hex) describe the whole
    input, and `payload_ref` names where it is kept whole (`<object store bucket>/<object name>`
    in JetStream), None when inline or when storing it failed. `source` is where it came from (a
    bus subject or an exchange stream); `error` says what was wrong with it; `delivery` is the
    delivery attempt that gave up on it, when known."""

    service: str
    source: str
    error: str
    payload_b64: str
    stream_seq: int | None = None
    headers: dict[str, str] = {}
    payload_size: int | None = None
    payload_sha256: str | None = None
    payload_truncated: bool = False
    payload_ref: str | None = None
    delivery: int | None = None
