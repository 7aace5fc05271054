"""Publishing a producer's events to the event log as JetStream atomic batches (nats-server 2.12+,
stream `allow_atomic`), for market data's minute-boundary bursts.

Under `nats.sync_interval: always` the server fsyncs before it acks; published one by one (even
pipelined) a burst of 1,000 bars costs 1,000 fsyncs in a row, while an atomic batch of them is
stored together with a handful (bench/jetstream_sync.py, README "Durability"). Durability is
the same: the commit is acked only once every message of the batch is stored (and, under
`always`, synced).

publish() queues an event whose subject is in `stream_subjects` (others go to `fallback`, e.g.
trades on their own stream: a batch holds one stream's messages); a sender task commits what is
queued as one batch (up to MAX_BATCH), waits for the commit's ack, then commits what queued
meanwhile: group commit, so a burst leaves in a few batches and a lone event at once. Messages
leave in publish() order on one connection and batches one at a time, so the stream keeps that
order. flush() waits until everything published so far is acked.

A batch the server refuses (a duplicate Nats-Msg-Id, i.e. a retry of something already stored;
a stream without allow_atomic; a server that predates atomic batches) or whose ack does not come
is published again message by message with publish_batch: the same ids, so what was stored is
dropped, and transient failures are retried until acked. A server that does not do atomic batches
turns batching off for the rest of the process (`disabled` says why)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import nats.errors

from ticktape import subjects
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.bus.publisher import check_size, msg_headers, publish_batch
from ticktape.events import Event
from ticktape.events.codec import encode

MAX_BATCH = 1000  # nats-server's default (and largest) atomic batch
BATCH_ID, BATCH_SEQ, BATCH_COMMIT = "Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"
NOT_SUPPORTED = (10174,)  # "atomic publish is disabled" (the stream has no allow_atomic)
_FAILED = (nats.errors.Error, ValueError)  # no or no readable commit ack: published again one by one

Queued = tuple[str, bytes, dict[str, str], Event, dict[str, str] | None]


class Publisher(Protocol):
    """What a producer publishes through: PipelinedPublisher or AtomicBatchPublisher."""

    async def publish(
        self, event: Event, headers: dict[str, str] | None = None, subject: str | None = None
    ) -> None: ...

    async def flush(self) -> None: ...


class AtomicBatchPublisher:
    def __init__(
        self,
        fallback: PipelinedPublisher,
        stream_subjects: Sequence[str] = subjects.EVENTS_STREAM_SUBJECTS,
        *,
        observe: Callable[[float], None] | None = None,
        on_disabled: Callable[[str], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.fallback = fallback
        self.js = fallback.js
        self.stream_subjects = tuple(stream_subjects)
        self.observe = observe  # seconds from a batch's first send to its commit's ack, per batch
        self.on_disabled = on_disabled  # told once, with the reason, when batching turns off
        self.timeout = timeout
        self.disabled: str | None = None
        self.batches = 0
        self.retried = 0  # events published again one by one after their batch failed
        self._acked = 0
        self._queued = 0
        self._queue: list[Queued] = []
        self._batched: dict[str, bool] = {}
        self._prefix = secrets.token_hex(6)  # batch ids are per connection and short-lived
        self._wake = asyncio.Event()
        self._settled = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def published(self) -> int:
        return self._acked + self.fallback.published

    def _in_stream(self, subject: str) -> bool:
        hit = self._batched.get(subject)
        if hit is None:
            hit = self._batched[subject] = any(subjects.matches(p, subject) for p in self.stream_subjects)
        return hit

    async def publish(self, event: Event, headers: dict[str, str] | None = None, subject: str | None = None) -> None:
        """As PipelinedPublisher.publish; raises PayloadTooLarge when the event does not fit."""
        subject = subject or subjects.for_event(event)
        if self.disabled is not None or not self._in_stream(subject):
            await self.fallback.publish(event, headers, subject)
            return
        data, all_headers = encode(event), msg_headers(event, headers)
        room = {**all_headers, BATCH_ID: self._prefix + "0" * 12, BATCH_SEQ: str(MAX_BATCH), BATCH_COMMIT: "1"}
        check_size(self.js, subject, data, room, str(event.__struct_config__.tag))
        self._queue.append((subject, data, all_headers, event, headers))
        self._queued += 1
        self._wake.set()
        if self._task is None or self._task.done():
            if self._task is not None:
                self._task.result()  # the sender's failure (e.g. the stream refused an event)
            self._task = asyncio.create_task(self._send())

    async def flush(self) -> None:
        """Wait until everything published so far is acked by JetStream."""
        target = self._queued
        task = self._task
        async with self._settled:
            await self._settled.wait_for(lambda: self._acked >= target or (task is not None and task.done()))
        if self._acked < target and task is not None:
            task.result()
        await self.fallback.flush()

    async def aclose(self) -> None:
        """Flush, then stop the sender."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._commit(batch)
                self._acked += len(batch)
                async with self._settled:
                    self._settled.notify_all()

    async def _commit(self, batch: list[Queued]) -> None:
        if self.disabled is None:
            self.batches += 1
            batch_id = f"{self._prefix}{self.batches:012d}"
            nc = self.js._nc  # the batch's messages are plain publishes; only the commit is a request
            started = time.perf_counter()
            try:
                for i, (subject, data, headers, _, _) in enumerate(batch[:-1], 1):
                    await nc.publish(subject, data, headers={**headers, BATCH_ID: batch_id, BATCH_SEQ: str(i)})
                subject, data, headers, _, _ = batch[-1]
                last = {**headers, BATCH_ID: batch_id, BATCH_SEQ: str(len(batch)), BATCH_COMMIT: "1"}
                reply = await nc.request(subject, data, timeout=self.timeout, headers=last)
                ack = json.loads(reply.data or b"{}")
            except _FAILED:
                ack = {}
            if ack.get("batch") == batch_id and ack.get("count") == len(batch) and "error" not in ack:
                if self.observe is not None:
                    self.observe(time.perf_counter() - started)
                return
            code = (ack.get("error") or {}).get("err_code")
            if code in NOT_SUPPORTED or ("seq" in ack and "batch" not in ack and "error" not in ack):
                self.disabled = str(ack.get("error") or "the server stores batch messages one by one")
                if self.on_disabled is not None:
                    self.on_disabled(self.disabled)
        self.retried += len(batch)
        await publish_batch(self.js, [(event, headers or {}) for _, _, _, event, headers in batch])
