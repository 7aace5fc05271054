"""The audit archiver: one durable pull consumer per archived stream (the events stream and the
dead-letter stream, each its own chain) storing every message in PostgreSQL in stream order,
hash-chained (ticktape.audit.chain), one transaction per fetched batch, with checkpoints every
`checkpoint_every` rows, right after each session.stopped row and on shutdown. Each checkpoint is
signed with an ed25519 key kept outside PostgreSQL (ticktape.audit.signing, `audit.signing_key`),
so a chain rewritten consistently in the database no longer matches its checkpoints; the latest
signed checkpoint of each stream is also kept beside the key (the witness), so a tail deleted
together with its checkpoints is caught too.

PostgreSQL, not the consumer, holds the progress: at start the archiver reads the stored head
(seq, hash) and re-creates its durable to start right after it. Messages at or below the head
(redeliveries of a batch committed but not acked before a crash) are acked and skipped, so the
chain never repeats or forks. Each batch re-reads the head under a per-stream advisory lock
before writing, so a second archiver on the same database cannot interleave rows either.

The trades stream is not archived: public trades are high-rate market data with their own short
retention; the audit log covers the decisions (bars through fills) and the dead letters.

Poison messages: every message is archived byte for byte, whatever it holds (the chain has no
holes). One beyond a decode limit (JSON nested deeper than jsonlimits.MAX_DEPTH) is stored
without projected columns, counted (`rejected{reason="too_deep"}`) and also dead-lettered so
someone looks at it. A batch PostgreSQL will not take as jsonb is stored without the jsonb copy.
Outages (no database, no NATS) are retried from the stored head for as long as they last; a
refusal the database repeats max_deliver times at the same head stops the service with the
reason logged, since the audit log must not skip a message.

Traces: each stored message that carries a trace context (`traceparent`) gets an `audit archive
<type>` span, a child of the span that published it, so a tick's trace ends in the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from prometheus_client import Counter

from services.audit.config import AuditConfig
from ticktape import config as cfg
from ticktape import pg, runtime, subjects, telemetry
from ticktape.audit import chain, queries, signing
from ticktape.bus.deadletter import DeadLetters
from ticktape.bus.durable import recreate_durable
from ticktape.bus.lag import poll_lag
from ticktape.metrics import ServiceMetrics

MIGRATIONS = Path(__file__).with_name("migrations")
NAMESPACE = "audit"
DURABLE = "audit"
RETRY_MAX_S = 10.0
_COPY = (
    "COPY audit_log (stream, seq, subject, event_id, type, ts_event, causation_id, correlation_id, "
    "data, payload, prev_hash, hash) FROM STDIN"
)
# payload travels as text: the server parses it with jsonb's input function.
_COPY_TYPES = ["text", "int8", "text", "text", "text", "int8", "text", "text", "bytea", "text", "bytea", "bytea"]
_TRANSIENT = (psycopg.OperationalError, psycopg.IntegrityError, nats.errors.Error, asyncio.TimeoutError)


def load(raw: dict[str, Any]) -> AuditConfig:
    return cfg.load_section("audit", AuditConfig, raw)


class AuditMetrics:
    """The archiver's counters, in the service's registry (per stream)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.base = metrics
        labels = ["service", "stream"]
        reg = metrics.registry
        self._archived = Counter("ticktape_audit_archived", "Messages stored in the audit log", labels, registry=reg)
        self._skipped = Counter("ticktape_audit_skipped", "Redelivered messages already stored", labels, registry=reg)
        self._checkpoints = Counter("ticktape_audit_checkpoints", "Checkpoints written", labels, registry=reg)
        self._gaps = Counter(
            "ticktape_audit_gaps", "Sequence gaps in a stream (deleted or expired messages)", labels, registry=reg
        )

    def archived(self, stream: str, n: int) -> None:
        self.base.received(n)
        self._archived.labels(self.base.service, stream).inc(n)

    def skipped(self, stream: str, n: int) -> None:
        self._skipped.labels(self.base.service, stream).inc(n)

    def checkpoint(self, stream: str) -> None:
        self._checkpoints.labels(self.base.service, stream).inc()

    def gap(self, stream: str) -> None:
        self._gaps.labels(self.base.service, stream).inc()


@dataclass(frozen=True)
class ChainState:
    """The stored head of one stream's chain and its latest checkpoint."""

    seq: int = 0
    hash: bytes = chain.GENESIS
    count: int = 0
    checkpoint_seq: int = 0
    checkpoint_count: int = 0


class _Resync(Exception):
    """Re-create the consumer right after the stored head (a gap appeared in the deliveries)."""


class Archiver:
    """Copies one stream into audit_log; `run` until stop, `store` one fetched batch."""

    def __init__(
        self,
        *,
        stream: str,
        js: JetStreamContext,
        dsn: str,
        config: AuditConfig,
        metrics: AuditMetrics,
        log: Any,
        durable: str = DURABLE,
        letters: DeadLetters | None = None,
        max_deliver: int = 5,
        signer: signing.Signer | None = None,
        witness: Path | None = None,
    ) -> None:
        self.stream = stream
        self.js = js
        self.dsn = dsn
        self.config = config
        self.metrics = metrics
        self.log = log.bind(stream=stream)
        self.durable = durable
        self.state = ChainState()
        self._lock_key = f"ticktape.audit:{stream}"
        # A jump in seq right where the consumer was (re)started is a real gap in the stream;
        # anywhere else it may be a delivery we have not seen yet, so the consumer is restarted.
        self._start_seq: int | None = None
        self.letters = letters or DeadLetters(js, metrics.base.service, metrics.base, log)
        self.max_deliver = max_deliver
        self.signer = signer  # None: checkpoints are written unsigned
        self.witness = witness  # where the latest signed checkpoint is kept outside PostgreSQL
        self._unprojectable: list[tuple[Msg, str]] = []  # of the batch being written
        self._written: list[tuple[Msg, chain.Row]] = []  # of the batch being written
        self._tracer = trace.get_tracer("ticktape.audit")
        self._conflicts: list[tuple[Msg, chain.Conflict]] = []  # of the batch being written

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.5
        refusals: tuple[int, int] = (-1, 0)  # (head seq, consecutive refusals by the database there)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await self._serve(conn, stop)
                    return
            except _Resync:
                continue
            except _TRANSIENT as exc:
                self.metrics.base.error("archive")
                if isinstance(exc, psycopg.Error) and exc.sqlstate is not None:  # the server answered: no
                    refusals = (self.state.seq, refusals[1] + 1 if refusals[0] == self.state.seq else 1)
                    if refusals[1] >= self.max_deliver:
                        self.log.error(
                            "the database refuses the batch after the archived head on every attempt; stopping "
                            "(the audit log must not skip a message)",
                            head_seq=self.state.seq,
                            attempts=refusals[1],
                            error=repr(exc),
                        )
                        raise
                self.log.warning("archiving failed; resuming from the stored head", error=repr(exc), retry_in_s=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                delay = min(delay * 2, RETRY_MAX_S)
            except Exception as exc:
                self.log.error("archiver stopped", head_seq=self.state.seq, error=repr(exc))
                raise

    async def _serve(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        await self.start(conn)
        sub = await self.js.pull_subscribe_bind(consumer=self.durable, stream=self.stream)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(self.config.batch, timeout=0.5)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
                    await asyncio.sleep(0.2)
                    continue
                await self.store(conn, msgs)
            await self.checkpoint(conn, "shutdown")
        finally:
            with contextlib.suppress(OSError, nats.errors.Error):  # the connection is closing or gone
                await sub.unsubscribe()

    async def start(self, conn: psycopg.AsyncConnection[Any]) -> ChainState:
        """Load the stored head and point the durable consumer right after it."""
        self.state = await self._load_state(conn)
        info = await self.js.stream_info(self.stream)
        if info.state.last_seq < self.state.seq:
            self.metrics.base.error("stream_behind_archive")
            self.log.error(
                "the stream ends before the archived head: it was purged or recreated; "
                "messages up to the archived seq are skipped",
                stream_last_seq=info.state.last_seq,
                archived_seq=self.state.seq,
            )
        await self._recreate_durable(self.state.seq + 1)
        self.log.info("archiving", from_seq=self.state.seq + 1, archived=self.state.count, head=self.state.hash.hex())
        return self.state

    async def _recreate_durable(self, start_seq: int) -> None:
        await recreate_durable(
            self.js,
            self.stream,
            self.durable,
            start_seq,
            ack_wait=self.config.ack_wait_s,
            max_ack_pending=self.config.batch * 4,
            max_deliver=self.max_deliver,  # a message the server gives up on is a gap: _Resync
        )
        self._start_seq = start_seq

    async def _load_state(self, conn: psycopg.AsyncConnection[Any]) -> ChainState:
        head = await queries.head(conn, self.stream)
        cp = await queries.latest_checkpoint(conn, self.stream)
        if head is None:
            return ChainState()
        return ChainState(
            seq=head.seq,
            hash=head.hash,
            count=head.count,
            checkpoint_seq=cp.upto_seq if cp else 0,
            checkpoint_count=cp.count if cp else 0,
        )

    async def store(self, conn: psycopg.AsyncConnection[Any], msgs: list[Msg]) -> tuple[int, int]:
        """Chain and store one fetched batch in one transaction, then ack it; returns (stored,
        skipped). Raises _Resync after storing what precedes an unexpected gap."""
        started = time.time_ns()
        try:
            done, written, state, checkpointed = await self._write(conn, msgs, with_payload=True)
        except psycopg.DataError as exc:  # a body PostgreSQL will not take as jsonb: keep the bytes only
            self.metrics.base.error("payload_not_jsonb")
            self.log.warning("payload not storable as jsonb; archived as bytes only", error=repr(exc))
            done, written, state, checkpointed = await self._write(conn, msgs, with_payload=False)
        self._trace(started)
        for at, reason in checkpointed:
            self._checkpointed(at, reason)
        self.state = state
        if written:
            self._start_seq = None
        for msg, reason in self._unprojectable:
            self.metrics.base.rejected("too_deep")
            self.log.warning("message archived without projections; dead-lettered", seq=msg.metadata.sequence.stream)
            await self.letters.send(
                source=msg.subject,
                error=f"archived as bytes only: {reason}",
                payload=msg.data,
                ts_ns=int(msg.metadata.timestamp.timestamp() * 1e9),
                stream_seq=msg.metadata.sequence.stream,
                headers=dict(msg.headers or {}),
            )
        for msg, conflict in self._conflicts:
            # Archived all the same (the stream holds it, and the chain has no holes), but not
            # silently: counted and dead-lettered so the producer that reused the id is found.
            self.metrics.base.rejected(conflict.reason)
            self.log.warning(
                "event id already archived with other bytes; dead-lettered",
                seq=conflict.row.seq,
                first_seq=conflict.first_seq,
                event_id=conflict.row.event_id,
            )
            await self.letters.send(
                source=msg.subject,
                error=f"{conflict.reason}: event_id {conflict.row.event_id!r} was archived at seq "
                f"{conflict.first_seq} of {self.stream} with different bytes",
                payload=msg.data,
                ts_ns=int(msg.metadata.timestamp.timestamp() * 1e9),
                stream_seq=msg.metadata.sequence.stream,
                headers=dict(msg.headers or {}),
            )
        for msg in msgs[:done]:
            await msg.ack()
        skipped = done - written
        if written:
            self.metrics.archived(self.stream, written)
        if skipped:
            self.metrics.skipped(self.stream, skipped)
        if done < len(msgs):
            seq = msgs[done].metadata.sequence.stream
            self.log.warning(
                "unexpected gap in deliveries; restarting the consumer", expected_seq=state.seq + 1, got_seq=seq
            )
            raise _Resync()
        return written, skipped

    async def _write(
        self, conn: psycopg.AsyncConnection[Any], msgs: list[Msg], with_payload: bool
    ) -> tuple[int, int, ChainState, list[tuple[ChainState, str]]]:
        """(messages handled, rows written, new state, checkpoints written with their reasons);
        under the stream's lock."""
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self._lock_key,))
            state = self.state
            cur = await conn.execute(
                "SELECT seq, hash FROM audit_log WHERE stream = %s ORDER BY seq DESC LIMIT 1", (self.stream,)
            )
            found = await cur.fetchone()
            stored = (found[0], bytes(found[1])) if found else (0, chain.GENESIS)
            if stored != (state.seq, state.hash):
                state = await self._load_state(conn)  # someone else wrote: continue from what is stored
            rows: list[chain.Row] = []
            stops: list[int] = []  # indexes in rows of session.stopped rows: each gets a checkpoint
            self._unprojectable = []
            self._conflicts = []
            self._written = []
            msg_of: dict[int, Msg] = {}
            done, prev, last = 0, state.hash, state.seq
            checkpointed: list[tuple[ChainState, str]] = []
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last + 1:
                    if self._start_seq != last + 1 or rows:
                        break
                    self.metrics.gap(self.stream)
                    self.log.warning(
                        "stream has a gap (messages deleted or expired)", from_seq=last + 1, to_seq=seq - 1
                    )
                done += 1
                if seq <= last:
                    continue
                row = chain.make_row(prev, self.stream, seq, msg.subject, msg.data)
                reason = chain.unprojectable(msg.data)
                if reason is not None:
                    self._unprojectable.append((msg, reason))
                if row.type == "session.stopped" and subjects.matches(subjects.ALL_SESSIONS, row.subject):
                    stops.append(len(rows))
                rows.append(row)
                msg_of[seq] = msg
                prev, last = row.hash, seq
            if rows:
                conflicts = chain.event_id_conflicts(rows, await self._first_copies(conn, rows))
                self._conflicts = [(msg_of[c.row.seq], c) for c in conflicts]
                async with conn.cursor() as cur, cur.copy(_COPY) as copy:
                    copy.set_types(_COPY_TYPES)
                    for r in rows:
                        await copy.write_row(
                            (
                                r.stream,
                                r.seq,
                                r.subject,
                                r.event_id,
                                r.type,
                                r.ts_event,
                                r.causation_id,
                                r.correlation_id,
                                r.data,
                                r.payload if with_payload else None,
                                r.prev_hash,
                                r.hash,
                            )
                        )
                self._written = [(msg_of[r.seq], r) for r in rows]
                for i in stops:
                    at = ChainState(seq=rows[i].seq, hash=rows[i].hash, count=state.count + i + 1)
                    at = await self._insert_checkpoint(conn, at, "session")
                    state = dataclasses.replace(state, checkpoint_seq=at.seq, checkpoint_count=at.count)
                    checkpointed.append((at, "session"))
                state = ChainState(
                    seq=last,
                    hash=prev,
                    count=state.count + len(rows),
                    checkpoint_seq=state.checkpoint_seq,
                    checkpoint_count=state.checkpoint_count,
                )
                if (
                    state.seq > state.checkpoint_seq
                    and state.count - state.checkpoint_count >= self.config.checkpoint_every
                ):
                    state = await self._insert_checkpoint(conn, state, "interval")
                    checkpointed.append((state, "interval"))
        return done, len(rows), state, checkpointed

    async def _first_copies(
        self, conn: psycopg.AsyncConnection[Any], rows: list[chain.Row]
    ) -> dict[str, tuple[int, bytes]]:
        """Per event_id of `rows` already archived in this stream: (seq, sha256 of data) of its
        first row. One indexed query per batch (audit_log_event_id)."""
        ids = sorted({r.event_id for r in rows if r.event_id is not None})
        if not ids:
            return {}
        cur = await conn.execute(
            "SELECT DISTINCT ON (event_id) event_id, seq, sha256(data) FROM audit_log "
            "WHERE event_id = ANY(%s) AND stream = %s ORDER BY event_id, seq",
            (ids, self.stream),
        )
        return {eid: (seq, bytes(digest)) for eid, seq, digest in await cur.fetchall()}

    def _trace(self, started_ns: int) -> None:
        """One span per message of the committed batch that carries a trace context (bars through
        fills carry one): "audit archive <type>", a child of the span that published it, from the
        batch's start to its commit, so the audit log is the last process in a tick's trace. A
        message without a context (a session record, a status) starts no trace."""
        if not self._written:
            return
        ended = time.time_ns()
        for msg, row in self._written:
            if not msg.headers or "traceparent" not in msg.headers:
                continue
            attributes: dict[str, str | int] = {
                "messaging.destination": msg.subject,
                "ticktape.stream": row.stream,
                "ticktape.seq": row.seq,
            }
            if row.event_id is not None:
                attributes["ticktape.event_id"] = row.event_id
            span = self._tracer.start_span(
                f"audit archive {row.type or 'unknown'}",
                context=telemetry.extract(msg.headers),
                kind=trace.SpanKind.CONSUMER,
                attributes=attributes,
                start_time=started_ns,
            )
            span.end(end_time=ended)

    async def checkpoint(self, conn: psycopg.AsyncConnection[Any], reason: str) -> None:
        """Record the head as a checkpoint unless the latest checkpoint already is the head."""
        if self.state.seq <= self.state.checkpoint_seq:
            return
        async with conn.transaction():
            state = await self._insert_checkpoint(conn, self.state, reason)
        self._checkpointed(state, reason)
        self.state = state

    def _checkpointed(self, state: ChainState, reason: str) -> None:
        """After the checkpoint is committed: count it, log it, and keep it as the witness."""
        self.metrics.checkpoint(self.stream)
        if self.signer is not None and self.witness is not None:
            sig = self.signer.sign(self.stream, state.seq, state.hash, state.count)  # ed25519 is deterministic
            cp = chain.Checkpoint(self.stream, state.seq, state.hash, state.count, sig, self.signer.key_id)
            try:
                signing.write_witness(self.witness, cp)
            except OSError as exc:  # the database holds the checkpoint; the witness only backs it up
                self.metrics.base.error("witness")
                self.log.warning("cannot write the checkpoint witness", path=str(self.witness), error=repr(exc))
        self.log.info("checkpoint", upto_seq=state.seq, count=state.count, hash=state.hash.hex(), reason=reason)

    async def _insert_checkpoint(
        self, conn: psycopg.AsyncConnection[Any], state: ChainState, reason: str
    ) -> ChainState:
        signature, key_id = (
            (self.signer.sign(self.stream, state.seq, state.hash, state.count), self.signer.key_id)
            if self.signer is not None
            else (None, None)
        )
        await conn.execute(
            "INSERT INTO audit_checkpoints (stream, upto_seq, hash, count, reason, signature, key_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (stream, upto_seq) DO NOTHING",
            (self.stream, state.seq, state.hash, state.count, reason, signature, key_id),
        )
        return ChainState(
            seq=state.seq, hash=state.hash, count=state.count, checkpoint_seq=state.seq, checkpoint_count=state.count
        )


async def apply_migrations(conn: Any) -> list[str]:
    return await pg.migrate(conn, MIGRATIONS, namespace=NAMESPACE)


async def serve(rt: runtime.Runtime, config: AuditConfig) -> None:
    dsn = runtime.require_pg_dsn(rt)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        applied = await apply_migrations(conn)
    if applied:
        rt.log.info("migrations applied", files=applied)
    key = signing.key_path(rt.common.home, config.signing_key)
    signer = signing.load_or_create(key)
    rt.log.info("checkpoints signed", key=str(key), key_id=signer.key_id)
    streams = [rt.common.nats.stream] + ([rt.common.nats.dlq_stream] if config.dead_letters else [])
    metrics = AuditMetrics(rt.metrics)
    async with asyncio.TaskGroup() as group:
        for stream in streams:
            archiver = Archiver(
                stream=stream,
                js=rt.js,
                dsn=dsn,
                config=config,
                metrics=metrics,
                log=rt.log,
                letters=runtime.dead_letters(rt),
                max_deliver=rt.common.nats.max_deliver,
                signer=signer,
                witness=signing.witness_path(key, stream),
            )
            group.create_task(archiver.run(rt.stop))
            group.create_task(poll_lag(rt.js, stream, archiver.durable, rt.metrics, rt.stop, rt.log))


def main() -> None:
    runtime.run("audit", load, serve)
