"""Breaking crash loops: an input that kills its process outright is dead-lettered, not retried
for ever.

A core that raises is handled in process (ticktape.bus.consumer dead-letters the input). An input
that kills the process instead (out of memory, a segfault in an extension, `os._exit`) leaves
nothing behind, and because a consumer re-creates its durable at its ack floor on every start,
JetStream's delivery count starts again from one: without help the supervisor would restart the
service into the same input for ever.

The guard keeps, per durable, two small files in a state directory:
- `<durable>.inflight`: the stream sequence whose core call is in progress (8 bytes, written
  before and cleared after every call; no fsync: it must survive the process, not the machine);
- `<durable>.crashes.json`, written only at start: the suspect sequence, how many starts in a row
  found it in flight, and the sequences already dead-lettered as crash loops (skipped live and
  by the state rebuild alike).
A start that finds a sequence in flight counts one death for it; after `limit` deaths in a row
the input is dead-lettered as a crash loop and skipped from then on."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SEQ = 8
_KEEP_SKIPPED = 1000
CRASH_LOOP = "crash_loop"


@dataclass(frozen=True)
class Doomed:
    """An input that was in flight at `deaths` process deaths in a row."""

    stream_seq: int
    deaths: int


class CrashGuard:
    def __init__(self, directory: Path, durable: str, limit: int) -> None:
        self.limit = limit
        directory.mkdir(parents=True, exist_ok=True)
        self._inflight_path = directory / f"{durable}.inflight"
        self._state_path = directory / f"{durable}.crashes.json"
        self._fd = os.open(self._inflight_path, os.O_RDWR | os.O_CREAT, 0o600)
        self.skipped: frozenset[int] = frozenset()

    def on_start(self) -> Doomed | None:
        """Count a death for the input found in flight (if any); the input to dead-letter when it
        has now killed the process `limit` times in a row."""
        raw = os.pread(self._fd, _SEQ, 0)
        inflight = int.from_bytes(raw, "little") if len(raw) == _SEQ else 0
        state = self._load()
        skipped = [int(s) for s in state.get("skipped", [])]
        suspect, deaths = int(state.get("suspect", 0)), int(state.get("deaths", 0))
        doomed = None
        if inflight:
            deaths = deaths + 1 if inflight == suspect else 1
            suspect = inflight
            if deaths >= self.limit and suspect not in skipped:
                doomed = Doomed(suspect, deaths)
                skipped = [*skipped, suspect][-_KEEP_SKIPPED:]
                suspect, deaths = 0, 0
        else:
            suspect, deaths = 0, 0
        self._save({"suspect": suspect, "deaths": deaths, "skipped": skipped})
        self.clear()
        self.skipped = frozenset(skipped)
        return doomed

    def begin(self, stream_seq: int) -> None:
        os.pwrite(self._fd, stream_seq.to_bytes(_SEQ, "little"), 0)

    def clear(self) -> None:
        os.pwrite(self._fd, bytes(_SEQ), 0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, state: dict[str, object]) -> None:
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._state_path)
