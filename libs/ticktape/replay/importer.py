"""Loading a session file into a new JetStream stream, without touching the live one.

By default the stream is `SESSION_<id>` and every subject is put under `imported.<id>.`, so it
can sit beside a live TICKTAPE stream on the same server (JetStream forbids two streams from
capturing the same subject) and no live consumer sees it. `keep_subjects` stores the subjects as
recorded, for an otherwise empty server. Each message keeps its original stream, sequence, store
time and Nats-Msg-Id in Ticktape-Source-* headers; catalog.to_record restores them, so exporting
an imported session gives back the same file, byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from ticktape import subjects
from ticktape.replay.catalog import (
    MSG_ID,
    PREFIX_KEY,
    SESSION_KEY,
    SOURCE_MSG_ID,
    SOURCE_SEQ,
    SOURCE_STREAM,
    SOURCE_TIME,
    StreamRef,
)
from ticktape.replay.fileformat import MAX_LINE_BYTES, SessionFile
from ticktape.replay.records import Record


class ImportFailed(RuntimeError):
    """The file cannot be imported there; the message says what to do instead."""


@dataclass(frozen=True)
class Imported:
    stream: StreamRef
    session_id: str
    messages: int


def default_stream(session_id: str) -> str:
    """The stream an import creates unless told otherwise: SESSION_<id>."""
    return f"SESSION_{subjects.token(session_id)}"


def default_prefix(session_id: str) -> str:
    """The prefix an import puts every subject under: imported.<id>."""
    return f"imported.{subjects.token(session_id)}."


def import_headers(rec: Record) -> dict[str, str]:
    """The recorded headers plus the original coordinates; a unique Nats-Msg-Id per source message."""
    headers = {k: v for k, v in rec.headers.items() if k != MSG_ID}
    if MSG_ID in rec.headers:
        headers[SOURCE_MSG_ID] = rec.headers[MSG_ID]
    headers.update(
        {
            SOURCE_STREAM: rec.stream,
            SOURCE_SEQ: str(rec.seq),
            SOURCE_TIME: str(rec.time),
            MSG_ID: f"import:{rec.stream}:{rec.seq}",
        }
    )
    return headers


async def import_session_file(
    js: JetStreamContext,
    path: Path,
    *,
    stream: str | None = None,
    keep_subjects: bool = False,
    window: int = 256,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Imported:
    """Create the stream (it must not exist yet) and publish every message of the file in order.
    The whole file is checked while it is published; a damaged file (or a line longer than
    max_line_bytes) stops the import, and the stream it created is deleted again, so no stream
    holds part of a session and the same import can be retried."""
    with SessionFile(path, max_line_bytes) as f:
        sid = f.session.session_id
        name = stream or default_stream(sid)
        prefix = "" if keep_subjects else default_prefix(sid)
        await _create(js, name, prefix, sid, f)
        count = 0
        pending: list[asyncio.Future] = []
        try:
            for rec in f.records():
                pending.append(await js.publish_async(prefix + rec.subject, rec.data, headers=import_headers(rec)))
                count += 1
                if len(pending) >= window:
                    await _settle(pending, name)
            await _settle(pending, name)
        except BaseException:
            for future in pending:
                future.cancel()
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
            raise
    return Imported(StreamRef(name, prefix, count), sid, count)


async def _create(js: JetStreamContext, name: str, prefix: str, sid: str, f: SessionFile) -> None:
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        info = None
    if info is not None:
        raise ImportFailed(
            f"stream {name} already exists ({info.state.messages} messages); "
            "import into a new stream with --stream NAME"
        )
    families = sorted(f.header.counts.families)
    wanted = [prefix + ">"] if prefix else [s for fam in families for s in (fam, f"{fam}.>")]
    first = f.header.streams[0].first_seq if len(f.header.streams) == 1 else 1
    config = StreamConfig(
        name=name,
        subjects=wanted or [prefix + ">"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=120.0,
        first_seq=first,
        description=f"ticktape session {sid} imported from {f.path.name}",
        metadata={PREFIX_KEY: prefix, SESSION_KEY: sid},
    )
    try:
        await js.add_stream(config)
    except APIError as exc:
        hint = (
            "; without --keep-subjects the subjects go under a prefix and cannot overlap"
            if keep_subjects_overlap(exc)
            else ""
        )
        raise ImportFailed(f"cannot create stream {name}: {exc.description or exc}{hint}") from None


def keep_subjects_overlap(exc: APIError) -> bool:
    return "overlap" in str(exc.description or exc).lower()


async def _settle(pending: list[asyncio.Future], name: str) -> None:
    acks = await asyncio.gather(*pending)
    pending.clear()
    for ack in acks:
        if ack.stream != name:
            raise ImportFailed(
                f"a message was stored in stream {ack.stream}, not {name}: that stream captures the same subjects"
            )
        if ack.duplicate:
            raise ImportFailed(f"stream {name} dropped message {ack.seq} as a duplicate")
