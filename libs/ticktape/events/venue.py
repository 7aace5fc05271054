"""A venue's answers about a live account's orders (stream subjects venue.>): inputs, like bars.

Execution's venue gateway (services/execution/gateway.py) publishes them: the answer to each
placement (accepted, rejected, or unknown when no attempt got an answer and the venue could not
be asked), and what the account's user stream (or a REST look-up after a reconnect or a restart)
says happened since: fills and the end of an order's life (canceled, expired). The execution core
turns them into OrderFilled, PositionUpdated, AccountUpdated and OrderCanceled exactly as for paper
accounts, so a live session replays byte for byte: the cores re-run over the recorded answers and
never talk to the network.

Ids derive from the venue's own keys (the client order id, the venue's order id, its trade id) and
the account, never from when or how the gateway learnt them, so the same fill seen on the user
stream and again in a re-query after a reconnect has one id and JetStream stores it once (and the
core applies a fill id once). Numbers are the venue's decimals as floats; `ts_event` is the venue's
time (a fill's trade time, an answer's update time), `ts_init` when the gateway received it. No
field ever holds a credential: messages are the venue's error texts, cut to 300 characters."""

from __future__ import annotations

from typing import Literal

import msgspec

from ticktape import ids
from ticktape.events.envelope import Envelope
from ticktape.events.risk import OrderSide

# The venue's state of an order (exchanges.trading.model.Status).
VenueStatus = Literal["open", "partially_filled", "filled", "canceled", "expired", "rejected"]


class VenueOrderAccepted(Envelope, frozen=True, kw_only=True, tag="venue.order.accepted"):
    """The venue has the order `order_id` (execution's id of the OrderSubmitted it placed):
    its answer to the placement, or (recovered) found by client order id after an attempt whose
    outcome was unknown or after a restart. status, filled_quantity and average_price are as of
    that answer (0: none yet); the fills themselves arrive as VenueFill."""

    order_id: str
    account: str
    venue: str
    symbol: str
    client_order_id: str
    venue_order_id: str
    status: VenueStatus
    filled_quantity: float = 0.0
    average_price: float = 0.0
    recovered: bool = False


class VenueOrderRejected(Envelope, frozen=True, kw_only=True, tag="venue.order.rejected"):
    """The venue does not have the order: it refused it (reason: the stable code of
    exchanges.trading.errors, e.g. insufficient_margin; code: Binance's own, when it gave one),
    or it was refused before any request (http_status 0: an order rule such as
    below_min_notional, or not_sent: too old to send after an outage and not at the venue)."""

    order_id: str
    account: str
    venue: str
    symbol: str
    client_order_id: str
    reason: str
    message: str = ""
    http_status: int = 0
    code: int | None = None


class VenueOrderUnknown(Envelope, frozen=True, kw_only=True, tag="venue.order.unknown"):
    """No attempt got an answer that settles the order and the venue could not be asked: it may
    or may not exist. The gateway asks the venue by client order id again (at its next start at
    the latest) and publishes the answer then; the core keeps the order open until it comes."""

    order_id: str
    account: str
    venue: str
    symbol: str
    client_order_id: str
    reason: str
    message: str = ""
    attempts: int = 0


class VenueFill(Envelope, frozen=True, kw_only=True, tag="venue.fill"):
    """One trade of a live account as the venue reports it. client_order_id: the order's client
    id when the venue's report carries it (Binance's user stream, Hyperliquid's with a cloid),
    else empty and the order is known by venue_order_id. fee: in fee_asset (the margin asset),
    paid (a rebate is negative). realized_pnl: the venue's own figure, for reconciliation."""

    account: str
    venue: str
    symbol: str
    fill_id: str
    venue_order_id: str
    client_order_id: str = ""
    side: OrderSide
    quantity: float
    price: float
    fee: float
    fee_asset: str = ""
    liquidity: Literal["taker", "maker"] = "taker"
    realized_pnl: float = 0.0


class VenueOrderCanceled(Envelope, frozen=True, kw_only=True, tag="venue.order.canceled"):
    """The order is no longer open and did not fill in full: reason "canceled" (by request, or by
    the venue: a reduce-only order with nothing left to reduce) or "expired" (an IOC or market
    order's unfilled rest). filled_quantity: what filled before (its fills are VenueFill)."""

    account: str
    venue: str
    symbol: str
    venue_order_id: str
    client_order_id: str = ""
    reason: str
    filled_quantity: float = 0.0


class VenueFunding(Envelope, frozen=True, kw_only=True, tag="venue.funding"):
    """A funding settlement the venue booked on a live account's position (Hyperliquid's user
    `funding` event / userFunding, Binance's FUNDING_FEE income): amount is what the account
    received in the margin asset (< 0: paid). funding_time (ns) is the settlement; quantity the
    signed position it was paid on and rate the rate per settlement, as the venue says (0.0 when it
    does not). ts_event = funding_time."""

    account: str
    venue: str
    symbol: str
    funding_time: int
    amount: float
    quantity: float = 0.0
    rate: float = 0.0


def funding_id(venue: str, account: str, symbol: str, funding_ms: int) -> str:
    """One settlement per account, symbol and time: the user stream's and a re-query's are one."""
    return ids.derive("venue.funding", venue, account, symbol, funding_ms)


def accepted_id(venue: str, account: str, client_order_id: str) -> str:
    return ids.derive("venue.accepted", venue, account, client_order_id)


def rejected_id(venue: str, account: str, client_order_id: str) -> str:
    return ids.derive("venue.rejected", venue, account, client_order_id)


def unknown_id(venue: str, account: str, client_order_id: str, attempt: int = 0) -> str:
    """attempt: how many unknown outcomes of this order were published before (one id each)."""
    return ids.derive("venue.unknown", venue, account, client_order_id, attempt)


def fill_id(venue: str, account: str, symbol: str, venue_fill_id: str) -> str:
    """Binance trade ids are per symbol and both sides of a trade share one: the account and the
    symbol are part of the key."""
    return ids.derive("venue.fill", venue, account, symbol, venue_fill_id)


def canceled_id(venue: str, account: str, venue_order_id: str) -> str:
    return ids.derive("venue.canceled", venue, account, venue_order_id)


class VenueOpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order open at the venue, as its open-orders query lists it. client_order_id: empty
    when the order has none (placed by hand without one); price 0: none (a market order)."""

    symbol: str
    venue_order_id: str
    client_order_id: str = ""
    side: OrderSide
    quantity: float
    filled_quantity: float = 0.0
    price: float = 0.0
    reduce_only: bool = False


class VenuePosition(msgspec.Struct, frozen=True, kw_only=True):
    """One position the venue holds for the account: signed quantity (short < 0), entry price."""

    symbol: str
    quantity: float
    entry_price: float


class VenueSnapshot(Envelope, frozen=True, kw_only=True, tag="venue.snapshot"):
    """What the venue said a live account holds, queried by execution's gateway at start (reason
    "start", once the orders the log left open are settled) and every live.reconcile_every_s
    (preferably while no order is in flight, "periodic"): its open orders, its non-flat positions and its
    wallet balance (the margin asset, without unrealized P&L). The execution core compares it
    with the state it built from the log (services.execution.reconcile). ts_event: the venue's
    time of the query (as the gateway measures its clock), ts_init: when the gateway had the
    answers.

    last_report_id: the id of the account's last venue report (an event of venue.orders.* or
    venue.fills.*) the gateway had read back from the log before it queried the venue. What the
    log holds up to it happened at the venue before the query, so the snapshot reflects it; what
    the log holds after it, before this snapshot, may or may not be reflected, and the core leaves
    what it touches to the next snapshot. "": none had been read; None (snapshots recorded before
    the field existed): compared as then, without that distinction."""

    account: str
    venue: str
    reason: Literal["start", "periodic"] = "start"
    open_orders: tuple[VenueOpenOrder, ...] = ()
    positions: tuple[VenuePosition, ...] = ()
    wallet_balance: float
    equity: float = 0.0
    last_report_id: str | None = None


def snapshot_id(venue: str, account: str, venue_ms: int, reason: str) -> str:
    return ids.derive("venue.snapshot", venue, account, venue_ms, reason)
