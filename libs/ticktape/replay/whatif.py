"""What-if: a recorded session's market data run through the cores under another configuration.

The inputs are the recording's bars and control events, from the stream's first message to the
session's end; the signal, risk and execution cores are chained on the in-memory bus. The result
is a new session, written like a recorded one: its id derives from the source session and the
configuration hash, and every time in it comes from the recording, so the same what-if always
produces the same bytes. Its lifecycle events take the places of the source session's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ticktape import subjects
from ticktape.corespec import CoreSpec
from ticktape.events import Event, SessionStarted, SessionStopped
from ticktape.events.codec import DecodeError, decode, encode
from ticktape.replay.memory_bus import MemoryBus
from ticktape.replay.records import Record, SessionMeta
from ticktape.sessions import STOPPED, effective_config, started_event, stopped_event

INPUTS = (subjects.ALL_BARS, subjects.ALL_CONTROL)
# A what-if also feeds the cores the symbol registry's universes (execution's trading rules) and the
# managed strategies' changes (`ticktape strategies`): like bars, recorded inputs, but never
# republished (only the registry, and the operator, may publish them).
WHAT_IF_INPUTS = (*INPUTS, subjects.ALL_UNIVERSES, subjects.ALL_STRATEGIES)


def merge_config(recorded: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """The what-if configuration: each top-level section of `other` replaces the recorded one;
    sections it does not name stay as recorded."""
    return {**recorded, **other}


def what_if_id(source_id: str, config_hash: str) -> str:
    """The id of a what-if session: the same source and configuration always give the same id."""
    return f"{source_id}-whatif-{config_hash[:8]}"


def is_input(subject: str) -> bool:
    """True for the market data a what-if or a republish takes from a recording."""
    return any(subjects.matches(p, subject) for p in INPUTS)


class WhatIf:
    """feed() each source record in stream order; it returns the new session's records (with
    their decoded events). finish() closes the session; `meta` then describes it."""

    def __init__(
        self,
        source: SessionMeta,
        config: Mapping[str, Any],
        specs: Sequence[CoreSpec],
        code: str,
        dependencies: str = "",
    ) -> None:
        self.source = source
        self.config_json, self.config_hash = effective_config(config)
        self.session_id = what_if_id(source.session_id, self.config_hash)
        self.code = code
        self.dependencies = dependencies
        self.bus = MemoryBus(specs)
        self.seq = 0
        self.start_seq: int | None = None
        self.stop_seq: int | None = None
        self._started: SessionStarted | None = None
        self._stopped: SessionStopped | None = None
        self._last = Record(stream=subjects.EVENTS_STREAM, seq=0, subject="", headers={}, time=0, data=b"")

    def feed(self, rec: Record) -> list[tuple[Record, Event]]:
        self._last = rec
        if subjects.matches(subjects.ALL_SESSIONS, rec.subject):
            return self._lifecycle(rec)
        if not any(subjects.matches(p, rec.subject) for p in WHAT_IF_INPUTS) or self._stopped is not None:
            return []
        try:
            event = subjects.decode_on(rec.subject, rec.data)
        except DecodeError:  # or SubjectMismatch: live, the consumers dead-lettered it
            return []
        out = []
        for subject, ev, producer in self.bus.publish(rec.subject, event):
            headers = rec.headers if producer is None else {"Nats-Msg-Id": ev.event_id}
            data = rec.data if producer is None else encode(ev)
            out.append((self._record(rec, subject, headers, data), ev))
        return out

    def _lifecycle(self, rec: Record) -> list[tuple[Record, Event]]:
        try:
            event = decode(rec.data)
        except DecodeError:
            return []
        if getattr(event, "session_id", None) != self.source.session_id:
            return []  # other sessions' records do not belong to this run
        if isinstance(event, SessionStarted) and self._started is None:
            self._started = started_event(
                self.session_id,
                self.config_json,
                code=self.code,
                dependencies=self.dependencies,
                services=[s.name for s in self.bus.specs],
                ts_ns=event.ts_event,
                host="replay",
                causation_id=event.event_id,
            )
            self.start_seq = self.seq + 1
            return [
                (
                    self._record(
                        rec, subjects.for_event(self._started), self._headers(self._started), encode(self._started)
                    ),
                    self._started,
                )
            ]
        if isinstance(event, SessionStopped) and self._started is not None and self._stopped is None:
            return [self._stop(rec, event.ts_event)]
        return []

    def finish(self) -> list[tuple[Record, Event]]:
        """The stop record, when the source session had none (it was still running)."""
        if self._started is None or self._stopped is not None:
            return []
        return [self._stop(self._last, self._last.time)]

    def _stop(self, rec: Record, ts: int) -> tuple[Record, Event]:
        self._stopped = stopped_event(self.session_id, STOPPED, ts)
        out = self._record(rec, subjects.for_event(self._stopped), self._headers(self._stopped), encode(self._stopped))
        self.stop_seq = self.seq
        return out, self._stopped

    @staticmethod
    def _headers(event: Event) -> dict[str, str]:
        return {"Nats-Msg-Id": event.event_id}

    def _record(self, rec: Record, subject: str, headers: dict[str, str], data: bytes) -> Record:
        self.seq += 1
        return Record(
            stream=rec.stream,
            seq=self.seq,
            subject=subject,
            headers=headers,
            time=rec.time,
            data=data,
            in_session=self._started is not None,
        )

    @property
    def meta(self) -> SessionMeta:
        started, stopped = self._started, self._stopped
        if started is None or self.start_seq is None:
            raise LookupError(f"the recording has no SessionStarted of {self.source.session_id}")
        return SessionMeta(
            session_id=self.session_id,
            start_seq=self.start_seq,
            stop_seq=self.stop_seq,
            started_ns=started.ts_event,
            stopped_ns=stopped.ts_event if stopped else None,
            reason=stopped.reason if stopped else None,
            config_hash=self.config_hash,
            config=self.config_json,
            code_version=self.code,
            services=started.services,
            host=started.host,
            derived_from=self.source.session_id,
            dependencies=started.dependencies,
        )
