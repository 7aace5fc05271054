"""Per-account money on a simulated perpetuals venue: one wallet balance in the quote asset and one
net position per symbol (Binance USDT-M one-way mode, Hyperliquid perps), all cross margin.

Pure and exact: Decimal arithmetic, no clock, no I/O. A fill moves the position and realizes P&L
on the part that reduces it; the balance takes the realized P&L and pays the fee. Equity is the
balance plus the unrealized P&L at the given marks; initial margin is notional / leverage.

Funding settlements move the balance (venuesim.trading.Engine.settle_funding). Not modelled (the
simulator says so in its module docs): liquidation, maintenance-margin calls, isolated margin,
hedge mode."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal

ZERO = Decimal(0)


def sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


@dataclasses.dataclass
class Position:
    """size: signed (> 0 long); entry: average entry price of the open size (0 when flat);
    realized: cumulative realized P&L before fees (Binance's `cr`); updated_ms: last change."""

    size: Decimal = ZERO
    entry: Decimal = ZERO
    realized: Decimal = ZERO
    updated_ms: int = 0

    def unrealized(self, mark: Decimal | None) -> Decimal:
        if not self.size or mark is None:
            return ZERO
        return (mark - self.entry) * self.size


@dataclasses.dataclass
class Account:
    """One trading account (a Binance API key's account, a Hyperliquid user, sub-account or vault)."""

    name: str
    balance: Decimal
    leverage: int
    positions: dict[str, Position] = dataclasses.field(default_factory=dict)

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position())

    def size(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.size if pos is not None else ZERO

    def apply_fill(self, symbol: str, qty: Decimal, price: Decimal, fee: Decimal, time_ms: int) -> Decimal:
        """Book a fill of signed qty (> 0 bought) at price paying fee; returns the P&L it realized."""
        pos = self.position(symbol)
        start = pos.size
        end = start + qty
        if not start or sign(start) == sign(qty):  # opening or adding
            pos.entry = (abs(start) * pos.entry + abs(qty) * price) / abs(end)
            realized = ZERO
        else:
            closed = min(abs(qty), abs(start))
            realized = closed * (price - pos.entry) * sign(start)
            if not end:
                pos.entry = ZERO
            elif sign(end) != sign(start):  # flipped: the remainder opened at this price
                pos.entry = price
        pos.size = end
        pos.realized += realized
        pos.updated_ms = time_ms
        self.balance += realized - fee
        return realized

    def unrealized(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum((p.unrealized(marks.get(s)) for s, p in self.positions.items()), ZERO)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        return self.balance + self.unrealized(marks)

    def notional(self, symbol: str, marks: Mapping[str, Decimal]) -> Decimal:
        pos = self.positions.get(symbol)
        mark = marks.get(symbol)
        if pos is None or mark is None:
            return ZERO
        return abs(pos.size) * mark

    def position_margin(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Initial margin of the open positions at the marks."""
        return sum((self.notional(s, marks) for s in self.positions), ZERO) / self.leverage
