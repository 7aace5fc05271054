"""Reconciliation of a live account with its venue (execution core's outputs, issue #8 item 8).

The execution core compares each VenueSnapshot (ticktape.events.venue: what the gateway found at
the venue) with the state it built from the event log and publishes every difference as a
ReconciliationDifference, with the resolution the account's policy (`accounts[i].reconcile`)
took; then, unless a difference was only alerted, AccountReconciled. A live account's approvals
are canceled "not_reconciled" until its first AccountReconciled, and again after a
reconciliation that alerted, until one that does not. A cancel the policy decides is a
VenueCancelRequested on the account's orders subject, which the gateway sends like any order."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from ticktape.events.envelope import Envelope
from ticktape.events.risk import OrderSide

DifferenceKind = Literal["unknown_open_order", "missing_open_order", "position_mismatch", "balance_mismatch"]
# adopt: the log takes the venue's side; cancel: the venue's order is canceled; alert: nothing is
# changed and the account may not trade; close: an order the log holds open that the venue does
# not is closed in the book (its fills, if any come, still apply).
Resolution = Literal["adopt", "cancel", "alert", "close"]


class ReconciliationDifference(Envelope, frozen=True, kw_only=True, tag="exec.reconciliation.difference"):
    """One difference between the venue and the log, found in the VenueSnapshot `snapshot_id`.

    unknown_open_order: an order open at the venue the log does not know (venue_order_id,
    client_order_id, side, venue_quantity: its unfilled rest, price); missing_open_order: an order
    the log holds open (order_id) that the venue does not list; position_mismatch: log_quantity
    (signed) against venue_quantity (venue_price: the venue's entry price); balance_mismatch:
    the log's wallet (initial equity + realized P&L - fees + adopted adjustments) against the
    venue's wallet balance. order_id: for an adopted order, the id its fills carry."""

    account: str
    venue: str
    snapshot_id: str
    kind: DifferenceKind
    resolution: Resolution
    symbol: str = ""
    order_id: str = ""
    venue_order_id: str = ""
    client_order_id: str = ""
    side: OrderSide | None = None
    price: float = 0.0
    log_quantity: float = 0.0
    venue_quantity: float = 0.0
    venue_price: float = 0.0
    log_balance: float = 0.0
    venue_balance: float = 0.0


class AccountReconciled(Envelope, frozen=True, kw_only=True, tag="exec.account.reconciled"):
    """The live account agrees with its venue as of the VenueSnapshot `snapshot_id` (after the
    `differences` resolved by policy, none alerted): it may trade. reason: the snapshot's.
    deferred: the comparisons left to the next snapshot because the venue's answer and the log
    may not have seen the same reports yet (an order answered or closed, a fill or a funding
    stored while the venue was being asked; an order the venue no longer lists whose end may still
    be on its way); unset when none."""

    account: str
    venue: str
    snapshot_id: str
    reason: Literal["start", "periodic"] = "start"
    differences: int = 0
    deferred: int | UnsetType = UNSET


class VenueCancelRequested(Envelope, frozen=True, kw_only=True, tag="exec.order.cancel_requested"):
    """Cancel the order venue_order_id at the venue (reason: why, e.g. "reconcile_unknown_order").
    Execution's gateway sends it with the account's client; the venue's answer comes back as
    VenueOrderCanceled (same id as the user stream's report of it)."""

    account: str
    venue: str
    symbol: str
    venue_order_id: str
    client_order_id: str = ""
    reason: str
