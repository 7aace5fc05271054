"""The standard envelope every ticktape message carries."""

from __future__ import annotations

from typing import TypedDict

import msgspec


class Envelope(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event and command on the bus.

    event_id is derived from the inputs (ticktape.ids), never random, so a retry or a replay
    reproduces it and JetStream drops the duplicate publish. Times are integer nanoseconds since
    the epoch: ts_event when it happened (exchange time for market data), ts_init when this
    message was made, taken from the input rather than the wall clock inside a core.
    Evolution is additive: new fields get defaults; decoders ignore fields they do not know."""

    event_id: str
    ts_event: int
    ts_init: int
    causation_id: str | None = None
    correlation_id: str | None = None
    version: int = 1


class EnvelopeFields(TypedDict):
    """The envelope fields a core derives for an output from its input, passed on as
    `SomeEvent(**fields, ...)`; a TypedDict so that the checker sees each field's type."""

    event_id: str
    ts_event: int
    ts_init: int
    causation_id: str | None
    correlation_id: str | None
