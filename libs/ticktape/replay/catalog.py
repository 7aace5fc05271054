"""Finding sessions in a stream and reading a session's messages back as Records.

A stream is either a live events stream (subjects as published) or one made by `ticktape import`:
its subjects sit under a prefix named in the stream's metadata, and each message keeps its
original stream, sequence, time and Nats-Msg-Id in Ticktape-Source-* headers. Records read from
either look the same, so sessions, export and replay work on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ticktape import subjects
from ticktape.bus.creds import connect_options
from ticktape.bus.reader import read_range, when_available
from ticktape.events import SessionStarted, SessionStopped
from ticktape.events.codec import DecodeError, decode
from ticktape.redact import redact_text
from ticktape.replay.records import Record, SessionMeta
from ticktape.sessions import redacted_config

PREFIX_KEY = "ticktape.subject_prefix"
SESSION_KEY = "ticktape.session"
SOURCE_STREAM = "Ticktape-Source-Stream"
SOURCE_SEQ = "Ticktape-Source-Seq"
SOURCE_TIME = "Ticktape-Source-Time"
SOURCE_MSG_ID = "Ticktape-Source-Msg-Id"
MSG_ID = "Nats-Msg-Id"


class CatalogError(LookupError):
    """A stream or session is not there; the message says what is."""


@dataclass(frozen=True)
class StreamRef:
    """A stream and the prefix its subjects carry ('' for a live stream, 'imported.<id>.')."""

    name: str
    prefix: str = ""
    last_seq: int = 0


@dataclass(frozen=True)
class SessionEntry:
    """A session and the end of its range: its stop, else the message before the next session's
    start (it ended without a SessionStopped), else None (still running: up to the stream end)."""

    meta: SessionMeta
    end_seq: int | None

    @property
    def status(self) -> str:
        if self.meta.stop_seq is not None:
            return self.meta.reason or "stopped"
        return "running" if self.end_seq is None else "unterminated"


async def connect(url: str, creds: str | Path | None = None) -> Client:
    """A one-shot client for command-line tools: one attempt, failures raised rather than logged;
    creds: a bus credentials file (ticktape.bus.creds); url may list a cluster's servers."""
    from ticktape.bus.connect import connect_once

    async def quiet(_exc: Exception) -> None:
        return None

    # max_reconnect_attempts=0 would mean "for ever" to nats-py
    return await connect_once(
        url,
        connect_timeout=5,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.2,
        allow_reconnect=False,
        error_cb=quiet,
        **connect_options(creds),
    )


async def open_stream(js: JetStreamContext, name: str) -> StreamRef:
    """The stream, with the subject prefix of an imported one; CatalogError lists the streams there."""
    try:
        info = await when_available(lambda: js.stream_info(name))
    except NotFoundError:
        names = sorted([s.config.name for s in await js.streams_info() if s.config.name is not None])
        raise CatalogError(f"no stream {name!r} on this server; streams: {', '.join(names) or 'none'}") from None
    prefix = (info.config.metadata or {}).get(PREFIX_KEY, "")
    return StreamRef(name, prefix, info.state.last_seq)


def to_record(msg: Msg, ref: StreamRef) -> Record:
    """A stored message as a Record, with an imported message's original coordinates restored."""
    headers = dict(msg.headers or {})
    subject = msg.subject[len(ref.prefix) :] if ref.prefix and msg.subject.startswith(ref.prefix) else msg.subject
    if SOURCE_SEQ in headers:
        stream, seq = headers.pop(SOURCE_STREAM, ref.name), int(headers.pop(SOURCE_SEQ))
        time = int(headers.pop(SOURCE_TIME, "0"))
        headers.pop(MSG_ID, None)
        if SOURCE_MSG_ID in headers:
            headers[MSG_ID] = headers.pop(SOURCE_MSG_ID)
    else:
        stream, seq, time = ref.name, msg.metadata.sequence.stream, stored_ns(msg)
    return Record(stream=stream, seq=seq, subject=subject, headers=headers, time=time, data=msg.data)


def stored_ns(msg: Msg) -> int:
    """When the server stored the message, in ns, exact from the ack subject when possible."""
    tokens = (msg.reply or "").split(".")
    index = 7 if len(tokens) == 9 else 9 if len(tokens) >= 11 else None
    if index is not None and tokens[index].isdigit():
        return int(tokens[index])
    return int(msg.metadata.timestamp.timestamp() * 1_000_000) * 1000


async def list_sessions(js: JetStreamContext, ref: StreamRef) -> list[SessionEntry]:
    """Every session recorded in the stream, oldest first."""
    started: dict[str, tuple[int, SessionStarted]] = {}
    stopped: dict[str, tuple[int, SessionStopped]] = {}
    async for msg in read_range(js, ref.name, [ref.prefix + subjects.ALL_SESSIONS]):
        rec = to_record(msg, ref)
        try:
            event = decode(rec.data)
        except DecodeError:
            continue
        if isinstance(event, SessionStarted):
            started.setdefault(event.session_id, (rec.seq, event))
        elif isinstance(event, SessionStopped):
            stopped.setdefault(event.session_id, (rec.seq, event))
    order = sorted(started.values(), key=lambda item: item[0])
    entries = []
    for i, (seq, start) in enumerate(order):
        stop = stopped.get(start.session_id)
        meta = SessionMeta(
            session_id=start.session_id,
            start_seq=seq,
            stop_seq=stop[0] if stop else None,
            started_ns=start.ts_event,
            stopped_ns=stop[1].ts_event if stop else None,
            reason=stop[1].reason if stop else None,
            config_hash=start.config_hash,
            # redacted on read: a recording made before a form of secret was recognised keeps it on
            # the bus (the log is immutable evidence); no reader of the catalog ever sees it
            config=redacted_config(start.config_json),
            code_version=redact_text(start.code_version),
            services=start.services,
            host=redact_text(start.host),
            dependencies=start.dependencies,
        )
        end = stop[0] if stop else (order[i + 1][0] - 1 if i + 1 < len(order) else None)
        entries.append(SessionEntry(meta, end))
    return entries


async def find_session(js: JetStreamContext, ref: StreamRef, session_id: str) -> SessionEntry:
    """The session with this id; CatalogError names the latest ones when it is not there."""
    entries = await list_sessions(js, ref)
    for entry in entries:
        if entry.meta.session_id == session_id:
            return entry
    known = ", ".join(e.meta.session_id for e in entries[-5:]) or "none"
    raise CatalogError(
        f"no session {session_id!r} in stream {ref.name}; latest: {known} (list them with `ticktape sessions`)"
    )


async def session_records(js: JetStreamContext, ref: StreamRef, entry: SessionEntry) -> AsyncIterator[Record]:
    """Every message of the stream from its first up to the session's end (the whole history a
    replay needs: cores carry state across sessions), in_session set inside the session."""
    start = entry.meta.start_seq
    end = entry.end_seq
    # An imported stream numbers its own messages; the session's range is in original sequences.
    stop_seq = None if ref.prefix else end
    async for msg in read_range(js, ref.name, [ref.prefix + ">"], stop_seq=stop_seq):
        rec = to_record(msg, ref)
        if end is not None and rec.seq > end:
            return
        yield Record(
            stream=rec.stream,
            seq=rec.seq,
            subject=rec.subject,
            headers=rec.headers,
            time=rec.time,
            data=rec.data,
            in_session=rec.seq >= start and (end is None or rec.seq <= end),
        )
