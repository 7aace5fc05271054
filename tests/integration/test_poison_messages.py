"""Poison messages on a real nats-server (and PostgreSQL for the sinks) never stop a service:
each is dead-lettered with its hash (the whole payload out of band when it is too big to inline),
terminated and counted, and processing goes on behind it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib

import msgspec
import psycopg
import pytest
import structlog

from services.archive.config import ArchiveConfig
from services.archive.service import serve as serve_archive
from services.audit.config import AuditConfig
from services.audit.service import serve as serve_audit
from services.execution.config import ExecutionConfig
from services.execution.service import serve as serve_execution
from services.risk.config import RiskConfig
from services.risk.service import serve as serve_risk
from services.signal.config import SignalConfig
from services.signal.service import serve as serve_signal
from tests.support.bars import wave_bars
from tests.support.poison import CORPUS
from ticktape import barstore, subjects
from ticktape.audit import queries
from ticktape.audit.verify import verify_stream
from ticktape.bus.consumer import CoreConsumer
from ticktape.bus.deadletter import INLINE_BYTES
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import PayloadTooLarge, publish_batch
from ticktape.config import CommonSettings, NatsSettings, PostgresSettings
from ticktape.events import BarClosed, DeadLettered, Event, OrderFilled
from ticktape.metrics import ServiceMetrics
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings, running_service

EVENTS, DLQ = subjects.EVENTS_STREAM, subjects.DLQ_STREAM
BAR_1M = subjects.bar("binance_usdm", "BTCUSDT", "1m")


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


async def letters_of(js, service: str) -> list[DeadLettered]:
    return [e for e in await stream_events(js, DLQ, [subjects.dead_letter(service)]) if isinstance(e, DeadLettered)]


async def out_of_band(js, letter: DeadLettered) -> bytes:
    assert letter.payload_ref is not None
    bucket, name = letter.payload_ref.split("/")
    assert name == letter.payload_sha256
    return (await (await js.object_store(bucket)).get(name)).data or b""


async def test_megabyte_poison_on_bars_then_dead_lettered_whole_and_the_pipeline_keeps_filling(nats_url, js):
    """Issue item 1: signal and execution (which read bars) dead-letter it, risk never sees it,
    and new bars after it still become signals, approvals, orders and fills."""
    poison = CORPUS["one_megabyte"]()
    bars = wave_bars(n=160)
    await publish_batch(js, [(b, {}) for b in bars[:50]])
    poison_seq = (await js.publish(BAR_1M, poison)).seq
    common = common_settings(nats_url)
    async with (
        running_service("signal", serve_signal, SignalConfig(), common) as sig,
        running_service("risk", serve_risk, RiskConfig(), common),
        running_service("execution", serve_execution, ExecutionConfig(), common) as exe,
    ):

        async def both_letters():
            got = [*(await letters_of(js, "signal")), *(await letters_of(js, "execution"))]
            return got if len(got) == 2 else None

        letters = await eventually(both_letters, timeout=30, what="signal and execution dead-letter the poison")
        acks = await publish_batch(js, [(b, {}) for b in bars[50:]])

        async def fills_after_the_poison():
            msgs = [
                m
                async for m in _read(js, [subjects.ALL_FILLS])
                if m.metadata.sequence.stream > acks[0].seq and isinstance(_decode(m.data), OrderFilled)
            ]
            return msgs or None

        await eventually(fills_after_the_poison, timeout=60, what="fills from bars published after the poison")
        for rt in (sig, exe):
            assert rt.metrics.value("ticktape_rejected", reason="undecodable") == 1
            assert rt.metrics.value("ticktape_dead_lettered") == 1
        stored = sig.metrics.value("ticktape_dlq_payloads_stored") + exe.metrics.value("ticktape_dlq_payloads_stored")
        assert stored in (1, 2)  # one object per payload: a second put at the same time replaces it
    digest = hashlib.sha256(poison).hexdigest()
    for letter in letters:
        assert (letter.source, letter.stream_seq) == (BAR_1M, poison_seq)
        assert (letter.payload_size, letter.payload_sha256, letter.payload_truncated) == (len(poison), digest, True)
        assert base64.b64decode(letter.payload_b64) == poison[:INLINE_BYTES]
        assert await out_of_band(js, letter) == poison  # nothing lost


async def _read(js, filters):
    from ticktape.bus.reader import read_range

    async for msg in read_range(js, EVENTS, filters):
        yield msg


def _decode(data: bytes) -> Event | None:
    from ticktape.events.codec import DecodeError, decode

    try:
        return decode(data)
    except DecodeError:
        return None


async def archived(dsn: str, stream: str = EVENTS):
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            return [r async for r in queries.rows(conn, stream)]
        except psycopg.errors.UndefinedTable:
            return []


async def test_nested_and_index_breaking_json_then_audit_archives_it_dead_letters_it_and_goes_on(nats_url, js, pg_dsn):
    """Issue item 4: the deep document is stored byte for byte without projections and
    dead-lettered; a 10,000-character event id (over the btree limit of the event_id index) is
    stored with that column NULL; everything after them is archived and the chain verifies."""
    nested, long_id = CORPUS["nested_arrays"](), CORPUS["huge_event_id"]()
    bars = wave_bars(n=30)
    await publish_batch(js, [(b, {}) for b in bars[:10]])
    await js.publish(BAR_1M, nested)
    await js.publish(BAR_1M, long_id)
    await publish_batch(js, [(b, {}) for b in bars[10:20]])
    async with running_service("audit", serve_audit, AuditConfig(batch=8), common_settings(nats_url, pg_dsn)) as rt:
        rows = await eventually(lambda: _at_least(archived(pg_dsn), 22), timeout=30, what="22 rows archived")
        await publish_batch(js, [(b, {}) for b in bars[20:]])  # and it keeps archiving
        rows = await eventually(lambda: _at_least(archived(pg_dsn), 32), timeout=30, what="32 rows archived")
        letters = await eventually(lambda: _at_least(letters_of(js, "audit"), 1), what="audit's dead letter")
        assert rt.metrics.value("ticktape_rejected", reason="too_deep") == 1
    assert rows[10].data == nested and rows[10].payload is None and rows[10].event_id is None
    assert rows[11].data == long_id and rows[11].event_id is None and rows[11].type == "md.bar.closed"
    assert [r.event_id for r in rows[12:]] == [b.event_id for b in bars[10:]]
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        assert (await verify_stream(conn, EVENTS)).ok
    [letter] = letters
    assert letter.stream_seq == 11 and letter.payload_sha256 == hashlib.sha256(nested).hexdigest()
    assert await out_of_band(js, letter) == nested


async def _at_least(coro, n):
    items = await coro
    return items if len(items) >= n else None


class _TwoMinuteCore:
    """Turns each 1m bar into a "2m" bar (a subject outside its own filter); `huge` bars' outputs
    are too big for a bus message."""

    def __init__(self, huge: frozenset[str] = frozenset()) -> None:
        self.huge = huge
        self.seen: list[str] = []

    def handle(self, event: Event) -> list[Event]:
        assert isinstance(event, BarClosed)
        self.seen.append(event.event_id)
        out = msgspec.structs.replace(event, timeframe="2m", event_id=event.event_id + "-2m")
        if event.event_id in self.huge:
            out = msgspec.structs.replace(out, venue="v" * 2_000_000)
        return [out]


@contextlib.asynccontextmanager
async def running_consumer(js, core, metrics, **kwargs):
    consumer = CoreConsumer(
        service="poison_test",
        js=js,
        stream=EVENTS,
        filter_subjects=[subjects.bars(timeframe="1m")],
        core=core,
        metrics=metrics,
        log=structlog.get_logger(),
        **kwargs,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
        if task.done():
            task.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def outputs_2m(js) -> list[Event]:
    return await stream_events(js, EVENTS, [subjects.bars(timeframe="2m")])


async def test_input_whose_outputs_are_refused_every_time_then_terminated_after_max_deliver_and_counted(js):
    """JetStream refuses the outputs (the stream's max_msg_size, lowered after the inputs
    arrived): the input gets max_deliver attempts, in place, then it is dead-lettered, terminated
    and counted; the next input, once the stream takes messages again, goes through."""
    first, second = wave_bars(n=2)
    await publish_batch(js, [(first, {})])
    config = (await js.stream_info(EVENTS)).config
    config.max_msg_size = 64
    await js.update_stream(config)
    metrics = ServiceMetrics("poison_test")
    async with running_consumer(
        js, _TwoMinuteCore(), metrics, max_deliver=3, retry_delay=0.01, publish_timeout=1.0
    ) as consumer:
        [letter] = await eventually(lambda: _at_least(letters_of(js, "poison_test"), 1), timeout=30, what="letter")
        assert letter.delivery == 3 and letter.stream_seq == 1 and letter.causation_id == first.event_id
        assert metrics.value("ticktape_delivery_exhausted") == 1
        assert metrics.value("ticktape_retries", kind="publish") == 2
        info = await js.consumer_info(EVENTS, consumer.durable)
        assert info.config.max_deliver == 3  # the server holds the same bound
        assert info.num_ack_pending == 0 and info.num_redelivered == 0  # terminated, not redelivered
        config.max_msg_size = -1
        await js.update_stream(config)
        await publish_batch(js, [(second, {})])
        got = await eventually(lambda: _at_least(outputs_2m(js), 1), timeout=20, what="the next input's output")
    assert [e.event_id for e in got] == [second.event_id + "-2m"]


async def test_output_too_big_for_the_bus_then_input_dead_lettered_at_once_and_the_next_goes_through(js):
    bars = wave_bars(n=3)
    await publish_batch(js, [(b, {}) for b in bars])
    metrics = ServiceMetrics("poison_test")
    core = _TwoMinuteCore(huge=frozenset({bars[1].event_id}))
    async with running_consumer(js, core, metrics, max_deliver=3, retry_delay=0.01):
        got = await eventually(lambda: _at_least(outputs_2m(js), 2), timeout=20, what="outputs of the other bars")
        [letter] = await letters_of(js, "poison_test")
        assert metrics.value("ticktape_errors", kind="output_too_large") == 1
        assert metrics.value("ticktape_retries", kind="publish") == 0  # never retried: it cannot fit
    assert [e.event_id for e in got] == [bars[0].event_id + "-2m", bars[2].event_id + "-2m"]
    assert letter.stream_seq == 2 and "output too large" in letter.error and core.seen.count(bars[1].event_id) == 1


async def test_input_over_the_size_limit_then_refused_before_decoding(js):
    bars = wave_bars(n=2)
    big = msgspec.structs.replace(bars[0], venue="v" * 5000)  # a valid bar, made large
    await js.publish(BAR_1M, msgspec.json.encode(big))
    await publish_batch(js, [(bars[1], {})])
    metrics = ServiceMetrics("poison_test")
    async with running_consumer(js, _TwoMinuteCore(), metrics, max_bytes=4096):
        await eventually(lambda: _at_least(outputs_2m(js), 1), timeout=20, what="the next bar's output")
        [letter] = await letters_of(js, "poison_test")
        assert metrics.value("ticktape_rejected", reason="too_large") == 1
    assert letter.payload_size > 4096 and not letter.payload_truncated  # still under the inline bound


async def test_publisher_refuses_an_event_over_the_servers_max_payload_before_sending_anything(js):
    small, big = wave_bars(n=2)
    big = msgspec.structs.replace(big, venue="v" * 1_100_000)
    with pytest.raises(PayloadTooLarge) as raised:
        await publish_batch(js, [(small, {}), (big, {})])
    assert raised.value.limit == 1024 * 1024
    assert (await js.stream_info(EVENTS)).state.messages == 0


async def test_bar_the_database_refuses_every_time_then_archive_dead_letters_it_after_max_deliver(nats_url, js, pg_dsn):
    """A trigger raises for one symbol: the other bars of the batch are stored, that one is
    redelivered (nak) until its max_deliver-th delivery, then dead-lettered, terminated, counted."""
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await barstore.apply_migrations(conn)
        await conn.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.symbol = 'POISONUSDT' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON bars FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )
    good = wave_bars(n=5)
    bad = wave_bars(symbol="POISONUSDT", n=1)
    await publish_batch(js, [(b, {}) for b in good[:2] + bad + good[2:]])
    common = CommonSettings(nats=NatsSettings(url=nats_url, max_deliver=3), postgres=PostgresSettings(dsn=pg_dsn))
    async with running_service("archive", serve_archive, ArchiveConfig(batch_wait_s=0.1), common) as rt:
        [letter] = await eventually(lambda: _at_least(letters_of(js, "archive"), 1), timeout=30, what="letter")
        assert rt.metrics.value("ticktape_delivery_exhausted") == 1
        assert rt.metrics.value("ticktape_retries", kind="store") == 2
    assert letter.delivery == 3 and letter.stream_seq == 3 and "refused" in letter.error
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM bars WHERE symbol = 'BTCUSDT'")
        assert (await cur.fetchone())[0] == 5
    info = await js.consumer_info(EVENTS, "archive_bars")
    assert info.num_ack_pending == 0 and info.num_pending == 0
