"""PostgreSQL repository of the symbol registry: current universe per venue and its history.

Every function takes a psycopg.AsyncConnection and runs in its own transaction (a savepoint if
the caller has one open), so reads never leave a connection idle in a transaction. Snapshots are
idempotent on event_id; the current universe always reflects the newest snapshot by as_of, so
replaying an older event never rolls it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from ticktape import pg
from ticktape.events import UniverseMember, UniverseUpdated, codec

MIGRATIONS = Path(__file__).with_name("migrations")
NAMESPACE = "symbol_registry"

_INSERT_SNAPSHOT = """
INSERT INTO universe_snapshots
    (event_id, venue, quote_asset, as_of, top_n, symbols, members, added, removed, event)
VALUES (%s, %s, %s, %s, %s, %s::text[], %s::jsonb, %s::text[], %s::text[], %s::jsonb)
ON CONFLICT (event_id) DO NOTHING
RETURNING id
"""
_NEWEST = """
SELECT event_id FROM universe_snapshots WHERE venue = %s ORDER BY as_of DESC, id DESC LIMIT 1
"""
_REPLACE_CURRENT = """
INSERT INTO tracked_symbols (venue, symbol, rank, quote_volume, as_of, event_id)
SELECT %s, m.symbol, m.rank, m.quote_volume, %s, %s
FROM unnest(%s::text[], %s::integer[], %s::double precision[]) AS m(symbol, rank, quote_volume)
"""


async def apply_migrations(conn: Any) -> list[str]:
    """Create or upgrade the registry's tables; returns the migration files applied now."""
    return await pg.migrate(conn, MIGRATIONS, namespace=NAMESPACE)


async def save_universe(conn: Any, event: UniverseUpdated) -> bool:
    """Record a snapshot and, if it is the venue's newest, make it the current universe.

    Returns False when this event_id was already recorded (nothing changes)."""
    async with conn.transaction():
        # One writer per venue at a time, so "is it the newest?" cannot race.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"ticktape.symbol_registry.universe:{event.venue}",),
        )
        cur = await conn.execute(
            _INSERT_SNAPSHOT,
            (
                event.event_id,
                event.venue,
                event.quote_asset,
                event.as_of,
                event.top_n,
                list(event.symbols),
                msgspec.json.encode(event.members).decode(),
                list(event.added),
                list(event.removed),
                codec.encode(event).decode(),
            ),
        )
        if await cur.fetchone() is None:
            return False
        cur = await conn.execute(_NEWEST, (event.venue,))
        newest = await cur.fetchone()
        if newest is not None and newest[0] == event.event_id:
            await conn.execute("DELETE FROM tracked_symbols WHERE venue = %s", (event.venue,))
            members = event.members
            await conn.execute(
                _REPLACE_CURRENT,
                (
                    event.venue,
                    event.as_of,
                    event.event_id,
                    [m.symbol for m in members],
                    [m.rank for m in members],
                    [m.quote_volume for m in members],
                ),
            )
        return True


async def current_universe(conn: Any, venue: str) -> tuple[UniverseMember, ...]:
    """The venue's tracked symbols in rank order (empty before the first snapshot): symbol, rank
    and volume only; the trading rules (tick, lot, minimum notional) are in the stored events
    (latest_universe, history)."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT symbol, rank, quote_volume FROM tracked_symbols WHERE venue = %s ORDER BY rank, symbol",
            (venue,),
        )
        rows = await cur.fetchall()
    return tuple(UniverseMember(symbol=s, rank=r, quote_volume=q) for s, r, q in rows)


async def latest_universe(conn: Any, venue: str) -> UniverseUpdated | None:
    """The venue's newest snapshot as the event that was published, or None."""
    found = await history(conn, venue, limit=1)
    return found[0] if found else None


async def history(conn: Any, venue: str, limit: int = 100) -> list[UniverseUpdated]:
    """The venue's snapshots, newest first (by as_of), at most `limit`."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT event::text FROM universe_snapshots WHERE venue = %s ORDER BY as_of DESC, id DESC LIMIT %s",
            (venue, limit),
        )
        rows = await cur.fetchall()
    out = []
    for (text,) in rows:
        event = codec.decode(text.encode())
        if not isinstance(event, UniverseUpdated):
            raise codec.DecodeError(f"universe_snapshots holds a {type(event).__name__}")
        out.append(event)
    return out
