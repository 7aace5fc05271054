"""Symbol-registry core: a venue's tradable universe from its REST payloads, one UniverseUpdated
per venue.

The venue adapter (libs/exchanges) fetches nothing and parses everything: which symbols are
eligible (trading perpetuals or spot pairs quoted in the quote asset) and their 24h quote volume
(Binance quoteVolume, Hyperliquid dayNtlVlm). This module ranks them and builds the event.

Pure and deterministic: the same payloads (and Date header) give the same event, id and times
included. as_of is the payload's own time where the venue reports one (Binance: the newest ticker
closeTime), else the HTTP Date header of the response, which the shell passes in (Hyperliquid's
metaAndAssetCtxs carries no time and Hyperliquid has no time endpoint). Never the wall clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from email.utils import parsedate_to_datetime

import msgspec

from exchanges import UniverseEntry, adapter_for, budget
from exchanges.base import FrameError, Millis
from exchanges.budget import IpBudget
from ticktape import ids
from ticktape.clock import NS_PER_MS
from ticktape.events import UniverseMember, UniverseTrimmed, UniverseUpdated
from ticktape.venues import BINANCE_SPOT, BINANCE_USDM


def select_universe(
    venue: str,
    bodies: Sequence[bytes | str],
    *,
    quote_asset: str,
    top_n: int,
    date_ms: int | None = None,
    previous: tuple[str, ...] | None = None,
) -> UniverseUpdated:
    """The venue's universe from the bodies of its adapter's universe_requests, in that order.

    date_ms: the response's HTTP Date (see http_date_ms), the time of venues whose payload has
    none. previous: the last published universe of this venue (None: there was none). Raises
    ValueError (FrameError for a bad payload) saying what is wrong."""
    entries = adapter_for(venue).parse_universe(bodies, quote_asset)
    return universe_event(
        venue,
        entries,
        quote_asset=quote_asset,
        top_n=top_n,
        as_of=as_of_ms(venue, bodies, date_ms) * NS_PER_MS,
        previous=previous,
    )


def universe_event(
    venue: str,
    entries: Iterable[UniverseEntry],
    *,
    quote_asset: str,
    top_n: int,
    as_of: int,
    previous: tuple[str, ...] | None = None,
) -> UniverseUpdated:
    """The top_n eligible entries by 24h quote volume (descending, ties by symbol) at as_of (ns).

    The id derives from (venue, as_of, symbols), so a retry or a restart that reads the same
    payloads publishes the same id and JetStream drops the duplicate. added/removed are relative
    to previous (None: every symbol is added)."""
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1 (got {top_n})")
    ranked = sorted(entries, key=lambda e: (-e.quote_volume, e.symbol))[:top_n]
    symbols = tuple(e.symbol for e in ranked)
    before = previous or ()
    return UniverseUpdated(
        event_id=ids.derive("universe", venue, as_of, *symbols),
        ts_event=as_of,
        ts_init=as_of,
        venue=venue,
        quote_asset=quote_asset,
        top_n=top_n,
        as_of=as_of,
        symbols=symbols,
        members=tuple(
            UniverseMember(
                symbol=e.symbol,
                rank=rank,
                quote_volume=e.quote_volume,
                tick_size=e.tick_size,
                lot_size=e.lot_size,
                min_notional=e.min_notional,
            )
            for rank, e in enumerate(ranked, start=1)
        ),
        added=tuple(s for s in symbols if s not in before),
        removed=tuple(s for s in before if s not in symbols),
    )


class _TickerTime(msgspec.Struct, gc=False):
    closeTime: Millis


# The adapters do not report the payload's time yet; this reads only the field they skip.
_ticker_times = msgspec.json.Decoder(list[_TickerTime], strict=False)
_TIMED_BY_TICKERS = (BINANCE_USDM, BINANCE_SPOT)  # bodies: (exchangeInfo, ticker/24hr)


def as_of_ms(venue: str, bodies: Sequence[bytes | str], date_ms: int | None) -> int:
    """When the payload describes the market, in ms: Binance, the newest ticker/24hr closeTime
    (eligible symbol or not); other venues, the response's Date header (date_ms)."""
    if venue in _TIMED_BY_TICKERS:
        if len(bodies) != 2:
            raise FrameError(f"expected 2 bodies (exchangeInfo, ticker/24hr), got {len(bodies)}")
        try:
            times = _ticker_times.decode(bodies[1])
        except msgspec.MsgspecError as exc:
            raise FrameError(f"bad ticker/24hr: {exc}") from None
        if not times:
            raise FrameError("ticker/24hr is empty: no universe and no as_of time")
        return max(t.closeTime for t in times)
    if date_ms is None:
        raise ValueError(f"{venue} payloads carry no time: pass the response's Date header as date_ms")
    return date_ms


def http_date_ms(value: str | None) -> int | None:
    """An HTTP Date header ('Mon, 17 Jul 2023 21:43:21 GMT') in ms since the epoch; None when
    absent or unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110: always GMT; a value without a zone is not a Date header
        return None
    return int(when.timestamp()) * 1000


def within_budget(
    venue: str,
    bodies: Sequence[bytes | str],
    *,
    quote_asset: str,
    top_n: int,
    ip_budget: IpBudget,
    date_ms: int | None = None,
    previous: tuple[str, ...] | None = None,
) -> tuple[UniverseUpdated, UniverseTrimmed | None]:
    """select_universe, checked against market data's share of the venue's per-IP budget: the
    registry's universe is what market data subscribes, at least one stream (klines) per symbol.
    When the top_n does not fit, the universe of the best-ranked symbols that do and the
    UniverseTrimmed that says what was dropped (symbols.trimmed.<venue>, caused by that
    universe); with on_exceed refuse, BudgetExceeded naming the keys to change."""
    wanted = select_universe(venue, bodies, quote_asset=quote_asset, top_n=top_n, date_ms=date_ms, previous=previous)
    plan = top_n_plan(ip_budget, wanted.symbols)
    if plan.decision == "fits":
        return wanted, None
    if plan.decision == "refused":
        raise BudgetExceeded(budget.refusal(plan, ip_budget, "symbol_registry.venues[].top_n"))
    kept = select_universe(
        venue, bodies, quote_asset=quote_asset, top_n=len(plan.kept), date_ms=date_ms, previous=previous
    )
    trimmed = budget.trimmed_event(plan, service="symbol_registry", universe_id=kept.event_id, ts=kept.ts_event)
    return kept, trimmed


def top_n_plan(ip_budget: IpBudget, ranked: Sequence[str]) -> budget.UniversePlan:
    """The plan of a ranked universe in market data's budget, one stream per symbol (klines;
    market data, which knows whether it also takes trades, checks again with its own count)."""
    return budget.plan_universe(
        ip_budget, ranked, streams_per_symbol=1, streams_per_connection=ip_budget.streams_per_connection
    )


class BudgetExceeded(Exception):  # not a ValueError: that is a venue failure, retried
    """A universe over the venue's per-IP budget with venues.<venue>.on_exceed: refuse."""
