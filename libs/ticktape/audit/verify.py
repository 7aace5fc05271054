"""Verifying the audit log in PostgreSQL: a whole stream's chain, or one session's range,
streamed from the database through ticktape.audit.chain.Verifier with the checkpoints, and with
a public key (ticktape.audit.signing) their signatures: what proves the log against someone who
can rewrite the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ticktape.audit import chain, queries, signing


@dataclass(frozen=True)
class Outcome:
    """The verdict on one stream (or one session's range of it)."""

    result: chain.Result
    session: queries.SessionRange | None = None
    key_id: str | None = None  # the public key the signatures were checked with, if any
    witness_seq: int | None = None  # the checkpoint kept outside the database that was checked

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
        if self.key_id is not None:
            text += f"; {r.signed} checkpoints signed by key {self.key_id}, the last at seq {r.signed_seq}"
            if r.unsigned_rows:
                text += f"; {r.unsigned_rows} rows after it are not signed yet"
            if self.witness_seq is not None:
                text += f"; witness kept outside the database: seq {self.witness_seq}"
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
            "key_id": self.key_id,
            "signed": r.signed,
            "signed_seq": r.signed_seq,
            "unsigned_rows": r.unsigned_rows,
            "witness_seq": self.witness_seq,
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


def vouch(key: signing.PublicKey) -> Callable[[chain.Checkpoint], str | None]:
    """The chain verifier's signature check for checkpoints, with this public key."""

    def check(cp: chain.Checkpoint) -> str | None:
        return key.problem(cp.stream, cp.upto_seq, cp.hash, cp.count, cp.signature, cp.key_id)

    return check


async def verify_stream(
    conn: Any,
    stream: str,
    *,
    from_seq: int = 1,
    to_seq: int | None = None,
    key: signing.PublicKey | None = None,
    witness: chain.Checkpoint | None = None,
) -> chain.Result:
    """Recompute the chain of stream's rows in [from_seq, to_seq] and check its checkpoints.

    The whole stream must start from GENESIS and match every checkpoint's hash and count (a
    checkpoint past the last row means the tail was cut off). A range must link to the row
    before it and match the hashes of the checkpoints inside it. With `key`, every signed
    checkpoint's signature must verify and at least one must (a signed head hash commits to
    every row before it, whatever the database holds). `witness`: the latest signed checkpoint as
    kept outside the database (signing.witness_path); it joins the checkpoints in the range, so
    a log cut short together with its checkpoints is still caught."""
    whole = from_seq <= 1 and to_seq is None
    prev = chain.GENESIS if whole else (await queries.hash_before(conn, stream, from_seq) or chain.GENESIS)
    checkpoints = await queries.checkpoints(conn, stream, from_seq=from_seq, to_seq=to_seq)
    if witness is not None and from_seq <= witness.upto_seq <= (to_seq if to_seq is not None else witness.upto_seq):
        by_seq = {cp.upto_seq: cp for cp in checkpoints} | {witness.upto_seq: witness}
        checkpoints = [by_seq[seq] for seq in sorted(by_seq)]
    verifier = chain.Verifier(
        stream,
        prev_hash=prev,
        checkpoints=checkpoints,
        count_base=0 if whole else None,
        vouch=vouch(key) if key is not None else None,
    )
    async for row in queries.rows(conn, stream, from_seq=from_seq, to_seq=to_seq):
        if verifier.feed(row) is not None:
            break
    return verifier.finish()


Witnesses = Callable[[str], chain.Checkpoint | None]


def _no_witness(stream: str) -> chain.Checkpoint | None:
    return None


async def verify_all(
    conn: Any,
    streams: list[str] | None = None,
    key: signing.PublicKey | None = None,
    witnesses: Witnesses = _no_witness,
) -> list[Outcome]:
    """Every archived stream (or the given ones), each from its first row; `witnesses(stream)`:
    the checkpoint kept outside the database for it, if any (used only with a key)."""
    names = streams if streams else await queries.streams(conn)
    kid = key.key_id if key is not None else None
    out = []
    for name in names:
        w = witnesses(name) if key is not None else None
        result = await verify_stream(conn, name, key=key, witness=w)
        out.append(Outcome(result, key_id=kid, witness_seq=w.upto_seq if w else None))
    return out


async def verify_session(
    conn: Any,
    stream: str,
    session_id: str,
    key: signing.PublicKey | None = None,
    witnesses: Witnesses = _no_witness,
) -> Outcome | None:
    """The rows from a session's session.started to its session.stopped (or to the end of the
    log if it has not stopped); None when the session is not in the log."""
    found = await queries.session_range(conn, stream, session_id)
    if found is None:
        return None
    w = witnesses(stream) if key is not None else None
    if w is not None and not (found.start_seq <= w.upto_seq <= (found.stop_seq or w.upto_seq)):
        w = None
    result = await verify_stream(conn, stream, from_seq=found.start_seq, to_seq=found.stop_seq, key=key, witness=w)
    return Outcome(result, found, key.key_id if key is not None else None, w.upto_seq if w else None)
