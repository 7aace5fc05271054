"""The in-memory bus: the decision cores chained in one process, deterministically.

It models one stream whose consumers are infinitely fast: a message is appended to the log,
delivered to every core whose filter subjects match it (in the order of `specs`), and each core's
outputs are appended to the end of the log, first in, first out. So every core still sees its
inputs in log order, exactly as it would reading the stream, and the whole cascade caused by one
market event is processed before the next one arrives. Same inputs, same specs -> same log."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence

from ticktape import subjects
from ticktape.corespec import CoreSpec
from ticktape.events import Event


class MemoryBus:
    """`publish(subject, event)` returns the log entries the event causes, itself first:
    (subject, event, producing core or None for the input)."""

    def __init__(self, specs: Sequence[CoreSpec]) -> None:
        self.specs = tuple(specs)
        self._routes: dict[str, tuple[CoreSpec, ...]] = {}
        self.rejected: Counter[str] = Counter()  # core -> inputs it raised on (live: dead letters)
        self.delivered = 0

    def routes(self, subject: str) -> tuple[CoreSpec, ...]:
        """The cores whose filter subjects match, cached per subject."""
        found = self._routes.get(subject)
        if found is None:
            found = tuple(s for s in self.specs if any(subjects.matches(f, subject) for f in s.filter_subjects))
            self._routes[subject] = found
        return found

    def publish(self, subject: str, event: Event) -> list[tuple[str, Event, str | None]]:
        log: list[tuple[str, Event, str | None]] = []
        queue: deque[tuple[str, Event, str | None]] = deque([(subject, event, None)])
        while queue:
            entry = queue.popleft()
            log.append(entry)
            for spec in self.routes(entry[0]):
                self.delivered += 1
                try:
                    outputs = spec.core.handle(entry[1])
                except Exception:  # noqa: BLE001 - live, the shell dead-letters the input
                    self.rejected[spec.name] += 1
                    continue
                for out in outputs:
                    queue.append((subjects.for_event(out), out, spec.name))
        return log
