"""Operational alerts (stream subjects ops.>): facts about the platform itself, not the market."""

from __future__ import annotations

from ticktape.events.envelope import Envelope


class StorageAlert(Envelope, frozen=True, kw_only=True, tag="ops.storage_alert"):
    """A store is above its alert threshold (ticktape.storage): `resource` is "stream" (a
    JetStream stream's bytes against its max_bytes; `name` is the stream) or "disk" (the file
    system holding a directory; `name` is the directory), `used_bytes` of `limit_bytes` used,
    `fraction` = used / limit, `threshold` the fraction that triggers the alert. Raised before the
    store is full: a full event log refuses new events, a full disk stops JetStream and PostgreSQL."""

    resource: str
    name: str
    used_bytes: int
    limit_bytes: int
    fraction: float
    threshold: float
