"""The decision cores a replay runs, found through the service registry (ticktape.registry).

Each core service names a factory `core_spec(raw_config) -> CoreSpec` in its registry entry, so
the kernel (replay, verify, what-if) runs the same cores as the live services without ever
importing a service module by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ticktape import registry
from ticktape.events import Envelope, Event


class Core(Protocol):
    def handle(self, event: Event) -> list[Event]: ...


@dataclass(frozen=True)
class CoreSpec:
    name: str
    core: Core
    filter_subjects: tuple[str, ...]
    outputs: tuple[type[Envelope], ...]
    # run as several workers (ticktape.workers): the partition of each output. Outputs of one
    # partition are published in order, the partitions' interleaved as the workers ran, so a
    # replay is checked per partition (ticktape.replay.verify). None: one ordered sequence.
    lane: Callable[[Event], int] | None = None


def load_specs(raw_config: Mapping[str, Any], names: Sequence[str] | None = None) -> list[CoreSpec]:
    """Fresh cores built from the raw configuration document, in pipeline (registry) order."""
    cores = [info for info in registry.of_kind("core") if names is None or info.name in names]
    return [registry.core_spec_factory(info)(dict(raw_config)) for info in cores]
