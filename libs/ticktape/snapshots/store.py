"""Where a service keeps its snapshots: one JetStream object store bucket per core service,
`<nats.snapshots_bucket>_<service>`, so the bus can let each service write its own bucket and no
other's (ticktape.bus.permissions). An object per snapshot, named `<durable>.<seq, 20 digits>`,
the newest nats.snapshots_kept of each durable kept; the bucket is bounded by
nats.snapshots_max_bytes and refuses new objects when full (the snapshot is then skipped and
counted: the service keeps running, a restart just rebuilds from an older one)."""

from __future__ import annotations

import msgspec
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from ticktape import snapshots
from ticktape.config import NatsSettings
from ticktape.snapshots import Snapshot


def bucket_name(settings: NatsSettings, service: str) -> str:
    return f"{settings.snapshots_bucket}_{service}"


def bucket_config(settings: NatsSettings, service: str) -> StreamConfig:
    """The stream behind a service's snapshot bucket, as nats-py's create_object_store makes it."""
    bucket = bucket_name(settings, service)
    return StreamConfig(
        name=f"OBJ_{bucket}",
        subjects=[f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"],
        description=f"ticktape {service} state snapshots (object store)",
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        num_replicas=settings.replicas,
        max_bytes=settings.snapshots_max_bytes,
        max_consumers=-1,
        allow_rollup_hdrs=True,
        allow_direct=True,
    )


def object_name(durable: str, seq: int) -> str:
    return f"{durable}.{seq:020d}"


class SnapshotStore:
    """A service's snapshot bucket, seen from one durable."""

    def __init__(self, js: JetStreamContext, bucket: str, durable: str, keep: int = 4) -> None:
        self.js = js
        self.bucket = bucket
        self.durable = durable
        self.keep = keep
        self._store: ObjectStore | None = None

    async def _os(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    async def names(self, every_durable: bool = False) -> list[str]:
        """This durable's snapshot objects (or every durable's), oldest first."""
        store = await self._os()
        try:
            infos = await store.list(ignore_deletes=True)
        except NotFoundError:
            return []
        prefix = "" if every_durable else f"{self.durable}."
        return sorted(i.name for i in infos if i.name.startswith(prefix) and not i.deleted)

    async def put(self, snap: Snapshot) -> None:
        """Store the snapshot, then drop all but the newest `keep`."""
        store = await self._os()
        await store.put(object_name(self.durable, snap.seq), snapshots.to_bytes(snap))
        names = await self.names()
        for name in names[: max(0, len(names) - self.keep)]:
            await store.delete(name)

    async def read(self, name: str) -> Snapshot | None:
        """The snapshot stored as `name` (check .intact), or None when it is gone or undecodable."""
        store = await self._os()
        try:
            result = await store.get(name)
            snap = snapshots.from_bytes(result.data or b"")
        except (NotFoundError, msgspec.DecodeError):
            return None
        return snap

    async def latest(self) -> Snapshot | None:
        """The newest intact snapshot of this durable, or None."""
        for name in reversed(await self.names()):
            snap = await self.read(name)
            if snap is not None and snap.intact and snap.durable == self.durable:
                return snap
        return None

    async def all(self, every_durable: bool = False) -> list[tuple[str, Snapshot | None]]:
        """Every snapshot object of this durable (or of every durable), oldest first, with its
        decoded record (None: undecodable); intact or not, for verification to judge."""
        return [(name, await self.read(name)) for name in await self.names(every_durable)]


async def stored(
    js: JetStreamContext, bucket_prefix: str, services: list[str]
) -> dict[str, list[tuple[str, Snapshot | None]]]:
    """Every snapshot in the buckets of `services` (those without a bucket have none)."""
    found: dict[str, list[tuple[str, Snapshot | None]]] = {}
    for service in services:
        store = SnapshotStore(js, f"{bucket_prefix}_{service}", service)
        try:
            found[service] = await store.all(every_durable=True)
        except NotFoundError:  # no such bucket
            continue
    return found
