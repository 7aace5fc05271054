"""One JSON encoder/decoder for the whole event union, reused by every process.

Versioned events (Envelope.version): bytes of an older version of an event are upcast to today's
shape at decode, keeping their version; an event whose version is older than today's encodes back
to that version's exact bytes. So an old recording decodes, and a replay that emits what the old
code emitted (the cores key that on the recorded configuration) writes the recorded bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ticktape import jsonlimits
from ticktape.events import EVENT_TYPES, Event, type_tag
from ticktape.events import signals as sig


class DecodeError(ValueError):
    """The bytes are not a valid ticktape event (bad JSON, missing or mistyped field)."""


class UnknownEventType(DecodeError):
    """Valid JSON with a `type` tag this build does not know (a newer producer, or garbage)."""

    def __init__(self, tag: object) -> None:
        super().__init__(f"unknown event type {tag!r}; known types: {', '.join(KNOWN_TAGS)}")
        self.tag = tag


class TooDeep(DecodeError):
    """JSON nested deeper than jsonlimits.MAX_DEPTH: refused before msgspec recurses into it."""


KNOWN_TAGS: tuple[str, ...] = tuple(sorted(type_tag(t) for t in EVENT_TYPES))
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


class _Probe(msgspec.Struct):
    type: object = None
    version: object = 1  # Envelope.version's default: bytes without the key are version 1


_probe = msgspec.json.Decoder(_Probe)

# Today's version of each versioned event type, how to read each older version's bytes (a decoder
# of that wire shape and its upcaster) and how to write an event of an older version back.
CURRENT_VERSION: dict[type[Any], int] = {sig.SignalGenerated: sig.SIGNAL_VERSION}
# (type tag, version) -> the wire shape of that older version and its upcaster
LEGACY: dict[tuple[str, int], tuple[type[msgspec.Struct], Callable[[Any], Event]]] = {
    ("signal.generated", 1): (sig.SignalGeneratedV1, sig.upcast_v1),
}
_UPCAST: dict[tuple[str, int], tuple[msgspec.json.Decoder[Any], Callable[[Any], Event]]] = {
    key: (msgspec.json.Decoder(shape), upcast) for key, (shape, upcast) in LEGACY.items()
}
_DOWNCAST: dict[tuple[type[Any], int], Callable[[Any], msgspec.Struct]] = {
    (sig.SignalGenerated, 1): sig.downcast_v1,
}


def encode(event: Event) -> bytes:
    """The event's JSON in the shape of its version (an older version: that version's bytes)."""
    current = CURRENT_VERSION.get(type(event))
    if current is not None and event.version < current:
        down = _DOWNCAST.get((type(event), event.version))
        if down is None:
            raise ValueError(f"{type_tag(type(event))} version {event.version} cannot be written by this build")
        return _encoder.encode(down(event))
    return _encoder.encode(event)


def _upcast(data: bytes, tag: object, version: object) -> Event | None:
    """Bytes of an older version of a versioned event, upcast; None when they are not."""
    if not isinstance(tag, str) or not isinstance(version, int) or isinstance(version, bool):
        return None
    found = _UPCAST.get((tag, version))
    if found is None:
        return None
    decoder, upcast = found
    try:
        return upcast(decoder.decode(data))
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid event ({tag} version {version}): {exc}") from exc


def decode(data: bytes) -> Event:
    """Decode straight into the union; raises UnknownEventType, TooDeep or DecodeError with the
    reason (never RecursionError: msgspec skips unknown fields recursively too)."""
    try:
        jsonlimits.check_depth(data)
    except jsonlimits.TooDeep as exc:
        raise TooDeep(str(exc)) from None
    try:
        event = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        try:
            probe = _probe.decode(data)
        except msgspec.DecodeError:
            probe = _Probe()
        tag = probe.type
        if isinstance(tag, str) and tag not in KNOWN_TAGS:
            raise UnknownEventType(tag) from exc
        upcast = _upcast(data, tag, probe.version)
        if upcast is not None:
            return upcast
        raise DecodeError(f"invalid event: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    except RecursionError:  # unreachable below MAX_DEPTH; kept so a deep stack cannot crash a shell
        raise TooDeep("JSON nested too deeply to decode") from None
    current = CURRENT_VERSION.get(type(event))
    if current is not None and event.version != current:
        # today's fields under an older version number: read it as that version's bytes (or refuse
        # it), so that what decodes as version N always encodes back to the same bytes
        upcast = _upcast(data, type_tag(type(event)), event.version)
        if upcast is not None:
            return upcast
        if event.version < current:
            raise DecodeError(f"invalid event: {type_tag(type(event))} version {event.version} is not readable")
    return event
