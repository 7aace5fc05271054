"""pytest fixtures for every ticktape test suite: real servers on free ports with temp stores.

- nats_server / nats_url: a fresh `nats-server -js` per test (starts in ~50 ms).
- pg_server: one real PostgreSQL per session (embedded wheel), or TICKTAPE_TEST_PG_DSN.
- pg_dsn: a fresh database per test on that server, dropped afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from ticktape.infra.nats_server import NatsServer, start_nats_server


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = start_nats_server(tmp_path / "nats")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest_asyncio.fixture
async def nats_client(nats_url: str) -> AsyncIterator[object]:
    import nats

    nc = await nats.connect(nats_url, max_reconnect_attempts=0)
    try:
        yield nc
    finally:
        await nc.drain()


class _ExternalPg:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def dsn_for(self, database: str) -> str:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.dsn)
        params["dbname"] = database
        return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    external = os.environ.get("TICKTAPE_TEST_PG_DSN")
    if external:
        yield _ExternalPg(external)
        return
    import shutil
    import tempfile

    from ticktape.infra.postgres import start_postgres

    # Not under pytest's basetemp: that folder is 0700 (re-set by every pytest start), and the
    # server runs as an unprivileged user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="ticktape-pg-"))
    server = start_postgres(root / "data")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def pg_dsn(pg_server: object) -> AsyncIterator[str]:
    import psycopg

    name = f"tt_{secrets.token_hex(6)}"
    admin_dsn = pg_server.dsn  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.dsn_for(name)  # type: ignore[attr-defined]
    finally:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
