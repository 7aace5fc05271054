"""Symbol-registry events (stream subjects symbols.>)."""

from __future__ import annotations

import msgspec

from ticktape.events.envelope import Envelope


class UniverseMember(msgspec.Struct, frozen=True, kw_only=True):
    """A ranked symbol, with the venue's trading rules from its REST metadata where it states
    them (0: not stated, nothing to check): tick_size the price increment, lot_size the quantity
    increment, min_notional the smallest order value in the quote asset. Execution checks
    approvals against them (services.execution.core)."""

    symbol: str
    rank: int
    quote_volume: float
    tick_size: float = 0.0
    lot_size: float = 0.0
    min_notional: float = 0.0


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


class UniverseTrimmed(Envelope, frozen=True, kw_only=True, tag="universe.trimmed"):
    """A universe cut to fit a venue's per-IP budget (exchanges.budget): `service` (market_data
    or symbol_registry) follows only `kept`, the best-ranked of `wanted`; `dropped` are the
    others, lowest ranks, in rank order. `limit` names the per-IP limit that bound it
    (subscriptions_per_ip, connections_per_ip) and `limit_value` the service's share of it;
    streams_per_symbol is the subscriptions each symbol takes. causation_id: the universe event."""

    venue: str
    service: str
    wanted: tuple[str, ...]
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    limit: str
    limit_value: int
    streams_per_symbol: int = 1
