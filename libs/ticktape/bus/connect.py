"""Connecting to NATS with reconnects (and the process's bus credentials), and checking that
JetStream is there."""

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


async def connect(url: str, name: str, *, creds: str | Path | None = None, **kwargs: Any) -> Client:
    """A client that reconnects for ever (services outlive a NATS restart). creds: the path of
    this process's credentials file (ticktape.bus.creds), read here and nowhere else."""
    return await nats.connect(
        url,
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
        nc = await nats.connect(
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
