"""pytest fixtures for every ticktape test suite: real servers on free ports with temp stores.

- nats_server / nats_url: a fresh `nats-server -js` per test (starts in ~50 ms), no authorization.
- nats_auth: the same with ticktape's authorization: a user per role (ticktape.bus.permissions).
- pg_server: one real PostgreSQL per session (embedded wheel), or TICKTAPE_TEST_PG_DSN, or with
  TICKTAPE_TEST_PG=timescaledb a TimescaleDB container (testcontainers; the session ends, naming
  Docker, where no Docker engine answers).
- pg_dsn: a fresh database per test on that server, dropped afterwards.
- tests marked `docker` skip, naming Docker, where no Docker engine answers."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest
import pytest_asyncio

from ticktape.infra.nats_server import NatsServer, start_nats_server

if TYPE_CHECKING:
    from ticktape.testing.auth import AuthorizedNats


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


@pytest.fixture
def nats_auth(tmp_path: Path) -> Iterator[AuthorizedNats]:
    """A nats-server that admits only ticktape's roles, each with its own credentials file
    (ticktape.bus.permissions): what `ticktape up` runs as its embedded server."""
    from ticktape.testing.auth import start_authorized_nats

    auth = start_authorized_nats(tmp_path / "nats-auth", tmp_path / "creds")
    try:
        yield auth
    finally:
        auth.server.stop()


@pytest_asyncio.fixture
async def nats_client(nats_url: str) -> AsyncIterator[object]:
    import nats

    nc = await nats.connect(nats_url, max_reconnect_attempts=0)
    try:
        yield nc
    finally:
        await nc.drain()


class PgServer(Protocol):
    """What the suites use of a PostgreSQL server: the embedded one, or one reached by a DSN."""

    @property
    def dsn(self) -> str: ...

    def dsn_for(self, database: str) -> str: ...


class _ExternalPg:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def dsn_for(self, database: str) -> str:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.dsn)
        params["dbname"] = database
        return make_conninfo("", **params)


_PG_KINDS = ("embedded", "timescaledb")


def _pg_kind() -> str:
    """TICKTAPE_TEST_PG: `embedded` (the default) or `timescaledb` (a container: needs Docker)."""
    kind = os.environ.get("TICKTAPE_TEST_PG") or "embedded"
    if kind not in _PG_KINDS:
        pytest.exit(
            f"TICKTAPE_TEST_PG={kind!r}: expected one of {', '.join(_PG_KINDS)}", returncode=pytest.ExitCode.USAGE_ERROR
        )
    return kind


def _require_docker() -> None:
    """TICKTAPE_TEST_PG=timescaledb asked for Docker: where none answers, the session ends."""
    from ticktape.testing.timescaledb import TIMESCALEDB_IMAGE, docker_unavailable

    why = docker_unavailable()
    if why is not None:
        pytest.exit(
            f"TICKTAPE_TEST_PG=timescaledb needs a Docker engine for testcontainers (image {TIMESCALEDB_IMAGE}): {why}",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `docker` skip, naming Docker, where no engine answers: asked once, and only
    when such a test is selected. Under TICKTAPE_TEST_PG=timescaledb the session ends instead."""
    marked = [item for item in items if item.get_closest_marker("docker") is not None]
    if not marked:
        return
    if _pg_kind() == "timescaledb":
        _require_docker()
        return
    from ticktape.testing.timescaledb import docker_skip_reason, docker_unavailable

    why = docker_unavailable()
    if why is not None:
        skip = pytest.mark.skip(reason=docker_skip_reason(why))
        for item in marked:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    kind = _pg_kind()
    external = os.environ.get("TICKTAPE_TEST_PG_DSN")
    if external and kind == "timescaledb":
        pytest.exit(
            "set TICKTAPE_TEST_PG_DSN or TICKTAPE_TEST_PG=timescaledb, not both", returncode=pytest.ExitCode.USAGE_ERROR
        )
    if external:
        yield _ExternalPg(external)
        return
    if kind == "timescaledb":
        from ticktape.testing.timescaledb import timescaledb_container

        _require_docker()
        with timescaledb_container() as dsn:
            yield _ExternalPg(dsn)
        return
    import shutil
    import tempfile

    from ticktape.infra.postgres import start_postgres

    # Not under pytest's basetemp, and this folder (mkdtemp: 0700) opened: as root, the server runs
    # as an unprivileged user, and data it cannot reach in place would be kept elsewhere, outliving
    # the rmtree below (ticktape.infra.postgres).
    root = Path(tempfile.mkdtemp(prefix="ticktape-pg-"))
    root.chmod(0o755)
    server = start_postgres(root / "data", durable=False)  # fsync off: fast, and said explicitly
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def pg_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    import psycopg

    name = f"tt_{secrets.token_hex(6)}"
    admin_dsn = pg_server.dsn
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.dsn_for(name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
