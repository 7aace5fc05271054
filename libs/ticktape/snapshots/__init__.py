"""Snapshots of a core's state, so that a restart resumes from one instead of re-running the core
over every input since the stream's first message.

A core that can be snapshotted has `snapshot() -> bytes` and `restore(bytes)` (Snapshottable);
the cores implement them with ticktape.snapshots.codec. The consuming shell (ticktape.bus.consumer)
takes one every nats.snapshot_every_inputs inputs or nats.snapshot_every_s seconds and at a clean
stop, and writes it with the stream sequence it stands for to the service's object store bucket
(ticktape.snapshots.store); at start it restores the latest and rebuilds only from the next
sequence. `replay SESSION --verify` checks each snapshot against the state the replay reached at
its sequence (ticktape.replay.verify). docs/determinism.md explains the design."""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, runtime_checkable

import msgspec

FORMAT = 1  # of the Snapshot record; another value is not restored (full rebuild)


@runtime_checkable
class Snapshottable(Protocol):
    def snapshot(self) -> bytes:
        """The core's whole state as deterministic bytes (ticktape.snapshots.codec.encode)."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the state of this freshly built core with a snapshot's; BadSnapshot if it
        does not fit."""
        ...

    def origin(self) -> str:
        """Of a freshly built core: a digest of its configuration and initial state. A snapshot
        is restored only into a core of the same origin."""
        ...


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One snapshot as stored: the state after every input of `durable` on `stream` up to stream
    sequence `seq`. origin: the origin() of the freshly built core it started from (configuration
    and initial state: a snapshot is restored only into a core of the same origin). digest:
    sha256 of state."""

    service: str
    durable: str
    stream: str
    seq: int
    origin: str
    digest: str
    state: bytes
    format: int = FORMAT

    @property
    def intact(self) -> bool:
        return self.format == FORMAT and hashlib.sha256(self.state).hexdigest() == self.digest


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def can_snapshot(core: Any) -> bool:
    return isinstance(core, Snapshottable)


def origin_of(core: Snapshottable) -> str:
    """The origin of a freshly built core (call before it handles anything)."""
    return core.origin()


def make(core: Snapshottable, *, service: str, durable: str, stream: str, seq: int, origin: str) -> Snapshot:
    state = core.snapshot()
    return Snapshot(
        service=service, durable=durable, stream=stream, seq=seq, origin=origin, digest=digest(state), state=state
    )


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def to_bytes(snap: Snapshot) -> bytes:
    return _encoder.encode(snap)


def from_bytes(data: bytes) -> Snapshot:
    """Raises msgspec.DecodeError for bytes that are not a Snapshot record."""
    return _decoder.decode(data)
