"""Reconciliation of a live account with its venue, inside the pure execution core (issue #8 item 8).

Execution's gateway (the shell) asks the venue what the account holds (open orders, positions,
wallet balance) and publishes it as a VenueSnapshot; the core compares it with the state it built
from the log, in log order, and resolves every difference by the account's policy
(`accounts[i].reconcile`, ticktape.accounts.ReconcilePolicy):

- unknown_open_order: open at the venue, unknown to the log (or closed in it). cancel: a
  VenueCancelRequested the gateway sends like any order; adopt: the order joins the core's book
  (an order id derived from the snapshot, no OrderSubmitted: nothing is sent), so its fills
  become OrderFilled and PositionUpdated; alert: nothing changes, the account may not trade.
- missing_open_order: an order the book holds open, accepted by the venue and not reported
  filled, that the venue does not list: closed ("close"; OrderCanceled "missing_at_venue"; a
  fill that still comes for it applies).
- position_mismatch: the log's quantity is not the venue's. adopt: the position becomes the
  venue's quantity at its entry price (realized P&L and fees kept), PositionUpdated; alert.
- balance_mismatch: initial equity + realized P&L - fees (+ what was adopted before) is not the
  venue's wallet balance (within 1e-6 relative or 0.01). adopt: the difference becomes the
  account's adjustment (in its equity); alert.

Positions and balance are compared only when none of the core's own orders is in flight on
them (their fills would be counted twice).

The race with the user stream. The venue is asked over REST while its user stream keeps
reporting, and the gateway publishes those reports as they come: the log may hold, before the
snapshot, a fill or an answer the venue's answer does not reflect yet (it was asked first), and
the venue's answer may reflect a fill or an end whose report is not in the log yet. A snapshot
carries the id of the last venue report the gateway had read back from the log before it asked
(`last_report_id`): the reports up to it are reflected at the venue; those after it (ReportTrail)
may not be. So, for a snapshot that carries it, the core compares only what both sides have
seen, and leaves the rest to the next snapshot (AccountReconciled.deferred counts it):
- an order the venue lists that a report after the marker closed is not unknown;
- an order the venue does not list whose acceptance (or a fill or end) came after the marker is
  not missing; one accepted before it is missing only when the next snapshot does not list it
  either (its end, or its fills, may be on their way: a venue that filled or canceled it);
- positions with a fill after the marker, or an order of ours in flight, or a closed order whose
  venue-reported fills have not all come (once, as above), are not compared; nor is the balance
  then, or after a funding report after the marker.
A snapshot recorded without the marker (None) is compared as before it existed, so old
recordings replay as they ran. Every difference is a ReconciliationDifference; if none was only
alerted the account is reconciled (AccountReconciled) and may trade; otherwise it may not until a
snapshot reconciles it. Pure: everything from the snapshot and the core's state, ids derived
from the snapshot's id."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from services.execution.live import LiveOrder
from services.execution.portfolio import Key, Position, position_updated
from ticktape import ids
from ticktape.errors import InvalidInput
from ticktape.events import (
    AccountReconciled,
    AccountUpdated,
    Envelope,
    Event,
    OrderCanceled,
    OrderSubmitted,
    PositionUpdated,
    ReconciliationDifference,
    VenueCancelRequested,
    VenueFill,
    VenueFunding,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderRejected,
    VenueOrderUnknown,
    VenueSnapshot,
)
from ticktape.events.envelope import EnvelopeFields

if TYPE_CHECKING:
    from services.execution.core import ExecutionCore

ADOPTED = "adopted"  # the reason of an adopted order (its OrderSubmitted is the core's own, never sent)
MISSING = "missing_at_venue"
UNKNOWN_ORDER = "reconcile_unknown_order"  # the reason of a VenueCancelRequested
QUANTITY_REL = 1e-9
BALANCE_REL, BALANCE_ABS = 1e-6, 0.01
TRAIL_MAX = 10_000  # venue reports remembered per account after the last snapshot's marker
REPORTS = (VenueFill, VenueOrderAccepted, VenueOrderRejected, VenueOrderUnknown, VenueOrderCanceled, VenueFunding)
Report = VenueFill | VenueOrderAccepted | VenueOrderRejected | VenueOrderUnknown | VenueOrderCanceled | VenueFunding


@dataclass
class Late:
    """What the venue reports after a snapshot's marker touched (membership only)."""

    symbols: set[str] = field(default_factory=set)  # with a fill
    orders: set[str] = field(default_factory=set)  # client and venue order ids named
    funding: bool = False

    def names(self, live: LiveOrder, venue_order_id: str = "") -> bool:
        ids_ = (live.client_order_id, live.venue_order_id, venue_order_id)
        return any(i and i in self.orders for i in ids_)


class ReportTrail:
    """Each live account's venue reports, in the order the core applied them (the log's), from
    the one the last marked snapshot named on (at most TRAIL_MAX): (kind, symbol, client order
    id, venue order id) by event id."""

    def __init__(self) -> None:
        self._trails: dict[str, dict[str, tuple[str, str, str, str]]] = {}

    def record(self, event: Report) -> None:
        trail = self._trails.setdefault(event.account, {})
        if isinstance(event, VenueFunding):
            trail[event.event_id] = ("funding", event.symbol, "", "")
        elif isinstance(event, VenueFill):
            trail[event.event_id] = ("fill", event.symbol, event.client_order_id, event.venue_order_id)
        else:
            vid = event.venue_order_id if isinstance(event, VenueOrderAccepted | VenueOrderCanceled) else ""
            trail[event.event_id] = ("order", event.symbol, event.client_order_id, vid)
        if len(trail) > TRAIL_MAX:
            del trail[next(iter(trail))]

    def after(self, account: str, report_id: str) -> Late:
        """What the reports after report_id touched (all remembered when it is "" or not found:
        then it is older than all of them)."""
        entries = list(self._trails.get(account, {}).items())
        start = 0
        for i in range(len(entries) - 1, -1, -1) if report_id else ():
            if entries[i][0] == report_id:
                start = i + 1
                break
        late = Late()
        for _, (kind, symbol, cid, vid) in entries[start:]:
            late.orders.update(x for x in (cid, vid) if x)
            if kind == "fill":
                late.symbols.add(symbol)
            elif kind == "funding":
                late.funding = True
        return late

    def forget_before(self, account: str, report_id: str) -> None:
        """Drop the reports before report_id (a later snapshot's marker is at it or after it)."""
        trail = self._trails.get(account)
        if not trail or report_id not in trail:
            return
        while (first := next(iter(trail))) != report_id:
            del trail[first]


def _fields(cause: Envelope, handler: str, index: int, chain: Envelope | None = None) -> EnvelopeFields:
    corr = chain if chain is not None else cause
    return EnvelopeFields(
        event_id=ids.child_id(cause.event_id, handler, index),
        ts_event=cause.ts_event,
        ts_init=cause.ts_init,
        causation_id=cause.event_id,
        correlation_id=corr.correlation_id or corr.event_id,
    )


def snapshot_problem(snap: VenueSnapshot) -> str | None:
    """Why a snapshot cannot be compared (a number not finite), or None."""
    numbers = [("wallet_balance", snap.wallet_balance)]
    numbers += [(f"order {o.venue_order_id} quantity", o.quantity) for o in snap.open_orders]
    numbers += [(f"position {p.symbol}", p.quantity) for p in snap.positions]
    numbers += [(f"position {p.symbol} entry", p.entry_price) for p in snap.positions]
    for name, value in numbers:
        if not math.isfinite(value):
            return f"{name}={value!r}"
    return None


def on_snapshot(core: ExecutionCore, snap: VenueSnapshot) -> list[Event]:
    problem = snapshot_problem(snap)
    if problem is not None:
        raise InvalidInput(f"venue snapshot of {snap.account}: {problem}")
    name, venue = snap.account, snap.venue
    policy = core._policy[name]
    account = core.accounts[name]
    out: list[Event] = []
    differences: list[ReconciliationDifference] = []
    alerted = changed = False
    marked = snap.last_report_id is not None
    late = core.reports.after(name, snap.last_report_id or "") if marked else Late()
    deferred = 0

    def difference(**kw: Any) -> ReconciliationDifference:
        d = ReconciliationDifference(
            **_fields(snap, "execution.reconcile", len(differences)),
            account=name,
            venue=venue,
            snapshot_id=snap.event_id,
            **kw,
        )
        differences.append(d)
        out.append(d)
        return d

    # -- open orders -----------------------------------------------------------------------------
    seen: set[str] = set()
    for i, o in enumerate(snap.open_orders):
        live = core.live.find(name, o.client_order_id, o.venue_order_id)
        if live is not None and not live.closed:
            if o.venue_order_id and not live.venue_order_id:
                for fill in core.live.learn_venue_id(live, o.venue_order_id):  # reported before its acceptance
                    out += core._on_venue_fill(fill)
            seen.add(live.order.order_id)
            live.deferred_by = ""
            continue
        if live is not None and late.names(live, o.venue_order_id):
            deferred += 1  # closed by a report the venue had not reflected when it was asked
            continue
        rest = max(0.0, o.quantity - o.filled_quantity)
        common = {"symbol": o.symbol, "venue_order_id": o.venue_order_id, "client_order_id": o.client_order_id,
                  "side": o.side, "price": o.price, "venue_quantity": rest}  # fmt: skip
        if policy.unknown_orders == "adopt":
            order = OrderSubmitted(
                **_fields(snap, "execution.adopt", i),
                order_id=ids.child_id(snap.event_id, "execution.adopt_order", i),
                account=name,
                venue=venue,
                symbol=o.symbol,
                side=o.side,
                quantity=rest,
                mode="live",
                reduce_only=o.reduce_only,
                reason=ADOPTED,
                reference_price=o.price,
                client_order_id=o.client_order_id,
            )
            adopted = core.live.add(order, snap, o.client_order_id)
            core.live.learn_venue_id(adopted, o.venue_order_id)  # fills parked before: in the venue's position
            seen.add(order.order_id)
            difference(kind="unknown_open_order", resolution="adopt", order_id=order.order_id, **common)
        elif policy.unknown_orders == "cancel":
            difference(kind="unknown_open_order", resolution="cancel", **common)
            out.append(
                VenueCancelRequested(
                    **_fields(snap, "execution.reconcile_cancel", i),
                    account=name,
                    venue=venue,
                    symbol=o.symbol,
                    venue_order_id=o.venue_order_id,
                    client_order_id=o.client_order_id,
                    reason=UNKNOWN_ORDER,
                )
            )
        else:
            alerted = True
            difference(kind="unknown_open_order", resolution="alert", **common)
    for index, live in enumerate(core.live.in_flight(name)):
        if live.order.order_id in seen or not live.venue_order_id or live.expected is not None or live.unknown:
            continue  # listed, or not accepted yet, or filled at the venue with its fills still to come
        if marked and _defer(live, late, snap):  # accepted (or reported on) since; or its end on its way
            deferred += 1
            continue
        core.live.close(live)
        mine = live.order
        difference(kind="missing_open_order", resolution="close", symbol=mine.symbol, order_id=mine.order_id,
                   venue_order_id=live.venue_order_id, client_order_id=live.client_order_id, side=mine.side,
                   log_quantity=abs(live.signed_remaining))  # fmt: skip
        out.append(
            OrderCanceled(
                **_fields(snap, "execution.reconcile_missing", index, chain=live.chain),
                order_id=mine.order_id,
                account=name,
                venue=venue,
                symbol=mine.symbol,
                reason=MISSING,
            )
        )

    # -- positions and balance: only where none of our own orders is in flight -----------------
    busy = {(lv.order.venue, lv.order.symbol) for lv in core.live.in_flight(name) if not _adopted(lv)}
    if marked:
        busy |= {(lv.order.venue, lv.order.symbol) for lv in core.live.awaiting_fills(name) if _defer(lv, late, snap)}
        busy |= {(venue, symbol) for symbol in late.symbols}
    at_venue = {(venue, p.symbol): p for p in snap.positions}
    keys = sorted({k for k, p in account.positions.items() if k[0] == venue and p.quantity != 0} | set(at_venue))
    for index, key in enumerate(keys):
        if key in busy:
            deferred += int(marked)
            continue
        pos = account.positions.get(key) or Position()
        theirs = at_venue.get(key)
        venue_q = theirs.quantity if theirs is not None else 0.0
        venue_px = theirs.entry_price if theirs is not None else 0.0
        if math.isclose(pos.quantity, venue_q, rel_tol=QUANTITY_REL, abs_tol=1e-12):
            continue
        common = {"symbol": key[1], "log_quantity": pos.quantity, "venue_quantity": venue_q, "venue_price": venue_px}
        if policy.positions == "alert":
            alerted = True
            difference(kind="position_mismatch", resolution="alert", **common)
            continue
        difference(kind="position_mismatch", resolution="adopt", **common)
        adopted_pos = _adopt_position(pos, venue_q, venue_px)
        account.positions[key] = adopted_pos
        changed = True
        out.append(_position_event(snap, index, name, key, adopted_pos))
    if busy or late.funding:
        deferred += int(marked)
    else:
        t = account.totals()
        log_wallet = account.initial_equity + account.adjustment + t.realized_pnl - t.fees_paid + t.funding
        if not math.isclose(log_wallet, snap.wallet_balance, rel_tol=BALANCE_REL, abs_tol=BALANCE_ABS):
            resolution = policy.balances
            difference(kind="balance_mismatch", resolution=resolution, log_balance=log_wallet,
                       venue_balance=snap.wallet_balance)  # fmt: skip
            if resolution == "alert":
                alerted = True
            else:
                account.adjustment += snap.wallet_balance - log_wallet
                changed = True
    if changed:
        t = account.totals()
        out.append(
            AccountUpdated(
                **_fields(snap, "execution.reconcile_account", 0),
                account=name,
                initial_equity=account.initial_equity,
                equity=t.equity,
                realized_pnl=t.realized_pnl,
                unrealized_pnl=t.unrealized_pnl,
                fees_paid=t.fees_paid,
                gross_exposure=t.gross_exposure,
                net_exposure=t.net_exposure,
            )
        )
    core.reconciled[name] = not alerted
    if not alerted:
        out.append(
            AccountReconciled(
                **_fields(snap, "execution.reconciled", 0),
                account=name,
                venue=venue,
                snapshot_id=snap.event_id,
                reason=snap.reason,
                differences=len(differences),
                deferred=deferred or UNSET,
            )
        )
    if marked:
        core.reports.forget_before(name, snap.last_report_id or "")
    return out


def _defer(live: LiveOrder, late: Late, snap: VenueSnapshot) -> bool:
    """Whether a comparison involving this order waits for the next snapshot: a report on it came
    after the snapshot's marker (it waits again), or none did and no earlier snapshot deferred it
    (it waits once: its end or its fills may still be on their way; the next snapshot decides)."""
    if late.names(live):
        live.deferred_by = ""
        return True
    if live.deferred_by and live.deferred_by != snap.event_id:
        return False
    live.deferred_by = snap.event_id
    return True


def _adopted(live: LiveOrder) -> bool:
    return live.order.reason == ADOPTED


def _adopt_position(pos: Position, quantity: float, entry: float) -> Position:
    """The position with the venue's quantity at its entry price; realized P&L and fees kept, marked
    where it was (at the entry when it never was)."""
    if quantity == 0:
        return Position(0.0, 0.0, pos.mark_price, pos.realized_pnl, pos.fees_paid)
    mark = pos.mark_price if pos.mark_price > 0 else entry
    return Position(quantity, entry, mark, pos.realized_pnl, pos.fees_paid)


def _position_event(snap: VenueSnapshot, index: int, account: str, key: Key, pos: Position) -> PositionUpdated:
    return position_updated(_fields(snap, "execution.reconcile_position", index), account, key, pos)
