"""Create or update ticktape's streams idempotently at start-up.

Every stream is bounded in bytes (NatsSettings; README "Storage limits"). The event log is the
source of truth for replay and audit, so when full it refuses new events (discard new: the
publish fails and says so) rather than silently dropping its oldest history; the trades and
dead-letter streams are bounded windows that drop their oldest messages."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from ticktape import registry, subjects
from ticktape.config import ConfigError, NatsSettings
from ticktape.snapshots.store import bucket_config


class _CommonStreamSettings(TypedDict):
    retention: RetentionPolicy
    storage: StorageType
    discard: DiscardPolicy
    num_replicas: int
    duplicate_window: float


def stream_configs(settings: NatsSettings) -> list[StreamConfig]:
    """The events stream (every domain event, in one order), the trades stream, the dead-letter
    stream, the dead-letter payloads' object store and each core service's snapshot bucket."""
    max_age = settings.max_age_days * 86400.0 if settings.max_age_days else None
    common = _CommonStreamSettings(
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.replicas,
        duplicate_window=settings.duplicate_window_s,
    )
    log = common.copy()
    log["discard"] = DiscardPolicy.NEW  # never drop recorded history: refuse new events when full
    return [
        StreamConfig(
            name=settings.stream,
            subjects=list(subjects.EVENTS_STREAM_SUBJECTS),
            max_age=max_age,
            max_bytes=settings.max_bytes,
            description="ticktape event log",
            allow_atomic=True,  # market data's bursts go in as atomic batches (ticktape.bus.atomic)
            **log,
        ),
        StreamConfig(
            name=settings.trades_stream,
            subjects=list(subjects.TRADES_STREAM_SUBJECTS),
            max_age=(settings.trades_max_age_days * 86400.0) or None,
            max_bytes=settings.trades_max_bytes,
            description="ticktape public trades",
            **common,
        ),
        StreamConfig(
            name=settings.dlq_stream,
            subjects=list(subjects.DLQ_STREAM_SUBJECTS),
            max_bytes=settings.dlq_max_bytes,
            description="ticktape dead letters",
            **common,
        ),
        dlq_payloads_config(settings),
        *snapshot_configs(settings),
    ]


def snapshot_configs(settings: NatsSettings) -> list[StreamConfig]:
    """The object store bucket of each core service's state snapshots (ticktape.snapshots.store)."""
    return [bucket_config(settings, info.name) for info in registry.of_kind("core")]


def dlq_payloads_config(settings: NatsSettings) -> StreamConfig:
    """The stream behind the object store bucket that keeps dead-lettered inputs too large to
    inline in their letter (ticktape.bus.deadletter), as nats-py's create_object_store makes it;
    bounded by dlq_payloads_max_bytes, refusing new objects when full (the letter goes anyway)."""
    bucket = settings.dlq_payloads_bucket
    return StreamConfig(
        name=f"OBJ_{bucket}",
        subjects=[f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"],
        description="ticktape dead-letter payloads (object store)",
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        num_replicas=settings.replicas,
        max_bytes=settings.dlq_payloads_max_bytes,
        max_consumers=0,
        allow_rollup_hdrs=True,
        allow_direct=True,
    )


STORE_HEADROOM = 1024**3  # JetStream's own files (consumer state, indexes) beyond the streams' bytes


def file_store_bytes(settings: NatsSettings) -> int:
    """The JetStream file store an embedded server gets: nats.max_file_store, else the sum of the
    streams' byte limits plus STORE_HEADROOM. The server reserves each stream's max_bytes against
    it when the stream is created, so a smaller store makes provisioning fail (said at start)."""
    reserved = sum(c.max_bytes or 0 for c in stream_configs(settings))
    if not settings.max_file_store:
        return reserved + STORE_HEADROOM
    if settings.max_file_store < reserved:
        raise ConfigError(
            f"nats.max_file_store must be at least the streams' byte limits ({reserved}; "
            f"got {settings.max_file_store}): raise it, lower nats.max_bytes / trades_max_bytes / "
            "dlq_max_bytes / dlq_payloads_max_bytes / snapshots_max_bytes (one bucket per core service), "
            "or set it to 0"
        )
    return settings.max_file_store


def _differs(have: StreamConfig, want: StreamConfig) -> bool:
    return (
        (have.discard or DiscardPolicy.OLD) != (want.discard or DiscardPolicy.OLD)
        or sorted(have.subjects or []) != sorted(want.subjects or [])
        or abs((have.duplicate_window or 0) - (want.duplicate_window or 0)) > 1e-6
        or abs((have.max_age or 0) - (want.max_age or 0)) > 1e-6
        or (have.num_replicas or 1) != (want.num_replicas or 1)
        or (have.max_bytes or -1) != (want.max_bytes or -1)
        or bool(have.allow_atomic) != bool(want.allow_atomic)
    )


def _refuse_shrinking_the_log(name: str, held: int, want: StreamConfig) -> None:
    """A stream that keeps its history (discard new) is never given a byte limit below what it
    holds: the server would delete its oldest messages to fit."""
    if want.discard == DiscardPolicy.NEW and want.max_bytes and want.max_bytes > 0 and held > want.max_bytes:
        raise ConfigError(
            f"stream {name} holds {held} bytes, more than the limit {want.max_bytes} it would get "
            "(nats.max_bytes): raise the limit; a lower one would delete its oldest events"
        )


async def ensure_streams(js: JetStreamContext, settings: NatsSettings, attempts: int = 5) -> None:
    """Create missing streams; update one only when its settings differ (several services start
    at once, and concurrent no-op updates are wasted work on the server)."""
    for config in stream_configs(settings):
        name = config.name
        assert name is not None  # stream_configs names every stream
        for attempt in range(attempts):
            try:
                try:
                    info = await js.stream_info(name)
                except NotFoundError:
                    await js.add_stream(config)
                else:
                    if _differs(info.config, config):
                        _refuse_shrinking_the_log(name, info.state.bytes or 0, config)
                        await js.update_stream(config)
                break
            except APIError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))  # another process raced us; look again
