"""Reading a stream range in order through an ephemeral pull consumer (nothing to ack)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError

T = TypeVar("T")
# A clustered stream has no leader for a few seconds after its leader dies, and JetStream answers
# 503 meanwhile: a reader waits that long rather than failing the command.
ELECTION_WAIT_S = 30.0


async def when_available(request: Callable[[], Awaitable[T]], wait_s: float = ELECTION_WAIT_S) -> T:
    """request(), asked again while JetStream answers "temporarily unavailable" (no stream or
    consumer leader yet), for up to wait_s; then its last error."""
    deadline = time.monotonic() + wait_s
    delay = 0.2
    while True:
        try:
            return await request()
        except (ServiceUnavailableError, nats.errors.NoRespondersError):
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def read_range(
    js: JetStreamContext,
    stream: str,
    filter_subjects: Sequence[str],
    *,
    start_seq: int = 1,
    stop_seq: int | None = None,
    batch: int = 512,
    idle_timeout: float = 1.0,
    start_time_s: float | None = None,
) -> AsyncIterator[Msg]:
    """Yield the stream's messages matching filter_subjects from start_seq up to stop_seq
    (inclusive; None = everything stored when the read started), in stream order. With
    start_time_s (epoch seconds) the read starts at the first message stored at or after it."""
    if stop_seq is None:
        stop_seq = (await when_available(lambda: js.stream_info(stream))).state.last_seq
    if stop_seq < start_seq:
        return
    name = f"read_{secrets.token_hex(6)}"
    opt_start_seq: int | None = None
    opt_start_time: datetime.datetime | None = None
    if start_time_s is not None:
        # nats-py sends it as RFC 3339 in UTC ("...Z"), as the server expects.
        deliver_policy = DeliverPolicy.BY_START_TIME
        opt_start_time = datetime.datetime.fromtimestamp(start_time_s, tz=datetime.UTC)
    else:
        deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        opt_start_seq = max(1, start_seq)
    config = ConsumerConfig(
        name=name,
        ack_policy=AckPolicy.NONE,
        filter_subjects=list(filter_subjects),
        inactive_threshold=30.0,
        mem_storage=True,
        max_waiting=1,
        deliver_policy=deliver_policy,
        opt_start_seq=opt_start_seq,
        opt_start_time=opt_start_time,
    )
    await when_available(lambda: js.add_consumer(stream, config))
    sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
    try:
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=idle_timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                info = await js.consumer_info(stream, name)
                if not info.num_pending:
                    return
                continue
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > stop_seq:
                    return
                yield msg
                if seq == stop_seq or msg.metadata.num_pending == 0:
                    return
    finally:
        await sub.unsubscribe()
        # gone already, or the connection is: inactive_threshold removes it then
        with contextlib.suppress(OSError, nats.errors.Error):
            await js.delete_consumer(stream, name)
