"""Paper fill model: a market order fills at the next bar's open, moved against us, plus a fee."""

from __future__ import annotations

from typing import NamedTuple

from ticktape.events.risk import OrderSide


class PaperFill(NamedTuple):
    price: float
    fee: float


def fill(side: OrderSide, quantity: float, bar_open: float, *, slippage_bps: float, taker_fee_bps: float) -> PaperFill:
    """Buys pay open x (1 + slippage), sells get open x (1 - slippage); fee = |qty| x price x
    taker_fee_bps / 1e4, in quote currency."""
    slip = slippage_bps / 1e4
    price = bar_open * (1.0 + slip) if side == "buy" else bar_open * (1.0 - slip)
    return PaperFill(price=price, fee=abs(quantity) * price * taker_fee_bps / 1e4)
