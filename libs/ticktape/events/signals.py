"""Strategy output (stream subjects signals.>)."""

from __future__ import annotations

from typing import Literal

import msgspec

from ticktape.events.envelope import Envelope

Side = Literal["long", "short", "flat"]


class Vote(msgspec.Struct, frozen=True, kw_only=True):
    """One head's vote and the inputs that decided it: +1 fast EMA above slow, -1 below,
    0 not yet warmed up."""

    head: str
    fast: int
    slow: int
    fast_ema: float
    slow_ema: float
    vote: int


class SignalGenerated(Envelope, frozen=True, kw_only=True, tag="signal.generated"):
    """A strategy's target direction for a symbol changed on the close of bar_open_time."""

    strategy: str
    venue: str
    symbol: str
    timeframe: str
    side: Side
    previous_side: Side
    price: float
    bar_open_time: int
    k: int
    n: int
    agree: int
    votes: tuple[Vote, ...]
