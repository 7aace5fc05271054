"""The storage check: which stores (JetStream streams against their max_bytes, file systems
against their size) are above the alert threshold, as StorageAlert events. Pure: the shell that
reads stream infos and disk usage, publishes the alerts and sets the gauges is
services.archive.storage.

An alert is raised when a store first goes above the threshold and again every `repeat_ns` while
it stays there (a store that stays full must not go quiet after one message nobody read); the
caller keeps `last_alert` (store key -> ts of its last alert) between checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ticktape import ids
from ticktape.events import StorageAlert

STREAM = "stream"
DISK = "disk"


@dataclass(frozen=True)
class Usage:
    """One store's use: `resource` STREAM or DISK, `name` the stream or directory."""

    resource: str
    name: str
    used_bytes: int
    limit_bytes: int

    @property
    def key(self) -> str:
        return f"{self.resource}:{self.name}"

    @property
    def fraction(self) -> float:
        return self.used_bytes / self.limit_bytes if self.limit_bytes > 0 else 0.0


def stream_usage(name: str, used_bytes: int, max_bytes: int | None) -> Usage | None:
    """A stream's use, or None for a stream without a byte limit (nothing to measure against)."""
    if not max_bytes or max_bytes < 0:
        return None
    return Usage(STREAM, name, used_bytes, max_bytes)


def disk_usage(path: str, used_bytes: int, total_bytes: int) -> Usage:
    """A file system's use (shutil.disk_usage's used and total)."""
    return Usage(DISK, path, used_bytes, total_bytes)


def check(
    usages: Sequence[Usage],
    *,
    threshold: float,
    now_ns: int,
    last_alert: Mapping[str, int],
    repeat_ns: int,
) -> list[StorageAlert]:
    """An alert for each store at or above `threshold` whose last alert (in `last_alert`) is
    absent or at least `repeat_ns` old. Ids derive from the store and the time, so the same check
    repeated publishes nothing twice."""
    out: list[StorageAlert] = []
    for usage in usages:
        fraction = usage.fraction
        if usage.limit_bytes <= 0 or fraction < threshold:
            continue
        last = last_alert.get(usage.key)
        if last is not None and now_ns - last < repeat_ns:
            continue
        out.append(
            StorageAlert(
                event_id=ids.derive("storage_alert", usage.resource, usage.name, now_ns),
                ts_event=now_ns,
                ts_init=now_ns,
                resource=usage.resource,
                name=usage.name,
                used_bytes=usage.used_bytes,
                limit_bytes=usage.limit_bytes,
                fraction=round(fraction, 6),
                threshold=threshold,
            )
        )
    return out


def remember(
    last_alert: Mapping[str, int], usages: Sequence[Usage], alerts: Sequence[StorageAlert], threshold: float
) -> dict[str, int]:
    """The next `last_alert`: stores alerted now get this alert's time; a store back below the
    threshold is forgotten, so its next crossing alerts at once."""
    below = {u.key for u in usages if u.fraction < threshold}
    out = {k: v for k, v in last_alert.items() if k not in below}
    for alert in alerts:
        out[f"{alert.resource}:{alert.name}"] = alert.ts_event
    return out
