"""A real nats-server with ticktape's authorization (ticktape.bus.permissions): a user per role,
credentials files in their own directory, as `ticktape up` sets up for its embedded server."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.aio.client import Client

from ticktape.bus import creds
from ticktape.config import CommonSettings, NatsSettings
from ticktape.infra import nats_auth
from ticktape.infra.nats_server import NatsServer, start_nats_server


@dataclass
class AuthorizedNats:
    server: NatsServer
    creds_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def creds(self, role: str) -> str:
        """The path of a role's credentials file."""
        return str(creds.path_for(self.creds_dir, role))

    def settings(self, role: str | None = None) -> NatsSettings:
        """Nats settings for a process of `role` (None: the directory only, as `ticktape up` takes it)."""
        return NatsSettings(url=self.url, creds_dir=str(self.creds_dir), creds=self.creds(role) if role else None)

    async def connect(self, role: str | None, **kwargs: Any) -> Client:
        """A client of `role` (None: anonymous), failing fast instead of reconnecting."""
        options: dict[str, Any] = {"max_reconnect_attempts": 0, "allow_reconnect": False, "connect_timeout": 5}
        options.update(kwargs)
        return await nats.connect(self.url, **creds.connect_options(self.creds(role) if role else None), **options)


def anonymous_reply(url: str) -> str:
    """The server's first answer to a client that sends no credentials: `PONG` when it lets it
    in, `-ERR 'Authorization Violation'` when not. Raw protocol, so nothing is left open
    (nats-py keeps the socket of a refused connect)."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock, sock.makefile("rb") as f:
        if not f.readline().startswith(b"INFO "):
            raise AssertionError(f"{url} is not a NATS server")
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        return f.readline().decode().strip()


def start_authorized_nats(store_dir: Path, creds_dir: Path, settings: NatsSettings | None = None) -> AuthorizedNats:
    """Start nats-server with a user per role; the credentials go to creds_dir (0700, files 0600)."""
    nats_settings = msgspec.structs.replace(settings or NatsSettings(), creds_dir=str(creds_dir))
    common = CommonSettings(home=str(store_dir), nats=nats_settings)
    server = start_nats_server(store_dir, config=nats_auth.embedded_server_config(common))
    nats_auth.publish_url(common, server.url)
    return AuthorizedNats(server, creds_dir)
