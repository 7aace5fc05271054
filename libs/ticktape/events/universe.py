"""Symbol-registry events (stream subjects symbols.>)."""

from __future__ import annotations

import msgspec

from ticktape.events.envelope import Envelope


class UniverseMember(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    rank: int
    quote_volume: float


class UniverseUpdated(Envelope, frozen=True, kw_only=True, tag="symbols.universe.updated"):
    """The tradable universe of one venue: the top_n symbols by 24h quote volume at as_of."""

    venue: str
    quote_asset: str
    top_n: int
    as_of: int
    symbols: tuple[str, ...]
    members: tuple[UniverseMember, ...]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
