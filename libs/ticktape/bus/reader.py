"""Reading a stream range in order through an ephemeral pull consumer (nothing to ack)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError, ServiceUnavailableError

T = TypeVar("T")
STATUS = "Status"  # the header of JetStream's status messages (no data)
# A clustered stream has no leader for a few seconds after its leader dies, and JetStream answers
# 503 meanwhile: a reader waits that long rather than failing the command.
ELECTION_WAIT_S = 30.0


async def when_available(request: Callable[[], Awaitable[T]], wait_s: float = ELECTION_WAIT_S) -> T:
    """request(), asked again while JetStream answers "temporarily unavailable" (no stream or
    consumer leader yet) or not at all within the request's timeout (a node just restarted,
    still catching up), for up to wait_s; then its last error. Only for requests that may be
    repeated: reading a stream's info, creating a consumer under a given name and config."""
    deadline = time.monotonic() + wait_s
    delay = 0.2
    while True:
        try:
            return await request()
        except (ServiceUnavailableError, nats.errors.NoRespondersError, nats.errors.TimeoutError):
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
    pulls = _Pulls(js, stream, name)
    await pulls.start()
    try:
        while True:
            got = 0
            async for msg in pulls.batch(batch, idle_timeout):
                got += 1
                seq = msg.metadata.sequence.stream
                if seq > stop_seq:
                    return
                yield msg
                if seq == stop_seq or msg.metadata.num_pending == 0:
                    return
            if got < batch:  # the pull expired short: is anything left?
                info = await js.consumer_info(stream, name)
                if not info.num_pending:
                    return
    finally:
        await pulls.stop()
        # gone already, or the connection is: inactive_threshold removes it then
        with contextlib.suppress(OSError, nats.errors.Error):
            await js.delete_consumer(stream, name)


class _Pulls:
    """Pull requests on the consumer, answered into one inbox subscription whose callback
    buffers the messages. nats-py's fetch() awaits each message in a task of its own (with a
    timeout), which costs more than decoding it; here a batch is read from the buffer and only
    an empty buffer is waited on."""

    def __init__(self, js: JetStreamContext, stream: str, consumer: str) -> None:
        self._nc = js._nc  # the JetStream context's connection (nats-py keeps it there)
        self._next = f"{js._prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = self._nc.new_inbox()
        self._buffer: deque[Msg] = deque()
        self._ready = asyncio.Event()
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(OSError, nats.errors.Error):
                await self._sub.unsubscribe()

    async def _on_msg(self, msg: Msg) -> None:
        self._buffer.append(msg)
        self._ready.set()

    async def batch(self, n: int, expires_s: float) -> AsyncIterator[Msg]:
        """Up to n stored messages: fewer when the pull expires first (JetStream then answers
        with a status message, 408) or nothing arrives for expires_s plus a margin."""
        request = {"batch": n, "expires": int(expires_s * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        for _ in range(n):
            while not self._buffer:
                self._ready.clear()
                try:
                    await asyncio.wait_for(self._ready.wait(), expires_s + 1.0)
                except TimeoutError:
                    return
            msg = self._buffer.popleft()
            if not msg.data and msg.headers and STATUS in msg.headers:
                return  # 404/408: the pull ended short; 409: the consumer is gone
            yield msg


async def follow(
    js: JetStreamContext,
    stream: str,
    filter_subjects: Sequence[str],
    *,
    start_seq: int,
    stop: asyncio.Event,
    log: Any,
    what: str,
    batch: int = 64,
    fetch_timeout: float = 0.5,
    check_every: int = 10,
    name_prefix: str = "follow",
) -> AsyncIterator[Msg]:
    """Every message of `stream` matching filter_subjects (none: all) from start_seq on, in stream
    order, for as long as `stop` is not set: an ephemeral consumer (nothing to ack) that is made
    again, from the sequence after the last message yielded, when it is lost (a server restart
    forgets it) or a fetch fails. `log` gets a warning naming `what` on each failure; idle, the
    consumer's existence is checked every `check_every` empty fetches."""
    next_seq = start_seq

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    while not stop.is_set():
        name = f"{name_prefix}_{secrets.token_hex(6)}"
        config = ConsumerConfig(
            name=name,
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=next_seq,
            filter_subjects=list(filter_subjects) or None,
            inactive_threshold=60.0,
            mem_storage=True,
            max_waiting=1,
        )
        try:
            await js.add_consumer(stream, config)
            sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
        except (nats.errors.Error, OSError) as exc:
            log.warning(f"cannot follow {what} yet; retrying", stream=stream, error=repr(exc))
            await pause(1.0)
            continue
        try:
            idle = 0
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch, timeout=fetch_timeout)
                except (TimeoutError, nats.errors.TimeoutError):
                    idle += 1
                    if idle % check_every == 0:  # is the consumer still there (a server restart loses it)?
                        try:
                            await js.consumer_info(stream, name)
                        except NotFoundError:
                            break
                        except (nats.errors.Error, OSError):
                            pass
                    continue
                except (nats.errors.Error, OSError) as exc:
                    log.warning(f"fetching {what} failed; following again", stream=stream, error=repr(exc))
                    await pause(0.5)
                    break
                idle = 0
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq < next_seq:
                        continue
                    next_seq = seq + 1
                    yield msg
        finally:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()
            with contextlib.suppress(nats.errors.Error, OSError):
                await js.delete_consumer(stream, name)
