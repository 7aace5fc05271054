"""Verify a recorded session: re-run each core over exactly the inputs it consumed live, in stream
order, and prove that it publishes the same events, byte for byte.

Each core is fed every recorded message matching its filter subjects, from the stream's first
message to the session's end (cores carry state across sessions). Its outputs are compared, in
order, with the events of its output types recorded inside the session. A core run as several
workers (CoreSpec.lane, ticktape.workers) is compared partition by partition: each worker
publishes its partition's outputs in order, but the partitions interleave as the workers ran. Outputs that belong to
earlier sessions are only used to line the two sequences up (an earlier session may have run
another configuration; the live service's start-up rebuild discarded those outputs too).

A session that stopped cleanly ("stopped": its consumers drained their input first) must match
exactly. For one still running, or stopped without draining, replayed outputs after the last
published one are reported as unconfirmed (their inputs were not processed live yet), not failed.

Each divergence has a kind: "mismatch" (a core produced this event, with other bytes), "missing"
(a core produced events live never published) or "foreign": an event in the session on a core's
output subject whose event id no core produced when replaying everything before it (a recorded
output always follows the input that caused it, so the replay has produced it by then). Output
ids are derived from their inputs, so a foreign event is input from outside the cores: published
by someone holding publish rights on that subject, or a genuine event published twice. A foreign
event is skipped (cores downstream still replay it as their input, as they consumed it live) and
verification of its core goes on, so every injected event is named, not just the first.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ticktape import registry, subjects
from ticktape.corespec import CoreSpec
from ticktape.events.codec import DecodeError, encode
from ticktape.replay.records import Record, SessionMeta, family
from ticktape.sessions import STOPPED

FAMILIES = ("signals", "risk", "orders", "fills", "positions", "accounts")


@dataclass(frozen=True)
class Divergence:
    """A point where a core's replay and the recording part ways (kind: mismatch, missing,
    foreign; see the module docstring)."""

    core: str
    reason: str
    kind: str = "mismatch"
    recorded_seq: int | None = None
    recorded_subject: str | None = None
    recorded: bytes | None = None
    replayed_subject: str | None = None
    replayed: bytes | None = None
    input_seq: int | None = None
    input_subject: str | None = None
    event_id: str | None = None  # the recorded event's id (foreign)
    type: str | None = None  # the recorded event's type tag (foreign)


@dataclass(frozen=True)
class FamilyDigest:
    family: str
    recorded_count: int
    replayed_count: int
    recorded: str
    replayed: str

    @property
    def ok(self) -> bool:
        return self.recorded_count == self.replayed_count and self.recorded == self.replayed


@dataclass
class VerifyResult:
    cores: tuple[str, ...]
    messages: int
    families: list[FamilyDigest]
    divergences: list[Divergence]
    unconfirmed: dict[str, int]
    rejected: dict[str, int]
    problems: tuple[str, ...] = ()  # why nothing could be proven (no core ran, a core is missing)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.divergences and all(f.ok for f in self.families)

    @property
    def foreign(self) -> list[Divergence]:
        return [d for d in self.divergences if d.kind == "foreign"]


@dataclass(frozen=True)
class _Out:
    input_seq: int
    input_subject: str
    subject: str
    data: bytes
    event_id: str


@dataclass
class _Track:
    """One core's replayed outputs not yet matched, per lane (a worker's partition; one lane for
    a core run as one process)."""

    spec: CoreSpec
    lanes: dict[int, deque[_Out]] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    aligned: set[int] = field(default_factory=set)
    diverged: bool = False
    last_matched_input: dict[int, int] = field(default_factory=dict)
    rejected: int = 0

    def lane_of(self, event: Any) -> int:
        return self.spec.lane(event) if self.spec.lane is not None else 0

    def pending(self, lane: int) -> deque[_Out]:
        found = self.lanes.get(lane)
        if found is None:
            found = self.lanes[lane] = deque()
        return found

    def pop(self, lane: int) -> _Out:
        out = self.lanes[lane].popleft()
        self.ids.discard(out.event_id)
        return out


class _Digests:
    def __init__(self) -> None:
        self.hashes: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, subject: str, data: bytes) -> None:
        fam = family(subject)
        h = self.hashes.get(fam)
        if h is None:
            h = self.hashes[fam] = hashlib.sha256()
        h.update(subject.encode() + b"\n" + data + b"\n")
        self.counts[fam] = self.counts.get(fam, 0) + 1


class Verifier:
    """Feed it the session's records in stream order with feed(), then call finish()."""

    def __init__(self, specs: Sequence[CoreSpec], session: SessionMeta, installed: Sequence[str] | None = None) -> None:
        """`installed`: the services this build has (default: the registry's); a service the
        session ran that is not among them may have been a core, so nothing can be proven."""
        wanted = set(session.services)
        chosen = [s for s in specs if not wanted or s.name in wanted]
        known = set(registry.names() if installed is None else installed)
        self.problems = [
            f"service {name!r} of the session is not installed in this build (a core of it cannot be replayed)"
            for name in session.services
            if name not in known
        ]
        if not chosen:
            self.problems.append("no core to replay: the session ran none, or none of its cores is installed")
        self.session = session
        self.strict = session.stop_seq is not None and session.reason == STOPPED
        self.tracks = [_Track(s) for s in chosen]
        self._producer = {t: track for track in self.tracks for t in track.spec.outputs}
        self._routes: dict[str, tuple[_Track, ...]] = {}
        self.recorded = _Digests()
        self.replayed = _Digests()
        self.divergences: list[Divergence] = []
        self.messages = 0

    def _routes_for(self, subject: str) -> tuple[_Track, ...]:
        found = self._routes.get(subject)
        if found is None:
            found = tuple(t for t in self.tracks if any(subjects.matches(f, subject) for f in t.spec.filter_subjects))
            self._routes[subject] = found
        return found

    def feed(self, rec: Record) -> None:
        """Match the record against the replay if it is a core's output, then run it through
        every core whose filter subjects it matches."""
        self.messages += 1
        try:
            event = subjects.decode_on(rec.subject, rec.data)
        except DecodeError:  # or SubjectMismatch
            return  # live, the consumers dead-lettered it
        producer = self._producer.get(type(event))
        if producer is not None:
            lane = producer.lane_of(event)
            self._recorded_output(producer, rec, event.event_id, type(event).__struct_config__.tag, lane)
        for track in self._routes_for(rec.subject):
            try:
                outputs = track.spec.core.handle(event)
            except Exception:  # noqa: BLE001 - live, the shell dead-lettered this input
                track.rejected += 1
                continue
            for out in outputs:
                out_ = _Out(rec.seq, rec.subject, subjects.for_event(out), encode(out), out.event_id)
                track.pending(track.lane_of(out)).append(out_)
                track.ids.add(out.event_id)

    def _recorded_output(self, track: _Track, rec: Record, event_id: str, tag: Any = None, lane: int = 0) -> None:
        start = self.session.start_seq
        pending = track.pending(lane)
        if rec.seq < start:  # an earlier session's output: only used to line up
            if event_id in track.ids:
                while pending and track.pop(lane).event_id != event_id:
                    pass
            return
        self.recorded.add(rec.subject, rec.data)
        if not any(event_id in t.ids for t in self.tracks):
            self._foreign(track, rec, event_id, tag if isinstance(tag, str) else None)
            return
        if track.diverged:
            return
        if lane not in track.aligned:
            track.aligned.add(lane)
            if event_id in track.ids:  # skip what the live rebuild discarded, nothing of the session
                while pending and pending[0].event_id != event_id:
                    skipped = track.pop(lane)
                    if skipped.input_seq > start:
                        self.replayed.add(skipped.subject, skipped.data)
                        self._diverge(
                            track,
                            "replay produced an event live did not publish",
                            rec=None,
                            out=skipped,
                            kind="missing",
                        )
                        return
            else:
                while pending and pending[0].input_seq <= start:
                    track.pop(lane)
        if not pending:  # another lane's event, or one no core produced (caught above as foreign)
            self._diverge(track, "live published an event the replay did not produce", rec=rec, out=None)
            return
        out = track.pop(lane)
        self.replayed.add(out.subject, out.data)
        if out.data != rec.data or out.subject != rec.subject:
            self._diverge(track, "the replayed event differs from the recorded one", rec=rec, out=out)
            return
        track.last_matched_input[lane] = out.input_seq

    def _foreign(self, track: _Track, rec: Record, event_id: str, type_: str | None) -> None:
        self.divergences.append(
            Divergence(
                core=track.spec.name,
                reason=f"foreign: event {event_id} on {rec.subject} was not produced by any core (injected?)",
                kind="foreign",
                recorded_seq=rec.seq,
                recorded_subject=rec.subject,
                recorded=rec.data,
                event_id=event_id,
                type=type_,
            )
        )

    def _diverge(
        self, track: _Track, reason: str, *, rec: Record | None, out: _Out | None, kind: str = "mismatch"
    ) -> None:
        track.diverged = True
        self.divergences.append(
            Divergence(
                core=track.spec.name,
                reason=reason,
                kind=kind,
                recorded_seq=rec.seq if rec else None,
                recorded_subject=rec.subject if rec else None,
                recorded=rec.data if rec else None,
                replayed_subject=out.subject if out else None,
                replayed=out.data if out else None,
                input_seq=out.input_seq if out else None,
                input_subject=out.input_subject if out else None,
            )
        )

    def finish(self) -> VerifyResult:
        """Judge what the replay produced but the recording lacks, and compute the digests."""
        unconfirmed: dict[str, int] = {}
        start = self.session.start_seq
        for track in self.tracks:
            tails = {
                lane: [o for o in pending if o.input_seq > start or lane in track.aligned]
                for lane, pending in sorted(track.lanes.items())
            }
            rest = sorted((o for tail in tails.values() for o in tail), key=lambda o: o.input_seq)
            if not rest:
                continue
            tail_ok = (
                not self.strict
                and not track.diverged
                and all(not t or t[0].input_seq > track.last_matched_input.get(lane, 0) for lane, t in tails.items())
            )
            if tail_ok:
                unconfirmed[track.spec.name] = len(rest)
                continue
            for o in rest:
                self.replayed.add(o.subject, o.data)
            if not track.diverged:
                self._diverge(
                    track,
                    f"replay produced {len(rest)} event(s) live did not publish",
                    rec=None,
                    out=rest[0],
                    kind="missing",
                )
        names = sorted(
            set(self.recorded.counts) | set(self.replayed.counts),
            key=lambda f: (FAMILIES.index(f) if f in FAMILIES else len(FAMILIES), f),
        )
        empty = hashlib.sha256().hexdigest()
        families = [
            FamilyDigest(
                family=f,
                recorded_count=self.recorded.counts.get(f, 0),
                replayed_count=self.replayed.counts.get(f, 0),
                recorded=self.recorded.hashes[f].hexdigest() if f in self.recorded.hashes else empty,
                replayed=self.replayed.hashes[f].hexdigest() if f in self.replayed.hashes else empty,
            )
            for f in names
        ]
        self.divergences.sort(key=lambda d: d.recorded_seq or d.input_seq or 0)
        return VerifyResult(
            cores=tuple(t.spec.name for t in self.tracks),
            messages=self.messages,
            families=families,
            divergences=self.divergences,
            unconfirmed=unconfirmed,
            rejected={t.spec.name: t.rejected for t in self.tracks if t.rejected},
            problems=tuple(self.problems),
        )
