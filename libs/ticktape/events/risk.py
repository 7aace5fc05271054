"""Risk decisions (stream subjects risk.>)."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from ticktape.events.envelope import Envelope

OrderSide = Literal["buy", "sell"]


class OrderApproved(Envelope, frozen=True, kw_only=True, tag="risk.order.approved"):
    """Risk sized a signal for one sub-account and approves an order of `quantity` (> 0).

    `reduce_only` true: the order may only shrink the position (execution clips it to the
    position and fills it at once at the mark, halted or not); `reason` says why risk sent it:
    "stop_loss" or "take_profit" (a protective exit, signal_id empty) or "halted_reduce" (a
    signal's order cut to what reduces the position while the account is halted). Both are
    unset, and not encoded, on every other approval, so those keep their old bytes."""

    account: str
    strategy: str
    venue: str
    symbol: str
    side: OrderSide
    quantity: float
    reference_price: float
    notional: float
    target_quantity: float
    signal_id: str
    bar_open_time: int
    reduce_only: bool | UnsetType = UNSET
    reason: str | UnsetType = UNSET


class OrderRejected(Envelope, frozen=True, kw_only=True, tag="risk.order.rejected"):
    """Risk refused to trade a signal for one sub-account; `reason` is a stable code
    (invalid_size, halted, no_equity, cooldown, max_order_notional, max_notional_per_symbol,
    max_open_positions, max_gross_exposure), `detail` says why."""

    account: str
    strategy: str
    venue: str
    symbol: str
    side: OrderSide | None
    quantity: float
    reason: str
    detail: str
    signal_id: str


class RiskHalted(Envelope, frozen=True, kw_only=True, tag="risk.halted"):
    """Risk's own emergency stop of one account, published by risk (no operator credential):
    a loss limit was breached. `reason` is a stable code: max_drawdown (equity this fraction below
    its peak), max_daily_loss (below the UTC day's opening equity), or global_max_drawdown /
    global_max_daily_loss (the same over the sum of every account's equity; one event per
    account). `equity` is what was measured, `reference_equity` the peak or the day's opening,
    `limit` the configured fraction. Execution cancels the account's pending orders and, with
    `flatten` (on_breach: flatten), closes its positions; `ticktape resume` lifts it."""

    account: str
    reason: str
    detail: str
    equity: float
    reference_equity: float
    limit: float
    flatten: bool = False
