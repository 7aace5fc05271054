"""The audit archiver on a real nats-server and PostgreSQL: every message stored in stream order,
hash-chained, checkpointed; restarts, redeliveries and a SIGKILL neither lose, repeat nor fork."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
import structlog

from services.audit.config import AuditConfig
from services.audit.service import DURABLE, Archiver, AuditMetrics, apply_migrations
from services.audit.service import serve as serve_audit
from tests.support.bars import wave_bars
from ticktape import ids, subjects
from ticktape.audit import chain, queries
from ticktape.audit.verify import verify_stream
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.bus.reader import read_range
from ticktape.config import NatsSettings
from ticktape.corespec import load_specs
from ticktape.events import DeadLettered, Event, OrderFilled
from ticktape.metrics import ServiceMetrics
from ticktape.testing import eventually
from ticktape.testing.services import common_settings, running_service

EVENTS, DLQ = subjects.EVENTS_STREAM, subjects.DLQ_STREAM
CONFIG = AuditConfig(batch=32, checkpoint_every=50)


def trading_session(n_bars: int = 120, start: int | None = None) -> list[Event]:
    """What the live stack puts on the stream for these bars: each bar, then everything the real
    signal, risk and execution cores decide because of it, in the order they would publish it."""
    specs = load_specs({})
    out: list[Event] = []
    bars = wave_bars(n=n_bars) if start is None else wave_bars(n=n_bars, start=start)
    for bar in bars:
        todo: deque[Event] = deque([bar])
        while todo:
            event = todo.popleft()
            out.append(event)
            subject = subjects.for_event(event)
            for spec in specs:
                if any(subjects.matches(f, subject) for f in spec.filter_subjects):
                    todo.extend(spec.core.handle(event))
    return out


@pytest.fixture(autouse=True)
def home_in_tmp(tmp_path, monkeypatch):
    """The default home (./.ticktape, where the archiver keeps its signing key) in the test's dir."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


async def publish(js, events: Sequence[Event]) -> None:
    await publish_batch(js, [(e, {}) for e in events])


async def on_stream(js, stream: str = EVENTS) -> list[tuple[int, str, bytes]]:
    return [(m.metadata.sequence.stream, m.subject, m.data) async for m in read_range(js, stream, [">"])]


async def archived(dsn: str, stream: str = EVENTS) -> list[chain.Row]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            return [r async for r in queries.rows(conn, stream)]
        except psycopg.errors.UndefinedTable:
            return []


async def checkpoints(dsn: str, stream: str = EVENTS) -> list[tuple[int, bytes, int, str]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT upto_seq, hash, count, reason FROM audit_checkpoints WHERE stream = %s ORDER BY upto_seq", (stream,)
        )
        return [(s, bytes(h), c, r) for s, h, c, r in await cur.fetchall()]


async def archived_count(dsn: str, stream: str = EVENTS) -> int:
    return len(await archived(dsn, stream))


async def wait_archived(dsn: str, n: int, stream: str = EVENTS, timeout: float = 30) -> list[chain.Row]:
    async def check():
        rows = await archived(dsn, stream)
        return rows if len(rows) >= n else None

    return await eventually(check, timeout=timeout, what=f"{n} rows of {stream} archived")


def as_messages(rows: Sequence[chain.Row]) -> list[tuple[int, str, bytes]]:
    return [(r.seq, r.subject, r.data) for r in rows]


async def test_archiver_stores_every_message_in_stream_order_hash_chained_and_checkpointed(nats_url, js, pg_dsn):
    events = trading_session()
    assert any(isinstance(e, OrderFilled) for e in events)
    await publish(js, events)
    expected = await on_stream(js)
    assert len(expected) == len(events)
    async with running_service("audit", serve_audit, CONFIG, common_settings(nats_url, pg_dsn)) as rt:
        rows = await wait_archived(pg_dsn, len(expected))
        await eventually(
            lambda: rt.metrics.value("ticktape_audit_archived", stream=EVENTS) == len(expected), what="archived counter"
        )
        assert rt.metrics.value("ticktape_received") == len(expected)
    assert as_messages(rows) == expected  # the exact bytes, subjects and sequences, in order
    # each row chained to the one before; payload is PostgreSQL's rendering of the jsonb
    assert [dataclasses.replace(r, payload=None) for r in rows] == [
        dataclasses.replace(r, payload=None) for r in chain.chain(EVENTS, expected)
    ]
    assert [r.event_id for r in rows] == [e.event_id for e in events]
    fill = next(r for r in rows if r.type == "exec.order.filled")
    assert fill.causation_id and fill.correlation_id and fill.payload
    cps = await checkpoints(pg_dsn)
    by_seq = {r.seq: r for r in rows}
    assert [c[3] for c in cps].count("interval") >= len(rows) // CONFIG.checkpoint_every - 1
    assert cps[-1][0] == rows[-1].seq and cps[-1][2] == len(rows)  # the head, at the latest on shutdown
    assert all(by_seq[seq].hash == h and count == sum(1 for r in rows if r.seq <= seq) for seq, h, count, _ in cps)


async def test_restart_mid_stream_then_no_duplicates_chain_intact_and_shutdown_checkpoint(nats_url, js, pg_dsn):
    events = trading_session()
    half = len(events) // 2
    common = common_settings(nats_url, pg_dsn)
    await publish(js, events[:half])
    async with running_service("audit", serve_audit, CONFIG, common):
        first = await wait_archived(pg_dsn, half)
    assert (await checkpoints(pg_dsn))[-1][0] == first[-1].seq  # written on shutdown
    await publish(js, events[half:])  # arrives while the archiver is down
    async with running_service("audit", serve_audit, CONFIG, common) as rt:
        rows = await wait_archived(pg_dsn, len(events))
        await eventually(
            lambda: rt.metrics.value("ticktape_audit_archived", stream=EVENTS) == len(events) - half,
            what="archived counter after restart",
        )
    assert as_messages(rows) == await on_stream(js)
    assert len({r.seq for r in rows}) == len(rows) == len(events)
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        result = await verify_stream(conn, EVENTS)
    assert result.ok and result.count == len(events) and result.head == rows[-1].hash
    assert result.checkpoints == len(await checkpoints(pg_dsn)) >= 2


async def test_redelivered_batch_after_a_crash_between_commit_and_ack_is_skipped_not_forked(js, pg_dsn):
    events = trading_session(n_bars=30)
    await publish(js, events)
    metrics = AuditMetrics(ServiceMetrics("audit"))
    log = structlog.get_logger()
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await apply_migrations(conn)
        archiver = Archiver(stream=EVENTS, js=js, dsn=pg_dsn, config=CONFIG, metrics=metrics, log=log)
        await archiver.start(conn)
        sub = await js.pull_subscribe_bind(consumer=DURABLE, stream=EVENTS)
        assert await archiver.store(conn, await sub.fetch(10, timeout=5)) == (10, 0)
        # "crash": a fresh archiver that has not loaded the head gets the same messages again
        # (plus a few new ones) from a consumer that starts over
        again = await js.pull_subscribe(">", stream=EVENTS)
        redelivered = await again.fetch(15, timeout=5)
        assert [m.metadata.sequence.stream for m in redelivered] == list(range(1, 16))
        restarted = Archiver(stream=EVENTS, js=js, dsn=pg_dsn, config=CONFIG, metrics=metrics, log=log)
        assert await restarted.store(conn, redelivered) == (5, 10)
        # the first one, whose in-memory head is now stale, reads the stored head before writing
        third = await js.pull_subscribe(">", stream=EVENTS)
        assert await archiver.store(conn, await third.fetch(15, timeout=5)) == (0, 15)
        await third.unsubscribe()
        await again.unsubscribe()
        await sub.unsubscribe()
    rows = await archived(pg_dsn)
    assert as_messages(rows) == (await on_stream(js))[:15]
    assert chain.verify(rows, EVENTS).ok
    assert metrics.base.value("ticktape_audit_skipped", stream=EVENTS) == 25


async def test_malformed_messages_and_dead_letters_are_archived_each_stream_its_own_chain(nats_url, js, pg_dsn):
    events = trading_session(n_bars=20)
    await publish(js, events[:10])
    await js.publish(subjects.bar("binance_usdm", "BTCUSDT", "1m"), b"{not json")
    await publish(js, events[10:])
    letter = DeadLettered(
        event_id=ids.derive("dl", 1),
        ts_event=1,
        ts_init=1,
        service="signal",
        source="md.bar.binance_usdm.BTCUSDT.1m",
        error="malformed JSON",
        payload_b64="e25vdA==",
        stream_seq=11,
    )
    await publish(js, [letter])
    async with running_service("audit", serve_audit, CONFIG, common_settings(nats_url, pg_dsn)):
        rows = await wait_archived(pg_dsn, len(events) + 1)
        letters = await wait_archived(pg_dsn, 1, stream=DLQ)
    garbage = rows[10]
    assert garbage.data == b"{not json" and garbage.event_id is None and garbage.payload is None
    assert [(r.seq, r.event_id, r.prev_hash) for r in letters] == [(1, letter.event_id, chain.GENESIS)]
    assert chain.verify(rows, EVENTS).ok and chain.verify(letters, DLQ).ok


async def test_sigkill_mid_stream_then_restart_resumes_without_duplicates_or_fork(nats_url, js, pg_dsn, tmp_path):
    events = trading_session()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update(
        TICKTAPE_NATS_URL=nats_url,
        TICKTAPE_PG_DSN=pg_dsn,
        TICKTAPE_AUDIT__BATCH="1",
        TICKTAPE_AUDIT__CHECKPOINT_EVERY="25",
        TICKTAPE_TELEMETRY__LOG_LEVEL="warning",
    )

    def start(name: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.err", "wb") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "services.audit"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err
            )

    await publish(js, events[:150])
    first = start("first")
    try:
        await wait_archived(pg_dsn, 40)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    at_kill = await archived_count(pg_dsn)
    assert at_kill < len(events)
    await publish(js, events[150:])
    second = start("second")
    try:
        rows = await wait_archived(pg_dsn, len(events))
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, Path(tmp_path / "second.err").read_text()[-2000:]
    assert as_messages(rows) == await on_stream(js)
    assert chain.verify(rows, EVENTS).ok
    assert (await checkpoints(pg_dsn))[-1][:3] == (rows[-1].seq, rows[-1].hash, len(rows))


async def test_same_event_id_with_other_bytes_then_archived_flagged_and_dead_lettered_once(js, pg_dsn):
    """Issue: the same event_id under another Nats-Msg-Id with another body was stored twice with
    no complaint. Both are in the stream, so both are archived (no holes in the chain), but the
    second is dead-lettered with reason duplicate_event_id_conflict; an identical republish and
    a redelivered batch are not flagged."""
    import hashlib

    import msgspec

    from ticktape.events.codec import encode
    from ticktape.testing.bus import stream_events

    bar = wave_bars(n=1)[0]
    other = msgspec.structs.replace(bar, close=bar.close + 1.0)
    subject = subjects.for_event(bar)
    await js.publish(subject, encode(bar), headers={"Nats-Msg-Id": bar.event_id})
    await js.publish(subject, encode(other), headers={"Nats-Msg-Id": "another-id"})
    await js.publish(subject, encode(bar), headers={"Nats-Msg-Id": "a-third-id"})  # identical bytes
    later = wave_bars(n=3)[2]
    await js.publish(subjects.for_event(later), encode(later), headers={"Nats-Msg-Id": later.event_id})
    metrics = AuditMetrics(ServiceMetrics("audit"))
    log = structlog.get_logger()
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await apply_migrations(conn)
        archiver = Archiver(stream=EVENTS, js=js, dsn=pg_dsn, config=CONFIG, metrics=metrics, log=log)
        await archiver.start(conn)
        sub = await js.pull_subscribe_bind(consumer=DURABLE, stream=EVENTS)
        assert await archiver.store(conn, await sub.fetch(1, timeout=5)) == (1, 0)
        assert await archiver.store(conn, await sub.fetch(3, timeout=5)) == (3, 0)  # across batches
        again = await js.pull_subscribe(">", stream=EVENTS)
        restarted = Archiver(stream=EVENTS, js=js, dsn=pg_dsn, config=CONFIG, metrics=metrics, log=log)
        assert await restarted.store(conn, await again.fetch(4, timeout=5)) == (0, 4)  # redelivered
        await again.unsubscribe()
        await sub.unsubscribe()
    rows = await archived(pg_dsn)
    assert [r.event_id for r in rows] == [bar.event_id] * 3 + [later.event_id]
    assert chain.verify(rows, EVENTS).ok
    letters = [e for e in await stream_events(js, DLQ, [subjects.dead_letter("audit")]) if isinstance(e, DeadLettered)]
    assert [(d.stream_seq, d.error.split(":")[0]) for d in letters] == [(2, "duplicate_event_id_conflict")]
    assert letters[0].payload_b64 and letters[0].payload_sha256 == hashlib.sha256(encode(other)).hexdigest()
    assert metrics.base.value("ticktape_rejected", reason="duplicate_event_id_conflict") == 1


async def test_same_event_id_with_other_bytes_in_one_batch_then_flagged(js, pg_dsn):
    from ticktape.events.codec import encode

    bar = wave_bars(n=1)[0]
    subject = subjects.for_event(bar)
    await js.publish(subject, encode(bar), headers={"Nats-Msg-Id": "one"})
    await js.publish(
        subject, encode(bar).replace(b'"backfilled":false', b'"backfilled":true'), headers={"Nats-Msg-Id": "two"}
    )
    metrics = AuditMetrics(ServiceMetrics("audit"))
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await apply_migrations(conn)
        archiver = Archiver(
            stream=EVENTS, js=js, dsn=pg_dsn, config=CONFIG, metrics=metrics, log=structlog.get_logger()
        )
        await archiver.start(conn)
        sub = await js.pull_subscribe_bind(consumer=DURABLE, stream=EVENTS)
        assert await archiver.store(conn, await sub.fetch(2, timeout=5)) == (2, 0)
        await sub.unsubscribe()
    assert metrics.base.value("ticktape_rejected", reason="duplicate_event_id_conflict") == 1
