"""Reading the audit log back from PostgreSQL (psycopg.AsyncConnection, autocommit): rows in
stream order, heads and checkpoints, session ranges, events by id and their causes.

The tables (audit_log, audit_checkpoints) are created by the audit service's migrations; every
read here runs in its own short transaction, so nothing holds a snapshot open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ticktape import subjects
from ticktape.audit.chain import Checkpoint, Row

_COLUMNS = (
    "stream, seq, subject, data, prev_hash, hash, event_id, type, ts_event, causation_id, correlation_id, payload::text"
)


def _row(r: tuple[Any, ...]) -> Row:
    return Row(
        stream=r[0],
        seq=r[1],
        subject=r[2],
        data=bytes(r[3]),
        prev_hash=bytes(r[4]),
        hash=bytes(r[5]),
        event_id=r[6],
        type=r[7],
        ts_event=r[8],
        causation_id=r[9],
        correlation_id=r[10],
        payload=r[11],
    )


async def _all(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    async with conn.transaction():
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def _one(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    found = await _all(conn, sql, params)
    return found[0] if found else None


async def streams(conn: Any) -> list[str]:
    """Streams with archived rows or checkpoints, by name."""
    return [
        r[0]
        for r in await _all(
            conn, "SELECT stream FROM audit_log UNION SELECT stream FROM audit_checkpoints ORDER BY stream"
        )
    ]


async def rows(
    conn: Any, stream: str, *, from_seq: int = 1, to_seq: int | None = None, chunk: int = 2000
) -> AsyncIterator[Row]:
    """The stream's rows with from_seq <= seq <= to_seq, in seq order, read in chunks."""
    after = from_seq - 1
    upper = to_seq if to_seq is not None else 2**63 - 1
    while True:
        found = await _all(
            conn,
            f"SELECT {_COLUMNS} FROM audit_log WHERE stream = %s AND seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
            (stream, after, upper, chunk),
        )
        for r in found:
            yield _row(r)
        if len(found) < chunk:
            return
        after = found[-1][1]


@dataclass(frozen=True)
class Head:
    """The last archived row of a stream and how many rows lead up to it."""

    seq: int
    hash: bytes
    count: int


async def head(conn: Any, stream: str) -> Head | None:
    """The stream's last row (None when empty); count = latest checkpoint + rows after it."""
    last = await _one(conn, "SELECT seq, hash FROM audit_log WHERE stream = %s ORDER BY seq DESC LIMIT 1", (stream,))
    if last is None:
        return None
    cp = await latest_checkpoint(conn, stream)
    base, after = (cp.count, cp.upto_seq) if cp is not None and cp.upto_seq <= last[0] else (0, 0)
    counted = await _one(conn, "SELECT count(*) FROM audit_log WHERE stream = %s AND seq > %s", (stream, after))
    return Head(seq=last[0], hash=bytes(last[1]), count=base + (counted[0] if counted else 0))


_CHECKPOINT_COLUMNS = "stream, upto_seq, hash, count, signature, key_id"


def _checkpoint(r: tuple[Any, ...]) -> Checkpoint:
    return Checkpoint(r[0], r[1], bytes(r[2]), r[3], bytes(r[4]) if r[4] is not None else None, r[5])


async def latest_checkpoint(conn: Any, stream: str) -> Checkpoint | None:
    found = await _one(
        conn,
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE stream = %s ORDER BY upto_seq DESC LIMIT 1",
        (stream,),
    )
    return _checkpoint(found) if found else None


async def checkpoints(conn: Any, stream: str, *, from_seq: int = 1, to_seq: int | None = None) -> list[Checkpoint]:
    """The stream's checkpoints with from_seq <= upto_seq <= to_seq, oldest first."""
    found = await _all(
        conn,
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints "
        "WHERE stream = %s AND upto_seq >= %s AND upto_seq <= %s ORDER BY upto_seq",
        (stream, from_seq, to_seq if to_seq is not None else 2**63 - 1),
    )
    return [_checkpoint(r) for r in found]


async def hash_before(conn: Any, stream: str, seq: int) -> bytes | None:
    """The hash of the last row before seq (None when seq starts the stream's log)."""
    found = await _one(
        conn, "SELECT hash FROM audit_log WHERE stream = %s AND seq < %s ORDER BY seq DESC LIMIT 1", (stream, seq)
    )
    return bytes(found[0]) if found else None


@dataclass(frozen=True)
class SessionRange:
    """A session's rows: from its SessionStarted to its SessionStopped (None: not stopped yet)."""

    session_id: str
    start_seq: int
    stop_seq: int | None


async def session_range(conn: Any, stream: str, session_id: str) -> SessionRange | None:
    """Where a session lies in a stream: its first session.started row on sessions.<id> and the
    first session.stopped after it."""
    subject = subjects.session(session_id)
    start = await _one(
        conn,
        "SELECT seq FROM audit_log WHERE stream = %s AND subject = %s "
        "AND type = 'session.started' ORDER BY seq LIMIT 1",
        (stream, subject),
    )
    if start is None:
        return None
    stop = await _one(
        conn,
        "SELECT seq FROM audit_log WHERE stream = %s AND subject = %s "
        "AND type = 'session.stopped' AND seq > %s ORDER BY seq LIMIT 1",
        (stream, subject, start[0]),
    )
    return SessionRange(session_id, start[0], stop[0] if stop else None)


async def find(conn: Any, event_id: str, prefer_stream: str | None = None) -> Row | None:
    """The row carrying event_id, preferring `prefer_stream` and then the earliest."""
    found = await _one(
        conn,
        f"SELECT {_COLUMNS} FROM audit_log WHERE event_id = %s ORDER BY (stream = %s) DESC, seq LIMIT 1",
        (event_id, prefer_stream or ""),
    )
    return _row(found) if found else None


@dataclass(frozen=True)
class CausalChain:
    """`rows` from the event back to its root cause; `missing` is a causation_id that is not in
    the log (the walk stopped there), `cycle` is set if a cause repeats."""

    rows: list[Row]
    missing: str | None = None
    cycle: bool = False


async def causal_chain(
    conn: Any, event_id: str, prefer_stream: str | None = None, max_depth: int = 1000
) -> CausalChain | None:
    """Follow causation_id from event_id back to an event with no cause (None: id not found)."""
    row = await find(conn, event_id, prefer_stream)
    if row is None:
        return None
    out, seen = [row], {row.event_id}
    while row.causation_id and len(out) < max_depth:
        if row.causation_id in seen:
            return CausalChain(out, cycle=True)
        cause = await find(conn, row.causation_id, prefer_stream)
        if cause is None:
            return CausalChain(out, missing=row.causation_id)
        out.append(cause)
        seen.add(cause.event_id)
        row = cause
    return CausalChain(out)


async def correlated(conn: Any, correlation_id: str, limit: int = 200) -> tuple[list[Row], int]:
    """Rows whose event_id or correlation_id is correlation_id (the root and everything it set
    off), in stream order, at most `limit`; and how many there are in all."""
    where = "WHERE correlation_id = %s OR event_id = %s"
    found = await _all(
        conn,
        f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY stream, seq LIMIT %s",
        (correlation_id, correlation_id, limit),
    )
    total = await _one(conn, f"SELECT count(*) FROM audit_log {where}", (correlation_id, correlation_id))
    return [_row(r) for r in found], total[0] if total else 0
