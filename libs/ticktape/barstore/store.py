"""Writing and reading closed bars in PostgreSQL.

write_bars COPYs a batch into a temporary table and inserts it with ON CONFLICT DO NOTHING, so
the archive is idempotent on (venue, symbol, timeframe, open_time): a redelivered batch changes
nothing. Without TimescaleDB the table is range-partitioned by month; the writer creates the
months a batch needs first (a row never lands in a catch-all partition)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ticktape import pg
from ticktape.events import BarClosed

MIGRATIONS = Path(__file__).with_name("migrations")
NAMESPACE = "barstore"
COLUMNS = (
    "venue",
    "symbol",
    "timeframe",
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "backfilled",
    "event_id",
    "ts_event",
    "ts_init",
)
_NS = 1_000_000_000


async def apply_migrations(conn: Any) -> list[str]:
    return await pg.migrate(conn, MIGRATIONS, namespace=NAMESPACE)


async def is_hypertable(conn: Any) -> bool:
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    return bool((await cur.fetchone())[0])


def _month_bounds(open_time_ns: int) -> tuple[str, int, int]:
    t = dt.datetime.fromtimestamp(open_time_ns / _NS, tz=dt.UTC)
    start = dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=dt.UTC)
    return f"bars_y{t.year:04d}m{t.month:02d}", int(start.timestamp()) * _NS, int(end.timestamp()) * _NS


async def _ensure_partitions(conn: Any, bars: Sequence[BarClosed], known: set[str]) -> None:
    for name, lo, hi in sorted({_month_bounds(b.open_time) for b in bars}):
        if name in known:
            continue
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF bars FOR VALUES FROM ({lo}) TO ({hi})")
        known.add(name)


def _row(b: BarClosed) -> tuple[object, ...]:
    return (
        b.venue,
        b.symbol,
        b.timeframe,
        b.open_time,
        b.close_time,
        b.open,
        b.high,
        b.low,
        b.close,
        b.volume,
        b.quote_volume,
        b.trades,
        b.taker_buy_volume,
        b.taker_buy_quote_volume,
        b.backfilled,
        b.event_id,
        b.ts_event,
        b.ts_init,
    )


async def write_bars(
    conn: Any, bars: Sequence[BarClosed], *, partitions: set[str] | None = None, hypertable: bool = False
) -> int:
    """Store a batch in one transaction; returns how many rows were new."""
    if not bars:
        return 0
    cols = ", ".join(COLUMNS)
    async with conn.transaction():
        if not hypertable:
            await _ensure_partitions(conn, bars, partitions if partitions is not None else set())
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bars_in (LIKE bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        async with conn.cursor().copy(f"COPY bars_in ({cols}) FROM STDIN") as copy:
            for bar in bars:
                await copy.write_row(_row(bar))
        cur = await conn.execute(f"INSERT INTO bars ({cols}) SELECT {cols} FROM bars_in ON CONFLICT DO NOTHING")
        return cur.rowcount


async def last_bars(conn: Any, venue: str, symbol: str, timeframe: str, n: int) -> list[BarClosed]:
    """Warm-up: the newest n bars of one series, oldest first."""
    cur = await conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM bars WHERE venue = %s AND symbol = %s AND timeframe = %s "
        "ORDER BY open_time DESC LIMIT %s",
        (venue, symbol, timeframe, n),
    )
    rows = await cur.fetchall()
    return [_bar(r) for r in reversed(rows)]


def _bar(r: Sequence[Any]) -> BarClosed:
    d = dict(zip(COLUMNS, r, strict=True))
    return BarClosed(
        event_id=d["event_id"],
        ts_event=d["ts_event"],
        ts_init=d["ts_init"],
        venue=d["venue"],
        symbol=d["symbol"],
        timeframe=d["timeframe"],
        open_time=d["open_time"],
        close_time=d["close_time"],
        open=d["open"],
        high=d["high"],
        low=d["low"],
        close=d["close"],
        volume=d["volume"],
        quote_volume=d["quote_volume"],
        trades=d["trades"],
        taker_buy_volume=d["taker_buy_volume"],
        taker_buy_quote_volume=d["taker_buy_quote_volume"],
        backfilled=d["backfilled"],
    )
