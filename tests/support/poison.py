"""Regression corpus: inputs that once crashed a service or stopped the pipeline, kept so that
each stays handled (dead-lettered or archived, never an exception out of a decoder).

Each entry: a name, the bytes, and what broke. Built by functions so the megabyte-sized ones
cost nothing until a test asks for them."""

from __future__ import annotations

from collections.abc import Callable

MB = 1_000_000


def one_megabyte() -> bytes:
    """Issue item 1: b'x' * 1_000_000 on md.bar. Its dead letter inlined it base64-encoded (+33%),
    over the server's 1 MiB max_payload: the DLQ publish failed, the service exited, the message
    was redelivered, and signal, risk, execution and audit crash-looped."""
    return b"x" * MB


def nested_arrays() -> bytes:
    """Issue item 4: RecursionError in the audit chain's projection (msgspec.json.decode)."""
    return b"[" * 100_000 + b"]" * 100_000


def nested_objects() -> bytes:
    return b'{"a":' * 50_000 + b"1" + b"}" * 50_000


def nested_in_type_tag() -> bytes:
    """The codec's tag probe decoded `type` as an untyped value: RecursionError."""
    return b'{"type":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def nested_in_unknown_field() -> bytes:
    """msgspec skips unknown fields recursively, typed decoders too: RecursionError."""
    return b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b',"type":"md.bar.closed"}'


def nested_in_headers() -> bytes:
    """A dict[str, str] field given nested objects: RecursionError before the type check."""
    return b'{"type":"dlq.dead_lettered","headers":' + b'{"a":' * 100_000 + b'"v"' + b"}" * 100_000 + b"}"


def unclosed_arrays() -> bytes:
    """Malformed and deep: msgspec recurses before it finds the end."""
    return b"[" * 100_000


def deep_just_past_the_limit() -> bytes:
    """129 levels: decodable by msgspec, refused by ticktape's fixed limit (jsonlimits.MAX_DEPTH),
    so the outcome never depends on the caller's stack depth."""
    return b"[" * 129 + b"]" * 129


def huge_event_id() -> bytes:
    """An event id of 10,000 incompressible characters: the audit log's btree index on event_id
    refuses it (ProgramLimitExceeded, an OperationalError), which the archiver retried for ever."""
    import hashlib

    ident = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(157))[:10_000]
    return b'{"type":"md.bar.closed","event_id":"' + ident.encode() + b'","ts_event":1,"ts_init":1}'


CORPUS: dict[str, Callable[[], bytes]] = {
    "one_megabyte": one_megabyte,
    "nested_arrays": nested_arrays,
    "nested_objects": nested_objects,
    "nested_in_type_tag": nested_in_type_tag,
    "nested_in_unknown_field": nested_in_unknown_field,
    "nested_in_headers": nested_in_headers,
    "unclosed_arrays": unclosed_arrays,
    "deep_just_past_the_limit": deep_just_past_the_limit,
    "huge_event_id": huge_event_id,
}
