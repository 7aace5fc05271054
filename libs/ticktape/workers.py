"""A service run as N worker processes, each owning a deterministic partition of the symbols.

A (venue, symbol) belongs to partition `partition(n, venue_token, symbol_token)`: the FNV-1a 32-bit
hash of the two subject tokens, concatenated, modulo n. That is exactly what NATS's subject
mapping function `{{partition(n,1,2)}}` computes on a source `md.bar.*.*.*` (its server
hashes the selected tokens, joined without a separator, with FNV-1a), so a move to a
subject-transformed source keeps every symbol where it is. Every timeframe of a symbol lands in
the same partition (a strategy may read a symbol's hourly bars on its minute bars), and a
symbol's bars stay in stream order within its partition.

Worker k of n reads through its own durable consumer (`durable(base, k, n)`), so JetStream keeps
each worker's position: a worker killed mid-input is restarted by the supervisor, rebuilds its
state up to its durable's ack floor and gets the unacknowledged input again; outputs it had
already published carry the same ids and are dropped by the stream's duplicate window. One
worker (n = 1) is the service as it always ran: its durable keeps the service's name."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ticktape import ids, subjects
from ticktape.events import BarClosed, Event, SessionStarted, WorkersChosen

ENV = "TICKTAPE_WORKER"  # the index of this process among its service's workers (set by `ticktape up`)
MAX_WORKERS = 16  # the bus grants each service the durables of this many partitions (ticktape.bus.permissions)

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


class Core(Protocol):
    def handle(self, event: Event) -> list[Event]: ...


class WorkersError(ValueError):
    """A worker count or index that cannot run; the message names what to fix."""


def fnv1a32(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition(n: int, *tokens: str) -> int:
    """The partition (0..n-1) of the subject tokens, as NATS's `{{partition(n, ...)}}` computes it."""
    if n < 1:
        raise WorkersError(f"a partition count must be >= 1 (got {n})")
    if n == 1:
        return 0
    return fnv1a32("".join(tokens).encode()) % n


@functools.lru_cache(maxsize=65_536)  # every worker asks for every bar: symbols x timeframes subjects
def bar_partition(subject: str, n: int) -> int | None:
    """The partition of a bar subject (md.bar.<venue>.<symbol>.<tf>), None for any other subject
    (an input every worker sees)."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != "md" or parts[1] != "bar":
        return None
    return partition(n, parts[2], parts[3])


def accepts(index: int, count: int) -> Callable[[str], bool] | None:
    """What worker `index` of `count` takes from its durable (ticktape.bus.consumer's accept): the
    bars of its partition and every input that is not a bar; None (everything) for one worker."""
    check(index, count)
    if count == 1:
        return None

    def mine(subject: str) -> bool:
        found = bar_partition(subject, count)
        return found is None or found == index

    return mine


def durable(base: str, index: int, count: int) -> str:
    """The durable consumer of worker `index` of `count`: the service's own durable for one worker."""
    check(index, count)
    return base if count == 1 else f"{base}-p{index}"


def child_name(service: str, index: int, count: int) -> str:
    """The supervised process of worker `index` (pid file, restarts metric): the service's name for one."""
    return durable(service, index, count)


def every_durable(base: str) -> tuple[str, ...]:
    """Every durable any worker count may use (what the bus lets the service acknowledge)."""
    return (base, *(f"{base}-p{i}" for i in range(MAX_WORKERS)))


def check(index: int, count: int) -> None:
    if not 1 <= count <= MAX_WORKERS:
        raise WorkersError(f"the worker count must be 1..{MAX_WORKERS} (got {count})")
    if not 0 <= index < count:
        raise WorkersError(f"worker index {index} is not among the {count} workers (0..{count - 1})")


def index_from_env(count: int, env: Mapping[str, str]) -> int:
    """This process's worker index (ENV in the environment `env`), checked against the count; it
    may be left out for one worker only (a process that silently took worker 0 of several would
    leave the other partitions' symbols to nobody)."""
    text = env.get(ENV)
    if text is None:
        if count == 1:
            return 0
        raise WorkersError(
            f"{count} workers are configured, but {ENV} (this process's index, 0..{count - 1}) is not set: "
            "run the service under `ticktape up`, which starts every worker, or start each with its index"
        )
    try:
        index = int(text)
    except ValueError:
        raise WorkersError(f"{ENV} must be a worker index 0..{count - 1} (got {text!r})") from None
    check(index, count)
    return index


def lane(event: Event, n: int) -> int:
    """The partition an event of a (venue, symbol) belongs to (a bar, or a signal caused by one);
    0 for events of no symbol."""
    venue, symbol = getattr(event, "venue", None), getattr(event, "symbol", None)
    if n == 1 or not isinstance(venue, str) or not isinstance(symbol, str) or not venue or not symbol:
        return 0
    return partition(n, subjects.token(venue), subjects.token(symbol))


SHARED = -1  # the lane of an output every worker produces (see PartitionedCore)


class PartitionedCore:
    """A core's n workers in one process, for replay: worker k's core gets the bars of partition k
    (the inputs its durable's worker handles live) and every other input; so each core's state,
    quarantines included, is the live worker's. An output that several workers produce for the
    same input (same id) is published once live (the duplicate window) and returned once here; its
    lane is SHARED: whichever worker published it first, such outputs keep their order among
    themselves (each worker publishes them in input order), not within a partition's."""

    def __init__(self, cores: Sequence[Core]) -> None:
        if not 1 <= len(cores) <= MAX_WORKERS:
            raise WorkersError(f"the worker count must be 1..{MAX_WORKERS} (got {len(cores)})")
        self.cores = tuple(cores)
        self.n = len(self.cores)
        self._shared: set[str] = set()

    def handle(self, event: Event) -> list[Event]:
        if isinstance(event, BarClosed):
            return self.cores[lane(event, self.n)].handle(event)
        out: list[Event] = []
        seen: set[str] = set()
        for core in self.cores:
            for item in core.handle(event):
                if item.event_id in seen:
                    self._shared.add(item.event_id)
                else:
                    seen.add(item.event_id)
                    out.append(item)
        return out

    def lane(self, event: Event) -> int:
        """The worker whose outputs `event` is ordered with: its partition's, or SHARED."""
        return SHARED if event.event_id in self._shared else lane(event, self.n)


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers a service runs as for a session, and why (WorkersChosen's fields)."""

    count: int
    requested: str
    strategies: int = 0
    symbols: int = 0
    evaluation_ns: int = 0
    budget_ns: int = 0
    cpus: int = 0

    def event(self, service: str, started: SessionStarted) -> WorkersChosen:
        """The record of this choice in the session `started` (its id derived from the session's)."""
        return WorkersChosen(
            event_id=ids.child_id(started.event_id, f"workers.{service}", 0),
            ts_event=started.ts_event,
            ts_init=started.ts_init,
            causation_id=started.event_id,
            correlation_id=started.event_id,
            session_id=started.session_id,
            service=service,
            workers=self.count,
            requested=self.requested,
            strategies=self.strategies,
            symbols=self.symbols,
            evaluation_ns=self.evaluation_ns,
            budget_ns=self.budget_ns,
            cpus=self.cpus,
        )


def auto_count(symbols: int, evaluation_ns: int, budget_ns: int, cpus: int) -> int:
    """The workers that evaluate one bar of each of `symbols` within `budget_ns` when one takes
    `evaluation_ns`: ceil(symbols x evaluation_ns / budget_ns), at least 1, at most the CPUs (and
    MAX_WORKERS): more processes than CPUs would only take turns."""
    if budget_ns <= 0:
        raise WorkersError(f"the evaluation budget must be > 0 ns (got {budget_ns})")
    needed = -(-max(symbols, 0) * max(evaluation_ns, 0) // budget_ns)
    return max(1, min(needed, max(cpus, 1), MAX_WORKERS))


def configured_count(doc: Mapping[str, object], service: str) -> int | None:
    """The worker count a configuration document gives `service` (its section's `workers`) when
    it is a number, as in a session's recorded configuration (`ticktape up` writes `auto` resolved
    there); None for `auto`, no key or no section."""
    section = doc.get(service)
    count = section.get("workers") if isinstance(section, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_WORKERS else None
