"""A recording made without a stack: the cores run on the in-memory bus over given market events,
framed by SessionStarted/SessionStopped, numbered like a stream. For tests and benchmarks that need
a realistic recorded session without processes; the result is what a stack whose services never
lag would have recorded. With `history` (earlier records of the stream) it is a later session:
each core first rebuilds from the recorded history, as a restarted service does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ticktape import subjects
from ticktape.corespec import load_specs
from ticktape.events import Event
from ticktape.events.codec import DecodeError, encode
from ticktape.replay.memory_bus import MemoryBus
from ticktape.replay.records import Record, SessionMeta
from ticktape.sessions import STOPPED, effective_config, started_event, stopped_event


def simulate_session(
    inputs: Iterable[Event],
    config: Mapping[str, Any],
    session_id: str,
    *,
    history: Sequence[Record] = (),
    code: str = "simulated",
    dependencies: str = "",
    stream: str = subjects.EVENTS_STREAM,
) -> tuple[SessionMeta, list[Record]]:
    """(the session, its records): inputs in the given order, each followed by what it caused."""
    config_json, config_hash = effective_config(config)
    bus = MemoryBus(load_specs(config))
    rebuild(bus, history)
    first_seq = history[-1].seq + 1 if history else 1
    events = list(inputs)
    t0 = events[0].ts_init if events else 0
    t1 = events[-1].ts_init if events else 0
    started = started_event(
        session_id,
        config_json,
        code=code,
        dependencies=dependencies,
        services=[s.name for s in bus.specs],
        ts_ns=t0,
    )
    records: list[Record] = []

    def add(event: Event, time: int) -> None:
        records.append(
            Record(
                stream=stream,
                seq=first_seq + len(records),
                subject=subjects.for_event(event),
                headers={"Nats-Msg-Id": event.event_id},
                time=time,
                data=encode(event),
                in_session=True,
            )
        )

    add(started, t0)
    for event in events:
        for _, out, _ in bus.publish(subjects.for_event(event), event):
            add(out, event.ts_init)
    stopped = stopped_event(session_id, STOPPED, t1)
    add(stopped, t1)
    meta = SessionMeta(
        session_id=session_id,
        start_seq=first_seq,
        stop_seq=records[-1].seq,
        started_ns=t0,
        stopped_ns=t1,
        reason=STOPPED,
        config_hash=config_hash,
        config=config_json,
        code_version=code,
        services=started.services,
        host="",
        dependencies=dependencies,
    )
    return meta, records


def rebuild(bus: MemoryBus, history: Iterable[Record]) -> None:
    """Run each core over its recorded inputs, outputs discarded (a service's start-up)."""
    for rec in history:
        try:
            event = subjects.decode_on(rec.subject, rec.data)
        except DecodeError:  # or SubjectMismatch: live, dead-lettered
            continue
        for spec in bus.routes(rec.subject):
            try:
                spec.core.handle(event)
            except Exception:  # noqa: BLE001 - live, the input was dead-lettered; counted as MemoryBus.publish does
                bus.rejected[spec.name] += 1
