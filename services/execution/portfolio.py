"""Positions and sub-account P&L: average price, realized P&L on the closed part, fees apart."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from msgspec import UNSET

from ticktape.events import PositionUpdated
from ticktape.events.envelope import EnvelopeFields

Key = tuple[str, str]  # (venue, symbol)

# A quantity this small relative to the trade is float noise from closing a position.
_ZERO = 1e-12


@dataclass
class Position:
    """One symbol in one account. quantity is signed (short < 0); avg_price is the average
    entry of the open quantity (0 when flat); realized_pnl excludes fees and funding. funding is
    what the position received from perpetual funding settlements (< 0: paid), summed since it
    was first held; it stays when the position closes, as realized_pnl does."""

    quantity: float = 0.0
    avg_price: float = 0.0
    mark_price: float = 0.0
    realized_pnl: float = 0.0
    fees_paid: float = 0.0
    funding: float = 0.0

    @property
    def unrealized_pnl(self) -> float:
        return self.quantity * (self.mark_price - self.avg_price) if self.quantity else 0.0

    def after_fill(self, signed_qty: float, price: float, fee: float) -> Position:
        """A copy of this position with the fill applied; this one is unchanged."""
        pos = replace(self)
        pos.apply_fill(signed_qty, price, fee)
        return pos

    def nonfinite(self) -> str | None:
        """The first field (unrealized P&L included) that is NaN or infinite, or None."""
        for name in ("quantity", "avg_price", "mark_price", "realized_pnl", "fees_paid", "unrealized_pnl", "funding"):
            value = getattr(self, name)
            if not math.isfinite(value):
                return f"{name}={value!r}"
        return None

    def apply_fill(self, signed_qty: float, price: float, fee: float) -> None:
        """Add a fill: increases average in, reductions realize P&L at the average, and a flip
        realizes the closed part and opens the rest at the fill price."""
        q = self.quantity
        self.fees_paid += fee
        self.mark_price = price
        if signed_qty == 0:
            return
        if q == 0 or (q > 0) == (signed_qty > 0):
            new = q + signed_qty
            self.avg_price = (q * self.avg_price + signed_qty * price) / new
            self.quantity = new
            return
        closed = min(abs(signed_qty), abs(q))
        self.realized_pnl += closed * (price - self.avg_price) * (1.0 if q > 0 else -1.0)
        new = q + signed_qty
        if abs(new) <= _ZERO * max(abs(q), abs(signed_qty)):
            self.quantity, self.avg_price = 0.0, 0.0
        elif (new > 0) == (q > 0):
            self.quantity = new  # partial reduction: the average entry is unchanged
        else:
            self.quantity, self.avg_price = new, price  # flip: the rest opens at this price


@dataclass
class Account:
    """A sub-account: equity = initial + realized + unrealized - fees (+ adjustment: the wallet
    differences a live account's reconciliation adopted from its venue; 0 for paper accounts)
    (+ funding: its positions' funding, added only when non-zero so that the floats of an account
    that never saw a funding are what they always were)."""

    name: str
    initial_equity: float
    positions: dict[Key, Position] = field(default_factory=dict)
    adjustment: float = 0.0

    def position(self, key: Key) -> Position:
        """The position in key, created flat on first use."""
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position()
        return pos

    def totals(self, replacing: tuple[Key, Position] | None = None) -> AccountTotals:
        """Sums over positions in sorted symbol order, so the floats are reproducible;
        `replacing` = (key, position) computes them as if that position were in key."""
        positions = self.positions if replacing is None else {**self.positions, replacing[0]: replacing[1]}
        realized = unrealized = fees = gross = net = funding = 0.0
        for key in sorted(positions):
            p = positions[key]
            realized += p.realized_pnl
            unrealized += p.unrealized_pnl
            fees += p.fees_paid
            gross += abs(p.quantity * p.mark_price)
            net += p.quantity * p.mark_price
            funding += p.funding
        equity = self.initial_equity + realized + unrealized - fees
        if self.adjustment:
            equity += self.adjustment
        if funding:
            equity += funding
        return AccountTotals(equity, realized, unrealized, fees, gross, net, funding)


@dataclass(frozen=True)
class AccountTotals:
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    gross_exposure: float
    net_exposure: float
    funding: float = 0.0

    def nonfinite(self) -> str | None:
        """The first total that is NaN or infinite, or None."""
        for name in (
            "equity",
            "realized_pnl",
            "unrealized_pnl",
            "fees_paid",
            "gross_exposure",
            "net_exposure",
            "funding",
        ):
            value = getattr(self, name)
            if not math.isfinite(value):
                return f"{name}={value!r}"
        return None


def position_updated(fields: EnvelopeFields, account: str, key: Key, pos: Position) -> PositionUpdated:
    """The event of one position's state. Funding is left unset while zero, so the events of an
    account that never saw a funding settlement keep the bytes they had before funding existed."""
    return PositionUpdated(
        **fields,
        account=account,
        venue=key[0],
        symbol=key[1],
        quantity=pos.quantity,
        avg_price=pos.avg_price,
        mark_price=pos.mark_price,
        realized_pnl=pos.realized_pnl,
        unrealized_pnl=pos.unrealized_pnl,
        fees_paid=pos.fees_paid,
        funding=pos.funding if pos.funding else UNSET,
    )
