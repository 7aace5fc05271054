"""Pure execution core: approvals become orders that fill at the next bar's open (paper
accounts) or at the venue (live accounts: the venue's answers arrive as venue.> input events),
and every bar marks the open positions and sub-account equity to its close.

Reduce-only orders (risk's protective exits and reducing orders while halted, and the flattening
of a stop --flatten, a risk halt with on_breach flatten or a close_positions shutdown) do not wait
for a bar: they fill at once at the position's mark (the close of the last bar that marked it),
moved by slippage_bps, paying taker_fee_bps, clipped to the position so they never open or flip
one. Halted or not, they pass.

Nothing is trusted: an approval whose quantity, price or notional is not finite, positive and
sane, or that would lever the account beyond its limit, is canceled with a reason code before
an order exists; a bar that is not sound is rejected as input (the shell dead-letters it); a
fill is computed on a copy of the position and applied only if every price, fee, position and
account total stays finite; and every output is checked for NaN and infinity before it leaves
(msgspec would write them as null, which no consumer could decode)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from exchanges.trading.client_ids import binance_client_order_id, hyperliquid_cloid
from services.execution import paper, reconcile
from services.execution.config import ExecutionConfig
from services.execution.held import HeldAt
from services.execution.live import LiveBook, LiveOrder
from services.execution.portfolio import Account, Key, Position, position_updated
from ticktape import ids, subjects
from ticktape.errors import InvalidInput
from ticktape.events import (
    AccountUpdated,
    BarClosed,
    EmergencyStop,
    Envelope,
    Event,
    FundingRate,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
    RiskHalted,
    ShutdownRequested,
    UniverseMember,
    UniverseUpdated,
    VenueFill,
    VenueFunding,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderRejected,
    VenueOrderUnknown,
    VenueSnapshot,
)
from ticktape.events.envelope import EnvelopeFields
from ticktape.events.market import bar_problem
from ticktape.memo import InputMemo
from ticktape.sanity import MAX_NOTIONAL, ensure_finite, price_problem
from ticktape.snapshots.codec import StateSnapshots

FILTER_SUBJECTS: tuple[str, ...] = (
    subjects.ALL_RISK,  # OrderApproved; OrderRejected is ignored
    subjects.bars(),  # every bar; the core drops timeframes other than config.timeframe
    subjects.ALL_CONTROL,
    subjects.ALL_UNIVERSES,  # UniverseUpdated: each symbol's lot size and minimum notional
    subjects.ALL_VENUE,  # the venue's answers about live accounts' orders (execution's gateway)
    subjects.ALL_FUNDING,  # FundingRate: perpetual funding settlements, applied to paper positions
)

# The perpetual venues: a FundingRate of another venue (none is published) changes nothing.
PERP_VENUES: frozenset[str] = frozenset({"binance_usdm", "hyperliquid"})

_SUBMIT = "execution.submit"  # handler of OrderSubmitted: its id is child_id(approval, _SUBMIT, 0)

# How many recent inputs' outputs a core remembers to answer redeliveries identically.
REMEMBERED = 1_000


def order_id_for(approval_id: str) -> str:
    """The order id of an approval, derived so that risk can match fills to its approvals."""
    return ids.child_id(approval_id, "execution.order", 0)


class ExecutionCore(StateSnapshots):
    """Paper broker for the configured sub-accounts.

    OrderApproved -> OrderSubmitted, or OrderCanceled with a reason: "unknown_account",
    "halted", "invalid_quantity" (not finite and > 0), "invalid_price" (reference price not
    finite or outside ticktape.sanity's band), "invalid_notional" (quantity x price above
    ticktape.sanity.MAX_NOTIONAL or not the approval's notional), "invalid_lot" (less than one
    lot of the symbol), "below_min_notional" (the quantity, rounded down to the lot, times the
    reference price is below the symbol's minimum order value), "max_leverage" (see
    AccountConfig). Lot and minimum come from the symbol registry's latest UniverseUpdated
    (UniverseMember); a symbol it never stated rules for is not checked. The order's quantity is
    the approval's rounded down to the lot. Orders are market orders: they carry no price, so
    the tick size is not applied. The next bar of that venue/symbol with a later open fills it: OrderFilled
    then PositionUpdated, or OrderCanceled "invalid_fill" if the fill would make a number
    non-finite. Then every position in the symbol is marked to the close (PositionUpdated), and
    each affected account gets an AccountUpdated. EmergencyStop cancels pending orders
    ("emergency_stop"), risk's RiskHalted too ("risk_halted"); both halt the account until a
    ResumeTrading. With `flatten` they also close every position of the account at the mark
    (reduce-only orders, reason "flatten"). ShutdownRequested (`ticktape up`'s on_shutdown) halts
    nothing: cancel_orders cancels the pending orders ("shutdown"), close_positions also closes
    the positions (reason "close_positions").

    A reduce-only approval passes a halt and skips the minimum notional and leverage checks (it
    only shrinks the position); it is clipped to the position (rounded down to the lot unless it
    closes it whole) and filled at once at the mark; with nothing to reduce it is canceled
    ("nothing_to_reduce").

    Live accounts (mode live, see AccountConfig) are checked the same way (an approval for
    another venue than the account's is canceled "venue_mismatch"), but nothing is filled here:
    the order is OrderSubmitted with mode live, its reference price and client order id, and
    execution's gateway sends it. The venue's answers come back as input events (venue.>):
    VenueFill -> OrderFilled, PositionUpdated, AccountUpdated (as a paper fill, at the venue's
    price, quantity and fee); VenueOrderRejected -> OrderCanceled with the venue's reason code;
    VenueOrderCanceled (a remainder canceled or expired) -> OrderCanceled with its reason;
    VenueOrderAccepted and VenueOrderUnknown change only the book (services.execution.live).
    Reduce-only orders and the closing orders of a flatten are sent the same way (reduced by
    what reduce-only orders in flight already close) instead of filled at the mark. A stop does
    not cancel a live order in flight (a market order: its outcome is the venue's to tell).

    FundingRate (a perpetual's settled funding, from market data) -> for each paper account
    that held that venue/symbol at the settlement's funding_time (services.execution.held: the
    quantity then, not when the rate arrives with a later poll; a fill at that very instant comes
    after it): payment = -quantity x mark x rate (longs pay a positive rate,
    shorts receive it), mark being the venue's mark at the settlement or, when the venue gives
    none, the position's mark (the close of the last bar that marked it); added to the position's
    and account's `funding` and to equity: PositionUpdated then AccountUpdated. A settlement at
    or before the last one applied to the symbol changes nothing (a re-poll, a redelivery). Live
    accounts are paid what their venue booked instead: VenueFunding (from the gateway) ->
    PositionUpdated, AccountUpdated, once per settlement."""

    def __init__(self, config: ExecutionConfig) -> None:
        self.config = config
        self._memo = InputMemo(REMEMBERED)
        self.accounts: dict[str, Account] = {a.name: Account(a.name, a.initial_equity) for a in config.accounts}
        self._leverage: dict[str, float] = {a.name: a.max_leverage for a in config.accounts}
        self.halted: dict[str, bool] = {name: False for name in self.accounts}
        self.pending: dict[str, OrderApproved] = {}  # order_id -> approval, in arrival order
        self._seen_orders: set[str] = set()  # membership only, never iterated
        self._last_open: dict[Key, int] = {}
        self._last_funding: dict[Key, int] = {}  # the last settlement applied per venue/symbol
        self.held = HeldAt()  # paper perpetual positions over time: funding pays what was held at settlement
        self.instruments: dict[Key, UniverseMember] = {}  # the latest trading rules per venue/symbol
        self._live_venue: dict[str, str] = {a.name: a.venue or "" for a in config.accounts if a.mode == "live"}
        self.live = LiveBook()
        # A live account trades only once it has reconciled with its venue (services.execution.reconcile).
        self.reconciled: dict[str, bool] = {name: False for name in self._live_venue}
        self._policy = {a.name: a.reconcile for a in config.accounts if a.mode == "live"}
        self.reports = reconcile.ReportTrail()

    def handle(self, event: Event) -> list[Event]:
        """Apply one input event, return the events to publish (possibly empty).

        The same input twice (same event_id, within the last REMEMBERED) is applied once and
        returns the same outputs again; their ids are the same, so JetStream drops repeats.
        Raises InvalidInput for a bar that is not sound (nothing changes then), and
        NonFiniteOutput if an output would carry NaN or infinity (a bug: never published)."""
        return self._memo.apply(event, self._checked)

    def _checked(self, event: Event) -> list[Event]:
        out = self._apply(event)
        ensure_finite(out)
        return out

    def _apply(self, event: Event) -> list[Event]:
        if isinstance(event, reconcile.REPORTS) and event.account in self._live_venue:
            self.reports.record(event)  # in log order: what a snapshot may not reflect yet
        match event:
            case OrderApproved():
                return self._on_approval(event)
            case BarClosed() if event.timeframe == self.config.timeframe:
                problem = bar_problem(event)
                if problem is not None:
                    raise InvalidInput(f"bar {event.venue} {event.symbol} {event.open_time}: {problem}")
                return self._on_bar(event)
            case EmergencyStop():
                return self._on_stop(event, self._affected(event.account), "emergency_stop", event.flatten is True)
            case RiskHalted():
                return self._on_stop(event, self._affected(event.account), "risk_halted", event.flatten)
            case ShutdownRequested():
                flatten = event.action == "close_positions"
                return self._cancel_and_flatten(event, self._affected(event.account), "shutdown", flatten, event.action)
            case ResumeTrading():
                for name in self._affected(event.account):
                    self.halted[name] = False
            case FundingRate():
                return self._on_funding(event)
            case UniverseUpdated():
                for member in event.members:
                    self.instruments[(event.venue, member.symbol)] = member
            case VenueFill() if event.account in self._live_venue:
                return self._on_venue_fill(event)
            case VenueOrderAccepted() if event.account in self._live_venue:
                return self._on_venue_accepted(event)
            case VenueFunding() if event.account in self._live_venue:
                return self._on_venue_funding(event)
            case VenueOrderRejected() | VenueOrderCanceled() if event.account in self._live_venue:
                return self._on_venue_closed(event)
            case VenueSnapshot() if event.account in self._live_venue:
                return reconcile.on_snapshot(self, event)
            case VenueOrderUnknown() if event.account in self._live_venue:
                live = self.live.find(event.account, event.client_order_id, "")
                if live is not None:
                    live.unknown = True
        return []

    def _on_funding(self, f: FundingRate) -> list[Event]:
        if f.venue not in PERP_VENUES:
            return []
        if not (math.isfinite(f.rate) and abs(f.rate) < 1.0):  # 100% per settlement is not a rate
            raise InvalidInput(f"funding {f.venue} {f.symbol} {f.funding_time}: rate={f.rate!r}")
        if f.mark_price and price_problem("mark_price", f.mark_price) is not None:
            raise InvalidInput(f"funding {f.venue} {f.symbol} {f.funding_time}: mark_price={f.mark_price!r}")
        key = (f.venue, f.symbol)
        last = self._last_funding.get(key)
        if last is not None and f.funding_time <= last:
            return []
        self._last_funding[key] = f.funding_time
        out: list[Event] = []
        for index, account in enumerate(self.accounts.values()):
            pos = account.positions.get(key)
            if account.name in self._live_venue or pos is None:
                continue
            held = self.held.at(account.name, key, f.funding_time, pos.quantity)  # at the settlement
            if held == 0:
                continue
            mark = f.mark_price or pos.mark_price
            after = replace(pos, funding=pos.funding + funding_payment(held, mark, f.rate))
            problem = after.nonfinite() or account.totals((key, after)).nonfinite()
            if problem is not None:
                raise InvalidInput(f"funding {f.venue} {f.symbol} {f.funding_time} would make {problem}")
            account.positions[key] = after
            position = position_updated(_caused_by(f, "execution.funding_position", index), account.name, key, after)
            out += [position, self._account_event(f, "execution.funding_account", index, account)]
        self.held.settled(key, f.funding_time)
        return out

    def _held_from(self, account: str, key: Key, time_ns: int, pos: Position) -> None:
        if key[0] in PERP_VENUES and account not in self._live_venue:
            self.held.filled(account, key, time_ns, pos.quantity)

    def _affected(self, account: str) -> list[str]:
        if account == "*":
            return list(self.accounts)
        return [account] if account in self.accounts else []

    def _on_approval(self, a: OrderApproved) -> list[Event]:
        order_id = order_id_for(a.event_id)
        if order_id in self._seen_orders:  # redelivered approval
            return []
        self._seen_orders.add(order_id)
        if a.account not in self.accounts:
            reason: str | None = "unknown_account"
        elif a.account in self._live_venue and a.venue != self._live_venue[a.account]:
            reason = "venue_mismatch"
        elif a.account in self._live_venue and not self.reconciled[a.account]:
            reason = "not_reconciled"  # no live order before the account agrees with its venue
        elif a.reduce_only is True:
            return self._on_reduce_only(a, order_id)
        elif self.halted[a.account]:
            reason = "halted"
        else:
            reason = self._approval_problem(a)
            if reason is None:
                a, reason = self._to_lot(a)
            if reason is None:
                reason = self._leverage_problem(a)
        if reason is not None:
            return [_canceled(_caused_by(a, "execution.cancel"), a, order_id, reason)]
        if a.account in self._live_venue:
            return self._send_live(self._order(a, order_id, a.quantity, live=True), a)
        self.pending[order_id] = a
        return [self._order(a, order_id, a.quantity, live=False)]

    def _order(
        self, a: OrderApproved, order_id: str, quantity: float, *, live: bool, reduce_only: bool = False
    ) -> OrderSubmitted:
        """The order an approval becomes: a live one carries the reference price and the client
        order id the venue sees; a reduce-only one its reason (fields left unset are not encoded,
        so paper orders keep the bytes they had before live trading existed)."""
        extra: dict[str, Any] = {}
        if reduce_only:
            extra.update(reduce_only=True, reason=a.reason if a.reason is not UNSET else "reduce_only")
        if live:
            extra.update(reference_price=a.reference_price, client_order_id=_client_order_id(a.venue, order_id))
        return OrderSubmitted(
            **_caused_by(a, _SUBMIT),
            order_id=order_id,
            account=a.account,
            venue=a.venue,
            symbol=a.symbol,
            side=a.side,
            quantity=quantity,
            mode="live" if live else self.config.mode,
            approval_id=a.event_id,
            **extra,
        )

    def _approval_problem(self, a: OrderApproved) -> str | None:
        """The reason code why an approval of a known account cannot become an order, or None."""
        if not (math.isfinite(a.quantity) and a.quantity > 0):
            return "invalid_quantity"
        if price_problem("reference_price", a.reference_price) is not None:
            return "invalid_price"
        notional = a.quantity * a.reference_price
        if not (notional <= MAX_NOTIONAL and math.isclose(a.notional, notional, rel_tol=1e-9)):
            return "invalid_notional"
        return None

    def _to_lot(self, a: OrderApproved) -> tuple[OrderApproved, str | None]:
        """The approval with its quantity rounded down to the symbol's lot, or the reason code why
        it cannot trade: "invalid_lot" (less than one lot), "below_min_notional"."""
        rules = self.instruments.get((a.venue, a.symbol))
        if rules is None:
            return a, None
        quantity = a.quantity
        if rules.lot_size > 0:
            # the relative epsilon keeps 0.3 / 0.1 (2.9999999999999996 in floats) at 3 lots
            lots = math.floor(quantity / rules.lot_size * (1 + 1e-12))
            quantity = round(lots * rules.lot_size, 12)
            if quantity <= 0:
                return a, "invalid_lot"
        if rules.min_notional > 0 and quantity * a.reference_price < rules.min_notional:
            return a, "below_min_notional"
        if quantity == a.quantity:
            return a, None
        return msgspec.structs.replace(a, quantity=quantity, notional=quantity * a.reference_price), None

    def _leverage_problem(self, a: OrderApproved) -> str | None:
        account = self.accounts[a.account]
        before, after = self._gross_exposure(account, a)
        if after > before and after > self._leverage[a.account] * account.totals().equity:
            return "max_leverage"
        return None

    def _gross_exposure(self, account: Account, a: OrderApproved) -> tuple[float, float]:
        """The account's gross exposure (positions and pending orders, at the mark or else the
        pending order's reference price; a's symbol at a's reference price) without and with a."""
        held = {k: p.quantity for k, p in account.positions.items()}
        prices = {k: p.mark_price for k, p in account.positions.items()}
        for pending in self.pending.values():  # insertion order: deterministic
            if pending.account == account.name:
                k = (pending.venue, pending.symbol)
                held[k] = held.get(k, 0.0) + _signed(pending)
                prices.setdefault(k, pending.reference_price)
        for live in self.live.in_flight(account.name):  # live accounts only; submission order
            k = (live.order.venue, live.order.symbol)
            held[k] = held.get(k, 0.0) + live.signed_remaining
            ref = live.order.reference_price
            prices.setdefault(k, ref if isinstance(ref, float) else 0.0)
        key = (a.venue, a.symbol)
        prices[key] = a.reference_price
        held.setdefault(key, 0.0)
        before = sum(abs(held[k]) * prices[k] for k in sorted(held))
        held[key] += _signed(a)
        after = sum(abs(held[k]) * prices[k] for k in sorted(held))
        return before, after

    def _on_stop(self, stop: EmergencyStop | RiskHalted, names: list[str], reason: str, flatten: bool) -> list[Event]:
        for name in names:
            self.halted[name] = True
        return self._cancel_and_flatten(stop, names, reason, flatten, "flatten")

    def _cancel_and_flatten(
        self,
        cause: EmergencyStop | RiskHalted | ShutdownRequested,
        names: list[str],
        reason: str,
        flatten: bool,
        close_reason: str,
    ) -> list[Event]:
        """Cancel the accounts' pending orders (`reason`), then, with `flatten`, close each of their
        positions at the mark (reduce-only orders, `close_reason`) and update each account."""
        out: list[Event] = []
        for order_id, a in list(self.pending.items()):
            if a.account in names:
                del self.pending[order_id]
                out.append(_canceled(_caused_by(cause, "execution.cancel", len(out), chain=a), a, order_id, reason))
        if not flatten:
            return out
        index = 0
        for i, name in enumerate(names):
            account = self.accounts[name]
            closed = False
            for key in sorted(account.positions):
                pos = account.positions[key]
                if pos.quantity == 0:
                    continue
                order_id = ids.child_id(cause.event_id, "execution.flatten_order", index)
                if name in self._live_venue:  # sent to the venue; filled when it says so
                    if not self.reconciled[name]:
                        continue  # its positions are not known to be the venue's: nothing is sent
                    quantity = abs(pos.quantity) - self._reducing(name, key, pos.quantity)
                    if quantity <= abs(pos.quantity) * 1e-9:
                        continue  # reduce-only orders in flight close it already
                    live_order = OrderSubmitted(
                        **_caused_by(cause, "execution.flatten", index),
                        order_id=order_id,
                        account=name,
                        venue=key[0],
                        symbol=key[1],
                        side="sell" if pos.quantity > 0 else "buy",
                        quantity=quantity,
                        mode="live",
                        reduce_only=True,
                        reason=close_reason,
                        reference_price=pos.mark_price,
                        client_order_id=_client_order_id(key[0], order_id),
                    )
                    out += self._send_live(live_order, cause)
                    index += 1
                    continue
                submitted = OrderSubmitted(
                    **_caused_by(cause, "execution.flatten", index),
                    order_id=order_id,
                    account=name,
                    venue=key[0],
                    symbol=key[1],
                    side="sell" if pos.quantity > 0 else "buy",
                    quantity=abs(pos.quantity),
                    mode=self.config.mode,
                    reduce_only=True,
                    reason=close_reason,
                )
                out += self._fill_at_mark(cause, index, submitted, cause)
                closed = True
                index += 1
            if closed:
                out.append(self._account_event(cause, "execution.flatten_account", i, account))
        return out

    def _on_reduce_only(self, a: OrderApproved, order_id: str) -> list[Event]:
        """A reduce-only approval: clipped to the position and filled at once at its mark."""
        reason = self._approval_problem(a)
        key = (a.venue, a.symbol)
        account = self.accounts[a.account]
        pos = account.positions.get(key)
        held = 0.0 if pos is None else pos.quantity
        quantity = 0.0
        if reason is None:
            if held == 0 or (held > 0) == (a.side == "buy"):
                reason = "nothing_to_reduce"
            else:
                quantity = min(a.quantity, abs(held))
                rules = self.instruments.get(key)
                if quantity < abs(held) and rules is not None and rules.lot_size > 0:
                    quantity = round(math.floor(quantity / rules.lot_size * (1 + 1e-12)) * rules.lot_size, 12)
                    if quantity <= 0:
                        reason = "invalid_lot"
        if reason is None and a.account in self._live_venue:
            quantity = min(quantity, abs(held) - self._reducing(a.account, key, held))
            if quantity <= abs(held) * 1e-9:
                reason = "nothing_to_reduce"  # reduce-only orders in flight close it already
        if reason is not None:
            return [_canceled(_caused_by(a, "execution.cancel"), a, order_id, reason)]
        if a.account in self._live_venue:
            return self._send_live(self._order(a, order_id, quantity, live=True, reduce_only=True), a)
        submitted = self._order(a, order_id, quantity, live=False, reduce_only=True)
        out = self._fill_at_mark(a, 0, submitted, a)
        if isinstance(out[-1], PositionUpdated):
            out.append(self._account_event(a, "execution.account", 0, account))
        return out

    # -- live accounts ---------------------------------------------------------------------------

    def _send_live(self, order: OrderSubmitted, chain: Envelope) -> list[Event]:
        """A live order: recorded in the book, published for the gateway to send; nothing fills."""
        self.live.add(order, chain, order.client_order_id if isinstance(order.client_order_id, str) else "")
        return [order]

    def _reducing(self, account: str, key: Key, held: float) -> float:
        """What the account's reduce-only orders in flight on key still close of a position `held`."""
        total = 0.0
        for live in self.live.in_flight(account):
            o = live.order
            if o.reduce_only is True and (o.venue, o.symbol) == key and (o.side == "sell") == (held > 0):
                total += abs(live.signed_remaining)
        return total

    def _on_venue_accepted(self, event: VenueOrderAccepted) -> list[Event]:
        live = self.live.get(event.order_id) or self.live.find(event.account, event.client_order_id, "")
        if live is None:
            return []
        live.unknown = False
        live.reported = max(live.reported, event.filled_quantity)
        if event.status == "filled":
            live.expected = event.filled_quantity
        out: list[Event] = []
        for fill in self.live.learn_venue_id(live, event.venue_order_id):  # fills that came first
            out += self._on_venue_fill(fill)
        if not live.closed and live.filled > 0 and live.done():
            self.live.close(live)
        return out

    def _on_venue_closed(self, event: VenueOrderRejected | VenueOrderCanceled) -> list[Event]:
        """The venue refused the order, or its remainder is canceled or expired: OrderCanceled with
        the venue's reason, once (an order already closed, or not ours, changes nothing)."""
        if isinstance(event, VenueOrderRejected):
            live = self.live.get(event.order_id) or self.live.find(event.account, event.client_order_id, "")
        else:
            live = self.live.find(event.account, event.client_order_id, event.venue_order_id)
        if live is None:
            return []
        if isinstance(event, VenueOrderCanceled):
            live.reported = event.filled_quantity  # its end says what filled in all
        if live.closed:
            return []
        self.live.close(live)
        o = live.order
        return [
            _canceled(
                _caused_by(event, "execution.venue_cancel", chain=live.chain, causation_id=o.event_id),
                o,
                o.order_id,
                event.reason,
            )
        ]

    def _on_venue_fill(self, fill: VenueFill) -> list[Event]:
        """A live fill: OrderFilled, the position after it and the account, as for paper."""
        if self.live.applied(fill.event_id):  # seen again (a re-query after a reconnect)
            return []
        problem = _fill_problem(fill)
        if problem is not None:
            raise InvalidInput(f"venue fill {fill.fill_id} of {fill.account}: {problem}")
        live = self.live.find(fill.account, fill.client_order_id, fill.venue_order_id)
        if live is None:
            self.live.park(fill)  # its order's acceptance is still on its way, or it is not ours
            return []
        if fill.venue_order_id and not live.venue_order_id:
            self.live.learn_venue_id(live, fill.venue_order_id)
        return self._apply_live_fill(fill, live)

    def _on_venue_funding(self, f: VenueFunding) -> list[Event]:
        """A live account's funding as its venue booked it: into the position's and the account's
        funding (and so equity, and the wallet reconciliation compares), once per settlement."""
        if self.live.applied(f.event_id):
            return []
        key = (f.venue, f.symbol)
        account = self.accounts[f.account]
        pos = account.positions.get(key) or Position()
        after = replace(pos, funding=pos.funding + f.amount)
        problem = after.nonfinite() or account.totals((key, after)).nonfinite()
        if problem is not None:
            raise InvalidInput(f"venue funding {f.symbol} {f.funding_time} of {f.account} would make {problem}")
        self.live.mark_applied(f.event_id)
        account.positions[key] = after
        position = position_updated(_caused_by(f, "execution.venue_funding_position"), f.account, key, after)
        return [position, self._account_event(f, "execution.venue_funding_account", 0, account)]

    def _apply_live_fill(self, fill: VenueFill, live: LiveOrder) -> list[Event]:
        o = live.order
        key = (o.venue, o.symbol)
        account = self.accounts[o.account]
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        pos = (account.positions.get(key) or Position()).after_fill(signed, fill.price, fill.fee)
        problem = pos.nonfinite() or account.totals((key, pos)).nonfinite()
        if problem is not None:
            raise InvalidInput(f"venue fill {fill.fill_id} of {fill.account} would make {problem}")
        self.live.mark_applied(fill.event_id)
        account.positions[key] = pos
        live.filled += fill.quantity
        if not live.closed and live.done():
            self.live.close(live)
        filled = OrderFilled(
            **_caused_by(fill, "execution.live_fill", chain=live.chain, causation_id=o.event_id),
            order_id=o.order_id,
            account=o.account,
            venue=o.venue,
            symbol=o.symbol,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            liquidity=fill.liquidity,
            mode="live",
        )
        position = position_updated(
            _caused_by(fill, "execution.live_position", chain=live.chain, causation_id=filled.event_id),
            o.account,
            key,
            pos,
        )
        return [filled, position, self._account_event(fill, "execution.live_account", 0, account)]

    def _fill_at_mark(self, cause: Envelope, index: int, order: OrderSubmitted, chain: Envelope) -> list[Event]:
        """The order, then its fill at the position's mark and the position after it; or, when the
        fill would make a number non-finite, the order and its cancel ("invalid_fill")."""
        key = (order.venue, order.symbol)
        account = self.accounts[order.account]
        pos = account.positions[key]
        signed = order.quantity if order.side == "buy" else -order.quantity
        price, fee = paper.fill(
            order.side,
            order.quantity,
            pos.mark_price,
            slippage_bps=self.config.slippage_bps,
            taker_fee_bps=self.config.taker_fee_bps,
        )
        after = pos.after_fill(signed, price, fee)
        after.mark_price = pos.mark_price  # still marked to the bar, not to its own fill
        problem = (
            (None if math.isfinite(price) and math.isfinite(fee) and price > 0 else f"price={price!r} fee={fee!r}")
            or after.nonfinite()
            or account.totals((key, after)).nonfinite()
        )
        if problem is not None:
            canceled = _canceled(
                _caused_by(cause, "execution.fill_cancel", index, chain=chain, causation_id=order.event_id),
                order,
                order.order_id,
                "invalid_fill",
            )
            return [order, canceled]
        account.positions[key] = after
        self._held_from(order.account, key, cause.ts_event, after)
        filled = OrderFilled(
            **_caused_by(cause, "execution.fill", index, chain=chain, causation_id=order.event_id),
            order_id=order.order_id,
            account=order.account,
            venue=order.venue,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            price=price,
            fee=fee,
            mode=self.config.mode,
        )
        position = position_updated(
            _caused_by(cause, "execution.position", index, chain=chain, causation_id=filled.event_id),
            order.account,
            key,
            after,
        )
        return [order, filled, position]

    def _account_event(self, cause: Envelope, handler: str, index: int, account: Account) -> AccountUpdated:
        t = account.totals()
        return AccountUpdated(
            **_caused_by(cause, handler, index),
            account=account.name,
            initial_equity=account.initial_equity,
            equity=t.equity,
            realized_pnl=t.realized_pnl,
            unrealized_pnl=t.unrealized_pnl,
            fees_paid=t.fees_paid,
            gross_exposure=t.gross_exposure,
            net_exposure=t.net_exposure,
            funding=_unless_zero(t.funding),
        )

    def _on_bar(self, bar: BarClosed) -> list[Event]:
        key = (bar.venue, bar.symbol)
        last = self._last_open.get(key)
        if last is not None and bar.open_time <= last:  # redelivered or late: already handled
            return []
        self._last_open[key] = bar.open_time
        out: list[Event] = []
        filled: set[str] = set()  # accounts that traded this symbol on this bar
        due = [
            (order_id, a)
            for order_id, a in self.pending.items()
            if (a.venue, a.symbol) == key and a.bar_open_time < bar.open_time
        ]
        for index, (order_id, a) in enumerate(due):
            del self.pending[order_id]
            events = self._fill(bar, order_id, a, index)
            if isinstance(events[0], OrderFilled):
                filled.add(a.account)
            out.extend(events)
        for index, account in enumerate(self.accounts.values()):
            pos = account.positions.get(key)
            if pos is None or (pos.quantity == 0 and account.name not in filled):
                continue
            pos.mark_price = bar.close
            out.append(self._position_event(bar, "execution.mark", index, account.name, key, pos))
            t = account.totals()
            out.append(
                AccountUpdated(
                    **_caused_by(bar, "execution.account", index, ts_event=bar.close_time),
                    account=account.name,
                    initial_equity=account.initial_equity,
                    equity=t.equity,
                    realized_pnl=t.realized_pnl,
                    unrealized_pnl=t.unrealized_pnl,
                    fees_paid=t.fees_paid,
                    gross_exposure=t.gross_exposure,
                    net_exposure=t.net_exposure,
                    funding=_unless_zero(t.funding),
                )
            )
        return out

    def _fill(self, bar: BarClosed, order_id: str, a: OrderApproved, index: int) -> list[Event]:
        price, fee = paper.fill(
            a.side,
            a.quantity,
            bar.open,
            slippage_bps=self.config.slippage_bps,
            taker_fee_bps=self.config.taker_fee_bps,
        )
        key = (a.venue, a.symbol)
        account = self.accounts[a.account]
        # Computed on a copy and applied only if every number stays finite: a NaN or infinity
        # in a position would be in every later position and account event of the account.
        pos = account.positions.get(key) or Position()
        pos = pos.after_fill(_signed(a), price, fee)
        problem = (
            (None if math.isfinite(price) and math.isfinite(fee) else f"price={price!r} fee={fee!r}")
            or pos.nonfinite()
            or account.totals((key, pos)).nonfinite()
        )
        submitted_id = ids.child_id(a.event_id, _SUBMIT, 0)
        if problem is not None:
            return [
                _canceled(
                    _caused_by(
                        bar, "execution.fill_cancel", index, ts_event=bar.close_time, chain=a, causation_id=submitted_id
                    ),
                    a,
                    order_id,
                    "invalid_fill",
                )
            ]
        account.positions[key] = pos
        self._held_from(a.account, key, bar.open_time, pos)  # filled at the bar's open
        # Ids derive from the bar that triggered the fill; causation follows the order's chain
        # (submitted -> filled -> position), which the consumer also uses to parent traces.
        filled = OrderFilled(
            **_caused_by(
                bar,
                "execution.fill",
                index,
                ts_event=bar.close_time,
                chain=a,
                causation_id=submitted_id,
            ),
            order_id=order_id,
            account=a.account,
            venue=a.venue,
            symbol=a.symbol,
            side=a.side,
            quantity=a.quantity,
            price=price,
            fee=fee,
            bar_open_time=bar.open_time,
            mode=self.config.mode,
        )
        return [
            filled,
            self._position_event(
                bar,
                "execution.position",
                index,
                a.account,
                key,
                pos,
                chain=a,
                causation_id=filled.event_id,
            ),
        ]

    def _position_event(
        self,
        bar: BarClosed,
        handler: str,
        index: int,
        account: str,
        key: Key,
        pos: Position,
        chain: Envelope | None = None,
        causation_id: str | None = None,
    ) -> PositionUpdated:
        return position_updated(
            _caused_by(bar, handler, index, ts_event=bar.close_time, chain=chain, causation_id=causation_id),
            account,
            key,
            pos,
        )


def funding_payment(quantity: float, mark: float, rate: float) -> float:
    """What a position of signed `quantity` receives at a funding settlement of `rate` with the
    perpetual marked at `mark`: -quantity x mark x rate (a long pays a positive rate, a short
    receives it; both the other way round when the rate is negative)."""
    return -quantity * mark * rate


def _unless_zero(value: float) -> float | UnsetType:
    """A funding total as an event field: unset (not encoded) while zero, so events of accounts that
    never saw a funding keep the bytes they had before funding existed."""
    return value if value else UNSET


def _signed(a: OrderApproved) -> float:
    return a.quantity if a.side == "buy" else -a.quantity


def _client_order_id(venue: str, order_id: str) -> str:
    """The client order id the gateway's client sends for order_id at venue (exchanges.trading.client_ids)."""
    return hyperliquid_cloid(order_id) if venue == "hyperliquid" else binance_client_order_id(order_id)


def _fill_problem(fill: VenueFill) -> str | None:
    """Why a venue fill cannot be applied (a number not finite, or not positive), or None."""
    if not (math.isfinite(fill.quantity) and fill.quantity > 0):
        return f"quantity={fill.quantity!r}"
    if price_problem("price", fill.price) is not None:
        return f"price={fill.price!r}"
    if not math.isfinite(fill.fee):
        return f"fee={fill.fee!r}"
    return None


def _canceled(
    fields: EnvelopeFields, order: OrderApproved | OrderSubmitted, order_id: str, reason: str
) -> OrderCanceled:
    """The cancel of `order_id` (an approval's or a submitted order's account, venue, symbol)."""
    return OrderCanceled(
        **fields, order_id=order_id, account=order.account, venue=order.venue, symbol=order.symbol, reason=reason
    )


def _caused_by(
    cause: Envelope,
    handler: str,
    index: int = 0,
    *,
    ts_event: int | None = None,
    chain: Envelope | None = None,
    causation_id: str | None = None,
) -> EnvelopeFields:
    """Envelope fields of an output triggered by `cause`: id derived from it, its times, and
    the correlation of `chain` (the order's approval, so a fill stays in the bar->signal->order
    chain) or else of the cause itself; causation_id defaults to the cause."""
    corr = chain if chain is not None else cause
    return {
        "event_id": ids.child_id(cause.event_id, handler, index),
        "ts_event": cause.ts_event if ts_event is None else ts_event,
        "ts_init": cause.ts_init,
        "causation_id": cause.event_id if causation_id is None else causation_id,
        "correlation_id": corr.correlation_id or corr.event_id,
    }
