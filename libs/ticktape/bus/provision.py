"""Create or update ticktape's streams idempotently at start-up."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from ticktape import subjects
from ticktape.config import NatsSettings


class _CommonStreamSettings(TypedDict):
    retention: RetentionPolicy
    storage: StorageType
    discard: DiscardPolicy
    num_replicas: int
    duplicate_window: float


def stream_configs(settings: NatsSettings) -> list[StreamConfig]:
    """The events stream (every domain event, in one order), the trades stream, the dead-letter
    stream and the dead-letter payloads' object store."""
    max_age = settings.max_age_days * 86400.0 if settings.max_age_days else None
    common = _CommonStreamSettings(
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.replicas,
        duplicate_window=settings.duplicate_window_s,
    )
    return [
        StreamConfig(
            name=settings.stream,
            subjects=list(subjects.EVENTS_STREAM_SUBJECTS),
            max_age=max_age,
            description="ticktape event log",
            **common,
        ),
        StreamConfig(
            name=settings.trades_stream,
            subjects=list(subjects.TRADES_STREAM_SUBJECTS),
            max_age=(settings.trades_max_age_days * 86400.0) or None,
            description="ticktape public trades",
            **common,
        ),
        StreamConfig(
            name=settings.dlq_stream,
            subjects=list(subjects.DLQ_STREAM_SUBJECTS),
            description="ticktape dead letters",
            **common,
        ),
        dlq_payloads_config(settings),
    ]


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


def _differs(have: StreamConfig, want: StreamConfig) -> bool:
    return (
        sorted(have.subjects or []) != sorted(want.subjects or [])
        or abs((have.duplicate_window or 0) - (want.duplicate_window or 0)) > 1e-6
        or abs((have.max_age or 0) - (want.max_age or 0)) > 1e-6
        or (have.num_replicas or 1) != (want.num_replicas or 1)
        or (have.max_bytes or -1) != (want.max_bytes or -1)
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
                        await js.update_stream(config)
                break
            except APIError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))  # another process raced us; look again
