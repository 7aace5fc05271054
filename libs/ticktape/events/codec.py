"""One JSON encoder/decoder for the whole event union, reused by every process."""

from __future__ import annotations

import msgspec

from ticktape import jsonlimits
from ticktape.events import EVENT_TYPES, Event, type_tag


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


_probe = msgspec.json.Decoder(_Probe)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> Event:
    """Decode straight into the union; raises UnknownEventType, TooDeep or DecodeError with the
    reason (never RecursionError: msgspec skips unknown fields recursively too)."""
    try:
        jsonlimits.check_depth(data)
    except jsonlimits.TooDeep as exc:
        raise TooDeep(str(exc)) from None
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        try:
            tag = _probe.decode(data).type
        except msgspec.DecodeError:
            tag = None
        if isinstance(tag, str) and tag not in KNOWN_TAGS:
            raise UnknownEventType(tag) from exc
        raise DecodeError(f"invalid event: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    except RecursionError:  # unreachable below MAX_DEPTH; kept so a deep stack cannot crash a shell
        raise TooDeep("JSON nested too deeply to decode") from None
