"""Pure rules behind risk's automatic stops: loss limits measured on equity (drawdown from the peak,
loss since the UTC day opened), protective exits measured on a position's mark, and margin use.

Time is the events' own (AccountUpdated.ts_event, the close of the bar that marked the account),
never a clock, so a replay crosses the same day boundaries at the same events."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ticktape.clock import NS_PER_S

DAY_NS = 86_400 * NS_PER_S


@dataclass(frozen=True)
class Breach:
    """A loss limit crossed: `reason` its stable code, `reference` the equity it is measured from
    (the peak, or the day's opening equity), `limit` the configured fraction, `detail` in words."""

    reason: str
    reference: float
    limit: float
    detail: str


@dataclass
class LossWatch:
    """The reference equities of one account's (or all accounts') loss limits: the highest equity
    seen since start or since the limits were re-armed, and the equity the current UTC day of
    event time opened with (the last equity before the day's first update)."""

    peak: float
    day: int | None = None
    day_open: float = 0.0

    def observe(self, before: float, equity: float, ts_event: int) -> None:
        """Account for one equity update: `before` is the equity it replaces."""
        day = ts_event // DAY_NS
        if self.day is None or day > self.day:  # a late update of an earlier day changes nothing
            self.day, self.day_open = day, before
        self.peak = max(self.peak, equity)

    def rearm(self, equity: float) -> None:
        """Measure from `equity` again (after a resume lifted a halt these limits caused)."""
        self.peak = equity
        self.day_open = equity

    def breach(self, equity: float, max_drawdown: float | None, max_daily_loss: float | None) -> Breach | None:
        """The first limit `equity` crosses (drawdown before daily loss), or None."""
        if max_drawdown is not None and self.peak > 0:
            drawdown = (self.peak - equity) / self.peak
            if drawdown >= max_drawdown:
                return Breach(
                    "max_drawdown",
                    self.peak,
                    max_drawdown,
                    f"equity {equity:.2f} is {drawdown:.2%} below its peak {self.peak:.2f} "
                    f"(max_drawdown {max_drawdown:g})",
                )
        if max_daily_loss is not None and self.day_open > 0:
            loss = (self.day_open - equity) / self.day_open
            if loss >= max_daily_loss:
                return Breach(
                    "max_daily_loss",
                    self.day_open,
                    max_daily_loss,
                    f"equity {equity:.2f} is {loss:.2%} below the {self.day_open:.2f} the UTC day opened with "
                    f"(max_daily_loss {max_daily_loss:g})",
                )
        return None


def exit_reason(
    quantity: float, entry: float, mark: float, stop_loss: float | None, take_profit: float | None
) -> str | None:
    """ "stop_loss" when the mark has moved against the position by at least stop_loss (a fraction
    of the average entry), "take_profit" when in its favour by at least take_profit, else None."""
    if quantity == 0 or not (entry > 0 and mark > 0):
        return None
    gain = (mark - entry) / entry if quantity > 0 else (entry - mark) / entry
    if stop_loss is not None and gain <= -stop_loss:
        return "stop_loss"
    if take_profit is not None and gain >= take_profit:
        return "take_profit"
    return None


def margin_use(gross_exposure: float, leverage: float, equity: float) -> float:
    """The fraction of equity the initial margin of `gross_exposure` takes at `leverage`
    (gross / leverage / equity); infinite when there is no equity to hold it."""
    if equity <= 0:
        return math.inf
    return gross_exposure / leverage / equity
