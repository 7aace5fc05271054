"""A pipelined JetStream publisher for high-volume producers (market data).

publish() sends without waiting for the ack; at most `window` acks are outstanding, and flush()
waits for all of them. An ack that fails (timeout, no stream) is retried with the same
Nats-Msg-Id, so a retry can never duplicate. Messages leave in publish() order on one connection,
so the stream keeps that order.

observe: called with the seconds from publish to JetStream's ack for one message in every
`sample` (a done callback on that message's ack: the others cost nothing more), e.g.
ServiceMetrics.publish_acked."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.api import PubAck

from ticktape import subjects
from ticktape.bus.publisher import check_size, msg_headers, publish_batch
from ticktape.events import Event
from ticktape.events.codec import encode


class PipelinedPublisher:
    def __init__(
        self,
        js: JetStreamContext,
        window: int = 2000,
        observe: Callable[[float], None] | None = None,
        sample: int = 16,
    ) -> None:
        self.js = js
        self.window = window
        self.observe = observe
        self.sample = max(1, sample)
        self._count = 0
        self._pending: deque[tuple[asyncio.Future[PubAck], Event, dict[str, str] | None]] = deque()
        self.published = 0
        self.retried = 0

    async def publish(self, event: Event, headers: dict[str, str] | None = None, subject: str | None = None) -> None:
        """subject: the event's subject when the caller has it cached (hot paths). Raises
        PayloadTooLarge when the event does not fit in one bus message."""
        subject = subject or subjects.for_event(event)
        data, all_headers = encode(event), msg_headers(event, headers)
        check_size(self.js, subject, data, all_headers, str(event.__struct_config__.tag))
        future = await self.js.publish_async(subject, data, headers=all_headers)
        if self.observe is not None:
            self._count += 1
            if self._count % self.sample == 0:
                future.add_done_callback(self._timer(time.perf_counter()))
        self._pending.append((future, event, headers))
        if len(self._pending) >= self.window:
            await self._settle(len(self._pending) // 2)

    def _timer(self, sent: float) -> Callable[[asyncio.Future[PubAck]], None]:
        observe = self.observe

        def acked(future: asyncio.Future[PubAck]) -> None:
            if observe is not None and not future.cancelled() and future.exception() is None:
                observe(time.perf_counter() - sent)

        return acked

    async def flush(self) -> None:
        """Wait until everything published so far is acked by JetStream."""
        await self._settle(len(self._pending))

    async def _settle(self, n: int) -> None:
        batch = [self._pending.popleft() for _ in range(min(n, len(self._pending)))]
        if not batch:
            return
        # one wait for the whole batch (a wait_for per message costs a task each)
        await asyncio.wait([f for f, _, _ in batch], timeout=10.0)
        failed: list[tuple[Event, dict[str, str]]] = []
        for future, event, headers in batch:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.published += 1
            else:  # any failed or missing ack is retried with the same id
                if not future.done():
                    future.cancel()
                failed.append((event, headers or {}))
        if failed:
            self.retried += len(failed)
            await publish_batch(self.js, failed)
            self.published += len(failed)
