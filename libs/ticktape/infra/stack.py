"""Deciding which NATS and PostgreSQL a stack uses, starting embedded ones when needed.

NATS: use the server at nats.url if it answers and has JetStream; if nothing answers and the
host is loopback, start an embedded `nats-server -js` on that port with its store under home,
admitting only ticktape's roles (ticktape.bus.permissions).
PostgreSQL: postgres.dsn when set, else an embedded server with its data under home."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

from ticktape.bus import creds, permissions
from ticktape.bus.connect import NotAuthorized, has_jetstream, server_urls
from ticktape.bus.provision import file_store_bytes
from ticktape.config import CommonSettings
from ticktape.infra import nats_auth
from ticktape.infra.nats_server import InfraError, NatsServer, jetstream_block, start_nats_server
from ticktape.infra.ports import is_loopback, port_open
from ticktape.infra.postgres import PostgresServer, app_dsn, start_postgres

# The bus's largest message (payload plus headers), set on purpose rather than inherited: 1 MiB,
# NATS's default and its advice (events are hundreds of bytes; big messages stall every consumer
# behind them). Clients learn it from the server: publishers refuse a larger message by name
# (ticktape.bus.publisher.PayloadTooLarge), consumers refuse a larger input before decoding, and
# a dead letter inlines at most nats.dlq_inline_bytes of its input so it always fits.
MAX_PAYLOAD = 1024 * 1024


def embedded_config(common: CommonSettings) -> list[str]:
    """The configuration of an embedded server (and of each node of an embedded cluster,
    ticktape.infra.cluster): a user per role and no anonymous clients, MAX_PAYLOAD, JetStream."""
    config = nats_auth.embedded_server_config(common)
    config.append(f"max_payload: {MAX_PAYLOAD}")
    # fsync "always" unless configured; a file store sized to the streams' byte limits: see README
    config.append(jetstream_block(common.nats.sync_interval, file_store_bytes(common.nats)))
    return config


def ensure_nats(common: CommonSettings) -> tuple[str, NatsServer | None]:
    """(URL, the embedded server or None). The embedded server admits only the roles of
    ticktape.bus.permissions, with the credentials under creds_dir (ticktape.infra.nats_auth);
    port 0 starts it on a free port."""
    url = common.nats.url
    servers = server_urls(url)  # several: an existing cluster, used as it is
    parsed = urlparse(servers[0])
    host, port = parsed.hostname or "127.0.0.1", 4222 if parsed.port is None else parsed.port
    if len(servers) > 1 or (port and port_open(host, port)):
        admin = nats_auth.for_stack(common).for_role(permissions.ADMIN)
        try:
            if asyncio.run(has_jetstream(url, creds=admin)):
                return url, None
        except NotAuthorized:
            raise InfraError(
                f"a NATS server answers at {url} but refuses "
                + (f"the admin credentials in {admin}" if admin else "clients without credentials")
                + f"; put a credentials file per role in {creds.creds_dir(common)} (nats.creds_dir)"
            ) from None
        if len(servers) > 1:
            raise InfraError(f"no server of {url} answers with JetStream (a list of servers is never started here)")
        raise InfraError(
            f"a NATS server answers at {url} but has no JetStream; start it with -js "
            "or point TICKTAPE_NATS_URL at one that has it"
        )
    if not is_loopback(host):
        raise InfraError(f"no NATS server answers at {url}; embedded servers only start on loopback")
    config = embedded_config(common)
    server = start_nats_server(Path(common.home) / "nats", host=host, port=port or -1, config=config)
    nats_auth.publish_url(common, server.url)
    return server.url, server


def ensure_postgres(common: CommonSettings) -> tuple[str, PostgresServer | None]:
    if common.postgres.dsn:
        return common.postgres.dsn, None
    data_dir = Path(common.home).resolve() / "postgres"
    running = running_postmaster(data_dir)
    if running is not None:  # left running by an earlier stack that was killed: reuse it
        return app_dsn(data_dir, running), None
    port_file = data_dir.parent / "postgres.port"
    port = int(port_file.read_text()) if port_file.exists() else None
    if port is not None and port_open("127.0.0.1", port):
        port = None  # taken by someone else now; pick a new one
    server = start_postgres(data_dir, port=port)  # durable: fsync, synchronous_commit, full_page_writes
    port_file.write_text(str(server.port))
    return server.app_dsn, server


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
