"""Orders, fills, positions and accounts (stream subjects orders.>, fills.>, positions.>,
accounts.>)."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from ticktape.events.envelope import Envelope
from ticktape.events.risk import OrderSide


class OrderSubmitted(Envelope, frozen=True, kw_only=True, tag="exec.order.submitted"):
    """An order sent (paper: to the paper broker; live: to the venue by execution's gateway).
    `reduce_only` true: it may only shrink the position; `reason` then says why (stop_loss,
    take_profit, halted_reduce from risk's approval; flatten, close_positions from a stop or
    shutdown, approval_id empty). Both are unset, and not encoded, on every other order, so those
    keep their old bytes. Live orders only: `reference_price` (the price the market order is
    checked and bounded against: the approval's, or the position's mark when closing) and
    `client_order_id` (the venue's client id, derived from order_id: Binance newClientOrderId,
    Hyperliquid cloid); unset on paper orders."""

    order_id: str
    account: str
    venue: str
    symbol: str
    side: OrderSide
    quantity: float
    order_type: Literal["market"] = "market"
    mode: Literal["paper", "live"] = "paper"
    approval_id: str = ""
    reduce_only: bool | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    reference_price: float | UnsetType = UNSET
    client_order_id: str | UnsetType = UNSET


class OrderCanceled(Envelope, frozen=True, kw_only=True, tag="exec.order.canceled"):
    """An order that will not fill (any more). reason: a stable code, execution's own (halted,
    invalid_quantity, max_leverage, ...; services/execution/core.py) or, for a live account,
    the venue's (a refusal's code from exchanges.trading.errors, e.g. insufficient_margin;
    "expired" or "canceled" for the unfilled rest; "not_sent": too old to send after an outage)."""

    order_id: str
    account: str
    venue: str
    symbol: str
    reason: str


class OrderFilled(Envelope, frozen=True, kw_only=True, tag="exec.order.filled"):
    """A fill. Paper: price includes slippage; fee is the taker fee in quote currency. Live: one
    VenueFill as the venue reported it (an order may fill in several), its fee and liquidity."""

    order_id: str
    account: str
    venue: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    liquidity: Literal["taker", "maker"] = "taker"
    bar_open_time: int = 0
    mode: Literal["paper", "live"] = "paper"


class PositionUpdated(Envelope, frozen=True, kw_only=True, tag="exec.position.updated"):
    """A sub-account's position in one symbol after a fill, a mark to the latest close or a
    funding settlement. quantity is signed (short < 0). `funding`: the perpetual funding the
    position has received (< 0: paid) since it was first held, summed over settlements (paper
    accounts, from FundingRate); unset, and not encoded, while it is zero, so positions that never
    saw a funding keep their old bytes."""

    account: str
    venue: str
    symbol: str
    quantity: float
    avg_price: float
    mark_price: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    funding: float | UnsetType = UNSET


class AccountUpdated(Envelope, frozen=True, kw_only=True, tag="exec.account.updated"):
    """A sub-account's equity and exposure: equity = initial + realized + unrealized - fees
    (+ funding). `funding`: the sum of its positions' funding (see PositionUpdated), unset and not
    encoded while zero."""

    account: str
    initial_equity: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    gross_exposure: float
    net_exposure: float
    funding: float | UnsetType = UNSET
