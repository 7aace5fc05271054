"""The bar archive on real PostgreSQL and nats-server: batched, idempotent, partitioned."""

from __future__ import annotations

import msgspec
import psycopg
import pytest

from services.archive.config import ArchiveConfig
from services.archive.service import serve
from tests.support.bars import wave_bars
from ticktape import barstore
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.clock import MINUTE_NS
from ticktape.config import NatsSettings
from ticktape.testing import eventually
from ticktape.testing.services import common_settings, running_service


async def count(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        try:
            return (await (await conn.execute("SELECT count(*) FROM bars")).fetchone())[0]
        except psycopg.errors.UndefinedTable:
            return 0


async def test_writes_are_idempotent_and_partitioned_by_month(pg_dsn):
    # 3 days either side of a month boundary
    start = 1_706_400_000 * 1_000_000_000  # 2024-01-28
    bars = wave_bars(n=60 * 24 * 6, start=start)[::60]  # one bar an hour
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await barstore.apply_migrations(conn)
        if await barstore.is_hypertable(conn):  # TICKTAPE_TEST_PG=timescaledb
            pytest.skip(
                "monthly partitions are the path without TimescaleDB, which this server has (the hypertable "
                "path is test_bar_archive_timescaledb.py)"
            )
        assert await barstore.write_bars(conn, bars) == len(bars)
        assert await barstore.write_bars(conn, bars[:10]) == 0
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON i.inhrelid = c.oid "
            "WHERE i.inhparent = 'bars'::regclass "
            "ORDER BY relname"
        )
        assert [r[0] for r in await cur.fetchall()] == ["bars_y2024m01", "bars_y2024m02"]
        warm = await barstore.last_bars(conn, "binance_usdm", "BTCUSDT", "1m", 5)
    assert warm == bars[-5:]  # round trip exact, oldest first


async def test_archive_service_stores_every_bar_once_across_redelivery_and_restart(nats_url, nats_client, pg_dsn):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    eth = wave_bars(symbol="ETHUSDT", n=300)
    btc = wave_bars(symbol="BTCUSDT", n=300)
    await publish_batch(js, [(b, {}) for b in btc[:150]])
    common = common_settings(nats_url, pg_dsn)
    config = ArchiveConfig(batch_size=64)
    async with running_service("archive", serve, config, common):
        await eventually(lambda: _eq(count(pg_dsn), 150), timeout=20, what="first batch archived")
    # while it is down: more bars, and a republish of old ones under new ids (a different
    # producer) that must not create duplicate rows either
    await publish_batch(js, [(b, {}) for b in btc[150:] + eth])
    await publish_batch(js, [(msgspec.structs.replace(b, event_id=b.event_id + "x"), {}) for b in btc[:20]])
    async with running_service("archive", serve, config, common) as rt:
        await eventually(lambda: _eq(count(pg_dsn), 600), timeout=20, what="all bars archived")
        await eventually(lambda: rt.metrics.value("ticktape_received") >= 470, what="everything consumed")
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        cur = await conn.execute(
            "SELECT symbol, count(*), min(open_time), max(open_time) FROM bars GROUP BY symbol ORDER BY symbol"
        )
        rows = await cur.fetchall()
    assert rows == [
        ("BTCUSDT", 300, btc[0].open_time, btc[0].open_time + 299 * MINUTE_NS),
        ("ETHUSDT", 300, eth[0].open_time, eth[0].open_time + 299 * MINUTE_NS),
    ]


async def _eq(coro, n):
    return (await coro) == n


@pytest.mark.parametrize("bad", [b"{not json"])
async def test_undecodable_message_on_bars_then_dead_lettered(nats_url, nats_client, pg_dsn, bad):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await js.publish("md.bar.binance_usdm.BTCUSDT.1m", bad)
    await publish_batch(js, [(b, {}) for b in wave_bars(n=5)])
    async with running_service("archive", serve, ArchiveConfig(), common_settings(nats_url, pg_dsn)) as rt:
        await eventually(lambda: _eq(count(pg_dsn), 5), timeout=20, what="good bars archived")
        await eventually(lambda: rt.metrics.value("ticktape_dead_lettered") == 1, what="dead letter")
