"""Nesting-depth limit for JSON from outside the process (bus messages, exchange frames, stored
rows), checked before msgspec sees the bytes. Pure: no I/O.

msgspec recurses once per nesting level, in typed decoders too (an unknown field is skipped
recursively), and raises RecursionError past the interpreter's recursion limit: `[` * 100000
would crash whoever decodes it, and whether a document of depth ~900 decodes would depend on how
deep the caller's stack is. A fixed limit, checked on the bytes, makes the outcome a property of
the document alone, so live consumers, replay and audit verification agree on it.

The check costs two `bytes.count` calls when a document has at most MAX_DEPTH brackets (every
ticktape event); only bracket-heavy documents are scanned, in C-speed passes (regex, translate,
accumulate)."""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Any, Generic, TypeVar

import msgspec

# Far above any ticktape event (3 levels) or exchange frame, far below the recursion limit (1000).
MAX_DEPTH = 128

T = TypeVar("T")

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed chars


class TooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def depth(data: bytes | bytearray | memoryview | str) -> int:
    """The deepest array/object nesting a JSON parser reaches in `data` before its first syntax
    error (an upper bound for malformed input; brackets inside strings do not count)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)  # an escaped quote neither opens nor closes a string
    raw = raw.translate(None, _NOT_STRUCTURE)
    if b'"' in raw:
        raw = _STRING.sub(b"", raw)
        raw = raw.split(b'"', 1)[0]  # an unterminated string swallows the rest
    if not raw:
        return 0
    return max(0, max(accumulate(array("b", raw.translate(_SIGNS)))))


def check_depth(data: bytes | bytearray | memoryview | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise TooDeep when `data` nests deeper than max_depth."""
    if isinstance(data, str):
        if data.count("[") + data.count("{") <= max_depth:  # cannot be deeper than its brackets
            return
    else:
        raw = data.tobytes() if isinstance(data, memoryview) else data
        if raw.count(b"[") + raw.count(b"{") <= max_depth:
            return
    if depth(data) > max_depth:
        raise TooDeep(max_depth)


class Limited(Generic[T]):
    """A msgspec JSON decoder that refuses a document nested deeper than max_depth with
    msgspec.DecodeError, so a caller's handling of malformed JSON covers it (exchange frames)."""

    __slots__ = ("_decoder", "_max_depth")

    def __init__(self, decoder: msgspec.json.Decoder[T], max_depth: int = MAX_DEPTH) -> None:
        self._decoder = decoder
        self._max_depth = max_depth

    def decode(self, data: bytes | str) -> T:
        try:
            check_depth(data, self._max_depth)
        except TooDeep as exc:
            raise msgspec.DecodeError(str(exc)) from None
        return self._decoder.decode(data)


def decode(data: bytes | bytearray | memoryview | str, max_depth: int = MAX_DEPTH) -> Any:
    """msgspec.json.decode (untyped) within the depth limit: raises TooDeep or msgspec.DecodeError,
    never RecursionError."""
    check_depth(data, max_depth)
    try:
        return msgspec.json.decode(data)
    except RecursionError:  # unreachable within the limit; a caller on a deep stack gets a clear error
        raise TooDeep(max_depth) from None
