"""Pure risk core: sizes each signal per sub-account and approves or rejects the order.

Sizing: target = sign x fraction x equity / price (long +, short -, flat 0); the order is the
target minus what the account holds (its position plus approved-but-unfilled orders). Checks,
first failure wins: invalid_size (a size that is not finite or absurd, refused whatever else
holds), halted, no_equity, max_notional_per_symbol, max_gross_exposure. An order to a flat
target only reduces risk, so it skips no_equity and the exposure limits, but an emergency stop
refuses it too: while halted nothing new is sent, not even a close (the operator resumes or
flattens by hand).

Input is checked, never propagated: a signal whose price is not finite and within
ticktape.sanity's band, or an account, position or fill event with a non-finite number, is
rejected as input (InvalidInput: the shell dead-letters it and nothing changes); and every
output is checked for NaN and infinity before it leaves."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.risk.config import AccountConfig, RiskConfig
from ticktape import ids, subjects
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
    PositionUpdated,
    ResumeTrading,
    SignalGenerated,
)
from ticktape.events.envelope import EnvelopeFields
from ticktape.events.risk import OrderSide
from ticktape.memo import InputMemo
from ticktape.sanity import MAX_NOTIONAL, ensure_finite, price_problem

FILTER_SUBJECTS: tuple[str, ...] = (
    subjects.ALL_SIGNALS,
    subjects.ALL_ACCOUNTS,
    subjects.ALL_POSITIONS,
    subjects.ALL_FILLS,
    subjects.ALL_ORDERS,  # for OrderCanceled; OrderSubmitted is ignored
    subjects.ALL_CONTROL,
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


@dataclass
class _Pending:
    account: str
    key: Key
    quantity: float  # signed


@dataclass
class _Book:
    """What risk knows of one sub-account, from execution's events and its own approvals."""

    config: AccountConfig
    equity: float | None = None
    halted: bool = False
    positions: dict[Key, float] = field(default_factory=dict)
    prices: dict[Key, float] = field(default_factory=dict)


class RiskCore:
    """Decides OrderApproved/OrderRejected per subscribed account for each SignalGenerated."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._memo = InputMemo(REMEMBERED)
        self.books: dict[str, _Book] = {a.name: _Book(a) for a in config.accounts}
        self.pending: dict[str, _Pending] = {}  # order_id -> approved, not yet filled/canceled

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
                    book.equity = event.equity
            case PositionUpdated():
                if (book := self.books.get(event.account)) is not None:
                    key = (event.venue, event.symbol)
                    book.positions[key] = event.quantity
                    if math.isfinite(event.mark_price) and event.mark_price > 0:
                        book.prices[key] = event.mark_price
            case OrderFilled():
                pending = self.pending.pop(event.order_id, None)
                if pending is not None:  # else not ours, or a fill already applied
                    book = self.books[pending.account]
                    signed = event.quantity if event.side == "buy" else -event.quantity
                    # Applied now, not when PositionUpdated arrives, so a signal in between
                    # sees neither a stale position nor a vanished pending order.
                    book.positions[pending.key] = book.positions.get(pending.key, 0.0) + signed
                    book.prices[pending.key] = event.price
            case OrderCanceled():
                self.pending.pop(event.order_id, None)
            case EmergencyStop():
                for book in self._affected(event.account):
                    book.halted = True
            case ResumeTrading():
                for book in self._affected(event.account):
                    book.halted = False
        return []

    def pending_quantity(self, account: str, key: Key) -> float:
        """Signed quantity approved for account/key and not yet filled or canceled."""
        total = 0.0
        for p in self.pending.values():  # insertion order: deterministic
            if p.account == account and p.key == key:
                total += p.quantity
        return total

    def _affected(self, account: str) -> list[_Book]:
        if account == "*":
            return list(self.books.values())
        book = self.books.get(account)
        return [book] if book is not None else []

    def _decide(self, book: _Book, signal: SignalGenerated) -> Event | None:
        cfg = book.config
        if not cfg.trades(signal.strategy):
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
            return self._reject(book, signal, side, quantity, "halted", "trading is halted by an emergency stop")
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
            notional = abs(target) * price
            if notional > cfg.max_notional_per_symbol:
                return self._reject(
                    book,
                    signal,
                    side,
                    quantity,
                    "max_notional_per_symbol",
                    f"target notional {notional:.2f} exceeds max_notional_per_symbol {cfg.max_notional_per_symbol:g}",
                )
            gross = self._gross_after(book, key, qty)
            if gross > cfg.max_gross_exposure:
                return self._reject(
                    book,
                    signal,
                    side,
                    quantity,
                    "max_gross_exposure",
                    f"gross exposure after this order {gross:.2f} exceeds max_gross_exposure "
                    f"{cfg.max_gross_exposure:g}",
                )
        approval = OrderApproved(
            **_caused_by(signal, f"risk.{cfg.name}"),
            account=cfg.name,
            strategy=signal.strategy,
            venue=signal.venue,
            symbol=signal.symbol,
            side=side,
            quantity=quantity,
            reference_price=price,
            notional=quantity * price,
            target_quantity=target,
            signal_id=signal.event_id,
            bar_open_time=signal.bar_open_time,
        )
        self.pending[order_id_for(approval.event_id)] = _Pending(cfg.name, key, qty)
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
