"""The managed strategies in the API: their views (projected from the StrategyChanged events of the
log, like every read), the request that adds one, and what a change answers. Changes go through
ticktape.strategies_table, as `ticktape strategies` makes them: checked, stored in PostgreSQL and
published as the operator, or nothing at all."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ticktape.events import StrategyChanged
from ticktape.strategies_table import StrategyEntry


class NoDatabase(RuntimeError):
    """This API has no PostgreSQL (postgres.dsn), so it cannot change strategies (it still lists them)."""


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Selector = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ManagedStrategy(StrategyEntry, frozen=True, kw_only=True):
    """A managed strategy as the log last changed it: its entry, `status` (live, paused,
    retired), `version` (its last change's revision), that change's event id and when it was
    added and last changed (ns, the changes' times)."""

    created_ns: int
    updated_ns: int


class Strategies(msgspec.Struct, frozen=True, kw_only=True):
    """Every managed strategy, oldest first (the config's own are in /api/v1/scheduler/status)."""

    strategies: list[ManagedStrategy]


class StrategyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A strategy to add, as `ticktape strategies add` takes it: `id` (also its name), `kind`,
    `params`, its subscription (`venue`, `symbols`, `timeframes`; none: signal.timeframe), the
    `account` that trades it, alone (it must exist; none: the accounts whose `strategies` list it
    or '*'), `paused` to add it paused."""

    id: Id
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    params: dict[str, Any] = {}
    venue: Selector = "*"
    symbols: tuple[Selector, ...] = ("*",)
    timeframes: tuple[str, ...] = ()
    account: str = ""
    paused: bool = False


class StrategyAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The change made: the strategy after it, the StrategyChanged published (id, subject) and its
    sequence on the event log."""

    action: Literal["add", "pause", "resume", "retire"]
    strategy: ManagedStrategy
    event_id: str
    subject: str
    stream_seq: int


def fold(found: dict[str, ManagedStrategy], event: StrategyChanged) -> None:
    """Apply a change to the strategies by id (a revision not newer than the one held is a repeat)."""
    held = found.get(event.strategy)
    if held is not None and event.revision <= held.version:
        return
    found[event.strategy] = view(event, created_ns=held.created_ns if held is not None else event.ts_event)


def view(event: StrategyChanged, *, created_ns: int) -> ManagedStrategy:
    return ManagedStrategy(
        id=event.strategy,
        kind=event.kind,
        params=event.params,
        venue=event.venue,
        symbols=event.symbols,
        timeframes=event.timeframes,
        account=event.account,
        status=event.status,
        version=event.revision,
        event_id=event.event_id,
        created_ns=created_ns,
        updated_ns=event.ts_event,
    )
