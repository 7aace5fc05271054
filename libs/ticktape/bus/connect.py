"""Connecting to NATS with reconnects, and checking that JetStream is there."""

from __future__ import annotations

from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError

# no server, refused, timed out (TimeoutError is an OSError), not NATS, no JetStream (NoResponders, API errors)
_UNAVAILABLE = (OSError, NatsError)


async def connect(url: str, name: str, **kwargs: Any) -> Client:
    """A client that reconnects for ever (services outlive a NATS restart)."""
    return await nats.connect(
        url,
        name=f"ticktape-{name}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        **kwargs,
    )


async def has_jetstream(url: str, timeout: float = 2.0) -> bool:
    """True when a server answers at url and has JetStream enabled."""
    try:
        nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=0, allow_reconnect=False)
    except _UNAVAILABLE:
        return False
    try:
        await nc.jetstream(timeout=timeout).account_info()
        return True
    except _UNAVAILABLE:
        return False
    finally:
        await nc.close()
