"""The bar archive: a durable consumer that writes closed bars to PostgreSQL in batches (COPY),
idempotent on (venue, symbol, timeframe, open time), then acks the batch.

Order does not matter here (rows are keyed), so it fetches large batches; a crash before the
commit redelivers the batch, a crash after it re-inserts nothing.

Poison messages never stop it: an input over the size limit or that does not decode is
dead-lettered and terminated. When PostgreSQL refuses a batch, its bars are written one by one:
a bar refused for its content (DataError, IntegrityError) is dead-lettered at once; one refused
for another reason is redelivered later (nak) until its max_deliver-th delivery, then
dead-lettered and terminated. A database that cannot be reached stops the service with the reason
logged (nothing is acked; the durable redelivers the batch after the restart). The durable has
no server-side max_deliver: restarts during an outage must not make the server drop bars.

Beside the bars it watches storage (services.archive.storage): streams and disks near their
limits are reported as StorageAlert events before they are full."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
import psycopg
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.archive.config import ArchiveConfig
from services.archive.storage import StorageWatch, default_paths
from ticktape import barstore, runtime, subjects
from ticktape import config as cfg
from ticktape.bus.deadletter import DeadLetters
from ticktape.bus.lag import poll_lag
from ticktape.bus.publisher import max_payload
from ticktape.events import BarClosed
from ticktape.events.codec import DecodeError, TooDeep, UnknownEventType

DURABLE = "archive_bars"
NAK_DELAY_MAX_S = 30.0


def load(raw: dict[str, Any]) -> ArchiveConfig:
    return cfg.load_section("archive", ArchiveConfig, raw)


def _reason(exc: DecodeError) -> str:
    if isinstance(exc, subjects.SubjectMismatch):
        return "type_subject_mismatch"
    if isinstance(exc, UnknownEventType):
        return "unknown_type"
    if isinstance(exc, TooDeep):
        return "too_deep"
    return "undecodable"


class _Archiver:
    def __init__(self, rt: runtime.Runtime, conn: Any, hypertable: bool) -> None:
        self.rt = rt
        self.conn = conn
        self.hypertable = hypertable
        self.partitions: set[str] = set()
        self.letters: DeadLetters = runtime.dead_letters(rt)
        self.max_deliver = rt.common.nats.max_deliver
        self.limit = rt.common.nats.max_message_bytes or max_payload(rt.js)

    async def batch(self, msgs: list[Msg]) -> None:
        self.rt.metrics.received(len(msgs))
        bars: list[tuple[Msg, BarClosed]] = []
        for msg in msgs:
            if len(msg.data) > self.limit:
                self.rt.metrics.rejected("too_large")
                await self.give_up(msg, f"message is {len(msg.data)} bytes; the limit is {self.limit}")
                continue
            try:
                event = subjects.decode_on(msg.subject, msg.data)
            except DecodeError as exc:
                self.rt.metrics.rejected(_reason(exc))
                await self.give_up(msg, str(exc))
                continue
            if isinstance(event, BarClosed):
                bars.append((msg, event))
            else:
                await msg.ack()  # nothing to keep
        if not bars:
            return
        try:
            written = await self.write([bar for _, bar in bars])
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # some bar is refused: find it, keep the others
            self.rt.metrics.error("archive_batch")
            self.rt.log.warning("batch refused; writing its bars one by one", bars=len(bars), error=repr(exc))
            await self.one_by_one(bars)
            return
        self.rt.metrics.published(written)
        for msg, _ in bars:
            await msg.ack()

    async def write(self, bars: list[BarClosed]) -> int:
        try:
            return await barstore.write_bars(self.conn, bars, partitions=self.partitions, hypertable=self.hypertable)
        except psycopg.Error:
            self.partitions.clear()  # partitions created in the rolled-back transaction are gone
            raise

    async def one_by_one(self, bars: list[tuple[Msg, BarClosed]]) -> None:
        for msg, bar in bars:
            try:
                written = await self.write([bar])
            except psycopg.OperationalError:
                raise
            except (psycopg.DataError, psycopg.IntegrityError) as exc:  # its content: no retry helps
                self.rt.metrics.rejected("unstorable")
                await self.give_up(msg, f"bar refused by the database: {exc}")
                continue
            except psycopg.Error as exc:
                await self.failed(msg, exc)
                continue
            self.rt.metrics.published(written)
            await msg.ack()

    async def failed(self, msg: Msg, exc: Exception) -> None:
        """A delivery that failed for a reason that may pass: redelivered later, or dead-lettered
        and terminated on its max_deliver-th delivery."""
        delivery = msg.metadata.num_delivered or 1
        if delivery >= self.max_deliver:
            self.rt.metrics.delivery_exhausted()
            await self.give_up(msg, f"not stored after {delivery} deliveries: {exc!r}")
            return
        self.rt.metrics.retried("store")
        self.rt.log.warning("bar not stored; redelivering it later", delivery=delivery, error=repr(exc))
        await msg.nak(delay=min(0.5 * 2.0 ** (delivery - 1), NAK_DELAY_MAX_S))

    async def give_up(self, msg: Msg, error: str) -> None:
        self.rt.log.warning("input dead-lettered", subject=msg.subject, error=error)
        await self.letters.send(
            source=msg.subject,
            error=error,
            payload=msg.data,
            ts_ns=int(msg.metadata.timestamp.timestamp() * 1e9),
            stream_seq=msg.metadata.sequence.stream,
            headers=dict(msg.headers or {}),
            delivery=msg.metadata.num_delivered,
        )
        await msg.term()


async def serve(rt: runtime.Runtime, config: ArchiveConfig) -> None:
    dsn = runtime.require_pg_dsn(rt)
    watch = StorageWatch(
        rt.js,
        rt.common.nats,
        config.storage_paths or default_paths(rt.common.home),
        threshold=config.storage_alert_fraction,
        repeat_s=config.storage_alert_repeat_s,
        metrics=rt.metrics,
        log=rt.log,
        clock=rt.clock,
    )
    watching = asyncio.create_task(watch.run(rt.stop, config.storage_check_s))
    lagging = asyncio.create_task(poll_lag(rt.js, rt.common.nats.stream, DURABLE, rt.metrics, rt.stop, rt.log))
    try:
        await _archive(rt, config, dsn)
    finally:
        watching.cancel()
        lagging.cancel()


async def _archive(rt: runtime.Runtime, config: ArchiveConfig, dsn: str) -> None:
    stream = rt.common.nats.stream
    await rt.js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=config.filter_subject,
            ack_wait=60,
            max_ack_pending=config.batch_size * 4,
        ),
    )
    sub = await rt.js.pull_subscribe_bind(consumer=DURABLE, stream=stream)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await barstore.apply_migrations(conn)
        hypertable = await barstore.is_hypertable(conn)
        archiver = _Archiver(rt, conn, hypertable)
        rt.log.info("archiving bars", hypertable=hypertable)
        while not rt.stop.is_set():
            try:
                msgs = await sub.fetch(config.batch_size, timeout=config.batch_wait_s)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            try:
                await archiver.batch(msgs)
            except psycopg.OperationalError as exc:
                rt.log.error("database unreachable; stopping (the batch is redelivered after restart)", error=repr(exc))
                raise
    await sub.unsubscribe()


def main() -> None:
    runtime.run("archive", load, serve)
