"""The answer of each read endpoint, from the read model and the query: pure functions (the time
and what the shell probed are parameters), so the HTTP layer only parses, calls and encodes."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from services.api import performance as perf
from services.api import queries as q
from services.api import views as v
from services.api.health import NS
from services.api.readmodel import ReadModel
from ticktape.workers import configured_count

T = TypeVar("T")


def _page(items: Iterable[T], offset: int, limit: int) -> tuple[tuple[T, ...], int, int | None]:
    """(the page, how many matched, the next page's offset or None)."""
    matched = list(items)
    page = tuple(itertools.islice(matched, offset, offset + limit))
    following = offset + limit if offset + limit < len(matched) else None
    return page, len(matched), following


def _match(value: str, wanted: str | None) -> bool:
    return wanted is None or value == wanted


def symbols(model: ReadModel, query: q.SymbolsQuery) -> v.Symbols:
    as_of = q.parse_time("as_of", query.as_of) if query.as_of is not None else None
    out = []
    for venue in sorted(model.universes):
        if _match(venue, query.venue):
            universe = model.universe(venue, as_of)
            if universe is not None:
                out.append(universe)
    return v.Symbols(universes=tuple(out))


def signals(model: ReadModel, symbol: str, query: q.SignalsQuery) -> v.Signals | None:
    """None when the symbol is neither in a universe nor in any signal (a 404)."""
    if not model.known_symbol(symbol):
        return None
    latest = model.signals.get(symbol, {})
    chosen = [latest[key] for key in sorted(latest) if _match(key[0], query.strategy) and _match(key[1], query.venue)]
    return v.Signals(symbol=symbol, signals=tuple(v.Signal.of(s) for s in chosen))


def positions(model: ReadModel, query: q.PositionsQuery) -> v.Positions:
    return v.Positions(
        positions=tuple(
            p
            for p in model.position_views()
            if _match(p.account, query.account)
            and _match(p.venue, query.venue)
            and _match(p.symbol, query.symbol)
            and (not query.open_only or p.quantity != 0)
        )
    )


def accounts(model: ReadModel, query: q.AccountsQuery) -> v.Accounts:
    out = []
    for name in sorted(model.accounts):
        if not _match(name, query.account):
            continue
        a = model.accounts[name]
        out.append(
            v.Account(
                account=name,
                initial_equity=a.initial_equity,
                equity=a.equity,
                realized_pnl=a.realized_pnl,
                unrealized_pnl=a.unrealized_pnl,
                fees_paid=a.fees_paid,
                gross_exposure=a.gross_exposure,
                net_exposure=a.net_exposure,
                halted=model.halted(name),
                open_positions=model.open_positions(name),
                updated_ns=a.ts_event,
            )
        )
    return v.Accounts(accounts=tuple(out))


def orders(model: ReadModel, query: q.OrdersQuery, page_max: int) -> v.Orders:
    matching = (
        o
        for o in model.order_views()
        if _match(o.account, query.account)
        and _match(o.strategy, query.strategy)
        and _match(o.venue, query.venue)
        and _match(o.symbol, query.symbol)
        and _match(o.side, query.side)
        and _match(o.status, query.status)
    )
    items, total, following = _page(matching, query.offset, min(query.limit, page_max))
    return v.Orders(items=items, total=total, offset=query.offset, next_offset=following)


def fills(model: ReadModel, query: q.FillsQuery, page_max: int) -> v.Fills:
    matching = (
        f
        for f in reversed(model.fills)
        if _match(f.account, query.account)
        and _match(f.strategy, query.strategy)
        and _match(f.venue, query.venue)
        and _match(f.symbol, query.symbol)
        and _match(f.side, query.side)
        and _match(f.order_id, query.order_id)
        and (query.since_ns is None or f.ts_event >= query.since_ns)
        and (query.until_ns is None or f.ts_event <= query.until_ns)
    )
    items, total, following = _page(matching, query.offset, min(query.limit, page_max))
    return v.Fills(items=items, total=total, offset=query.offset, next_offset=following)


def _window(curve: perf.Curve, window_s: float) -> perf.Span:
    last = curve.marks[-1].ts if curve.marks else 0
    return perf.Span(0, last - int(window_s * NS))


def performance(model: ReadModel, query: q.PerformanceQuery, default_window_s: float) -> v.Performance:
    window_s = query.window_s or default_window_s
    session = perf.Span(model.session_start_seq)
    account_out = []
    for name in sorted(model.equity):
        if not _match(name, query.account):
            continue
        curve = model.equity[name]
        trades = [t for (acct, _), book in sorted(model.books.items()) if acct == name for t in book.curve.trades]
        measured = perf.Curve(
            base=curve.base, marks=curve.marks, trades=sorted(trades, key=lambda t: t.seq), funding=curve.funding
        )
        account_out.append(
            v.AccountPerformance(
                account=name,
                equity=curve.marks[-1].value if curve.marks else curve.base,
                session=perf.stats(measured, session),
                window=perf.stats(measured, _window(curve, window_s)),
            )
        )
    strategy_out = []
    for (acct, strategy), book in sorted(model.books.items()):
        if not (_match(acct, query.account) and _match(strategy, query.strategy)):
            continue
        base = model.accounts[acct].initial_equity if acct in model.accounts else 0.0
        strategy_out.append(
            v.StrategyPerformance(
                account=acct,
                strategy=strategy,
                realized_pnl=book.realized,
                unrealized_pnl=book.unrealized(model.marks),
                session=perf.stats(book.curve, session, offset=base),
                window=perf.stats(book.curve, _window(book.curve, window_s), offset=base),
            )
        )
    return v.Performance(window_s=window_s, accounts=tuple(account_out), strategies=tuple(strategy_out))


def websocket_status(model: ReadModel, now_ns: int, workers: tuple[v.Worker, ...] = ()) -> v.WebsocketStatus:
    """`workers`: the signal workers probed, each reading the bars of its partition of the symbols."""
    out = []
    for venue in sorted(set(model.feeds) | set(model.bar_feeds)):
        status, stored = model.feeds.get(venue, (None, None))
        bars = model.bar_feeds.get(venue)
        shards = tuple(
            v.Shard(
                shard=s.shard,
                connected=s.connected,
                symbols=s.symbols,
                last_frame_age_ms=s.last_frame_age_ms,
                reconnects=s.reconnects,
                frames_per_s=s.frames_per_s,
            )
            for s in (status.shards if status is not None else ())
        )
        last_stored = bars.last_stored_ns if bars is not None else None
        out.append(
            v.VenueFeed(
                venue=venue,
                reported_ns=stored,
                report_age_s=max(0.0, (now_ns - stored) / NS) if stored is not None else None,
                shards=shards,
                shards_connected=sum(1 for s in shards if s.connected),
                bars=bars.bars if bars is not None else 0,
                last_bar_close_ns=bars.last_close_ns if bars is not None else None,
                last_bar_stored_ns=last_stored,
                last_bar_age_s=max(0.0, (now_ns - last_stored) / NS) if last_stored else None,
            )
        )
    return v.WebsocketStatus(venues=tuple(out), signal_workers=workers)


def scheduler_status(
    model: ReadModel, workers: tuple[v.Worker, ...], configured: tuple[tuple[str, str], ...]
) -> v.SchedulerStatus:
    """`configured`: (name, kind) of the strategies in the current session's config; the managed
    ones come from the read model (their latest StrategyChanged)."""
    kinds = dict(configured)
    names = sorted(set(kinds) | set(model.strategy_signals) | set(model.quarantined) | set(model.managed))
    strategies = []
    for name in names:
        count, last = model.strategy_signals.get(name, (0, 0))
        stopped = model.quarantined.get(name)
        managed = model.managed.get(name)
        strategies.append(
            v.StrategyInfo(
                name=name,
                kind=managed.kind if managed is not None else kinds.get(name, ""),
                signals=count,
                last_signal_ns=last or None,
                quarantined=f"{stopped.reason}: {stopped.error}" if stopped is not None else None,
                status=managed.status if managed is not None else None,
                account=managed.account if managed is not None else None,
                revision=managed.version if managed is not None else None,
            )
        )
    return v.SchedulerStatus(
        workers=workers,
        strategies=tuple(strategies),
        signals_per_min=len(model.recent_signals),
        lag=sum(w.pending + w.ack_pending for w in workers),
    )


def _doc(config_json: str) -> dict[str, Any]:
    """A session's recorded configuration ({} when absent or not a JSON object)."""
    try:
        doc = msgspec.json.decode(config_json or "{}")
    except msgspec.DecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def worker_count(model: ReadModel, service: str, fallback: int = 1) -> int:
    """How many worker processes `service` runs as in the current session: its WorkersChosen, else
    its section's `workers` in the session's configuration, else `fallback` (no session recorded:
    what this API's own configuration says)."""
    chosen = model.workers_chosen.get(service)
    if chosen is not None:
        return chosen
    if model.session_id:
        return configured_count(_doc(model.session_config), service) or 1
    return fallback


def configured_strategies(config_json: str) -> tuple[tuple[str, str], ...]:
    """(name, kind) of each strategy in a session's recorded configuration (signal.strategies)."""
    section = _doc(config_json).get("signal")
    listed = section.get("strategies") if isinstance(section, dict) else None
    out = []
    for entry in listed if isinstance(listed, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out.append((entry["name"], str(entry.get("kind", ""))))
    return tuple(out)


def sessions(model: ReadModel) -> v.Sessions:
    return v.Sessions(sessions=tuple(reversed(model.sessions.values())))
