"""The rotating mode of an expensive strategy (`rotate_every: R` in its entry): it is evaluated
on one bar in R of each (venue, symbol), so on about 1/R of the symbols at each bar close (K
symbols a minute of a universe of K x R on 1m bars), in a deterministic rotation.

A symbol's turn is a function of the symbol and the bar's time only: slot = FNV-1a of
"rotation:<venue>.<symbol>" modulo R, and a bar is its turn when its period number (open time
over the timeframe) modulo R is the slot. So one process or N workers (ticktape.workers) evaluate
the same bars, and a replay too. The salt keeps the slots independent of the worker partitions
(which hash the plain tokens): otherwise, with R = N, all of a worker's symbols would fall due in
the same minute and the others' workers would idle. Between its turns a symbol's bars still fill
the history windows; a rotating strategy should decide from them (not from state it updates on
every bar, since it is not called on every bar)."""

from __future__ import annotations

from ticktape import subjects
from ticktape.clock import TIMEFRAME_NS
from ticktape.events import BarClosed
from ticktape.workers import fnv1a32


def slot(every: int, venue: str, symbol: str) -> int:
    return fnv1a32(f"rotation:{subjects.token(venue)}.{subjects.token(symbol)}".encode()) % every


def due(every: int, bar: BarClosed) -> bool:
    """Whether a strategy evaluated on one bar in `every` of each symbol runs on this one."""
    if every <= 1:
        return True
    return slot(every, bar.venue, bar.symbol) == (bar.open_time // TIMEFRAME_NS[bar.timeframe]) % every
