"""The embedded PostgreSQL is durable and password-protected: SCRAM only, never trust; the
services use a role that is not a superuser; passwords live in 0600 files, never in a DSN."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ticktape.infra.postgres import APP_DATABASE, APP_ROLE, PostgresServer, creds_dir_for, start_postgres


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ticktape-pgsec-"))
    root.chmod(0o755)  # the server's user (as root) must reach the data directory
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def durable(home: Path) -> Iterator[PostgresServer]:
    server = start_postgres(home / "postgres")
    try:
        yield server
    finally:
        server.stop()


def _setting(dsn: str, name: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
        assert row is not None
        return str(row[0])


def test_durable_by_default(durable):
    for name in ("fsync", "synchronous_commit", "full_page_writes"):
        assert _setting(durable.app_dsn, name) == "on"


def test_fast_settings_only_when_asked_explicitly(tmp_path_factory):
    root = Path(tempfile.mkdtemp(prefix="ticktape-pgfast-"))
    root.chmod(0o755)
    server = start_postgres(root / "postgres", durable=False)
    try:
        assert _setting(server.dsn, "fsync") == "off"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_no_connection_without_the_password(durable):
    for user in ("postgres", APP_ROLE):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                f"postgresql://{user}@127.0.0.1:{durable.port}/postgres?passfile=/nonexistent", connect_timeout=5
            )
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://{APP_ROLE}:wrong@127.0.0.1:{durable.port}/{APP_DATABASE}", connect_timeout=5)
    hba = (durable.data_dir / "pg_hba.conf").read_text()
    assert not [line for line in hba.splitlines() if line.strip() and not line.startswith("#") and "trust" in line]


def test_services_role_is_not_a_superuser_and_cannot_run_programs(durable):
    dsn = durable.app_dsn
    assert "passfile=" in dsn and ":" not in dsn.split("@")[0].removeprefix("postgresql://")  # no password in it
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, current_database() FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, APP_DATABASE)
        conn.execute("CREATE TABLE owned_by_the_app (x int)")  # it owns its database
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY owned_by_the_app TO PROGRAM 'id'")


def test_password_files_are_private(durable):
    creds = creds_dir_for(durable.data_dir)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    files = sorted(p.name for p in creds.iterdir())
    assert files == sorted([f"pg-{APP_ROLE}.pgpass", "pg-postgres.pgpass"])
    for path in creds.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_cluster_left_on_trust_by_an_older_ticktape_is_locked_down_on_start(tmp_path_factory):
    root = Path(tempfile.mkdtemp(prefix="ticktape-pglegacy-"))
    root.chmod(0o755)
    data = root / "postgres"
    try:
        start_postgres(data, durable=False).stop()
        hba = data / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")  # what older releases wrote
        shutil.rmtree(root / "creds")  # and they kept no passwords
        server = start_postgres(data, durable=False)
        try:
            assert not [
                x for x in hba.read_text().splitlines() if not x.startswith("#") and x.split()[-1:] == ["trust"]
            ]
            with psycopg.connect(server.app_dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(
                    f"postgresql://postgres@127.0.0.1:{server.port}/postgres?passfile=/x", connect_timeout=5
                )
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
