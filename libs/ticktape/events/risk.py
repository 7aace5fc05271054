"""Risk decisions (stream subjects risk.>)."""

from __future__ import annotations

from typing import Literal

from ticktape.events.envelope import Envelope

OrderSide = Literal["buy", "sell"]


class OrderApproved(Envelope, frozen=True, kw_only=True, tag="risk.order.approved"):
    """Risk sized a signal for one sub-account and approves an order of `quantity` (> 0)."""

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


class OrderRejected(Envelope, frozen=True, kw_only=True, tag="risk.order.rejected"):
    """Risk refused to trade a signal for one sub-account; `reason` is a stable code
    (halted, max_notional_per_symbol, max_gross_exposure, no_equity), `detail` says why."""

    account: str
    strategy: str
    venue: str
    symbol: str
    side: OrderSide | None
    quantity: float
    reason: str
    detail: str
    signal_id: str
