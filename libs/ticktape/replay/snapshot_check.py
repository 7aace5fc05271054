"""`replay --verify`'s check of the state snapshots (ticktape.snapshots): each snapshot a core
service took must equal, byte for byte, the snapshot of the replayed core at the same stream
sequence, that is after every recorded input up to it.

Fed alongside the Verifier (`before(seq)` ahead of each record, `finish()` at the end), over the
same core objects. Which snapshots are checked: those of the service's own durable at a sequence
the replay reaches, taken inside the session or, before it, under the same configuration (the
same origin; an earlier session's under another configuration is skipped). The configuration is
not part of the compared state (a replay's copy of a live account's credentials is a placeholder,
ticktape.snapshots.codec.StateSnapshots), so a session's snapshot is compared whatever its
origin. One whose bytes do not match its digest, one that cannot be decoded at all, and one whose
state differs from the replay's are divergences (kind "snapshot"): verification fails. Snapshots of a
partitioned service's workers (durables other than the service's) hold one partition's state,
which the single replayed core does not have: counted as skipped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ticktape import snapshots
from ticktape.corespec import CoreSpec
from ticktape.replay.verify import Divergence
from ticktape.snapshots import Snapshot, Snapshottable
from ticktape.snapshots.codec import Unsnapshottable

Stored = tuple[str, Snapshot | None]  # (object name, record or None when undecodable)


@dataclass
class SnapshotReport:
    checked: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    divergences: list[Divergence] = field(default_factory=list)


def _seq_of(name: str) -> int:
    tail = name.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class SnapshotCheck:
    def __init__(self, specs: Sequence[CoreSpec], stored: Mapping[str, Sequence[Stored]], start_seq: int) -> None:
        """stored: per core service, its bucket's snapshots; start_seq: the session's first sequence."""
        self.report = SnapshotReport()
        self.start_seq = start_seq
        self._queue: list[tuple[int, CoreSpec, str, Snapshot | None]] = []
        self._origins: dict[str, str | None] = {}
        for spec in specs:
            for name, snap in stored.get(spec.name, ()):
                if snap is not None and snap.durable != spec.name:
                    self._skip(spec.name)
                    continue
                self._queue.append((snap.seq if snap is not None else _seq_of(name), spec, name, snap))
            if spec.name in stored and isinstance(spec.core, Snapshottable):
                try:
                    self._origins[spec.name] = spec.core.origin()  # before it handles anything
                except Unsnapshottable:
                    self._origins[spec.name] = None
        self._queue.sort(key=lambda item: item[0], reverse=True)  # pop() takes the lowest sequence

    def _skip(self, core: str) -> None:
        self.report.skipped[core] = self.report.skipped.get(core, 0) + 1

    def before(self, seq: int) -> None:
        """Call before feeding the record at stream sequence `seq`: checks the snapshots taken
        at a lower sequence, which the cores' state now stands for."""
        while self._queue and self._queue[-1][0] < seq:
            self._check(*self._queue.pop())

    def finish(self, last_seq: int) -> SnapshotReport:
        """After the last record (stream sequence last_seq): snapshots up to it are checked, those
        after it (taken past the replayed range) are skipped."""
        self.before(last_seq + 1)
        for _, spec, _, _ in self._queue:
            self._skip(spec.name)
        self._queue.clear()
        return self.report

    def _check(self, seq: int, spec: CoreSpec, name: str, snap: Snapshot | None) -> None:
        origin = self._origins.get(spec.name)
        if snap is None or not snap.intact:
            what = "cannot be decoded" if snap is None else "does not match its digest (or has another format)"
            self._fail(spec.name, seq, f"snapshot {name} {what}")
            return
        if seq < self.start_seq and snap.origin != origin:  # an earlier session's, another configuration
            self._skip(spec.name)
            return
        if origin is None:  # the replayed core cannot snapshot
            self._fail(spec.name, seq, f"snapshot {name} exists, but the replayed core cannot take one")
            return
        if not isinstance(spec.core, Snapshottable):  # unreachable: origin is set only for those
            return
        replayed = spec.core.snapshot()
        self.report.checked[spec.name] = self.report.checked.get(spec.name, 0) + 1
        if replayed != snap.state:
            self._fail(
                spec.name,
                seq,
                f"snapshot {name} differs from the state the replay reached at stream sequence {seq} "
                f"(stored sha256 {snap.digest[:16]}, replayed {snapshots.digest(replayed)[:16]})",
            )

    def _fail(self, core: str, seq: int, reason: str) -> None:
        self.report.divergences.append(Divergence(core=core, reason=reason, kind="snapshot", input_seq=seq))
