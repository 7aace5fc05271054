"""The audit log's hash chain: canonical preimage, next hash, and verification. Pure: no I/O.

Each archived message is a row, one chain per stream, in stream order:

    hash = sha256(prev_hash || preimage)

`prev_hash` is the previous row's 32-byte hash in the same stream, GENESIS (32 zero bytes) for
the stream's first row. `preimage` is, byte for byte:

    b"ticktape.audit/1\\n"
    + stream  (UTF-8)                                  + b"\\n"
    + seq     (ASCII decimal, no sign, no leading 0s)  + b"\\n"
    + subject (UTF-8)                                  + b"\\n"
    + len(data) (ASCII decimal)                        + b"\\n"
    + data

where `data` is the message body exactly as JetStream stores it (the event's JSON as ticktape's
deterministic encoder wrote it; any bytes at all for a malformed message). Stream names and
subjects cannot contain a newline and `data` is length-prefixed, so two different rows never
share a preimage. Headers and the archiver's clock are not hashed.

A row also carries columns projected from `data` (event_id, type, ts_event, causation_id,
correlation_id, and `payload`, the JSON as jsonb) so that it can be queried; `project` defines
them and verification recomputes them, so editing a projection is detected like editing `data`.
A body nested deeper than jsonlimits.MAX_DEPTH is not projected (its columns are NULL, as for
malformed JSON): a fixed limit, so the archiver and every later verification agree, and nothing
recurses without bound (msgspec and jsonb would).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from ticktape import jsonlimits

VERSION_TAG = b"ticktape.audit/1\n"
GENESIS = bytes(32)
_INT64 = (-(2**63), 2**63 - 1)
# PostgreSQL's jsonb rejects \u0000 and unpaired surrogates; such payloads are not projected.
_JSONB_UNSAFE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# Projected text columns longer than this are NULL: ids are tens of characters, and the indexes
# on event_id, causation_id, correlation_id and type refuse rows over ~2700 bytes.
_MAX_TEXT_BYTES = 1024


def preimage(stream: str, seq: int, subject: str, data: bytes) -> bytes:
    """The bytes a row's hash commits to, besides the previous hash (see the module docstring)."""
    if seq < 1:
        raise ValueError(f"stream sequence must be >= 1 (got {seq})")
    return b"".join(
        (
            VERSION_TAG,
            stream.encode(),
            b"\n",
            str(seq).encode(),
            b"\n",
            subject.encode(),
            b"\n",
            str(len(data)).encode(),
            b"\n",
            bytes(data),
        )
    )


def next_hash(prev_hash: bytes, stream: str, seq: int, subject: str, data: bytes) -> bytes:
    """sha256(prev_hash || preimage): the hash of the row that follows `prev_hash`."""
    if len(prev_hash) != 32:
        raise ValueError(f"prev_hash must be 32 bytes (got {len(prev_hash)})")
    return hashlib.sha256(prev_hash + preimage(stream, seq, subject, data)).digest()


class Projection(NamedTuple):
    """The queryable columns derived from a message body; None where the body does not say."""

    event_id: str | None
    type: str | None
    ts_event: int | None
    causation_id: str | None
    correlation_id: str | None
    payload: str | None  # the body as JSON text for the jsonb column, None if not storable


def project(data: bytes) -> Projection:
    """Envelope fields and jsonb text of a body; lenient, so unknown or malformed events are
    archived too (their columns are NULL)."""
    try:
        doc = jsonlimits.decode(data)
        text = bytes(data).decode("utf-8")
    except (msgspec.DecodeError, UnicodeDecodeError, jsonlimits.TooDeep):
        return Projection(None, None, None, None, None, None)
    payload = None if _JSONB_UNSAFE.search(data) else text
    if not isinstance(doc, dict):
        return Projection(None, None, None, None, None, payload)
    ts = doc.get("ts_event")
    ts_event = ts if type(ts) is int and _INT64[0] <= ts <= _INT64[1] else None
    return Projection(
        _str(doc.get("event_id")),
        _str(doc.get("type")),
        ts_event,
        _str(doc.get("causation_id")),
        _str(doc.get("correlation_id")),
        payload,
    )


def unprojectable(data: bytes) -> str | None:
    """Why a body is archived without projected columns because it exceeds a decode limit
    (nesting deeper than jsonlimits.MAX_DEPTH), else None. Such a body is still chained and stored
    byte for byte; the archiver also dead-letters it."""
    try:
        jsonlimits.check_depth(data)
    except jsonlimits.TooDeep as exc:
        return str(exc)
    return None


def _str(value: Any) -> str | None:
    """A text column's value: None unless a string without NUL of at most _MAX_TEXT_BYTES (the
    columns are indexed, and a btree index refuses a row of more than ~2700 bytes)."""
    if not isinstance(value, str) or "\x00" in value or len(value) > _MAX_TEXT_BYTES:
        return None
    return value if len(value.encode()) <= _MAX_TEXT_BYTES else None


@dataclass(frozen=True)
class Row:
    """One archived message as stored (columns of audit_log); `payload` is the jsonb as text."""

    stream: str
    seq: int
    subject: str
    data: bytes
    prev_hash: bytes
    hash: bytes
    event_id: str | None = None
    type: str | None = None
    ts_event: int | None = None
    causation_id: str | None = None
    correlation_id: str | None = None
    payload: str | None = None


def make_row(prev_hash: bytes, stream: str, seq: int, subject: str, data: bytes) -> Row:
    """The row the archiver writes for a message, chained after `prev_hash`."""
    p = project(data)
    return Row(
        stream=stream,
        seq=seq,
        subject=subject,
        data=bytes(data),
        prev_hash=prev_hash,
        hash=next_hash(prev_hash, stream, seq, subject, data),
        event_id=p.event_id,
        type=p.type,
        ts_event=p.ts_event,
        causation_id=p.causation_id,
        correlation_id=p.correlation_id,
        payload=p.payload,
    )


def chain(stream: str, messages: Iterable[tuple[int, str, bytes]], prev_hash: bytes = GENESIS) -> list[Row]:
    """Rows for (seq, subject, data) messages in order, starting after `prev_hash`."""
    rows = []
    for seq, subject, data in messages:
        row = make_row(prev_hash, stream, seq, subject, data)
        rows.append(row)
        prev_hash = row.hash
    return rows


@dataclass(frozen=True)
class Checkpoint:
    """The archiver's periodic statement: `count` rows of `stream` up to `upto_seq`, the last
    with `hash`. A chain rewritten from some row onwards still disagrees with the checkpoints
    after it, and a truncated tail leaves a checkpoint with no row. `signature` and `key_id`:
    the archiver's ed25519 signature over them (ticktape.audit.signing), None if unsigned."""

    stream: str
    upto_seq: int
    hash: bytes
    count: int
    signature: bytes | None = None
    key_id: str | None = None


@dataclass(frozen=True)
class Break:
    """The first broken link: where (`index` in the verified sequence, the row's seq, event id,
    type and subject), `kind` (order, link, hash, column, payload, checkpoint, signature) and
    what differs."""

    stream: str
    index: int
    seq: int
    kind: str
    detail: str
    event_id: str | None = None
    type: str | None = None
    subject: str | None = None

    def describe(self) -> str:
        what = f"event {self.event_id} ({self.type})" if self.event_id else "a message with no event id"
        where = f" on {self.subject}" if self.subject else ""
        return f"stream {self.stream} seq {self.seq}: {what}{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Result:
    stream: str
    count: int
    head: bytes | None
    first_seq: int | None
    last_seq: int | None
    gaps: int
    checkpoints: int
    broken: Break | None
    # With a public key (Verifier.vouch): checkpoints whose signature was verified, the last
    # one's seq, and how many verified rows come after it (archived but not yet signed).
    signed: int = 0
    signed_seq: int | None = None
    unsigned_rows: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass
class Verifier:
    """Checks rows of one stream fed in seq order; stops at the first broken link.

    prev_hash: what the first row must link to (GENESIS for a whole stream; None accepts any,
    e.g. when the predecessor of a range is unknown). checkpoints: those to check in the range.
    count_base: rows before the first fed row, to check checkpoint counts (None: skip counts).
    vouch: with a public key, why a checkpoint's signature is not valid (None when it is); then
    at least one checkpoint must be validly signed, and a signed checkpoint whose signature does
    not verify is a break of kind "signature". Unsigned checkpoints are checked as before but
    prove nothing against someone who can rewrite the database."""

    stream: str
    prev_hash: bytes | None = GENESIS
    checkpoints: Sequence[Checkpoint] = ()
    count_base: int | None = 0
    vouch: Callable[[Checkpoint], str | None] | None = None
    count: int = 0
    gaps: int = 0
    checked: int = 0
    signed: int = 0
    _signed_at: tuple[int, int] | None = field(default=None, repr=False)  # (seq, count) of the last
    broken: Break | None = None
    _last: Row | None = field(default=None, repr=False)
    _first_seq: int | None = field(default=None, repr=False)
    _pending: list[Checkpoint] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._pending = sorted(self.checkpoints, key=lambda c: c.upto_seq, reverse=True)

    def feed(self, row: Row) -> Break | None:
        if self.broken is None:
            self.broken = self._check(row)
            if self.broken is None:
                self._last = row
        return self.broken

    def finish(self) -> Result:
        """The verdict; checkpoints beyond the last row mean rows were removed from the end."""
        if self.broken is None and self._pending:
            cp = self._pending[-1]
            last = self._last
            problem = self.vouch(cp) if self.vouch is not None and cp.signature is not None else None
            missing = (
                f"; {cp.count - self.count_base - self.count} rows missing"
                if self.count_base is not None and cp.count > self.count_base + self.count
                else ""
            )
            self.broken = Break(
                self.stream,
                self.count,
                cp.upto_seq,
                "signature" if problem else "checkpoint",
                f"checkpoint at seq {cp.upto_seq}: {problem}: it was forged"
                if problem
                else f"checkpoint{' (signed)' if cp.signature is not None and self.vouch else ''} says "
                f"{cp.count} rows up to seq {cp.upto_seq} (hash {cp.hash.hex()}) but the log ends at seq "
                f"{last.seq if last else 'none'}{missing}: rows were removed from the end",
            )
        if self.broken is None and self.vouch is not None and self.count and self._signed_at is None:
            last = self._last
            self.broken = Break(
                self.stream,
                self.count,
                last.seq if last else 0,
                "signature",
                "no checkpoint in this range is signed by the key: nothing vouches for these rows "
                "(checkpoints were deleted or replaced, or the log predates signing)",
            )
        last = self._last
        signed_seq, signed_count = self._signed_at if self._signed_at is not None else (None, 0)
        return Result(
            self.stream,
            self.count,
            last.hash if last else None,
            self._first_seq,
            last.seq if last else None,
            self.gaps,
            self.checked,
            self.broken,
            signed=self.signed,
            signed_seq=signed_seq,
            unsigned_rows=self.count - signed_count if self.vouch is not None else 0,
        )

    def _check(self, row: Row) -> Break | None:
        index = self.count
        last = self._last

        def broken(kind: str, detail: str) -> Break:
            return Break(self.stream, index, row.seq, kind, detail, row.event_id, row.type, row.subject)

        if row.stream != self.stream:
            return broken("order", f"row belongs to stream {row.stream!r}")
        if last is not None and row.seq <= last.seq:
            return broken("order", f"seq {row.seq} does not follow seq {last.seq}: rows are out of order")
        expected = last.hash if last is not None else self.prev_hash
        if expected is not None and row.prev_hash != expected:
            before = f"the row before it (seq {last.seq})" if last is not None else "the start of the range"
            return broken(
                "link",
                f"prev_hash {row.prev_hash.hex()} is not the hash of {before}, "
                f"{expected.hex()}: a row was deleted, inserted or reordered here",
            )
        actual = (
            next_hash(row.prev_hash, row.stream, row.seq, row.subject, row.data) if len(row.prev_hash) == 32 else b""
        )
        if actual != row.hash:
            return broken(
                "hash",
                f"stored hash {row.hash.hex()} but the row's bytes, seq and subject "
                f"hash to {actual.hex()}: data, seq or subject was changed",
            )
        p = project(row.data)
        for name in ("event_id", "type", "ts_event", "causation_id", "correlation_id"):
            if getattr(row, name) != getattr(p, name):
                return broken(
                    "column", f"{name} column is {getattr(row, name)!r} but the archived bytes say {getattr(p, name)!r}"
                )
        if row.payload is not None and not _same_json(row.payload, row.data):
            return broken(
                "payload", "payload (jsonb) differs from the archived bytes: " + _json_difference(row.payload, row.data)
            )
        if last is not None and row.seq > last.seq + 1:
            self.gaps += 1
        self.count += 1
        if self._first_seq is None:
            self._first_seq = row.seq
        while self._pending and self._pending[-1].upto_seq <= row.seq:
            cp = self._pending.pop()
            self.checked += 1
            if self.vouch is not None and cp.signature is not None:
                problem = self.vouch(cp)
                if problem is not None:
                    return broken(
                        "signature",
                        f"checkpoint at seq {cp.upto_seq} (key {cp.key_id}): {problem}: "
                        "it was forged or rewritten with the chain",
                    )
            if cp.upto_seq < row.seq:
                return broken(
                    "checkpoint",
                    f"checkpoint at seq {cp.upto_seq} (hash {cp.hash.hex()}) has "
                    "no row: a row was deleted before this one",
                )
            if cp.hash != row.hash:
                return broken(
                    "checkpoint",
                    f"checkpoint says hash {cp.hash.hex()} at this seq, the chain "
                    f"has {row.hash.hex()}: the chain was rewritten at or before here",
                )
            if self.count_base is not None and cp.count != self.count_base + self.count:
                return broken(
                    "checkpoint",
                    f"checkpoint counts {cp.count} rows up to here, the log has {self.count_base + self.count}",
                )
            if self.vouch is not None and cp.signature is not None:
                self.signed += 1
                self._signed_at = (cp.upto_seq, self.count)
        return None


def verify(
    rows: Iterable[Row],
    stream: str,
    *,
    prev_hash: bytes | None = GENESIS,
    checkpoints: Sequence[Checkpoint] = (),
    count_base: int | None = 0,
    vouch: Callable[[Checkpoint], str | None] | None = None,
) -> Result:
    """Verify a stream's rows in order: the first broken link, or ok with count and head hash."""
    verifier = Verifier(stream, prev_hash, checkpoints, count_base, vouch)
    for row in rows:
        if verifier.feed(row) is not None:
            break
    return verifier.finish()


def _same_json(payload: str, data: bytes) -> bool:
    try:
        return _same(jsonlimits.decode(payload), jsonlimits.decode(data))
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality as jsonb keeps it: numbers compare by value (jsonb prints 1e16 as an
    integer), objects ignore key order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _json_difference(payload: str, data: bytes) -> str:
    try:
        got, want = jsonlimits.decode(payload), jsonlimits.decode(data)
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        return "one of them is not JSON (or nests too deeply)"
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if key not in got or key not in want or not _same(got[key], want[key]):
                return (
                    f"field {key!r} is {got.get(key, '<missing>')!r} in payload, "
                    f"{want.get(key, '<missing>')!r} in the bytes"
                )
    return "the documents differ"


class Conflict(NamedTuple):
    """A row whose event_id an earlier row of the same stream already carries with other bytes:
    two different events under one id (e.g. published with different Nats-Msg-Ids, so JetStream
    did not deduplicate them). The stream holds both, so the audit log stores both; the archiver
    flags the later one (`reason`) rather than keep it silently."""

    row: Row
    first_seq: int
    reason: str = "duplicate_event_id_conflict"


def event_id_conflicts(rows: Sequence[Row], first: dict[str, tuple[int, bytes]]) -> list[Conflict]:
    """The rows (in order) whose event_id was first archived with different bytes. `first`: per
    event_id already archived in this stream, (seq, sha256 of data) of its first row; rows of the
    batch are added to it as they come. Identical bytes under a known id (a republish of the same
    event) are no conflict."""
    out = []
    for row in rows:
        if row.event_id is None:
            continue
        digest = hashlib.sha256(row.data).digest()
        seen = first.get(row.event_id)
        if seen is None:
            first[row.event_id] = (row.seq, digest)
        elif seen[1] != digest and seen[0] != row.seq:
            out.append(Conflict(row, seen[0]))
    return out
