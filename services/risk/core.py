"""Pure risk core: sizes each signal per sub-account and approves or rejects the order, and stops
the bleeding by itself.

Sizing: target = sign x fraction x equity / price (long +, short -, flat 0); the order is the
target minus what the account holds (its position plus approved-but-unfilled orders). Checks,
first failure wins: invalid_size (a size that is not finite or absurd, refused whatever else
holds), halted, no_equity, then for an order to a non-flat target: cooldown, max_order_notional,
max_notional_per_symbol, max_open_positions, max_gross_exposure, max_margin_use. An order to a
flat target only reduces risk, so it skips no_equity and the limits.

Halts. An operator's emergency stop (EmergencyStop) or risk's own (RiskHalted, below) halts an
account: a signal's order is rejected "halted", unless it reduces a position: then it is cut to
what reduces it and approved reduce-only (reason "halted_reduce"). Under an operator's stop that
needs risk.reduce_while_halted (off by default, as every run before the key behaved).
ResumeTrading lifts both.

Automatic stops (each off unless configured, ticktape.accounts.AccountLimits / RiskConfig):
- on each AccountUpdated, the account's drawdown from its peak equity and its loss since the UTC
  day of event time opened (services.risk.limits), then the same over the sum of all accounts;
  a breach publishes RiskHalted with the reason code (on risk.halted.<account>, risk's own
  subject: no operator credential involved) and halts the account; with on_breach "flatten"
  execution then also closes its positions;
- on each PositionUpdated (a fill or a mark to a bar's close), stop_loss / take_profit: risk
  approves a reduce-only close of the position (reason "stop_loss" / "take_profit"), which
  execution fills at once at the mark; after a stop-loss, no new entry in that symbol for
  cooldown_minutes of event time.

Input is checked, never propagated: a signal whose price is not finite and within
ticktape.sanity's band, or an account, position or fill event with a non-finite number, is
rejected as input (InvalidInput: the shell dead-letters it and nothing changes); and every
output is checked for NaN and infinity before it leaves.

Routing: an account trades the signals of the strategies its `strategies` lists (or all, '*'); a
managed strategy whose StrategyChanged names an account, that account's alone; a retired one,
none (services.risk.routing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from msgspec import UNSET

from services.risk.config import AccountConfig, RiskConfig
from services.risk.limits import Breach, LossWatch, exit_reason, margin_use
from services.risk.routing import Routes
from ticktape import ids, subjects
from ticktape.clock import MINUTE_NS
from ticktape.errors import InvalidInput
from ticktape.events import (
    AccountUpdated,
    EmergencyStop,
    Envelope,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
    RiskHalted,
    SignalGenerated,
    StrategyChanged,
)
from ticktape.events.envelope import EnvelopeFields
from ticktape.events.risk import OrderSide
from ticktape.memo import InputMemo
from ticktape.sanity import MAX_NOTIONAL, ensure_finite, price_problem
from ticktape.snapshots.codec import StateSnapshots

FILTER_SUBJECTS: tuple[str, ...] = (
    subjects.ALL_SIGNALS,
    subjects.ALL_ACCOUNTS,
    subjects.ALL_POSITIONS,
    subjects.ALL_FILLS,
    subjects.ALL_ORDERS,  # OrderCanceled, and OrderSubmitted as execution's answer to an approval
    subjects.ALL_CONTROL,
    subjects.ALL_STRATEGIES,  # StrategyChanged: the account a managed strategy trades on (routing.py)
)

# How many recent inputs' outputs a core remembers to answer redeliveries identically.
REMEMBERED = 1_000

# An order below this fraction of the target/holding is float noise, not an order.
NEGLIGIBLE = 1e-9

Key = tuple[str, str]  # (venue, symbol)


def order_id_for(approval_id: str) -> str:
    """The order id execution gives an approval. Duplicated from services.execution.core
    (services never import each other); keep the two in step."""
    return ids.child_id(approval_id, "execution.order", 0)


# A halt by the operator's EmergencyStop; risk's own halts are named by their reason code.
OPERATOR = "emergency_stop"


@dataclass
class _Pending:
    account: str
    key: Key
    quantity: float  # signed
    reduce_only: bool = False
    number: int = 0  # the order in which risk approved it
    answered: bool = False  # execution submitted or canceled it


@dataclass
class _Book:
    """What risk knows of one sub-account, from execution's events and its own approvals."""

    config: AccountConfig
    equity: float | None = None
    halted: bool = False
    halted_by: str | None = None  # OPERATOR, or the reason code of risk's own halt
    positions: dict[Key, float] = field(default_factory=dict)
    prices: dict[Key, float] = field(default_factory=dict)
    owners: dict[Key, str] = field(default_factory=dict)  # strategy of the last approved signal order
    cooldown_until: dict[Key, int] = field(default_factory=dict)  # no entry before (event time, ns)
    watch: LossWatch = field(init=False)  # the account's own loss limits

    def __post_init__(self) -> None:
        self.watch = LossWatch(self.config.initial_equity)

    @property
    def current_equity(self) -> float:
        return self.config.initial_equity if self.equity is None else self.equity


class RiskCore(StateSnapshots):
    """Decides OrderApproved/OrderRejected per subscribed account for each SignalGenerated."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._memo = InputMemo(REMEMBERED)
        self.books: dict[str, _Book] = {a.name: _Book(a) for a in config.accounts}
        self.pending: dict[str, _Pending] = {}  # order_id -> approved, not yet filled/canceled
        self._approvals = 0  # approvals made so far: numbers the pending orders
        self.watch = LossWatch(self._total_equity())  # the global limits, over every account
        self.global_tripped = False
        self.routes = Routes()  # the managed strategies' accounts

    def handle(self, event: Event) -> list[Event]:
        """Apply one input event, return the events to publish (possibly empty).

        The same input twice (same event_id, within the last REMEMBERED) is applied once and
        returns the same outputs again; their ids are the same, so JetStream drops repeats."""
        return self._memo.apply(event, self._checked)

    def _checked(self, event: Event) -> list[Event]:
        _check_input(event)
        out = self._apply(event)
        ensure_finite(out)
        return out

    def _apply(self, event: Event) -> list[Event]:
        match event:
            case SignalGenerated():
                decisions = (self._decide(book, event) for book in self.books.values())
                return [d for d in decisions if d is not None]
            case AccountUpdated():
                if (book := self.books.get(event.account)) is not None:
                    return self._on_equity(book, event)
            case PositionUpdated():
                if (book := self.books.get(event.account)) is not None:
                    key = (event.venue, event.symbol)
                    book.positions[key] = event.quantity
                    if math.isfinite(event.mark_price) and event.mark_price > 0:
                        book.prices[key] = event.mark_price
                    return self._protect(book, key, event)
            case OrderSubmitted():
                self._answered(event.order_id)
            case OrderFilled():
                self._answered(event.order_id)
                pending = self.pending.pop(event.order_id, None)
                if pending is not None:  # else not ours, or a fill already applied
                    book = self.books[pending.account]
                    signed = event.quantity if event.side == "buy" else -event.quantity
                    # Applied now, not when PositionUpdated arrives, so a signal in between
                    # sees neither a stale position nor a vanished pending order.
                    book.positions[pending.key] = book.positions.get(pending.key, 0.0) + signed
                    book.prices[pending.key] = event.price
            case OrderCanceled():
                self._answered(event.order_id)
                self.pending.pop(event.order_id, None)
            case EmergencyStop():
                for book in self._affected(event.account):
                    book.halted, book.halted_by = True, OPERATOR
            case StrategyChanged():
                self.routes.apply(event)
            case ResumeTrading():
                for book in self._affected(event.account):
                    if book.halted_by not in (None, OPERATOR):  # lifting risk's own halt re-arms its limits
                        book.watch.rearm(book.current_equity)
                    book.halted, book.halted_by = False, None
                if event.account == "*" and self.global_tripped:
                    self.global_tripped = False
                    self.watch.rearm(self._total_equity())
        return []

    def pending_quantity(self, account: str, key: Key) -> float:
        """Signed quantity approved for account/key and not yet filled or canceled."""
        total = 0.0
        for p in self.pending.values():  # insertion order: deterministic
            if p.account == account and p.key == key:
                total += p.quantity
        return total

    def _answered(self, order_id: str) -> None:
        """Execution answered one of risk's orders. It reads approvals in the order risk published
        them, so a reduce-only order approved earlier and still unanswered never reached it: one
        risk made while rebuilding its state under a configuration the log was not recorded with
        (a stop_loss newly set, say), never published. Forget it, or it would count as on its way
        for ever. Only reduce-only orders: recordings made before them replay as they ran."""
        answered = self.pending.get(order_id)
        if answered is None or answered.answered:
            return
        answered.answered = True
        never_sent = [
            oid for oid, p in self.pending.items() if p.reduce_only and not p.answered and p.number < answered.number
        ]
        for oid in never_sent:
            del self.pending[oid]

    def _reduce_only_pending(self, account: str, key: Key) -> float:
        """Signed quantity of account/key's reduce-only orders approved and not yet done."""
        return sum(p.quantity for p in self.pending.values() if p.account == account and p.key == key and p.reduce_only)

    def _total_equity(self) -> float:
        return sum(book.current_equity for book in self.books.values())  # config order: deterministic

    def _on_equity(self, book: _Book, update: AccountUpdated) -> list[Event]:
        """Track the account's equity and check the loss limits, its own and the global ones."""
        before, total_before = book.current_equity, self._total_equity()
        book.equity = update.equity
        book.watch.observe(before, update.equity, update.ts_event)
        total = self._total_equity()
        self.watch.observe(total_before, total, update.ts_event)
        out: list[Event] = []
        cfg = book.config
        if not book.halted:
            breach = book.watch.breach(update.equity, cfg.max_drawdown, cfg.max_daily_loss)
            if breach is not None:
                out.append(self._halt(book, update, breach, update.equity, cfg.on_breach == "flatten"))
        if not self.global_tripped:
            breach = self.watch.breach(total, self.config.max_drawdown, self.config.max_daily_loss)
            if breach is not None:
                self.global_tripped = True
                detail = "the sum of all accounts: " + breach.detail
                shared = Breach("global_" + breach.reason, breach.reference, breach.limit, detail)
                flatten = self.config.on_breach == "flatten"
                out += [self._halt(b, update, shared, total, flatten) for b in self.books.values() if not b.halted]
        return out

    def _halt(self, book: _Book, cause: AccountUpdated, breach: Breach, equity: float, flatten: bool) -> RiskHalted:
        book.halted, book.halted_by = True, breach.reason
        return RiskHalted(
            **_caused_by(cause, f"risk.{book.config.name}.halt"),
            account=book.config.name,
            reason=breach.reason,
            detail=breach.detail,
            equity=equity,
            reference_equity=breach.reference,
            limit=breach.limit,
            flatten=flatten,
        )

    def _protect(self, book: _Book, key: Key, position: PositionUpdated) -> list[Event]:
        """A reduce-only close of the position when its mark crosses stop_loss or take_profit
        (none while such an order is already on its way)."""
        cfg = book.config
        if cfg.stop_loss is None and cfg.take_profit is None:
            return []
        reason = exit_reason(position.quantity, position.avg_price, position.mark_price, cfg.stop_loss, cfg.take_profit)
        if reason is None or self._reduce_only_pending(cfg.name, key) != 0:
            return []
        if reason == "stop_loss" and cfg.cooldown_minutes > 0:
            book.cooldown_until[key] = position.ts_event + round(cfg.cooldown_minutes * MINUTE_NS)
        return [
            self._approve(
                book,
                position,
                key,
                -position.quantity,
                position.mark_price,
                target=0.0,
                strategy=book.owners.get(key, "risk"),
                signal_id="",
                bar_open_time=position.ts_event,
                reason=reason,
            )
        ]

    def _reducing(self, book: _Book, key: Key, target: float | None, sign: int) -> float | None:
        """The signed order that moves the position toward `target` without crossing flat (the
        part of a signal's order that only reduces), or None when it would not reduce it.
        Opening orders still pending do not count: a halt cancels them."""
        pos = book.positions.get(key, 0.0) + self._reduce_only_pending(book.config.name, key)
        if pos == 0:
            return None
        if target is None:  # no equity to size on: only a signal against the position reduces it
            target = 0.0 if sign * pos < 0 else pos
        goal = 0.0 if target * pos <= 0 else target
        cut = goal - pos
        if abs(goal) >= abs(pos) or abs(cut) <= NEGLIGIBLE * abs(pos):
            return None
        return cut

    def _affected(self, account: str) -> list[_Book]:
        if account == "*":
            return list(self.books.values())
        book = self.books.get(account)
        return [book] if book is not None else []

    def _decide(self, book: _Book, signal: SignalGenerated) -> Event | None:
        cfg = book.config
        if not self.routes.trades(cfg, signal.strategy):
            return None
        price = signal.price
        if price_problem("price", price) is not None:
            raise InvalidInput(f"signal {signal.event_id} has a bad price {price!r}")
        key = (signal.venue, signal.symbol)
        book.prices[key] = price
        sign = {"long": 1, "short": -1 if cfg.allow_short else 0, "flat": 0}[signal.side]
        equity = cfg.initial_equity if book.equity is None else book.equity
        held = book.positions.get(key, 0.0) + self.pending_quantity(cfg.name, key)

        if sign != 0 and equity <= 0:
            target: float | None = None  # nothing to size on: rejected below as no_equity
            side: OrderSide = "buy" if sign > 0 else "sell"
            qty = quantity = 0.0
        else:
            target = sign * cfg.fraction * equity / price
            qty = target - held
            size_problem = _size_problem(target, qty, price, opening=sign != 0)
            if size_problem is not None:  # before anything reads qty: it may be infinite
                side_of: OrderSide | None = "buy" if sign > 0 else "sell" if sign < 0 else None
                return self._reject(book, signal, side_of, 0.0, "invalid_size", size_problem)
            if qty == 0 or abs(qty) <= NEGLIGIBLE * max(abs(target), abs(held)):
                return None
            side, quantity = ("buy" if qty > 0 else "sell"), abs(qty)
        if book.halted:
            legacy = book.halted_by == OPERATOR and not self.config.reduce_while_halted
            cut = None if legacy else self._reducing(book, key, target, sign)
            if cut is None:
                detail = (
                    "trading is halted by an emergency stop"
                    if book.halted_by == OPERATOR
                    else f"trading is halted by risk ({book.halted_by}): only orders that reduce a position pass"
                )
                return self._reject(book, signal, side, quantity, "halted", detail)
            return self._approve(
                book,
                signal,
                key,
                cut,
                price,
                target=book.positions.get(key, 0.0) + self._reduce_only_pending(cfg.name, key) + cut,
                strategy=signal.strategy,
                signal_id=signal.event_id,
                bar_open_time=signal.bar_open_time,
                reason="halted_reduce",
            )
        if target is None:
            return self._reject(
                book,
                signal,
                side,
                quantity,
                "no_equity",
                f"equity is {equity:g}; there is nothing to size a {signal.side} position on",
            )
        if sign != 0:
            problem = self._entry_problem(book, signal, key, held, qty, target, price)
            if problem is not None:
                return self._reject(book, signal, side, quantity, *problem)
        book.owners[key] = signal.strategy
        return self._approve(
            book,
            signal,
            key,
            qty,
            price,
            target=target,
            strategy=signal.strategy,
            signal_id=signal.event_id,
            bar_open_time=signal.bar_open_time,
        )

    def _entry_problem(
        self, book: _Book, signal: SignalGenerated, key: Key, held: float, qty: float, target: float, price: float
    ) -> tuple[str, str] | None:
        """(reason code, detail) why an order to a non-flat target is refused, or None."""
        cfg = book.config
        until = book.cooldown_until.get(key)
        if until is not None and signal.ts_event < until:
            return "cooldown", (
                f"no new entry in {key[1]} until {until} (event time, ns): a stop-loss closed it "
                f"(cooldown_minutes {cfg.cooldown_minutes:g})"
            )
        if cfg.max_order_notional is not None and abs(qty) * price > cfg.max_order_notional:
            return "max_order_notional", (
                f"order notional {abs(qty) * price:.2f} exceeds max_order_notional {cfg.max_order_notional:g}"
            )
        notional = abs(target) * price
        if notional > cfg.max_notional_per_symbol:
            return "max_notional_per_symbol", (
                f"target notional {notional:.2f} exceeds max_notional_per_symbol {cfg.max_notional_per_symbol:g}"
            )
        if cfg.max_open_positions is not None and abs(held) <= NEGLIGIBLE * abs(target):
            open_now = self._open_positions(book, key)
            if open_now >= cfg.max_open_positions:
                return "max_open_positions", (
                    f"{open_now} positions open or on order; max_open_positions is {cfg.max_open_positions}"
                )
        gross = self._gross_after(book, key, qty)
        if gross > cfg.max_gross_exposure:
            return "max_gross_exposure", (
                f"gross exposure after this order {gross:.2f} exceeds max_gross_exposure {cfg.max_gross_exposure:g}"
            )
        if cfg.max_margin_use is not None:
            use = margin_use(gross, cfg.max_leverage, book.current_equity)
            if use > cfg.max_margin_use:
                return "max_margin_use", (
                    f"margin after this order {gross / cfg.max_leverage:.2f} (gross {gross:.2f} / max_leverage "
                    f"{cfg.max_leverage:g}) is {use:.2%} of equity {book.current_equity:.2f}; max_margin_use is "
                    f"{cfg.max_margin_use:g}"
                )
        return None

    def _open_positions(self, book: _Book, besides: Key) -> int:
        """How many other symbols the account holds or has orders for."""
        name = book.config.name
        keys = set(book.positions) | {p.key for p in self.pending.values() if p.account == name}
        count = 0
        for k in sorted(keys - {besides}):
            position, pending = book.positions.get(k, 0.0), self.pending_quantity(name, k)
            if abs(position + pending) > NEGLIGIBLE * max(abs(position), abs(pending)):
                count += 1
        return count

    def _approve(
        self,
        book: _Book,
        cause: Envelope,
        key: Key,
        qty: float,
        price: float,
        *,
        target: float,
        strategy: str,
        signal_id: str,
        bar_open_time: int,
        reason: str | None = None,
    ) -> OrderApproved:
        """Approve a signed order of `qty` and count it as pending. A `reason` makes it
        reduce-only (risk's own exits, and reducing orders while halted); a signal's approval has
        no reason and, caused by the signal, the id and bytes it always had."""
        name = book.config.name
        quantity = abs(qty)
        handler = f"risk.{name}" if isinstance(cause, SignalGenerated) else f"risk.{name}.{reason}"
        approval = OrderApproved(
            **_caused_by(cause, handler),
            account=name,
            strategy=strategy,
            venue=key[0],
            symbol=key[1],
            side="buy" if qty > 0 else "sell",
            quantity=quantity,
            reference_price=price,
            notional=quantity * price,
            target_quantity=target,
            signal_id=signal_id,
            bar_open_time=bar_open_time,
            reduce_only=UNSET if reason is None else True,
            reason=UNSET if reason is None else reason,
        )
        self._approvals += 1
        self.pending[order_id_for(approval.event_id)] = _Pending(name, key, qty, reason is not None, self._approvals)
        return approval

    def _gross_after(self, book: _Book, key: Key, qty: float) -> float:
        """Σ |position + pending| x last price over the account's symbols, with this order."""
        name = book.config.name
        keys = set(book.positions) | {p.key for p in self.pending.values() if p.account == name}
        keys.add(key)
        gross = 0.0
        for k in sorted(keys):  # sorted: float sums must not depend on set order
            held = book.positions.get(k, 0.0) + self.pending_quantity(name, k)
            if k == key:
                held += qty
            gross += abs(held) * book.prices.get(k, 0.0)
        return gross

    def _reject(
        self,
        book: _Book,
        signal: SignalGenerated,
        side: OrderSide | None,
        quantity: float,
        reason: str,
        detail: str,
    ) -> OrderRejected:
        return OrderRejected(
            **_caused_by(signal, f"risk.{book.config.name}"),
            account=book.config.name,
            strategy=signal.strategy,
            venue=signal.venue,
            symbol=signal.symbol,
            side=side,
            quantity=quantity,
            reason=reason,
            detail=detail,
            signal_id=signal.event_id,
        )


def _size_problem(target: float, quantity: float, price: float, *, opening: bool) -> str | None:
    """Why a sized order is absurd (a number not finite, or an opening notional above
    MAX_NOTIONAL), or None. Closing is always allowed as long as the numbers are finite."""
    notional = quantity * price
    if not (math.isfinite(target) and math.isfinite(quantity) and math.isfinite(notional)):
        return f"sizing gave a non-finite order (target {target!r}, quantity {quantity!r}, price {price!r})"
    if opening and abs(target) * price > MAX_NOTIONAL:
        return f"target notional {abs(target) * price:g} exceeds the hard limit {MAX_NOTIONAL:g}"
    return None


def _check_input(event: Event) -> None:
    """Raise InvalidInput for an execution event whose numbers are not finite (or, for a fill,
    not positive): risk must not size on them."""
    match event:
        case AccountUpdated():
            values: tuple[tuple[str, float], ...] = (("equity", event.equity),)
        case PositionUpdated():
            values = (("quantity", event.quantity), ("mark_price", event.mark_price))
        case OrderFilled():
            if not (event.quantity > 0 and event.price > 0):
                raise InvalidInput(
                    f"fill {event.event_id}: quantity and price must be > 0 (got {event.quantity!r}, {event.price!r})"
                )
            values = (("quantity", event.quantity), ("price", event.price))
        case _:
            return
    for name, value in values:
        if not math.isfinite(value):
            raise InvalidInput(f"{type(event).__name__} {event.event_id}: {name} is not finite ({value!r})")


def _caused_by(cause: Envelope, handler: str, index: int = 0) -> EnvelopeFields:
    """Envelope fields of an output of `cause`: derived id, the cause's times, same chain."""
    return {
        "event_id": ids.child_id(cause.event_id, handler, index),
        "ts_event": cause.ts_event,
        "ts_init": cause.ts_init,
        "causation_id": cause.event_id,
        "correlation_id": cause.correlation_id or cause.event_id,
    }
