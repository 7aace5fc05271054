"""Deciding which NATS and PostgreSQL a stack uses, starting embedded ones when needed.

NATS: use the server at nats.url if it answers and has JetStream; if nothing answers and the
host is loopback, start an embedded `nats-server -js` on that port with its store under home.
PostgreSQL: postgres.dsn when set, else an embedded server with its data under home."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

from ticktape.bus.connect import has_jetstream
from ticktape.config import CommonSettings
from ticktape.infra.nats_server import InfraError, NatsServer, start_nats_server
from ticktape.infra.ports import is_loopback, port_open
from ticktape.infra.postgres import PostgresServer, start_postgres


def ensure_nats(common: CommonSettings) -> tuple[str, NatsServer | None]:
    url = common.nats.url
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 4222
    if port_open(host, port):
        if asyncio.run(has_jetstream(url)):
            return url, None
        raise InfraError(
            f"a NATS server answers at {url} but has no JetStream; start it with -js "
            "or point TICKTAPE_NATS_URL at one that has it"
        )
    if not is_loopback(host):
        raise InfraError(f"no NATS server answers at {url}; embedded servers only start on loopback")
    server = start_nats_server(Path(common.home) / "nats", host=host, port=port)
    return server.url, server


def ensure_postgres(common: CommonSettings) -> tuple[str, PostgresServer | None]:
    if common.postgres.dsn:
        return common.postgres.dsn, None
    data_dir = Path(common.home).resolve() / "postgres"
    running = running_postmaster(data_dir)
    if running is not None:  # left running by an earlier stack that was killed: reuse it
        return f"postgresql://postgres@127.0.0.1:{running}/postgres", None
    port_file = data_dir.parent / "postgres.port"
    port = int(port_file.read_text()) if port_file.exists() else None
    if port is not None and port_open("127.0.0.1", port):
        port = None  # taken by someone else now; pick a new one
    server = start_postgres(data_dir, port=port)
    port_file.write_text(str(server.port))
    return server.dsn, server


def running_postmaster(data_dir: Path) -> int | None:
    """The port of a live postgres already serving data_dir, from its postmaster.pid."""
    import os

    pid_file = data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return port if port_open("127.0.0.1", port) else None
