"""Verifying the audit log in PostgreSQL: a whole stream's chain, or one session's range,
streamed from the database through ticktape.audit.chain.Verifier with the checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ticktape.audit import chain, queries


@dataclass(frozen=True)
class Outcome:
    """The verdict on one stream (or one session's range of it)."""

    result: chain.Result
    session: queries.SessionRange | None = None

    @property
    def ok(self) -> bool:
        return self.result.ok

    def describe(self) -> str:
        r = self.result
        if r.broken is not None:
            return f"BROKEN: {r.broken.describe()}"
        head = r.head.hex() if r.head else "-"
        extent = f"seq {r.first_seq}..{r.last_seq}" if r.first_seq is not None else "no rows"
        extras = [f"stream {r.stream}", extent, f"{r.checkpoints} checkpoints checked"]
        if r.gaps:
            extras.append(f"{r.gaps} seq gaps")
        text = f"ok: {r.count} events, head hash {head} ({', '.join(extras)})"
        if self.session is not None:
            text = f"session {self.session.session_id}: {text}"
            if self.session.stop_seq is None:
                text += "; the session has no session.stopped yet: verified to the last archived row"
        return text

    def to_json(self) -> dict[str, Any]:
        r, b = self.result, self.result.broken
        return {
            "ok": r.ok,
            "stream": r.stream,
            "count": r.count,
            "head": r.head.hex() if r.head else None,
            "first_seq": r.first_seq,
            "last_seq": r.last_seq,
            "gaps": r.gaps,
            "checkpoints": r.checkpoints,
            "session": None
            if self.session is None
            else {
                "session_id": self.session.session_id,
                "start_seq": self.session.start_seq,
                "stop_seq": self.session.stop_seq,
            },
            "broken": None
            if b is None
            else {
                "seq": b.seq,
                "index": b.index,
                "kind": b.kind,
                "detail": b.detail,
                "event_id": b.event_id,
                "type": b.type,
                "subject": b.subject,
            },
        }


async def verify_stream(conn: Any, stream: str, *, from_seq: int = 1, to_seq: int | None = None) -> chain.Result:
    """Recompute the chain of stream's rows in [from_seq, to_seq] and check its checkpoints.

    The whole stream must start from GENESIS and match every checkpoint's hash and count (a
    checkpoint past the last row means the tail was cut off). A range must link to the row
    before it and match the hashes of the checkpoints inside it."""
    whole = from_seq <= 1 and to_seq is None
    prev = chain.GENESIS if whole else (await queries.hash_before(conn, stream, from_seq) or chain.GENESIS)
    checkpoints = await queries.checkpoints(conn, stream, from_seq=from_seq, to_seq=to_seq)
    verifier = chain.Verifier(stream, prev_hash=prev, checkpoints=checkpoints, count_base=0 if whole else None)
    async for row in queries.rows(conn, stream, from_seq=from_seq, to_seq=to_seq):
        if verifier.feed(row) is not None:
            break
    return verifier.finish()


async def verify_all(conn: Any, streams: list[str] | None = None) -> list[Outcome]:
    """Every archived stream (or the given ones), each from its first row."""
    names = streams if streams else await queries.streams(conn)
    return [Outcome(await verify_stream(conn, name)) for name in names]


async def verify_session(conn: Any, stream: str, session_id: str) -> Outcome | None:
    """The rows from a session's session.started to its session.stopped (or to the end of the
    log if it has not stopped); None when the session is not in the log."""
    found = await queries.session_range(conn, stream, session_id)
    if found is None:
        return None
    result = await verify_stream(conn, stream, from_seq=found.start_seq, to_seq=found.stop_seq)
    return Outcome(result, found)
