"""The managed strategies: PostgreSQL's `strategies` table, changed only together with the log.

A row is a strategy's current entry (kind, params, venue/symbols/timeframes, account), its status
(live, paused, retired), version and timestamps. Every change (add, pause, resume, retire) is made
in one transaction that locks the row, writes it with version + 1, and publishes the change as a
StrategyChanged event (the whole entry, `revision` = the version) and waits for JetStream's ack
before it commits: a publish that fails rolls the change back, so the table never holds what the
log lacks. The event's id derives from (strategy, version), so the publish of a commit that failed
and is retried is dropped by JetStream's duplicate window, and the signal core applies a revision
only once anyway. The signal service runs what the log says (services/signal/managed.py); this
table is where operators and the API read and change it. Timestamps are the caller's wall clock
(a shell's, never a core's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

from ticktape import ids, pg
from ticktape.config import CommonSettings
from ticktape.corespec import load_specs
from ticktape.events import StrategyChanged
from ticktape.events.strategies import StrategyAction, StrategyStatus

MIGRATIONS = Path(__file__).with_name("migrations")
NAMESPACE = "strategies"

# status -> (action -> the status it leads to); what is not listed is refused
TRANSITIONS: dict[str, dict[str, StrategyStatus]] = {
    "live": {"pause": "paused", "retire": "retired"},
    "paused": {"resume": "live", "retire": "retired"},
    "retired": {},
}

_COLUMNS = "id, kind, params, venue, symbols, timeframes, account, status, version, event_id, created_at, updated_at"


class StrategyError(ValueError):
    """A change that cannot be made; the message names the field or says what the state is."""


class UnknownStrategy(StrategyError):
    """No strategy has that id."""


class StrategyConflict(StrategyError):
    """The strategy's state does not allow the change (it exists already, or its status forbids it)."""


@runtime_checkable
class ChecksStrategies(Protocol):
    """What the signal core answers before a strategy is stored: why it could not run it, or None."""

    def refusal(self, change: StrategyChanged) -> str | None: ...


class StrategyEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A managed strategy as its last change left it: its entry, `status`, `version` (the last
    change's revision) and that change's event id. The row below and the API's view add when it
    was added and last changed."""

    id: str
    kind: str
    params: dict[str, Any]
    venue: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    account: str
    status: StrategyStatus
    version: int
    event_id: str


class Strategy(StrategyEntry, frozen=True, kw_only=True):
    """One row, as `ticktape strategies show --json` prints it (times in ISO 8601, UTC)."""

    created_at: datetime
    updated_at: datetime


async def apply_migrations(conn: Any) -> list[str]:
    """Create or upgrade the table; returns the migration files applied now."""
    return await pg.migrate(conn, MIGRATIONS, namespace=NAMESPACE)


def change_event(
    row: Strategy | None,
    action: StrategyAction,
    ts_ns: int,
    *,
    new: dict[str, Any] | None = None,
) -> StrategyChanged:
    """The event of `action` on `row` (add: `new` holds id, kind, params, venue, symbols,
    timeframes, account, and optionally status 'paused'); StrategyError when the row's status
    does not allow it."""
    if action == "add":
        if row is not None:
            raise StrategyConflict(f"id: strategy {row.id!r} exists already ({row.status}, version {row.version})")
        if new is None:
            raise StrategyError("add needs the new strategy's fields")
        revision, status, entry = 1, new.pop("status", "live"), new
    else:
        if row is None:
            raise UnknownStrategy("no such strategy")
        after = TRANSITIONS[row.status].get(action)
        if after is None:
            allowed = ", ".join(TRANSITIONS[row.status]) or "nothing (it is retired for good)"
            raise StrategyConflict(f"strategy {row.id!r} is {row.status}: it can {allowed}, not {action}")
        revision, status = row.version + 1, after
        entry = {
            "id": row.id,
            "kind": row.kind,
            "params": row.params,
            "venue": row.venue,
            "symbols": row.symbols,
            "timeframes": row.timeframes,
            "account": row.account,
        }
    strategy = entry.pop("id")
    return StrategyChanged(
        event_id=ids.derive("strategy", strategy, revision),
        ts_event=ts_ns,
        ts_init=ts_ns,
        strategy=strategy,
        revision=revision,
        action=action,
        status=status,
        **entry,
    )


def checker(raw: Mapping[str, Any], common: CommonSettings) -> Callable[[StrategyChanged], None]:
    """The checks of an added strategy, raising StrategyError: the signal core of this
    configuration could run it, and the account it names exists (risk routes a managed strategy's
    signals to that account, whatever its `strategies` lists: services/risk/routing.py)."""
    specs = load_specs(raw, ["signal"])
    core = specs[0].core if specs else None
    core = getattr(core, "cores", (core,))[0]  # with signal.workers > 1: one worker's core decides alike
    if not isinstance(core, ChecksStrategies):
        raise StrategyError("this build's signal service runs no managed strategies")
    accounts = [a.name for a in common.accounts]

    def check(event: StrategyChanged) -> None:
        problem = core.refusal(event)
        if problem is not None:
            raise StrategyError(problem)
        if event.account and event.account not in accounts:
            raise StrategyError(
                f"account: no account {event.account!r} in the configuration (accounts: {', '.join(accounts)})"
            )

    return check


async def rows(conn: Any, strategy_id: str | None = None) -> list[Strategy]:
    """Every strategy by id (or the one named), oldest first."""
    where, args = ("WHERE id = %s", (strategy_id,)) if strategy_id is not None else ("", ())
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM strategies {where} ORDER BY created_at, id", args)
    return [_row(r) for r in await cur.fetchall()]


async def apply(
    conn: Any,
    strategy_id: str,
    action: StrategyAction,
    ts_ns: int,
    publish: Callable[[StrategyChanged], Awaitable[None]],
    *,
    new: dict[str, Any] | None = None,
    check: Callable[[StrategyChanged], None] | None = None,
) -> StrategyChanged:
    """Make one change: lock the row, build the event, `check` it (raise StrategyError to refuse),
    write the row, `publish` the event and wait for its ack, then commit (see the module
    docstring). Returns the event."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"ticktape.strategy:{strategy_id}",)
        )
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM strategies WHERE id = %s FOR UPDATE", (strategy_id,))
        found = await cur.fetchone()
        row = _row(found) if found is not None else None
        event = change_event(row, action, ts_ns, new=None if new is None else {**new, "id": strategy_id})
        if check is not None:
            check(event)
        at = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
        if row is None:
            await conn.execute(
                f"INSERT INTO strategies ({_COLUMNS}) VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    event.strategy,
                    event.kind,
                    msgspec.json.encode(event.params).decode(),
                    event.venue,
                    list(event.symbols),
                    list(event.timeframes),
                    event.account,
                    event.status,
                    event.revision,
                    event.event_id,
                    at,
                    at,
                ),
            )
        else:
            await conn.execute(
                "UPDATE strategies SET status = %s, version = %s, event_id = %s, updated_at = %s WHERE id = %s",
                (event.status, event.revision, event.event_id, at, event.strategy),
            )
        await publish(event)
    return event


def _row(r: tuple[Any, ...]) -> Strategy:
    return Strategy(
        id=r[0],
        kind=r[1],
        params=r[2],
        venue=r[3],
        symbols=tuple(r[4]),
        timeframes=tuple(r[5]),
        account=r[6],
        status=r[7],
        version=r[8],
        event_id=r[9],
        created_at=r[10],
        updated_at=r[11],
    )
