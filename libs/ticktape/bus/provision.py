"""Create or update ticktape's streams idempotently at start-up."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from ticktape import subjects
from ticktape.config import NatsSettings


def stream_configs(settings: NatsSettings) -> list[StreamConfig]:
    """The events stream (every domain event, in one order) and the dead-letter stream."""
    max_age = settings.max_age_days * 86400.0 if settings.max_age_days else None
    common = dict(
        retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, discard=DiscardPolicy.OLD,
        num_replicas=settings.replicas, duplicate_window=settings.duplicate_window_s,
    )
    return [
        StreamConfig(name=settings.stream, subjects=list(subjects.EVENTS_STREAM_SUBJECTS),
                     max_age=max_age, description="ticktape event log", **common),
        StreamConfig(name=settings.dlq_stream, subjects=list(subjects.DLQ_STREAM_SUBJECTS),
                     description="ticktape dead letters", **common),
    ]


async def ensure_streams(js: JetStreamContext, settings: NatsSettings) -> None:
    for config in stream_configs(settings):
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except Exception:
                # another process created it in the meantime
                await js.stream_info(config.name)
            continue
        await js.update_stream(config)
