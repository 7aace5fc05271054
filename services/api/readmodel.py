"""The API's read model: a projection of the event log, folded event by event in stream order.

It is rebuilt from the log at every start and is never a second source of truth: whatever it
answers, a reader of the stream could compute from the same events. Pure and deterministic (no
clock, no I/O): the API's shell feeds it, and a test that folds the same events twice gets the
same answers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from services.api import performance as perf
from services.api.strategies import ManagedStrategy, fold
from services.api.views import Fill, Member, Order, Position, SessionInfo, Universe
from ticktape.events import (
    AccountUpdated,
    BarClosed,
    DeadLettered,
    EmergencyStop,
    Event,
    MarketDataStatus,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
    RiskHalted,
    SessionStarted,
    SessionStopped,
    SignalGenerated,
    StrategyChanged,
    StrategyQuarantined,
    UniverseUpdated,
    WorkersChosen,
    type_tag,
)

MINUTE_NS = 60_000_000_000


@dataclass(slots=True)
class _Lot:
    quantity: float = 0.0  # signed: short < 0
    avg_price: float = 0.0


@dataclass(slots=True)
class StrategyBook:
    """One strategy's trading in one account, rebuilt from its fills: average-price lots per
    (venue, symbol), realized P&L and fees, and its P&L curve."""

    account: str
    strategy: str
    curve: perf.Curve
    lots: dict[tuple[str, str], _Lot] = field(default_factory=dict)
    realized: float = 0.0
    fees: float = 0.0

    def unrealized(self, marks: dict[tuple[str, str, str], float]) -> float:
        total = 0.0
        for (venue, symbol), lot in self.lots.items():
            mark = marks.get((self.account, venue, symbol))
            if lot.quantity and mark is not None:
                total += lot.quantity * (mark - lot.avg_price)
        return total

    def fill(self, fill: OrderFilled) -> tuple[bool, bool]:
        """Apply a fill to its lot; (closed part of a position, at a profit)."""
        lot = self.lots.setdefault((fill.venue, fill.symbol), _Lot())
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        self.fees += fill.fee
        if lot.quantity == 0 or (lot.quantity > 0) == (signed > 0):
            total = lot.quantity + signed
            lot.avg_price = (lot.avg_price * abs(lot.quantity) + fill.price * abs(signed)) / abs(total)
            lot.quantity = total
            return False, False
        closing = min(abs(signed), abs(lot.quantity))
        pnl = closing * (fill.price - lot.avg_price) * (1 if lot.quantity > 0 else -1)
        self.realized += pnl
        rest = lot.quantity + signed
        if abs(rest) < 1e-12:
            lot.quantity, lot.avg_price = 0.0, 0.0
        elif (rest > 0) != (lot.quantity > 0):  # reversed: the rest opens at the fill's price
            lot.quantity, lot.avg_price = rest, fill.price
        else:
            lot.quantity = rest
        return True, pnl - fill.fee * closing / fill.quantity > 0


@dataclass(slots=True)
class _OrderRec:
    order_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    side: str
    quantity: float
    mode: str
    submitted_ns: int
    updated_ns: int
    status: str = "submitted"
    filled: float = 0.0
    notional: float = 0.0
    reason: str = ""

    def view(self) -> Order:
        return Order(
            order_id=self.order_id,
            account=self.account,
            strategy=self.strategy,
            venue=self.venue,
            symbol=self.symbol,
            side=self.side,  # type: ignore[arg-type]
            quantity=self.quantity,
            status=self.status,  # type: ignore[arg-type]
            mode=self.mode,  # type: ignore[arg-type]
            submitted_ns=self.submitted_ns,
            updated_ns=self.updated_ns,
            filled_quantity=self.filled,
            avg_fill_price=self.notional / self.filled if self.filled else None,
            reason=self.reason,
        )


@dataclass(slots=True)
class BarFeed:
    """A venue's bars: how many, the newest close time (exchange time) and when the newest of them
    was stored on the event log (the stream's time: how fresh the feed is, even for recorded bars)."""

    bars: int = 0
    last_close_ns: int | None = None
    last_stored_ns: int | None = None


class ReadModel:
    """Every answer of the API that comes from the event log. `apply(event, seq, stored_ns)` in
    stream order; `seq` is the event's stream sequence (the sessions and performance spans are cut
    by it). Dead letters come from their own stream: their sequences are not compared with the
    events' (`applied_seq` is the events stream's)."""

    def __init__(self, *, max_orders: int = 1_000_000, max_fills: int = 1_000_000) -> None:
        self.applied_seq = 0
        self.counts: dict[str, int] = {}
        self.universes: dict[str, list[UniverseUpdated]] = {}
        self.signals: dict[str, dict[tuple[str, str], SignalGenerated]] = {}
        self.strategy_signals: dict[str, tuple[int, int]] = {}  # name -> (count, last ts_event)
        self.recent_signals: deque[int] = deque()  # ts_event of the signals in the last minute
        self.last_signal_ts = 0
        self.quarantined: dict[str, StrategyQuarantined] = {}  # strategy -> why the signal service stopped it
        self.signal_count = 0
        self._approvals: dict[str, str] = {}  # approval event id -> strategy, until its order
        self.orders: dict[str, _OrderRec] = {}
        self.max_orders = max_orders
        self.fills: deque[Fill] = deque(maxlen=max_fills)
        self.positions: dict[tuple[str, str, str], PositionUpdated] = {}
        self.marks: dict[tuple[str, str, str], float] = {}
        self.accounts: dict[str, AccountUpdated] = {}
        self.equity: dict[str, perf.Curve] = {}
        self.books: dict[tuple[str, str], StrategyBook] = {}
        self._books_of: dict[str, list[StrategyBook]] = {}
        self.feeds: dict[str, tuple[MarketDataStatus, int]] = {}  # venue -> (latest, stored)
        self.bar_feeds: dict[str, BarFeed] = {}
        self.sessions: dict[str, SessionInfo] = {}
        self.session_start_seq = 0  # the current (latest) session's start; 0: the whole log
        self.session_config = ""  # the current session's effective configuration (JSON)
        self.session_id = ""  # the current session's
        self.workers_chosen: dict[str, int] = {}  # service -> its worker count in the current session
        self.dead_letters: dict[str, int] = {}  # per service
        self.dead_letter_stored: deque[int] = deque(maxlen=10_000)  # when the newest were stored
        self.halted_all = False
        self.halted_accounts: dict[str, bool] = {}
        self.managed: dict[str, ManagedStrategy] = {}  # `ticktape strategies`, by id, oldest first

    # --- folding ------------------------------------------------------------------------------

    def apply(self, event: Event, seq: int, stored_ns: int = 0) -> None:
        """Fold one event: `seq` its stream sequence, `stored_ns` when the stream stored it."""
        if not isinstance(event, DeadLettered):
            self.applied_seq = max(self.applied_seq, seq)
        tag = type_tag(type(event))
        self.counts[tag] = self.counts.get(tag, 0) + 1
        match event:
            case BarClosed():
                feed = self.bar_feeds.setdefault(event.venue, BarFeed())
                feed.bars += 1
                if feed.last_close_ns is None or event.close_time > feed.last_close_ns:
                    feed.last_close_ns = event.close_time
                feed.last_stored_ns = max(feed.last_stored_ns or 0, stored_ns)
            case UniverseUpdated():
                self.universes.setdefault(event.venue, []).append(event)
            case SignalGenerated():
                self._signal(event)
            case StrategyQuarantined():
                self.quarantined[event.strategy] = event
            case StrategyChanged():
                fold(self.managed, event)
            case OrderApproved():
                self._approvals[event.event_id] = event.strategy
            case OrderSubmitted():
                self._submitted(event)
            case OrderCanceled():
                rec = self.orders.get(event.order_id)
                if rec is not None:
                    rec.status, rec.reason, rec.updated_ns = "canceled", event.reason, event.ts_event
            case OrderFilled():
                self._filled(event, seq)
            case PositionUpdated():
                key = (event.account, event.venue, event.symbol)
                self.positions[key] = event
                self.marks[key] = event.mark_price
                for book in self._books_of.get(event.account, ()):
                    if book.lots.get((event.venue, event.symbol), _Lot()).quantity:
                        self._mark_book(book, seq, event.ts_event)
            case AccountUpdated():
                self.accounts[event.account] = event
                curve = self.equity.setdefault(event.account, perf.Curve(base=event.initial_equity))
                curve.mark(seq, event.ts_event, event.equity)
                curve.mark_funding(seq, event.ts_event, event.funding or 0.0)
            case DeadLettered():
                self.dead_letters[event.service] = self.dead_letters.get(event.service, 0) + 1
                self.dead_letter_stored.append(stored_ns)
            case MarketDataStatus():
                self.feeds[event.venue] = (event, stored_ns)
            case SessionStarted():
                self.sessions[event.session_id] = SessionInfo(
                    session_id=event.session_id,
                    started_ns=event.ts_event,
                    stopped_ns=None,
                    reason=None,
                    config_hash=event.config_hash,
                    code_version=event.code_version,
                    services=event.services,
                )
                self.session_start_seq = seq
                self.session_config = event.config_json
                self.session_id, self.workers_chosen = event.session_id, {}
            case WorkersChosen():
                if event.session_id == self.session_id:
                    self.workers_chosen[event.service] = event.workers
            case SessionStopped():
                info = self.sessions.get(event.session_id)
                if info is not None:
                    self.sessions[event.session_id] = SessionInfo(
                        session_id=info.session_id,
                        started_ns=info.started_ns,
                        stopped_ns=event.ts_event,
                        reason=event.reason,
                        config_hash=info.config_hash,
                        code_version=info.code_version,
                        services=info.services,
                    )
            case EmergencyStop() | ResumeTrading():
                halted = isinstance(event, EmergencyStop)
                if event.account == "*":
                    self.halted_all, self.halted_accounts = halted, {}
                else:
                    self.halted_accounts[event.account] = halted
            case RiskHalted():  # risk's own halt of one account, lifted by a resume
                self.halted_accounts[event.account] = True
            case _:
                pass

    def _signal(self, event: SignalGenerated) -> None:
        self.signals.setdefault(event.symbol, {})[(event.strategy, event.venue)] = event
        count, _ = self.strategy_signals.get(event.strategy, (0, 0))
        self.strategy_signals[event.strategy] = (count + 1, event.ts_event)
        self.signal_count += 1
        self.last_signal_ts = max(self.last_signal_ts, event.ts_event)
        self.recent_signals.append(event.ts_event)
        while self.recent_signals and self.recent_signals[0] <= self.last_signal_ts - MINUTE_NS:
            self.recent_signals.popleft()

    def _submitted(self, event: OrderSubmitted) -> None:
        if event.order_id in self.orders:
            return
        if len(self.orders) >= self.max_orders:
            del self.orders[next(iter(self.orders))]
        self.orders[event.order_id] = _OrderRec(
            order_id=event.order_id,
            account=event.account,
            strategy=self._approvals.pop(event.approval_id, ""),
            venue=event.venue,
            symbol=event.symbol,
            side=event.side,
            quantity=event.quantity,
            mode=event.mode,
            submitted_ns=event.ts_event,
            updated_ns=event.ts_event,
        )

    def _filled(self, event: OrderFilled, seq: int) -> None:
        rec = self.orders.get(event.order_id)
        strategy = rec.strategy if rec is not None else ""
        if rec is not None:
            rec.filled += event.quantity
            rec.notional += event.quantity * event.price
            rec.updated_ns = event.ts_event
            if rec.filled >= rec.quantity * (1 - 1e-9):
                rec.status = "filled"
        self.fills.append(
            Fill(
                fill_id=event.event_id,
                order_id=event.order_id,
                account=event.account,
                strategy=strategy,
                venue=event.venue,
                symbol=event.symbol,
                side=event.side,
                quantity=event.quantity,
                price=event.price,
                fee=event.fee,
                liquidity=event.liquidity,
                mode=event.mode,
                ts_event=event.ts_event,
            )
        )
        self.marks[(event.account, event.venue, event.symbol)] = event.price
        book = self.books.get((event.account, strategy))
        if book is None:  # its curve is P&L; the account's initial equity is added when measured
            book = StrategyBook(event.account, strategy, perf.Curve(base=0.0))
            self.books[(event.account, strategy)] = book
            self._books_of.setdefault(event.account, []).append(book)
        closed, win = book.fill(event)
        book.curve.trades.append(perf.Trade(seq, event.ts_event, event.fee, closed, win))
        self._mark_book(book, seq, event.ts_event)

    def _mark_book(self, book: StrategyBook, seq: int, ts: int) -> None:
        book.curve.mark(seq, ts, book.realized + book.unrealized(self.marks) - book.fees)

    # --- answers --------------------------------------------------------------------------------

    def recent_dead_letters(self, since_ns: int) -> int:
        """How many dead letters were stored at or after `since_ns`."""
        return sum(1 for stored in self.dead_letter_stored if stored >= since_ns)

    def halted(self, account: str) -> bool:
        return self.halted_accounts.get(account, self.halted_all)

    def universe(self, venue: str, as_of: int | None = None) -> Universe | None:
        """The venue's universe now, or the last one made at or before `as_of` (ns)."""
        history = self.universes.get(venue, [])
        chosen = None
        for update in history:
            if as_of is None or update.as_of <= as_of:
                chosen = update
        if chosen is None:
            return None
        return Universe(
            venue=chosen.venue,
            quote_asset=chosen.quote_asset,
            top_n=chosen.top_n,
            as_of=chosen.as_of,
            event_id=chosen.event_id,
            members=tuple(
                Member(
                    symbol=m.symbol,
                    rank=m.rank,
                    quote_volume=m.quote_volume,
                    tick_size=m.tick_size,
                    lot_size=m.lot_size,
                    min_notional=m.min_notional,
                )
                for m in sorted(chosen.members, key=lambda m: m.rank)
            ),
            added=chosen.added,
            removed=chosen.removed,
        )

    def known_symbol(self, symbol: str) -> bool:
        if symbol in self.signals:
            return True
        return any(symbol in u.symbols for history in self.universes.values() for u in history[-1:])

    def position_views(self) -> list[Position]:
        return [
            Position(
                account=p.account,
                venue=p.venue,
                symbol=p.symbol,
                quantity=p.quantity,
                avg_price=p.avg_price,
                mark_price=p.mark_price,
                realized_pnl=p.realized_pnl,
                unrealized_pnl=p.unrealized_pnl,
                fees_paid=p.fees_paid,
                updated_ns=p.ts_event,
            )
            for _, p in sorted(self.positions.items())
        ]

    def open_positions(self, account: str) -> int:
        return sum(1 for (a, _, _), p in self.positions.items() if a == account and p.quantity != 0)

    def order_views(self) -> list[Order]:
        """Newest first."""
        return [rec.view() for rec in reversed(self.orders.values())]
