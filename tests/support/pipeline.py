"""The decision cores run in sequence over a list of inputs, as the live services would run them
over the event log: each event goes to every core whose filter matches its subject, and their
outputs join the log after it. A realistic, deterministic event log (bars, signals, approvals,
orders, fills, positions, accounts) without starting any service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ticktape import events as ev
from ticktape import subjects
from ticktape.corespec import load_specs


def run_cores(inputs: Sequence[ev.Event], raw_config: Mapping[str, Any] | None = None) -> list[ev.Event]:
    """The event log the cores make of `inputs`: each input, then (breadth first) what it caused."""
    specs = load_specs(raw_config or {})
    log: list[ev.Event] = []
    for event in inputs:
        queue = [event]
        while queue:
            current = queue.pop(0)
            log.append(current)
            subject = subjects.for_event(current)
            for spec in specs:
                if any(subjects.matches(f, subject) for f in spec.filter_subjects):
                    queue.extend(spec.core.handle(current))
    return log
