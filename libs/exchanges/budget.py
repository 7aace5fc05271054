"""A venue's per-IP limits as a budget the services share, and the plan of a universe within it.

Venues count connections, subscriptions and messages per IP address, over all of the address's
connections (Hyperliquid: 10 connections, 1,000 subscriptions, 2,000 messages a minute; Binance:
300 connection attempts per 5 minutes). Market data, the symbol registry and execution run as
separate processes behind the same IP and nothing coordinates them at run time, so the split is
static: `venues.<venue>.ip_budget` in the shared configuration (ticktape.config.VenuesSettings)
gives each role a share of every limit, and each role keeps to its share.

`ip_budget` turns the venue adapter's documented limits (or the configured overrides) and a
role's share into whole numbers; `plan_universe` decides whether a ranked universe fits the
budget, and if not which symbols to keep: the best-ranked ones, so the lowest ranks are dropped
first, deterministically. Messages are not a universe bound: the shell paces them (a universe
whose subscribe messages exceed a minute's budget takes longer to subscribe, it is not refused).

Pure: no I/O, no clock."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import msgspec

from exchanges import adapter_for
from ticktape import ids
from ticktape.events import UniverseTrimmed

if TYPE_CHECKING:  # the settings are passed in; a core importing this module never reads config
    from ticktape.config import VenueSettings

Role = Literal["market_data", "symbol_registry", "execution"]
Decision = Literal["fits", "trimmed", "refused"]


class IpBudget(msgspec.Struct, frozen=True, kw_only=True):
    """What one role may use of a venue's per-IP limits; None where the venue sets no limit.
    `share` and the `*_limit` fields say where each number comes from (for error messages)."""

    venue: str
    role: str
    share: float
    connections: int | None
    subscriptions: int | None
    messages_per_minute: int | None
    connection_attempts: int | None
    connection_window_s: int | None
    rest_weight_per_minute: int | None
    streams_per_connection: int  # the venue's cap per connection (not per IP: not shared)
    connections_limit: int | None = None
    subscriptions_limit: int | None = None
    messages_limit: int | None = None
    on_exceed: Literal["trim", "refuse"] = "trim"


class UniversePlan(msgspec.Struct, frozen=True, kw_only=True):
    """A universe against a budget. kept: the symbols to follow (best rank first; () when
    refused), dropped: the others, in rank order. bound: the budget limit that bound the universe
    ("subscriptions_per_ip" or "connections_per_ip"; "" when it fits), bound_value: that limit's
    share for this role. connections and subscriptions: what `kept` needs."""

    venue: str
    decision: Decision
    wanted: tuple[str, ...]
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    streams_per_symbol: int
    symbols_per_connection: int
    connections: int
    subscriptions: int
    max_symbols: int | None
    bound: str = ""
    bound_value: int = 0


def _share(limit: int | None, share: float) -> int | None:
    # The tiny epsilon keeps 10 x 0.3 from flooring to 2 (0.3 is 0.29999... in binary).
    return None if limit is None else math.floor(limit * share + 1e-9)


def ip_budget(venue: str, settings: VenueSettings, role: Role) -> IpBudget:
    """`role`'s share of the venue's per-IP limits. ValueError naming the key when the share
    leaves the role none of a limit it needs: REST weight (every role), and for market data
    connections, subscriptions, messages and connection attempts, where the venue limits them."""
    limits = adapter_for(venue).limits
    over = settings.limits
    share = float(getattr(settings.ip_budget, role))
    connections = over.connections_per_ip or limits.connections_per_ip
    subscriptions = over.subscriptions_per_ip or limits.subscriptions_per_ip
    messages = over.messages_per_minute_per_ip or limits.messages_per_minute_per_ip
    attempts = over.connection_attempts or limits.connection_attempts
    rest_weight = over.rest_weight_per_minute_per_ip or limits.rest_weight_per_minute_per_ip
    budget = IpBudget(
        venue=venue,
        role=role,
        share=share,
        connections=_share(connections, share),
        subscriptions=_share(subscriptions, share),
        messages_per_minute=_share(messages, share),
        connection_attempts=_share(attempts, share),
        connection_window_s=limits.connection_window_s,
        rest_weight_per_minute=_share(rest_weight, share),
        streams_per_connection=limits.streams_per_connection,
        connections_limit=connections,
        subscriptions_limit=subscriptions,
        messages_limit=messages,
        on_exceed=settings.on_exceed,
    )
    checked = [("rest_weight_per_minute_per_ip", budget.rest_weight_per_minute, rest_weight)]
    if role == "market_data":
        checked += [
            ("connections_per_ip", budget.connections, connections),
            ("subscriptions_per_ip", budget.subscriptions, subscriptions),
            ("messages_per_minute_per_ip", budget.messages_per_minute, messages),
            ("connection_attempts", budget.connection_attempts, attempts),
        ]
    for name, value, limit in checked:
        if value is not None and value < 1:
            raise ValueError(
                f"venues.{venue}.ip_budget.{role}: {share:g} of {name} {limit} leaves {role} "
                f"none; raise the share (or venues.{venue}.limits.{name})"
            )
    return budget


def plan_universe(
    budget: IpBudget, ranked: Sequence[str], *, streams_per_symbol: int, streams_per_connection: int
) -> UniversePlan:
    """Whether the universe `ranked` (best first) fits the budget with streams_per_symbol
    subscriptions per symbol and at most streams_per_connection per connection (capped by the
    venue's); if not, trimmed to its best-ranked symbols or refused, as the budget's on_exceed
    says. Duplicates are ignored after their first (best) rank."""
    if streams_per_symbol < 1 or streams_per_connection < 1:
        raise ValueError("streams_per_symbol and streams_per_connection must be >= 1")
    wanted = tuple(dict.fromkeys(ranked))
    per_connection = max(1, min(streams_per_connection, budget.streams_per_connection) // streams_per_symbol)
    bounds: list[tuple[int, str, int]] = []  # (max symbols, limit name, budget value)
    if budget.subscriptions is not None:
        bounds.append((budget.subscriptions // streams_per_symbol, "subscriptions_per_ip", budget.subscriptions))
    if budget.connections is not None:
        bounds.append((budget.connections * per_connection, "connections_per_ip", budget.connections))
    tightest = min(bounds) if bounds else None
    max_symbols = tightest[0] if tightest else None
    if max_symbols is None or len(wanted) <= max_symbols:
        return _plan(budget, "fits", wanted, wanted, streams_per_symbol, per_connection, max_symbols)
    assert tightest is not None
    _, bound, value = tightest
    if budget.on_exceed == "refuse":
        return _plan(budget, "refused", wanted, (), streams_per_symbol, per_connection, max_symbols, bound, value)
    kept = wanted[:max_symbols]
    return _plan(budget, "trimmed", wanted, kept, streams_per_symbol, per_connection, max_symbols, bound, value)


def _plan(
    budget: IpBudget,
    decision: Decision,
    wanted: tuple[str, ...],
    kept: tuple[str, ...],
    streams_per_symbol: int,
    per_connection: int,
    max_symbols: int | None,
    bound: str = "",
    bound_value: int = 0,
) -> UniversePlan:
    kept_set = set(kept)
    return UniversePlan(
        venue=budget.venue,
        decision=decision,
        wanted=wanted,
        kept=kept,
        dropped=tuple(s for s in wanted if s not in kept_set),
        streams_per_symbol=streams_per_symbol,
        symbols_per_connection=per_connection,
        connections=-(-len(kept) // per_connection),
        subscriptions=len(kept) * streams_per_symbol,
        max_symbols=max_symbols,
        bound=bound,
        bound_value=bound_value,
    )


def refusal(plan: UniversePlan, budget: IpBudget, universe_key: str) -> str:
    """The config error of a refused plan: what exceeds which budget, and the keys to change."""
    venue = plan.venue
    need = plan.subscriptions if plan.bound == "subscriptions_per_ip" else None
    if need is None:
        need_text = f"{-(-len(plan.wanted) // plan.symbols_per_connection)} connections"
    else:
        need_text = f"{len(plan.wanted) * plan.streams_per_symbol} subscriptions"
    limit = budget.subscriptions_limit if plan.bound == "subscriptions_per_ip" else budget.connections_limit
    return (
        f"venues.{venue}.on_exceed is refuse and a universe of {len(plan.wanted)} {venue} symbols needs "
        f"{need_text}, over {budget.role}'s budget of {plan.bound_value} ({plan.bound} {limit} x "
        f"venues.{venue}.ip_budget.{budget.role} {budget.share:g}; at most {plan.max_symbols} symbols): "
        f"lower {universe_key}, raise venues.{venue}.ip_budget.{budget.role}, or set "
        f"venues.{venue}.on_exceed: trim"
    )


def trimmed_event(plan: UniversePlan, *, service: str, universe_id: str, ts: int) -> UniverseTrimmed:
    """The UniverseTrimmed of a trimmed plan, caused by the universe event `universe_id`; its id
    derives from that and the service, so a replay or a restart gets the same id."""
    return UniverseTrimmed(
        event_id=ids.derive("universe.trimmed", service, plan.venue, universe_id),
        ts_event=ts,
        ts_init=ts,
        causation_id=universe_id,
        venue=plan.venue,
        service=service,
        wanted=plan.wanted,
        kept=plan.kept,
        dropped=plan.dropped,
        limit=plan.bound,
        limit_value=plan.bound_value,
        streams_per_symbol=plan.streams_per_symbol,
    )
