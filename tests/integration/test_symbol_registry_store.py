"""Symbol-registry store and the kernel migration runner on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from services.symbol_registry import store
from ticktape import ids, pg
from ticktape.events import UniverseMember, UniverseUpdated

VENUE = "binance_usdm"


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as c:
        yield c


@pytest.fixture
async def db(conn: psycopg.AsyncConnection) -> psycopg.AsyncConnection:
    await store.apply_migrations(conn)
    return conn


def universe(
    as_of: int, volumes: dict[str, float], *, previous: tuple[str, ...] = (), venue: str = VENUE
) -> UniverseUpdated:
    ranked = sorted(volumes.items(), key=lambda kv: (-kv[1], kv[0]))
    symbols = tuple(s for s, _ in ranked)
    return UniverseUpdated(
        event_id=ids.derive("universe", venue, as_of, *symbols),
        ts_event=as_of,
        ts_init=as_of,
        venue=venue,
        quote_asset="USDT",
        top_n=len(symbols),
        as_of=as_of,
        symbols=symbols,
        members=tuple(UniverseMember(symbol=s, rank=i, quote_volume=v) for i, (s, v) in enumerate(ranked, start=1)),
        added=tuple(s for s in symbols if s not in previous),
        removed=tuple(s for s in previous if s not in symbols),
    )


async def migration_rows(conn: psycopg.AsyncConnection, namespace: str) -> list[tuple[int, str]]:
    cur = await conn.execute(
        "SELECT version, name FROM ticktape_migrations WHERE namespace = %s ORDER BY version", (namespace,)
    )
    return await cur.fetchall()


async def test_migrations_apply_once_and_rerun_is_a_no_op(conn: psycopg.AsyncConnection) -> None:
    assert await store.apply_migrations(conn) == ["0001_init.sql"]
    assert await store.apply_migrations(conn) == []
    assert await migration_rows(conn, store.NAMESPACE) == [(1, "0001_init.sql")]
    cur = await conn.execute("SELECT count(*) FROM tracked_symbols")
    assert await cur.fetchone() == (0,)


async def test_concurrent_starters_apply_each_migration_once(pg_dsn: str) -> None:
    conns = [await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) for _ in range(4)]
    try:
        results = await asyncio.gather(*(store.apply_migrations(c) for c in conns))
        assert sorted(results) == [[], [], [], ["0001_init.sql"]]
        assert await migration_rows(conns[0], store.NAMESPACE) == [(1, "0001_init.sql")]
    finally:
        for c in conns:
            await c.close()


async def test_migrate_applies_new_files_in_order_per_namespace(conn: psycopg.AsyncConnection, tmp_path: Path) -> None:
    (tmp_path / "0002_more.sql").write_text("INSERT INTO t VALUES (2);")
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE t (v int); INSERT INTO t VALUES (1);")
    (tmp_path / "README.md").write_text("not a migration")
    assert await pg.migrate(conn, tmp_path, namespace="demo") == ["0001_init.sql", "0002_more.sql"]
    (tmp_path / "0003_later.sql").write_text("INSERT INTO t VALUES (3);")
    assert await pg.migrate(conn, tmp_path, namespace="demo") == ["0003_later.sql"]
    cur = await conn.execute("SELECT array_agg(v ORDER BY v) FROM t")
    assert await cur.fetchone() == ([1, 2, 3],)
    assert [v for v, _ in await migration_rows(conn, "demo")] == [1, 2, 3]


async def test_migrate_failing_file_leaves_nothing_applied(conn: psycopg.AsyncConnection, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (v int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE broken (v nonsense_type);")
    with pytest.raises(psycopg.errors.UndefinedObject):
        await pg.migrate(conn, tmp_path, namespace="demo")
    cur = await conn.execute("SELECT to_regclass('ok')")
    assert await cur.fetchone() == (None,)


async def test_migrate_refuses_an_edited_applied_migration(conn: psycopg.AsyncConnection, tmp_path: Path) -> None:
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE t (v int);")
    await pg.migrate(conn, tmp_path, namespace="demo")
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE t (v bigint);")
    with pytest.raises(pg.MigrationError, match="changed after it was applied"):
        await pg.migrate(conn, tmp_path, namespace="demo")


def test_discover_rejects_two_files_with_one_version(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(pg.MigrationError, match="share version 0001"):
        pg.discover(tmp_path)


async def test_save_universe_sets_current_and_records_history(db: psycopg.AsyncConnection) -> None:
    first = universe(1_000, {"BTCUSDT": 9e9, "ETHUSDT": 5e9})
    second = universe(2_000, {"ETHUSDT": 6e9, "SOLUSDT": 7e9}, previous=first.symbols)
    assert await store.save_universe(db, first)
    assert await store.save_universe(db, second)
    assert await store.current_universe(db, VENUE) == second.members
    assert await store.history(db, VENUE, limit=10) == [second, first]
    assert await store.history(db, VENUE, limit=1) == [second]
    assert await store.latest_universe(db, VENUE) == second


async def test_save_universe_twice_is_idempotent_on_event_id(db: psycopg.AsyncConnection) -> None:
    event = universe(1_000, {"BTCUSDT": 9e9})
    assert await store.save_universe(db, event) is True
    assert await store.save_universe(db, event) is False
    assert await store.history(db, VENUE, limit=10) == [event]
    cur = await db.execute("SELECT count(*) FROM universe_snapshots")
    assert await cur.fetchone() == (1,)


async def test_replaying_an_older_snapshot_does_not_roll_back_current(db: psycopg.AsyncConnection) -> None:
    old = universe(1_000, {"BTCUSDT": 9e9})
    new = universe(2_000, {"ETHUSDT": 6e9})
    await store.save_universe(db, new)
    assert await store.save_universe(db, old)
    assert await store.current_universe(db, VENUE) == new.members
    assert await store.history(db, VENUE, limit=10) == [new, old]


async def test_venues_are_kept_apart(db: psycopg.AsyncConnection) -> None:
    usdm = universe(1_000, {"BTCUSDT": 9e9})
    other = universe(1_000, {"XBTUSD": 1e9}, venue="other")
    await store.save_universe(db, usdm)
    await store.save_universe(db, other)
    assert await store.current_universe(db, VENUE) == usdm.members
    assert await store.current_universe(db, "other") == other.members
    assert await store.history(db, "nowhere", limit=5) == []
    assert await store.latest_universe(db, "nowhere") is None


async def test_empty_universe_clears_current(db: psycopg.AsyncConnection) -> None:
    await store.save_universe(db, universe(1_000, {"BTCUSDT": 9e9}))
    await store.save_universe(db, universe(2_000, {}, previous=("BTCUSDT",)))
    assert await store.current_universe(db, VENUE) == ()


async def test_store_commits_on_a_non_autocommit_connection(pg_dsn: str) -> None:
    async with (
        await psycopg.AsyncConnection.connect(pg_dsn) as writer,
        await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as reader,
    ):
        await store.apply_migrations(writer)
        assert await store.current_universe(writer, VENUE) == ()  # must not leave a txn open
        await store.save_universe(writer, universe(1_000, {"BTCUSDT": 9e9}))
        assert [m.symbol for m in await store.current_universe(reader, VENUE)] == ["BTCUSDT"]
