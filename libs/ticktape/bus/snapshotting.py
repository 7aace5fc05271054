"""The consuming shell's side of snapshots (ticktape.snapshots): restore the latest at start, take
one every `every_inputs` inputs or `every_s` seconds (wall clock: the shell's, never the core's)
and at a clean stop.

A snapshot at stream sequence S is taken right after input S was handled, its outputs published
and acked, so every input up to S has had its effects: resuming at S+1 neither repeats nor loses
one, even when the durable's ack floor is still behind S. A snapshot is restored only into a core
with the same origin (Snapshottable.origin of the freshly built core: same configuration, same
initial state); otherwise, or when the core's state is not plain data (ticktape.snapshots.codec raises
Unsnapshottable, e.g. a plug-in strategy holding a C object), the shell re-runs the core over all
its input as before, and says so in its log and in ticktape_snapshots_total{outcome}."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats.errors

from ticktape import snapshots
from ticktape.metrics import ServiceMetrics
from ticktape.snapshots import Snapshottable
from ticktape.snapshots.codec import BadSnapshot, Unsnapshottable
from ticktape.snapshots.store import SnapshotStore


class Snapshotter:
    def __init__(
        self,
        *,
        service: str,
        stream: str,
        core: Any,
        store: SnapshotStore,
        metrics: ServiceMetrics,
        log: Any,
        every_inputs: int,
        every_s: float,
    ) -> None:
        self.service = service
        self.stream = stream
        self.store = store
        self.metrics = metrics
        self.log = log
        self.every_inputs = every_inputs
        self.every_s = every_s
        self.core: Snapshottable | None = core if snapshots.can_snapshot(core) else None
        self.origin = ""
        self._since = 0  # inputs handled since the last snapshot
        self._last = time.monotonic()
        self._seq = 0  # the sequence the core's state stands for
        self._writing: asyncio.Task[None] | None = None
        if self.core is None:
            self._off("the core has no snapshot()/restore()")
            return
        try:
            self.origin = snapshots.origin_of(self.core)
        except Unsnapshottable as exc:
            self._off(str(exc))

    def _off(self, why: str) -> None:
        self.core = None
        self.metrics.snapshot("disabled")
        self.log.warning("snapshots off: restarts re-run the core over all its input", reason=why)

    async def restore(self, last_seq: int) -> int:
        """Restore the newest snapshot that fits; the stream sequence it stands for (0: none,
        the caller rebuilds from the stream's start). last_seq: the stream's last sequence."""
        if self.core is None:
            return 0
        try:
            snap = await self.store.latest()
        except (TimeoutError, nats.errors.Error) as exc:
            self.metrics.snapshot("unreadable")
            self.log.warning("snapshot bucket unreadable: full rebuild", error=repr(exc))
            return 0
        if snap is None:
            return 0
        why = None
        if snap.stream != self.stream:
            why = f"taken on stream {snap.stream}"
        elif snap.origin != self.origin:
            why = "taken under another configuration or version of the core"
        elif snap.seq > last_seq:
            why = f"its sequence {snap.seq} is beyond the stream's last {last_seq} (a recreated stream?)"
        if why is None:
            try:
                self.core.restore(snap.state)
            except BadSnapshot as exc:
                why = str(exc)
        if why is not None:
            self.metrics.snapshot("not_restored")
            self.log.info("latest snapshot not restored: full rebuild", snapshot_seq=snap.seq, reason=why)
            return 0
        self.metrics.snapshot("restored")
        self._seq = snap.seq
        return snap.seq

    async def handled(self, seq: int, inputs: int = 1) -> None:
        """Inputs up to `seq` have been handled and answered (`inputs` of them since the last
        call; none is in flight): snapshot when one is due."""
        self._seq = seq
        self._since += inputs
        if self.due():
            await self.take()

    def due(self, more: int = 0) -> bool:
        """Whether a snapshot is due once `more` inputs in flight are answered too (the shell
        answers them before one falls due in the middle of a pull)."""
        if self.core is None:
            return False
        return bool(
            (self.every_inputs and self._since + more >= self.every_inputs)
            or (self.every_s and time.monotonic() - self._last >= self.every_s)
        )

    async def take(self, wait: bool = False) -> None:
        """Snapshot now, if anything was handled since the last one. The state is encoded here,
        between two inputs; it is written in the background (a slow or refused write never holds
        up the inputs; while one is still under way a due snapshot is skipped). wait: write it
        before returning (the clean stop's)."""
        if self.core is None or self._since == 0:
            return
        if self._writing is not None and not self._writing.done():
            if not wait:
                return
            await self._writing
        try:
            snap = snapshots.make(
                self.core,
                service=self.service,
                durable=self.store.durable,
                stream=self.stream,
                seq=self._seq,
                origin=self.origin,
            )
        except Unsnapshottable as exc:
            self._off(str(exc))
            return
        self._since, self._last = 0, time.monotonic()
        self._writing = asyncio.create_task(self._write(snap))
        if wait:
            await self._writing

    async def _write(self, snap: snapshots.Snapshot) -> None:
        try:
            await self.store.put(snap)
        except (TimeoutError, nats.errors.Error) as exc:
            self.metrics.snapshot("failed")
            self.log.warning("snapshot not stored", stream_seq=snap.seq, error=repr(exc))
            return
        self.metrics.snapshot("taken")
        self.log.info("snapshot taken", stream_seq=snap.seq, bytes=len(snap.state))
