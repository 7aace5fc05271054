"""The bar archive: a durable consumer that writes closed bars to PostgreSQL in batches (COPY),
idempotent on (venue, symbol, timeframe, open time), then acks the batch.

Order does not matter here (rows are keyed), so it fetches large batches; a crash before the
commit redelivers the batch, a crash after it re-inserts nothing."""

from __future__ import annotations

from typing import Any

import nats.errors
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.archive.config import ArchiveConfig
from ticktape import barstore, runtime
from ticktape import config as cfg
from ticktape.bus.deadletter import dead_letter
from ticktape.bus.publisher import publish_batch
from ticktape.events import BarClosed
from ticktape.events.codec import DecodeError, decode

DURABLE = "archive_bars"


def load(raw: dict[str, Any]) -> ArchiveConfig:
    return cfg.load_section("archive", ArchiveConfig, raw)


async def serve(rt: runtime.Runtime, config: ArchiveConfig) -> None:
    dsn = runtime.require_pg_dsn(rt)
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
        partitions: set[str] = set()
        rt.log.info("archiving bars", hypertable=hypertable)
        while not rt.stop.is_set():
            try:
                msgs = await sub.fetch(config.batch_size, timeout=config.batch_wait_s)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            rt.metrics.received(len(msgs))
            bars: list[BarClosed] = []
            for msg in msgs:
                try:
                    event = decode(msg.data)
                except DecodeError as exc:
                    rt.metrics.rejected("undecodable")
                    letter = dead_letter(
                        service=rt.name,
                        source=msg.subject,
                        error=str(exc),
                        payload=msg.data,
                        ts_ns=int(msg.metadata.timestamp.timestamp() * 1e9),
                        stream_seq=msg.metadata.sequence.stream,
                    )
                    await publish_batch(rt.js, [(letter, {})])
                    rt.metrics.dead_lettered()
                    continue
                if isinstance(event, BarClosed):
                    bars.append(event)
            written = await barstore.write_bars(conn, bars, partitions=partitions, hypertable=hypertable)
            rt.metrics.published(written)
            for msg in msgs:
                await msg.ack()
    await sub.unsubscribe()


def main() -> None:
    runtime.run("archive", load, serve)
