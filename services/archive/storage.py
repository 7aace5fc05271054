"""The archive's storage watch: every storage_check_s it reads each provisioned stream's bytes and
byte limit (JetStream stream info) and the usage of the file systems holding the stores
(shutil.disk_usage), sets the ticktape_storage_used_fraction gauge and publishes the StorageAlert
events of ticktape.storage.check on ops.storage.<resource>.

The archive runs it because it already runs next to PostgreSQL's and JetStream's data in both
deployments (`ticktape up`: the embedded servers' directories under home; compose: their volumes
mounted read-only) and its bus role may read stream info. A failed check is logged and counted,
never fatal: the watch must not stop the archive, nor the archive the watch."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ticktape import storage
from ticktape.bus.provision import stream_configs
from ticktape.bus.publisher import publish_batch
from ticktape.clock import Clock
from ticktape.config import NatsSettings
from ticktape.events import StorageAlert
from ticktape.metrics import ServiceMetrics


def default_paths(home: str) -> tuple[str, ...]:
    """The embedded servers' data directories under home (ticktape.infra.stack) that exist."""
    root = Path(home).resolve()
    return tuple(str(p) for p in (root / "nats" / "jetstream", root / "postgres") if p.is_dir())


class StorageWatch:
    """Reads, checks, alerts; `last_alert` carries the repeat interval from one check to the next."""

    def __init__(
        self,
        js: JetStreamContext,
        settings: NatsSettings,
        paths: Sequence[str],
        *,
        threshold: float,
        repeat_s: float,
        metrics: ServiceMetrics,
        log: Any,
        clock: Clock,
    ) -> None:
        self.js = js
        self.streams = [c.name for c in stream_configs(settings) if c.name]
        self.paths = tuple(paths)
        self.threshold = threshold
        self.repeat_ns = int(repeat_s * 1e9)
        self.metrics = metrics
        self.log = log
        self.clock = clock
        self.last_alert: dict[str, int] = {}

    async def usages(self) -> list[storage.Usage]:
        out: list[storage.Usage] = []
        for name in self.streams:
            try:
                info = await self.js.stream_info(name)
            except NotFoundError:
                continue  # not provisioned yet
            usage = storage.stream_usage(name, info.state.bytes or 0, info.config.max_bytes)
            if usage is not None:
                out.append(usage)
        for path in self.paths:
            try:
                du = shutil.disk_usage(path)
            except OSError as exc:
                self.metrics.error("storage_check")
                self.log.warning("cannot read disk usage", path=path, error=repr(exc))
                continue
            # free is what an unprivileged writer (nats-server, postgres) may still use: root's
            # reserved blocks do not count as room
            out.append(storage.disk_usage(path, du.used, du.used + du.free))
        return out

    async def check_once(self) -> list[StorageAlert]:
        """One check: gauges set for every store, alerts published (and returned)."""
        usages = await self.usages()
        for usage in usages:
            self.metrics.storage_used(usage.resource, usage.name, usage.fraction)
        alerts = storage.check(
            usages,
            threshold=self.threshold,
            now_ns=self.clock.now_ns(),
            last_alert=self.last_alert,
            repeat_ns=self.repeat_ns,
        )
        for alert in alerts:
            self.log.warning(
                "storage above its alert threshold",
                resource=alert.resource,
                name=alert.name,
                used_bytes=alert.used_bytes,
                limit_bytes=alert.limit_bytes,
                fraction=alert.fraction,
            )
        if alerts:
            await publish_batch(self.js, [(a, {}) for a in alerts], attempts=5)
            self.metrics.published(len(alerts))
        self.last_alert = storage.remember(self.last_alert, usages, alerts, self.threshold)
        return alerts

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """check_once every interval_s until stop is set; a failed check is logged and retried."""
        while not stop.is_set():
            try:
                await self.check_once()
            except Exception as exc:  # noqa: BLE001 - the watch outlives any one failed check
                self.metrics.error("storage_check")
                self.log.warning("storage check failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
