"""The decision cores over a list of inputs on the in-memory bus (ticktape.replay.memory_bus), as
the live services would run them over the event log: a realistic, deterministic event log (bars,
signals, approvals, orders, fills, positions, accounts) without starting any service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ticktape import events as ev
from ticktape import subjects
from ticktape.corespec import load_specs
from ticktape.replay.memory_bus import MemoryBus


def run_cores(inputs: Sequence[ev.Event], raw_config: Mapping[str, Any] | None = None) -> list[ev.Event]:
    """The event log the cores make of `inputs`: each input, then what it caused."""
    bus = MemoryBus(load_specs(raw_config or {}))
    return [event for item in inputs for _, event, _ in bus.publish(subjects.for_event(item), item)]
