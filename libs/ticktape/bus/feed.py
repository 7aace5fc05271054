"""A pull loop that keeps pull requests outstanding on a durable consumer, so each message reaches
the client as soon as JetStream has stored it.

nats-py's fetch() sends a no-wait request, waits for its answer (messages or 404), then a
lingering one, and awaits every message in a task of its own; a loop of fetch() calls therefore
pays a request round trip and a few tasks per wake-up, and between two fetches no request is
waiting at the server. Here (as nats.go's Consume does) one inbox subscription buffers what the
server delivers, and a new request tops the outstanding count up to `batch` once it falls to half
of it, so there is always a request waiting. The server answers a request that expires (or that
it ends: 409) with a status message naming how many of its messages it did not send; those are
taken off the count. If nothing at all arrives for `silence` seconds while requests are
outstanding (a server restarted, a status lost in a reconnect, or a count gone wrong), the count
starts again from zero and a new request goes out: at worst a few requests wait at the server
at once (each expires), which can only deliver what max_ack_pending allows.

Messages come out in delivery order; acking them is the caller's business (at most
max_ack_pending of them are delivered and not acked, so the buffer stays bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ticktape.bus.reader import STATUS

PENDING = "Nats-Pending-Messages"  # in a status: how many messages of the request were not sent
HEARTBEAT = "100"


class PullFeed:
    """Messages of one durable pull consumer, fetched ahead: start(), then next() in a loop."""

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        durable: str,
        batch: int = 64,
        expires: float = 5.0,
        silence: float = 1.0,
    ) -> None:
        self._nc = js._nc  # the JetStream context's connection (nats-py keeps it there)
        self._next = f"{js._prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = self._nc.new_inbox()
        self.batch = max(1, batch)
        self.expires = expires
        self.silence = silence
        self._buffer: deque[Msg] = deque()
        self._ready = asyncio.Event()
        self._sub: Any = None
        self._outstanding = 0  # messages asked for and neither delivered nor given up by the server
        self._heard = time.monotonic()  # the last time anything arrived on the inbox

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        await self._top_up()

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(OSError, nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None

    def reset(self) -> None:
        """Forget the outstanding requests (after a reconnect, the server may have lost them):
        the next call asks again."""
        self._outstanding = 0

    async def _on_msg(self, msg: Msg) -> None:
        self._heard = time.monotonic()
        if not msg.data and msg.headers and STATUS in msg.headers:
            if msg.headers[STATUS] == HEARTBEAT:
                return
            # 408 (expired) or 409 (ended by the server): its unsent messages are not coming
            try:
                self._outstanding -= int(msg.headers.get(PENDING, ""))
            except ValueError:
                self._outstanding = 0
            self._outstanding = max(0, self._outstanding)
            self._ready.set()  # the reader asks again
            return
        self._outstanding = max(0, self._outstanding - 1)
        self._buffer.append(msg)
        self._ready.set()

    async def _top_up(self) -> None:
        if self._outstanding and time.monotonic() - self._heard > self.silence:
            self._outstanding = 0  # asked, and nothing heard for a while: ask again
        if self._outstanding > self.batch // 2:
            return
        wanted = self.batch - self._outstanding
        if wanted <= 0:
            return
        request = {"batch": wanted, "expires": int(self.expires * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        if not self._outstanding:
            self._heard = time.monotonic()  # silence is counted from the new request
        self._outstanding += wanted

    async def next(self, timeout: float) -> list[Msg]:
        """The messages delivered so far (at most batch), waiting up to timeout for the first;
        [] when none came."""
        deadline = time.monotonic() + timeout
        while not self._buffer:
            self._ready.clear()  # before asking: what arrives meanwhile sets it again
            with contextlib.suppress(nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
                await self._top_up()
            left = deadline - time.monotonic()
            if self._buffer or left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), left)
        if not self._buffer:
            return []
        out = [self._buffer.popleft() for _ in range(min(self.batch, len(self._buffer)))]
        with contextlib.suppress(nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
            await self._top_up()
        return out
