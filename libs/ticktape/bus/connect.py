"""Connecting to NATS with reconnects (and the process's bus credentials), and checking that
JetStream is there. A URL may list the servers of one cluster, comma-separated
(`nats://h1:4222,nats://h2:4222`, as natscli takes it): clients know every node from the start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError

from ticktape.bus.creds import connect_options

# no server, refused, timed out (TimeoutError is an OSError), not NATS, no JetStream (NoResponders, API errors)
_UNAVAILABLE = (OSError, NatsError)


class NotAuthorized(Exception):
    """The server refused these credentials (or their absence)."""


def server_urls(url: str) -> list[str]:
    """The servers of a NATS URL that may list several, comma-separated."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if not servers:
        raise ValueError(f"no NATS server in {url!r}")
    return servers


async def connect_once(url: str, **kwargs: Any) -> Client:
    """One connection attempt per server of url, in order, without reconnects (nats-py gives up at
    its first refused server when reconnecting is off); the last failure when none accepts."""
    # nats-py tries a refused server again and again unless max_reconnect_attempts > 0 (0 and -1
    # mean for ever, whatever allow_reconnect says); 1 gives up after a second try
    options: dict[str, Any] = {"reconnect_time_wait": 0.2, **kwargs}
    options["max_reconnect_attempts"] = max(1, int(options.get("max_reconnect_attempts", 1)))
    *others, last = server_urls(url)
    for server in others:
        try:
            return await nats.connect(server, **options)
        except _UNAVAILABLE as exc:
            if "authorization violation" in str(exc).lower():
                raise
    return await nats.connect(last, **options)


async def connect_command(url: str, name: str, creds: str | Path | None) -> tuple[Client, list[Exception]]:
    """A command-line tool's one connection (connect_once, no reconnects) with the errors the
    server reports asynchronously collected in the list returned beside it: a request refused for
    want of permission only times out, and that list says why."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await connect_once(
        url, connect_timeout=5, allow_reconnect=False, error_cb=on_error, name=name, **connect_options(creds)
    )
    return nc, errors


async def connect(url: str, name: str, *, creds: str | Path | None = None, **kwargs: Any) -> Client:
    """A client that reconnects for ever (services outlive a NATS restart). creds: the path of
    this process's credentials file (ticktape.bus.creds), read here and nowhere else."""
    return await nats.connect(
        server_urls(url),
        name=f"ticktape-{name}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        **connect_options(creds),
        **kwargs,
    )


async def _quiet(_exc: Exception) -> None:
    return None


async def has_jetstream(url: str, timeout: float = 2.0, *, creds: str | Path | None = None) -> bool:
    """True when a server answers at url and has JetStream enabled; NotAuthorized when it answers
    but refuses the credentials."""
    try:
        nc = await connect_once(
            url,
            connect_timeout=timeout,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            error_cb=_quiet,
            **connect_options(creds),
        )
    except _UNAVAILABLE as exc:
        if "authorization violation" in str(exc).lower():
            raise NotAuthorized(str(exc)) from None
        return False
    try:
        await nc.jetstream(timeout=timeout).account_info()
        return True
    except _UNAVAILABLE:
        return False
    finally:
        await nc.close()
