"""Performance statistics over a series of marks: P&L, drawdown and Sharpe of an equity curve, and
the closing trades behind a win rate. Pure: the spans are given as stream sequences and event
times, never read from a clock."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from services.api.views import Stats

YEAR_NS = 365.25 * 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Mark:
    """The value of an equity curve at one event: `seq` its stream sequence, `ts` its event time."""

    seq: int
    ts: int
    value: float


@dataclass(frozen=True, slots=True)
class Trade:
    """A fill: its fee, and whether it closed (part of) a position, at a profit or not."""

    seq: int
    ts: int
    fee: float
    closed: bool
    win: bool


@dataclass(slots=True)
class Curve:
    """An equity curve (marks in stream order) and the fills that moved it; `base` is its value
    before the first mark (the initial equity). `funding` marks the funding received so far (< 0:
    paid; AccountUpdated.funding) with each equity mark of an account; empty for a strategy."""

    base: float
    marks: list[Mark] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    funding: list[Mark] = field(default_factory=list)

    def mark(self, seq: int, ts: int, value: float) -> None:
        self.marks.append(Mark(seq, ts, value))

    def mark_funding(self, seq: int, ts: int, received: float) -> None:
        self.funding.append(Mark(seq, ts, received))


class Span:
    """Which marks count: those at or after stream sequence `from_seq`, whose event time is at or
    after `from_ts` (None: no bound)."""

    __slots__ = ("from_seq", "from_ts")

    def __init__(self, from_seq: int = 0, from_ts: int | None = None) -> None:
        self.from_seq = from_seq
        self.from_ts = from_ts

    def holds(self, seq: int, ts: int) -> bool:
        return seq >= self.from_seq and (self.from_ts is None or ts >= self.from_ts)


def stats(curve: Curve, span: Span, offset: float = 0.0) -> Stats:
    """The curve's performance over the span: P&L against the last value before it (or the base),
    its drawdown from a running peak, Sharpe of its step returns, and the fills in it. `offset` is
    added to every value first (a P&L curve measured on its account's initial equity)."""
    before = curve.base
    inside: list[Mark] = []
    for m in curve.marks:
        if span.holds(m.seq, m.ts):
            inside.append(m)
        elif not inside:
            before = m.value
    values = [before + offset, *(m.value + offset for m in inside)]
    trades = [t for t in curve.trades if span.holds(t.seq, t.ts)]
    closed = [t for t in trades if t.closed]
    wins = sum(1 for t in closed if t.win)
    drawdown, fraction = max_drawdown(values)
    return Stats(
        from_ns=inside[0].ts if inside else None,
        to_ns=inside[-1].ts if inside else None,
        pnl=values[-1] - values[0],
        fees=math.fsum(t.fee for t in trades),
        funding=funding_paid(curve, span),
        trades=len(closed),
        wins=wins,
        win_rate=wins / len(closed) if closed else None,
        max_drawdown=drawdown,
        max_drawdown_fraction=fraction,
        sharpe=sharpe(values, [m.ts for m in inside]),
        marks=len(inside),
    )


def funding_paid(curve: Curve, span: Span) -> float:
    """The funding paid in the span (< 0: received): the funding received before it less the
    funding received by its last mark. 0.0 when nothing was settled."""
    before = 0.0
    last: Mark | None = None
    for m in curve.funding:
        if span.holds(m.seq, m.ts):
            last = m
        elif last is None:
            before = m.value
    return before - last.value if last is not None else 0.0


def max_drawdown(values: list[float]) -> tuple[float, float]:
    """The largest fall from a running peak, in value and as a fraction of that peak (0 when the
    peak is not positive)."""
    peak = -math.inf
    worst = 0.0
    worst_fraction = 0.0
    for v in values:
        peak = max(peak, v)
        fall = peak - v
        if fall > worst:
            worst = fall
            worst_fraction = fall / peak if peak > 0 else 0.0
    return worst, worst_fraction


def sharpe(values: list[float], times: list[int]) -> float | None:
    """Mean over standard deviation of the step returns of `values` (the first is the value before
    the span), annualised by the median spacing of `times` (the marks' event times)."""
    returns = [(b - a) / a for a, b in zip(values, values[1:], strict=False) if a > 0]
    steps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    if len(returns) < 3 or not steps:
        return None
    spread = statistics.stdev(returns)
    if spread <= 0 or not math.isfinite(spread):
        return None
    per_year = YEAR_NS / statistics.median(steps)
    return statistics.fmean(returns) / spread * math.sqrt(per_year)
