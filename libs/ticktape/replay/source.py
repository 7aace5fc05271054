"""Where a replay reads a session from: a session file, or a session id on a NATS stream.

Both give the session's metadata, an estimate of the message count (for progress) and its records
from the stream's first message to the session's end, in stream order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext

from ticktape.redact import redact_text
from ticktape.replay.fileformat import SUFFIX, SessionFile
from ticktape.replay.records import Record, SessionMeta


@dataclass
class Source:
    meta: SessionMeta
    total: int | None
    records: AsyncIterator[Record]
    origin: str
    js: JetStreamContext | None = None  # the bus a session id was read from (None: a file)


def looks_like_file(arg: str) -> bool:
    return Path(arg).is_file() or arg.endswith((SUFFIX, ".gz", ".jsonl"))


async def _aiter(items: Iterator[Record]) -> AsyncIterator[Record]:
    for item in items:
        yield item


@asynccontextmanager
async def open_source(arg: str, nats_url: str, stream: str, creds: str | None = None) -> AsyncIterator[Source]:
    """A session file when `arg` names one, else session `arg` in `stream` at `nats_url`
    (connecting with the credentials file `creds`, if any)."""
    if looks_like_file(arg):
        with SessionFile(Path(arg)) as f:
            yield Source(f.session, f.header.counts.messages, _aiter(f.records()), str(arg))
        return
    from ticktape.bus.reader import when_available
    from ticktape.replay.catalog import connect, find_session, open_stream, session_records

    nc = await connect(nats_url, creds)
    try:
        js = nc.jetstream()
        ref = await open_stream(js, stream)
        entry = await find_session(js, ref, arg)
        first = (await when_available(lambda: js.stream_info(ref.name))).state.first_seq
        end = entry.end_seq if entry.end_seq is not None else ref.last_seq
        yield Source(
            entry.meta,
            max(end - first + 1, 0),
            session_records(js, ref, entry),
            f"{ref.name} at {redact_text(nats_url)}",
            js,
        )
    finally:
        await nc.close()
