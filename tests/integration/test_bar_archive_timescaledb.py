"""The bar archive on TimescaleDB (testcontainers): the hypertable path, which the embedded
PostgreSQL (no TimescaleDB) never takes. Skipped, naming Docker, where no Docker engine answers;
under TICKTAPE_TEST_PG=timescaledb it uses the session's server rather than a container of its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import psycopg
import pytest
import pytest_asyncio
from psycopg.conninfo import make_conninfo

from services.archive.config import ArchiveConfig
from services.archive.service import serve
from tests.support.bars import wave_bars
from ticktape import barstore
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.testing import eventually
from ticktape.testing.services import common_settings, running_service
from ticktape.testing.timescaledb import timescaledb_container

# The first test's setup also pulls the image and starts the container.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

WEEK_NS = 7 * 86_400 * 1_000_000_000  # the chunk interval of barstore/migrations/0001_bars.sql
JAN_28_2024 = 1_706_400_000 * 1_000_000_000


@pytest.fixture(scope="module")
def timescaledb_admin_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    if os.environ.get("TICKTAPE_TEST_PG") == "timescaledb":
        yield request.getfixturevalue("pg_server").dsn
        return
    with timescaledb_container() as dsn:
        yield dsn


@pytest_asyncio.fixture
async def ts_dsn(timescaledb_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database on the TimescaleDB server (which has the extension, from template1)."""
    name = f"tt_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(timescaledb_admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(timescaledb_admin_dsn, dbname=name)
    finally:
        async with await psycopg.AsyncConnection.connect(timescaledb_admin_dsn, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def rows(conn: psycopg.AsyncConnection[Any], sql: str) -> list[tuple[Any, ...]]:
    return await (await conn.execute(sql)).fetchall()


async def chunks(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    return await rows(
        conn,
        "SELECT range_start_integer, range_end_integer FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'bars' ORDER BY 1",
    )


def week_chunks(bars: list[Any]) -> list[tuple[int, int]]:
    """The chunks TimescaleDB makes for these bars: integer ranges aligned to multiples of a week."""
    return [(s, s + WEEK_NS) for s in sorted({b.open_time // WEEK_NS * WEEK_NS for b in bars})]


async def test_migration_makes_bars_a_hypertable_on_open_time_in_week_chunks(ts_dsn):
    async with await psycopg.AsyncConnection.connect(ts_dsn, autocommit=True) as conn:
        await barstore.apply_migrations(conn)
        assert await barstore.is_hypertable(conn)
        assert await rows(
            conn, "SELECT hypertable_schema, hypertable_name, num_dimensions FROM timescaledb_information.hypertables"
        ) == [("public", "bars", 1)]
        assert await rows(
            conn,
            "SELECT column_name, integer_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_name = 'bars'",
        ) == [("open_time", WEEK_NS)]
        # a plain table under TimescaleDB, not the natively partitioned one of the embedded server
        assert await rows(conn, "SELECT relkind FROM pg_class WHERE oid = 'bars'::regclass") == [("r",)]
        assert await chunks(conn) == []


async def test_writes_land_in_chunks_idempotently_and_warm_up_reads_them_back(ts_dsn):
    bars = wave_bars(n=60 * 24 * 6, start=JAN_28_2024)[::60]  # hourly across a month and a chunk boundary
    async with await psycopg.AsyncConnection.connect(ts_dsn, autocommit=True) as conn:
        await barstore.apply_migrations(conn)
        assert await barstore.write_bars(conn, bars, hypertable=True) == len(bars)
        assert await barstore.write_bars(conn, bars[:10], hypertable=True) == 0
        assert await barstore.write_bars(conn, bars, hypertable=True) == 0
        assert await rows(conn, "SELECT count(*) FROM bars") == [(len(bars),)]
        expected = week_chunks(bars)
        assert len(expected) == 2 and await chunks(conn) == expected
        assert await rows(conn, "SELECT count(DISTINCT tableoid) FROM bars") == [(2,)]  # rows live in the chunks
        assert await rows(conn, "SELECT count(*) FROM pg_class WHERE relname LIKE 'bars\\_y%'") == [(0,)]
        warm = await barstore.last_bars(conn, "binance_usdm", "BTCUSDT", "1m", 5)
    assert warm == bars[-5:]  # round trip exact, oldest first


async def test_archive_service_takes_the_hypertable_path_and_stores_every_bar_once(nats_url, nats_client, ts_dsn):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    bars = wave_bars(n=60 * 24 * 6, start=JAN_28_2024)[::60]
    await publish_batch(js, [(b, {}) for b in bars])
    # the same bars again under new ids (another producer): no duplicate rows either
    await publish_batch(js, [(msgspec.structs.replace(b, event_id=b.event_id + "x"), {}) for b in bars[:20]])
    async with running_service("archive", serve, ArchiveConfig(batch_size=32), common_settings(nats_url, ts_dsn)) as rt:
        await eventually(lambda: rt.metrics.value("ticktape_received") >= len(bars) + 20, timeout=30, what="consumed")
    async with await psycopg.AsyncConnection.connect(ts_dsn) as conn:
        assert await barstore.is_hypertable(conn)
        assert await rows(conn, "SELECT count(*), min(open_time), max(open_time) FROM bars") == [
            (len(bars), bars[0].open_time, bars[-1].open_time)
        ]
        assert await chunks(conn) == week_chunks(bars)
        assert await rows(conn, "SELECT count(*) FROM pg_class WHERE relname LIKE 'bars\\_y%'") == [(0,)]
