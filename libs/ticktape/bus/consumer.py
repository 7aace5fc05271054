"""The consuming shell around a pure core: durable pull consumer, in-order processing on one task,
publish outputs with Nats-Msg-Id, then ack.

Start-up rebuilds the core's state by re-running it over its own inputs up to the durable's ack
floor (outputs discarded: they were published before), then re-creates the durable to start right
after the floor. With a snapshot store (ticktape.bus.snapshotting), it first restores the latest
snapshot of the core's state and re-runs only the inputs after it. Processing is strictly in
stream order, so state after a crash and restart is the state of an uninterrupted run; outputs
of a message that was processed but not acked are produced again with the same ids and dropped
by JetStream's duplicate window.

Publish acks are pipelined: the inputs of one pull (those the server had delivered when the loop
asked) are handled one after the other, each input's outputs sent as soon as the core returns
them, and the inputs are answered afterwards, in order, each only once every one of its outputs
is acked (an output not acked in time is published again one by one, with the same id, and its
input retried or dead-lettered as before). A burst therefore waits for JetStream once, not once
per input; one input alone is answered exactly as before.

A worker of a service run as several (ticktape.workers) reads its own durable and takes only
the inputs `accept(subject)` says are its own (its partition's bars); the others it acknowledges
without decoding them, and its rebuild skips them.

An input whose type does not belong on its subject (subjects.expect: an approval on a bar
subject, say) never reaches the core: it is dead-lettered as `type_subject_mismatch`, and skipped
by the rebuild and by replay alike."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from ticktape import subjects, telemetry
from ticktape.bus.crashguard import CRASH_LOOP, CrashGuard, Doomed
from ticktape.bus.deadletter import DeadLetters
from ticktape.bus.durable import recreate_durable
from ticktape.bus.feed import PullFeed
from ticktape.bus.lag import poll_lag
from ticktape.bus.publisher import PayloadTooLarge, max_payload, publish_batch, send_async
from ticktape.bus.reader import read_range
from ticktape.bus.snapshotting import Snapshotter
from ticktape.errors import InvalidInput
from ticktape.events import Event
from ticktape.events.codec import DecodeError, TooDeep, UnknownEventType
from ticktape.metrics import ServiceMetrics
from ticktape.snapshots.store import SnapshotStore


class Core(Protocol):
    def handle(self, event: Event) -> list[Event]: ...


class _Handled(NamedTuple):
    """An input handled whose answer waits for its outputs' acks (outputs: (event, headers);
    acks: their futures, None when sending failed: published again when it is answered)."""

    msg: Msg
    seq: int
    headers: dict[str, str]
    event: Event | None = None
    outputs: list[tuple[Event, dict[str, str]]] = []
    acks: list[asyncio.Future[PubAck]] | None = None
    sent: float = 0.0


class _Stopped(Exception):
    """Stop was requested while an input was being retried: leave it unacked (redelivered)."""


class CoreConsumer:
    """Runs one core over one durable consumer of the events stream."""

    def __init__(
        self,
        *,
        service: str,
        js: JetStreamContext,
        stream: str,
        filter_subjects: Sequence[str],
        core: Core,
        metrics: ServiceMetrics,
        log: Any,
        durable: str | None = None,
        batch: int = 64,
        ack_wait: float = 30.0,
        on_processed: Callable[[int], None] | None = None,
        max_deliver: int = 5,
        max_bytes: int = 0,
        retry_delay: float = 0.5,
        dead_letters: DeadLetters | None = None,
        publish_timeout: float = 10.0,
        crash_dir: Path | None = None,
        nc: Client | None = None,
        tracer: trace.Tracer | None = None,
        accept: Callable[[str], bool] | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_every_inputs: int = 0,
        snapshot_every_s: float = 0.0,
    ) -> None:
        """max_deliver: attempts an input gets before it is dead-lettered and terminated.
        max_bytes: inputs larger than this are refused before decoding (0: the server's
        max_payload). retry_delay: first pause between attempts (doubling, at most 5 s).
        publish_timeout: how long to wait for the acks of an input's outputs.
        crash_dir: where the crash-loop guard keeps its files (ticktape.bus.crashguard): an
        input in flight at max_deliver process deaths in a row is dead-lettered and skipped.
        nc: the connection, to notice reconnects: after one, the acks (and terms) of the inputs
        handled last are sent again, since the ones sent while the server was away are lost
        (and a restarted server may have lost the consumer state that recorded them); without
        that the inputs would stay pending until ack_wait expires and then be redelivered.
        tracer: where the handle and emit spans come from (default: the process's provider,
        ticktape.telemetry.setup).
        accept: whether an input (by subject) is this worker's; the others are acked unread.
        snapshots: where the core's state snapshots go (ticktape.bus.snapshotting), taken every
        snapshot_every_inputs inputs or snapshot_every_s seconds (0: not by that rule) and at a
        clean stop; None: none, every start re-runs the core over all its input."""
        self.service = service
        self.js = js
        self.stream = stream
        self.filter_subjects = list(filter_subjects)
        self.core = core
        self.metrics = metrics
        self.log = log
        self.durable = durable or service
        self.accept = accept
        self.batch = batch
        self.ack_wait = ack_wait
        self.last_seq = 0
        self.on_processed = on_processed
        self._tracer = tracer or trace.get_tracer(f"ticktape.{service}")
        self._contexts: OrderedDict[str, Context] = OrderedDict()
        self._max_contexts = 100_000
        self.max_deliver = max_deliver
        self.max_bytes = max_bytes
        self.retry_delay = retry_delay
        self.publish_timeout = publish_timeout
        self.dead_letters = dead_letters or DeadLetters(js, service, metrics, log)
        self._stop = asyncio.Event()
        self.guard = CrashGuard(crash_dir, self.durable, max_deliver) if crash_dir is not None else None
        self.nc = nc
        self._reconnects = nc.stats["reconnects"] if nc is not None else 0
        # (reply subject, body) of the last inputs answered: b"" acks, b"+TERM" terminates
        self._answered: deque[tuple[str, bytes]] = deque(maxlen=max(256, batch * 8))
        self._handled: deque[_Handled] = deque()  # in stream order, not answered yet
        self._done_count = 0  # inputs answered (acked or terminated) since the start
        self.lag_interval = 5.0  # seconds between polls of the durable's lag (ticktape_consumer_lag)
        self.snapshotter = (
            Snapshotter(
                service=service,
                stream=stream,
                core=core,
                store=snapshots,
                metrics=metrics,
                log=log,
                every_inputs=snapshot_every_inputs,
                every_s=snapshot_every_s,
            )
            if snapshots is not None
            else None
        )

    def size_limit(self) -> int:
        return self.max_bytes or max_payload(self.js)

    async def rebuild(self) -> int:
        """Restore the latest snapshot, if any fits, and re-run the core over the inputs after it
        up to the ack floor; returns the sequence the core's state now stands for."""
        floor = 0
        try:
            info = await self.js.consumer_info(self.stream, self.durable)
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
        except NotFoundError:
            pass
        doomed = self.guard.on_start() if self.guard else None
        skipped = self.guard.skipped if self.guard else frozenset()
        count = 0
        start = await self._restore()
        if floor > start:
            limit = self.size_limit()
            async for msg in read_range(
                self.js, self.stream, self.filter_subjects, start_seq=start + 1, stop_seq=floor
            ):
                seq = msg.metadata.sequence.stream
                if len(msg.data) > limit or seq in skipped:
                    continue  # refused live too, or a crash loop's input
                if self.accept is not None and not self.accept(msg.subject):
                    continue  # another worker's
                try:
                    event = subjects.decode_on(msg.subject, msg.data)
                except DecodeError:  # SubjectMismatch too: live, these were dead-lettered
                    continue
                self._remember(event.event_id, telemetry.extract(msg.headers))
                self._begin(seq)
                try:
                    self.core.handle(event)
                except Exception as exc:  # noqa: BLE001 - as live, where this input was rejected or dead-lettered
                    self.log.debug("replayed input failed again", event_id=event.event_id, error=repr(exc))
                self._end()
                count += 1
        self.last_seq = max(floor, start)
        self.log.info("state rebuilt", ack_floor=floor, snapshot_seq=start, replayed=count)
        await self._recreate_durable(self.last_seq + 1)
        if doomed is not None:
            await self._dead_letter_crash_loop(doomed)
        return self.last_seq

    async def _restore(self) -> int:
        """The sequence of the snapshot restored into the core (0: none)."""
        if self.snapshotter is None or self.snapshotter.core is None:
            return 0
        info = await self.js.stream_info(self.stream)
        return await self.snapshotter.restore(info.state.last_seq)

    def _begin(self, seq: int) -> None:
        if self.guard is not None:
            self.guard.begin(seq)

    def _end(self) -> None:
        if self.guard is not None:
            self.guard.clear()

    async def _dead_letter_crash_loop(self, doomed: Doomed) -> None:
        """The input that was in flight at max_deliver deaths of this process in a row: dead-letter
        it (from the stream) once; live processing and the rebuild skip it from now on."""
        self.metrics.delivery_exhausted()
        self.metrics.rejected(CRASH_LOOP)
        error = (
            f"{CRASH_LOOP}: the {self.service} process died {doomed.deaths} times in a row while its core "
            "handled this input; skipped from now on"
        )
        self.log.error("input dead-lettered: it killed the process", stream_seq=doomed.stream_seq, deaths=doomed.deaths)
        try:
            raw = await self.js.get_msg(self.stream, doomed.stream_seq)
        except nats.errors.Error as exc:
            self.log.error("crash loop input no longer in its stream", stream_seq=doomed.stream_seq, error=repr(exc))
            return
        ts = int(raw.time.timestamp() * 1e9) if raw.time else 0
        await self.dead_letters.send(
            source=raw.subject or "",
            error=error,
            payload=raw.data or b"",
            ts_ns=ts,
            stream_seq=doomed.stream_seq,
            headers={k: str(v) for k, v in (raw.headers or {}).items()},
            delivery=doomed.deaths,
        )

    async def _recreate_durable(self, start_seq: int) -> None:
        await recreate_durable(
            self.js,
            self.stream,
            self.durable,
            start_seq,
            ack_wait=self.ack_wait,
            max_ack_pending=self.batch * 4,
            filter_subjects=self.filter_subjects,
            max_deliver=self.max_deliver,
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        try:
            await self._run(stop)
        finally:
            if self.guard is not None:
                self.guard.close()

    async def _run(self, stop: asyncio.Event) -> None:
        await self.rebuild()
        feed = PullFeed(self.js, self.stream, self.durable, self.batch)
        await feed.start()
        lag = asyncio.create_task(
            poll_lag(self.js, self.stream, self.durable, self.metrics, stop, self.log, self.lag_interval)
        )
        try:
            while not stop.is_set():
                if await self._after_reconnect():
                    feed.reset()  # a restarted server has forgotten the pull requests
                try:
                    await self._handle_pull(await feed.next(timeout=0.5))
                except _Stopped:
                    return
            if self.snapshotter is not None:  # a clean stop: every input handled was answered
                await self.snapshotter.take(wait=True)
        finally:
            lag.cancel()
            await feed.stop()

    async def _handle_pull(self, msgs: list[Msg]) -> None:
        """Handle one pull's inputs, their outputs' acks pipelined, then answer them all (sooner
        when a snapshot falls due in between: it must stand for inputs answered)."""
        before = self._done_count
        for msg in msgs:
            try:
                await self.process(msg, settle=False)
            except _Stopped:
                raise
            except Exception as exc:
                self.log.error(
                    "consumer stopped: processing an input failed outside the poison paths",
                    subject=msg.subject,
                    error=repr(exc),
                )
                raise
            if self.snapshotter is not None and self.snapshotter.due(self._done_count - before + len(self._handled)):
                before = await self._answer(before)
        await self._answer(before)

    async def _answer(self, before: int) -> int:
        """Settle, then tell the snapshotter how many inputs were answered since `before` (a
        count of _done calls): nothing is in flight, so the core's state is that of last_seq."""
        await self._settle()
        if self.snapshotter is not None and self._done_count > before:
            await self.snapshotter.handled(self.last_seq, self._done_count - before)
        return self._done_count

    async def process(self, msg: Msg, *, settle: bool = True) -> None:
        """Handle one input. settle=False: its outputs are sent but not waited for, and it is
        answered by the next _settle() (the run loop's, after each pull)."""
        await self._handle(msg)
        if settle:
            await self._settle()

    async def _handle(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self.last_seq:  # a redelivery of something already processed
            await self._ack(msg)
            return
        if self._handled and seq <= self._handled[-1].seq:  # handled, answered once its outputs are acked
            return
        if self.accept is not None and not self.accept(msg.subject):  # another worker's input: acked in turn
            self._handled.append(_Handled(msg, seq, {}))
            return
        if self.guard is not None and seq in self.guard.skipped:  # dead-lettered at start: it killed us
            await self._settle()
            await self._ack(msg, b"+TERM")
            self._done(seq)
            return
        self.metrics.received()
        headers = dict(msg.headers or {})
        limit = self.size_limit()
        if len(msg.data) > limit:
            await self._reject(
                msg, seq, headers, "too_large", f"message is {len(msg.data)} bytes; the limit is {limit}"
            )
            return
        try:
            event = subjects.decode_on(msg.subject, msg.data)
        except subjects.SubjectMismatch as exc:  # its type does not belong on its subject
            await self._reject(msg, seq, headers, "type_subject_mismatch", str(exc))
            return
        except UnknownEventType as exc:
            await self._reject(msg, seq, headers, "unknown_type", str(exc))
            return
        except TooDeep as exc:
            await self._reject(msg, seq, headers, "too_deep", str(exc))
            return
        except DecodeError as exc:
            await self._reject(msg, seq, headers, "undecodable", str(exc))
            return
        parent = telemetry.extract(headers)
        with (
            structlog.contextvars.bound_contextvars(event_id=event.event_id),
            self._tracer.start_as_current_span(
                f"{self.service} handle {event.__struct_config__.tag}",
                context=parent,
                kind=trace.SpanKind.CONSUMER,
                attributes={"ticktape.event_id": event.event_id, "messaging.destination": msg.subject},
            ) as span,
        ):
            # outputs caused by this input (now or later: an order's fill) are children of this
            # span; only its ids are kept, not the span (100,000 of them would hold their attributes)
            self._remember(event.event_id, trace.set_span_in_context(trace.NonRecordingSpan(span.get_span_context())))
            self._begin(seq)
            started = time.perf_counter()
            try:
                outputs = self.core.handle(event)
                elapsed = time.perf_counter() - started
            except InvalidInput as exc:
                self._end()
                await self._reject(msg, seq, headers, "invalid_input", str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - a core bug must not stop the service or lose the input
                self._end()
                await self._settle()
                self.metrics.error("core")
                self.log.error("core failed; input dead-lettered", event_id=event.event_id, error=repr(exc))
                await self._give_up(msg, seq, headers, f"core error: {exc!r}", event.event_id)
                return
            self._end()
            self.metrics.core_handled(elapsed)
            items = [(out, self._headers_for(out)) for out in outputs]
            self.log.debug(
                "handled", type=event.__struct_config__.tag, stream_seq=seq, outputs=[o.event_id for o in outputs]
            )
        acks: list[asyncio.Future[PubAck]] | None = []
        sent = time.perf_counter()
        if items:
            try:
                acks = await send_async(self.js, items)
            except PayloadTooLarge as exc:
                await self._settle()
                self.metrics.error("output_too_large")
                self.log.error("an output does not fit in a bus message; input dead-lettered", error=str(exc))
                await self._give_up(msg, seq, headers, f"output too large: {exc}", event.event_id)
                return
            except Exception as exc:  # noqa: BLE001 - published again, one by one, when it is answered
                self.log.warning("sending outputs failed; retried before the input is acked", error=repr(exc))
                acks = None
        self._handled.append(_Handled(msg, seq, headers, event, items, acks, sent))
        if items:
            await asyncio.sleep(0)  # let the connection's flusher send them now, not after the whole pull

    async def _settle(self) -> None:
        """Answer the inputs handled so far, in stream order, each once its outputs are acked;
        outputs not acked in time are published again by _publish (which may dead-letter the
        input instead)."""
        while self._handled:
            entry = self._handled[0]
            if entry.outputs and entry.event is not None and not await self._outputs_stored(entry, entry.event):
                self._handled.popleft()  # dead-lettered and terminated
                continue
            self._handled.popleft()
            await self._ack(entry.msg)
            self._done(entry.seq)

    async def _outputs_stored(self, entry: _Handled, event: Event) -> bool:
        """Wait for the acks of an input's outputs, publishing them again if need be; False when
        the input was dead-lettered instead. Runs in the input's trace context (the latencies'
        exemplars name its trace, as when they were observed inside its span)."""
        ctx = self._contexts.get(event.event_id)
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            if not await self._acked(entry) and not await self._publish(
                entry.msg, entry.seq, entry.headers, event.event_id, entry.outputs, pipelined=False
            ):
                return False
            # ts_init is the tick's receipt time, carried down the chain: latency so far
            self.metrics.hop_latency(str(event.__struct_config__.tag), (time.time_ns() - event.ts_init) / 1e9)
            return True
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _acked(self, entry: _Handled) -> bool:
        """Whether JetStream acked every output sent for this input within publish_timeout."""
        if entry.acks is None:
            return False
        if not all(f.done() for f in entry.acks):
            left = entry.sent + self.publish_timeout - time.perf_counter()
            _, late = await asyncio.wait(entry.acks, timeout=max(0.0, left))
            for future in late:
                future.cancel()
            if late:
                return False
        if any(f.cancelled() or f.exception() is not None for f in entry.acks):
            return False
        outputs = [out for out, _ in entry.outputs]
        self.metrics.publish_acked(time.perf_counter() - entry.sent)
        self.metrics.published(len(outputs))
        self.metrics.order_events(outputs)  # live outputs only: the rebuild publishes nothing
        return True

    async def _publish(
        self,
        msg: Msg,
        seq: int,
        headers: dict[str, str],
        cause: str,
        items: list[tuple[Event, dict[str, str]]],
        pipelined: bool = True,
    ) -> bool:
        """Publish a handled input's outputs; False when the input was dead-lettered instead.
        Bus outages are waited out inside publish_batch; any other failure is retried here, in
        place, until the input has had max_deliver attempts. The core is not run again: its
        state already includes this input. pipelined=False: one by one from the first try."""
        outputs = [out for out, _ in items]
        first = attempt = msg.metadata.num_delivered or 1
        delay = self.retry_delay
        while True:
            try:  # pipelined the first time; then one by one, which reports a refusal at once
                await publish_batch(
                    self.js,
                    items,
                    timeout=self.publish_timeout,
                    pipelined=pipelined and attempt == first,
                    observe=self.metrics.publish_acked,
                )
            except PayloadTooLarge as exc:
                self.metrics.error("output_too_large")
                self.log.error("an output does not fit in a bus message; input dead-lettered", error=str(exc))
                await self._give_up(msg, seq, headers, f"output too large: {exc}", cause)
                return False
            except Exception as exc:  # counted against this input: retried, then dead-lettered
                if attempt >= self.max_deliver:
                    self.metrics.delivery_exhausted()
                    self.log.error(
                        "publishing outputs failed on every attempt; input dead-lettered",
                        attempts=attempt,
                        error=repr(exc),
                    )
                    await self._give_up(
                        msg, seq, headers, f"publishing its outputs failed {attempt} times: {exc!r}", cause, attempt
                    )
                    return False
                self.metrics.retried("publish")
                self.log.warning(
                    "publishing outputs failed; retrying",
                    attempt=attempt,
                    max_deliver=self.max_deliver,
                    error=repr(exc),
                )
                with contextlib.suppress(nats.errors.Error):  # keep the input ours while we wait
                    await msg.in_progress()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                if self._stop.is_set():
                    raise _Stopped() from exc
                attempt += 1
                delay = min(delay * 2, 5.0)
            else:
                self.metrics.published(len(outputs))
                self.metrics.order_events(outputs)  # live outputs only: the rebuild publishes nothing
                return True

    def _done(self, seq: int) -> None:
        self.last_seq = seq
        self._done_count += 1
        if self.on_processed:
            self.on_processed(seq)

    def _headers_for(self, out: Event) -> dict[str, str]:
        """Trace context of the output's cause when known (e.g. a fill continues its order's
        trace even though a later bar triggered it), else the current span."""
        parent = self._contexts.get(out.causation_id or "")
        with self._tracer.start_as_current_span(
            f"{self.service} emit {out.__struct_config__.tag}",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={"ticktape.event_id": out.event_id},
        ) as span:
            headers = telemetry.inject({})
            # its ids, as for an input (not a parse of the header just written)
            self._remember(out.event_id, trace.set_span_in_context(trace.NonRecordingSpan(span.get_span_context())))
        return headers

    def _remember(self, event_id: str, ctx: Context) -> None:
        self._contexts[event_id] = ctx
        if len(self._contexts) > self._max_contexts:
            self._contexts.popitem(last=False)

    async def _reject(self, msg: Msg, seq: int, headers: dict[str, str], reason: str, error: str) -> None:
        await self._settle()  # the inputs before it are answered first: last_seq only moves forward
        self.metrics.rejected(reason)
        self.log.warning(
            "input rejected; dead-lettered", reason=reason, subject=msg.subject, stream_seq=seq, error=error
        )
        await self._give_up(msg, seq, headers, error, None)

    async def _give_up(
        self, msg: Msg, seq: int, headers: dict[str, str], error: str, cause: str | None, delivery: int | None = None
    ) -> None:
        """Dead-letter the input and terminate it: it is never redelivered."""
        ts = int(msg.metadata.timestamp.timestamp() * 1e9)  # nats-py always parses it from the ack subject
        await self.dead_letters.send(
            source=msg.subject,
            error=error,
            payload=msg.data,
            ts_ns=ts,
            stream_seq=seq,
            headers=headers,
            causation_id=cause,
            delivery=delivery or msg.metadata.num_delivered,
        )
        await self._ack(msg, b"+TERM")
        self._done(seq)

    async def _ack(self, msg: Msg, body: bytes = b"") -> None:
        """Ack (b"") or terminate (b"+TERM") the input, remembering the answer to send it again
        after a reconnect."""
        if body:
            await msg.term()
        else:
            await msg.ack()
        if msg.reply:
            self._answered.append((msg.reply, body))

    async def _after_reconnect(self) -> bool:
        """Send the last answers again once the connection has been re-established: acks are
        idempotent, and those lost in the outage would otherwise hold their inputs pending.
        True when it did (a reconnect happened)."""
        if self.nc is None or self.nc.stats["reconnects"] == self._reconnects or not self.nc.is_connected:
            return False
        self._reconnects = self.nc.stats["reconnects"]
        answered = list(self._answered)
        with contextlib.suppress(nats.errors.Error):
            for reply, body in answered:
                await self.nc.publish(reply, body)
            await self.nc.flush(timeout=5)
        self.metrics.retried("ack_after_reconnect")
        self.log.info("reconnected: recent acks sent again", count=len(answered))
        return True


__all__ = ["Core", "CoreConsumer", "subjects"]
