"""Bars as market data publishes a backfill: a new symbol's history, or the minutes an outage
missed, fetched from REST in one burst and marked backfilled (services/market_data/core.py)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from tests.support.bars import wave_bars
from ticktape.events import BarClosed


def as_history(bars: Sequence[BarClosed], fetched_ns: int | None = None) -> list[BarClosed]:
    """`bars` as one REST backfill: backfilled, each made (ts_init) when the burst was fetched,
    by default when the next minute's live bar would have arrived."""
    at = bars[-1].ts_init if fetched_ns is None else fetched_ns
    return [msgspec.structs.replace(b, backfilled=True, ts_init=at) for b in bars]


def new_symbol_then_outage(
    symbol: str = "BTCUSDT",
    *,
    history: int = 150,
    live: int = 50,
    outage: int = 30,
    after: int = 30,
    period: int = 40,
) -> list[BarClosed]:
    """One symbol's bars in the order market data publishes them: `history` backfilled bars
    (a symbol with no history gets the most recent bars first), `live` live bars, then an outage
    of `outage` minutes repaired by a backfill burst when the next live bar arrives (it is held
    until the gap is filled), then `after` live bars."""
    bars = wave_bars(symbol, history + live + outage + after, period=period)
    gap_end = history + live + outage
    return [
        *as_history(bars[:history]),
        *bars[history : history + live],
        *as_history(bars[history + live : gap_end], fetched_ns=bars[gap_end].ts_init),
        *bars[gap_end:],
    ]
