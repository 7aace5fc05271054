"""The decision cores a replay runs, found through the `ticktape.cores` entry-point group.

Each consuming service registers a factory `core_spec(raw_config) -> CoreSpec` in pyproject.toml,
so the kernel (replay, verify, what-if) runs the same cores as the live services without ever
importing a service module by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from ticktape.events import Envelope, Event

GROUP = "ticktape.cores"


class Core(Protocol):
    def handle(self, event: Event) -> list[Event]: ...


@dataclass(frozen=True)
class CoreSpec:
    name: str
    core: Core
    filter_subjects: tuple[str, ...]
    outputs: tuple[type[Envelope], ...]


def load_specs(raw_config: Mapping[str, Any], names: Sequence[str] | None = None) -> list[CoreSpec]:
    """Fresh cores built from the raw configuration document, in pipeline order."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    order = [n for n in ("signal", "risk", "execution") if n in found] + sorted(
        n for n in found if n not in ("signal", "risk", "execution")
    )
    wanted = [n for n in order if names is None or n in names]
    return [found[n].load()(dict(raw_config)) for n in wanted]
