"""A snapshottable core wrapped so that a service's gauges follow its state: the wrapper passes
snapshot/origin/restore through to the core and calls `export()` after a restore (the rebuild sets
the gauges too); its `handle` says when else to export."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from ticktape.events import Event


class SnapshottableCore(Protocol):
    def handle(self, event: Event) -> list[Event]: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...
    def origin(self) -> str: ...


C = TypeVar("C", bound=SnapshottableCore)


class GaugedCore(ABC, Generic[C]):
    """`core` with its state exported by `export()` after each restore."""

    def __init__(self, core: C) -> None:
        self.core = core

    def snapshot(self) -> bytes:
        return self.core.snapshot()

    def origin(self) -> str:
        return self.core.origin()

    def restore(self, data: bytes) -> None:
        self.core.restore(data)
        self.export()

    @abstractmethod
    def export(self) -> None:
        """Set the gauges from the core's whole state."""

    def handle(self, event: Event) -> list[Event]:
        return self.core.handle(event)
