"""Exactly-once application of inputs inside a core.

A core wraps its apply function with InputMemo: the same input (same event_id) seen again within
the last `size` inputs is not applied twice and returns the same outputs, whose ids are the same,
so JetStream drops the republish. Insertion-ordered dict: deterministic eviction."""

from __future__ import annotations

from collections.abc import Callable

from ticktape.events import Event


class InputMemo:
    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._outputs: dict[str, tuple[Event, ...]] = {}

    def apply(self, event: Event, apply: Callable[[Event], list[Event]]) -> list[Event]:
        done = self._outputs.get(event.event_id)
        if done is not None:
            return list(done)
        out = apply(event)
        self._outputs[event.event_id] = tuple(out)
        if len(self._outputs) > self.size:
            del self._outputs[next(iter(self._outputs))]  # oldest first
        return out
