"""The built-in kinds evaluated across all their instances at once: one numpy pass per kind and bar
instead of one on_bar call per strategy, for the entries of the configuration the core runs.

A lane holds, for one (venue, symbol, timeframe), every configured entry of one built-in kind
subscribed to it, and their state as arrays: the indicators are computed once per distinct
parameter (every EMA period of every ema_cross and ensemble head once; a Wilder RSI per period;
a Bollinger mean and deviation per period; Donchian channels of every length from one running
maximum over the window), then each instance's rule is applied elementwise. The arithmetic is
the strategies' own, operation for operation in float64 (an EMA is alpha * x + (1 - alpha) * ema
whether numpy or Python computes it, a window's mean is numpy's mean of the same window, maxima
are exact), so the sides, and the diagnostics a signal carries, are the bytes on_bar gives:
tests/unit/test_signal_batched.py runs both over real bars and compares every output.

What runs here: an entry of exactly one of these classes (not a subclass: it may override
on_bar), on a single timeframe, not rotating (`rotate_every`), from the configuration (managed
strategies, added at run time, take the per-strategy path). A bar whose close is not a positive
finite number (market data rejects those before) goes the per-strategy path too, which
quarantines the strategies as on_bar does, the lanes' state untouched."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from services.signal.library import (
    BollingerBreakout,
    DonchianBreakout,
    MacdCross,
    MtfTrend,
    RsiReversion,
    _above_mean,
    mtf_diagnostics,
)
from services.signal.strategies import Consensus, EmaCross, Ensemble, _Diagnostics
from ticktape.events import BarClosed
from ticktape.events.signals import Side
from ticktape.strategy import BarHistory, Strategy

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]

# Fewer batchable configured entries than this run on the per-strategy path: for one or two
# entries numpy's per-call cost is larger than the work it shares (a one-strategy replay of a
# month ran its signal core at half the speed batched). Both paths give the same bytes.
MIN_ENTRIES = 8
SIDE_OF: tuple[Side, Side, Side] = ("flat", "long", "short")  # by code: 0 flat, 1 long, -1 short
Diagnostics = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


class _Emas:
    """EMAs of several periods over one input each (services/signal/ema.py, elementwise): the
    first `period` values accumulate, the first EMA is their mean, then alpha * x + (1 - alpha) * ema.
    `value` is NaN while an EMA is still seeding."""

    def __init__(self, periods: Sequence[int]) -> None:
        self.period: F64 = np.asarray(periods, np.float64)
        self.alpha: F64 = 2.0 / (self.period + 1)
        self.beta: F64 = 1.0 - self.alpha
        self.count: I64 = np.zeros(len(periods), np.int64)
        self.total: F64 = np.zeros(len(periods), np.float64)
        self.value: F64 = np.full(len(periods), np.nan)

    def update(self, x: float | F64, fed: B | None = None) -> None:
        cold = self.count < self.period
        hot = ~cold if fed is None else ~cold & fed
        if fed is not None:
            cold &= fed
        self.value = np.where(hot, self.alpha * x + self.beta * self.value, self.value)
        if cold.any():
            self.total = np.where(cold, self.total + x, self.total)
            self.count = self.count + cold
            self.value = np.where(cold & (self.count == self.period), self.total / self.period, self.value)


def _index(values: Sequence[Any]) -> tuple[list[Any], I64]:
    """(the distinct values in first-seen order, each value's position among them)."""
    distinct = list(dict.fromkeys(values))
    at = {v: i for i, v in enumerate(distinct)}
    return distinct, np.asarray([at[v] for v in values], np.int64)


class Lane:
    """One kind's configured entries on one (venue, symbol, timeframe). `ranks`: each entry's
    position in the configuration (the order its outputs go in); `sent`: the side code each last
    signalled here; `live`: not quarantined."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int]) -> None:
        self.runs = list(runs)
        self.ranks = list(ranks)
        self.sent: I8 = np.zeros(len(runs), np.int8)
        self.live: B = np.ones(len(runs), np.bool_)
        self.side: I8 = np.zeros(len(runs), np.int8)  # the stateful rules' position
        self.seen = 0  # quarantines known to `live` (SignalCore.quarantined's size)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        """Feed the bar; (each entry's side code, whether it decided anything)."""
        raise NotImplementedError

    def diagnostics(self, i: int) -> Diagnostics:
        """What entry i's last decision carries (called only when it signals)."""
        raise NotImplementedError

    def _rules(self, ready: B, flat: B, long: B, short: B) -> tuple[I8, B]:
        """The stateful rules (exits before entries) where ready; the position is kept."""
        side = np.where(flat, 0, self.side)
        side = np.where(long, 1, np.where(short, -1, side)).astype(np.int8)
        self.side = np.where(ready, side, self.side).astype(np.int8)
        return self.side, ready


def _params(runs: Sequence[Any], name: str) -> list[Any]:
    return [getattr(r.strategy.params, name) for r in runs]


class EmaLane(Lane):
    """ema_cross and ensemble: every head's EMAs from one pool of distinct periods."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int]) -> None:
        super().__init__(runs, ranks)
        heads = [r.strategy.heads for r in runs]
        periods, where = _index([p for hs in heads for h in hs for p in (h.fast, h.slow)])
        self.emas = _Emas(periods)
        self.fast: I64 = where[0::2]
        self.slow: I64 = where[1::2]
        self.starts: I64 = np.cumsum([0, *(len(hs) for hs in heads[:-1])], dtype=np.int64)
        self.k: I64 = np.asarray([r.strategy.k for r in runs], np.int64)
        self.short_ok: B = np.asarray([r.strategy.allow_short for r in runs], np.bool_)
        self.warm_at: I64 = np.asarray([max(h.slow for h in hs) for hs in heads], np.int64)
        self.n = 0
        self.ups: I64 = np.zeros(len(runs), np.int64)
        self.downs: I64 = np.zeros(len(runs), np.int64)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        self.emas.update(bar.close)
        self.n += 1
        values = self.emas.value
        f, s = values[self.fast], values[self.slow]
        self.ups = np.add.reduceat(f > s, self.starts, dtype=np.int64)
        self.downs = np.add.reduceat(f < s, self.starts, dtype=np.int64)
        long = self.ups >= self.k
        short = ~long & (self.downs >= self.k) & self.short_ok
        return (long.astype(np.int8) - short.astype(np.int8)), self.warm_at <= self.n

    def diagnostics(self, i: int) -> Diagnostics:
        strategy = self.runs[i].strategy
        lo = int(self.starts[i])
        hi = lo + len(strategy.heads)
        ups, downs, k = int(self.ups[i]), int(self.downs[i]), strategy.k
        agree = ups if ups >= k else downs if downs >= k and strategy.allow_short else max(ups, downs)
        values = self.emas.value
        fasts = values[self.fast[lo:hi]].tolist()
        slows = values[self.slow[lo:hi]].tolist()
        return _Diagnostics(strategy.heads, k, agree, fasts, slows)


class RsiLane(Lane):
    """rsi_reversion: one Wilder RSI per distinct period (services/signal/indicators.py, elementwise)."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int]) -> None:
        super().__init__(runs, ranks)
        periods, self.which = _index(_params(runs, "period"))
        self.period: I64 = np.asarray(periods, np.int64)
        self.gain: F64 = np.zeros(len(periods))
        self.loss: F64 = np.zeros(len(periods))
        self.prev: float | None = None
        self.changes = 0
        self.oversold: F64 = np.asarray(_params(runs, "oversold"), np.float64)
        self.overbought: F64 = np.asarray(_params(runs, "overbought"), np.float64)
        self.exit: F64 = np.asarray(_params(runs, "exit"), np.float64)
        self.short_ok: B = np.asarray(_params(runs, "allow_short"), np.bool_)
        self.rsi: F64 = np.full(len(runs), np.nan)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        x = bar.close
        prev, self.prev = self.prev, x
        if prev is None:
            return self.side, np.zeros(len(self.runs), np.bool_)
        change = x - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        n, before = self.period, self.changes
        self.changes += 1
        seeding = before < n
        if seeding.any():
            g = np.where(seeding, self.gain + gain, self.gain)
            lo = np.where(seeding, self.loss + loss, self.loss)
            seeded = seeding & (self.changes == n)
            g = np.where(seeded, g / n, g)
            lo = np.where(seeded, lo / n, lo)
        else:
            g, lo = self.gain, self.loss
        rolling = ~seeding
        self.gain = np.where(rolling, (self.gain * (n - 1) + gain) / n, g)
        self.loss = np.where(rolling, (self.loss * (n - 1) + loss) / n, lo)
        total = self.gain + self.loss
        with np.errstate(invalid="ignore", divide="ignore"):
            rsi = np.where(total == 0, 50.0, 100.0 * self.gain / total)
        ready = (self.changes >= n)[self.which]
        r = self.rsi = rsi[self.which]
        flat = (self.side == 1) & (r >= self.exit) | (self.side == -1) & (r <= self.exit)
        long = r < self.oversold
        short = ~long & (r > self.overbought) & self.short_ok
        return self._rules(ready, flat, long, short)

    def diagnostics(self, i: int) -> Diagnostics:
        return {"rsi": float(self.rsi[i])}


class MacdLane(Lane):
    """macd: the closes' EMAs from one pool of distinct periods, a signal EMA per distinct
    (fast, slow, signal)."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int]) -> None:
        super().__init__(runs, ranks)
        triples, self.which = _index([(p.fast, p.slow, p.signal) for p in (r.strategy.params for r in runs)])
        periods, where = _index([p for t in triples for p in t[:2]])
        self.emas = _Emas(periods)
        self.fast: I64 = where[0::2]
        self.slow: I64 = where[1::2]
        self.slow_period: I64 = np.asarray([t[1] for t in triples], np.int64)
        self.signal = _Emas([t[2] for t in triples])
        self.n = 0
        self.short_ok: B = np.asarray(_params(runs, "allow_short"), np.bool_)
        self.macd: F64 = np.full(len(runs), np.nan)
        self.sig: F64 = np.full(len(runs), np.nan)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        self.emas.update(bar.close)
        self.n += 1
        values = self.emas.value
        line = values[self.fast] - values[self.slow]
        fed = self.slow_period <= self.n
        self.signal.update(line, fed)
        ready = (fed & (self.signal.count >= self.signal.period))[self.which]
        m, s = self.macd, self.sig = line[self.which], self.signal.value[self.which]
        long = m > s
        short = (m < s) & self.short_ok
        return (long.astype(np.int8) - short.astype(np.int8)), ready

    def diagnostics(self, i: int) -> Diagnostics:
        m, s = float(self.macd[i]), float(self.sig[i])
        return {"macd": m, "signal": s, "histogram": m - s}


class _WindowLane(Lane):
    """Kinds that read windows of the bars' timeframe and run only on the one they name."""

    timeframe_param = "timeframe"

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int], timeframe: str) -> None:
        super().__init__(runs, ranks)
        self.runs_here: B = np.asarray([tf == timeframe for tf in _params(runs, self.timeframe_param)], np.bool_)


class BollingerLane(_WindowLane):
    """bollinger_breakout: the mean, deviation and side of the mean once per distinct period."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int], timeframe: str) -> None:
        super().__init__(runs, ranks, timeframe)
        periods, self.which = _index(_params(runs, "period"))
        self.periods: list[int] = periods
        self.width: F64 = np.asarray(_params(runs, "width"), np.float64)
        self.short_ok: B = np.asarray(_params(runs, "allow_short"), np.bool_)
        self.middle: F64 = np.full(len(runs), np.nan)
        self.upper: F64 = np.full(len(runs), np.nan)
        self.lower: F64 = np.full(len(runs), np.nan)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        closes = history.last(bar.venue, bar.symbol, bar.timeframe, max(self.periods)).close
        close = bar.close
        count = len(self.periods)
        middle, deviation, vs = np.full(count, np.nan), np.full(count, np.nan), np.zeros(count, np.int8)
        ok = np.zeros(count, np.bool_)
        for j, p in enumerate(self.periods):
            if len(closes) >= p:
                window = closes[len(closes) - p :]
                mid = float(window.mean())
                middle[j], deviation[j] = mid, float(np.sqrt(np.mean((window - mid) ** 2)))
                vs[j], ok[j] = _above_mean(close, window), True
        ready = ok[self.which] & self.runs_here
        spread = self.width * deviation[self.which]
        self.middle = middle[self.which]
        self.upper, self.lower = self.middle + spread, self.middle - spread
        above = vs[self.which]
        flat = (self.side == 1) & (above < 0) | (self.side == -1) & (above > 0)
        long = close > self.upper
        short = ~long & (close < self.lower) & self.short_ok
        return self._rules(ready, flat, long, short)

    def diagnostics(self, i: int) -> Diagnostics:
        return {"middle": float(self.middle[i]), "upper": float(self.upper[i]), "lower": float(self.lower[i])}


def _channels(history: BarHistory, bar: BarClosed, timeframe: str, longest: int) -> tuple[F64, F64]:
    """(highest high, lowest low) of the previous 1, 2, ... bars (up to `longest`) before the
    latest of the window: entry j is the channel of the previous j + 1 bars."""
    w = history.last(bar.venue, bar.symbol, timeframe, longest + 1)
    if len(w) < 2:
        return np.zeros(0), np.zeros(0)
    return np.maximum.accumulate(w.high[-2::-1]), np.minimum.accumulate(w.low[-2::-1])


class DonchianLane(_WindowLane):
    """donchian_breakout: every entry and exit channel from one running max/min of the window."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int], timeframe: str) -> None:
        super().__init__(runs, ranks, timeframe)
        self.period: I64 = np.asarray(_params(runs, "period"), np.int64)
        self.exit_period: I64 = np.asarray(
            [p if e is None else e for p, e in zip(self.period.tolist(), _params(runs, "exit_period"), strict=True)],
            np.int64,
        )
        self.short_ok: B = np.asarray(_params(runs, "allow_short"), np.bool_)
        self.levels: F64 = np.full((4, len(runs)), np.nan)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        highs, lows = _channels(history, bar, bar.timeframe, int(self.period.max()))
        ready = (len(highs) >= self.period) & self.runs_here
        if not ready.any():
            return self.side, ready
        at = np.minimum(self.period, len(highs)) - 1
        out = np.minimum(self.exit_period, len(highs)) - 1
        self.levels = np.stack((highs[at], lows[at], highs[out], lows[out]))
        upper, lower, exit_upper, exit_lower = self.levels
        close = bar.close
        flat = (self.side == 1) & (close < exit_lower) | (self.side == -1) & (close > exit_upper)
        long = close > upper
        short = ~long & (close < lower) & self.short_ok
        return self._rules(ready, flat, long, short)

    def diagnostics(self, i: int) -> Diagnostics:
        upper, lower, exit_upper, exit_lower = self.levels[:, i].tolist()
        return {"upper": upper, "lower": lower, "exit_upper": exit_upper, "exit_lower": exit_lower}


class MtfLane(_WindowLane):
    """mtf_trend: the trend once per distinct (trend timeframe, period), the entry channels of
    every length from one running max/min."""

    timeframe_param = "entry_timeframe"

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int], timeframe: str) -> None:
        super().__init__(runs, ranks, timeframe)
        trends, self.which = _index([(p.trend_timeframe, p.trend_period) for p in (r.strategy.params for r in runs)])
        self.trends: list[tuple[str, int]] = trends
        self.entry: I64 = np.asarray(_params(runs, "entry_period"), np.int64)
        self.short_ok: B = np.asarray(_params(runs, "allow_short"), np.bool_)
        self.found: list[tuple[int, float, float, int]] = []  # per trend: (trend, close, sma, hour)
        self.levels: F64 = np.full((2, len(runs)), np.nan)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        longest: dict[str, int] = {}
        for tf, p in self.trends:
            longest[tf] = max(longest.get(tf, 0), p)
        windows = {tf: history.last(bar.venue, bar.symbol, tf, n) for tf, n in longest.items()}
        self.found = []
        direction = np.zeros(len(self.trends), np.int8)
        ok = np.zeros(len(self.trends), np.bool_)
        for j, (tf, p) in enumerate(self.trends):
            w = windows[tf]
            if len(w) < p:
                self.found.append((0, 0.0, 0.0, 0))
                continue
            closes = w.close[len(w) - p :]
            last = float(closes[-1])
            trend = _above_mean(last, closes)
            self.found.append((trend, last, float(closes.mean()), int(w.open_time[-1])))
            direction[j], ok[j] = trend, True
        highs, lows = _channels(history, bar, bar.timeframe, int(self.entry.max()))
        ready = ok[self.which] & (len(highs) >= self.entry) & self.runs_here
        if not ready.any():
            return self.side, ready
        at = np.minimum(self.entry, len(highs)) - 1
        self.levels = np.stack((highs[at], lows[at]))
        upper, lower = self.levels
        trends = direction[self.which]
        close = bar.close
        flat = (self.side == 1) & (trends != 1) | (self.side == -1) & (trends != -1)
        long = (trends == 1) & (close > upper)
        short = (trends == -1) & (close < lower) & self.short_ok
        return self._rules(ready, flat, long, short)

    def diagnostics(self, i: int) -> Diagnostics:
        trend, last, sma, hour = self.found[int(self.which[i])]
        upper, lower = self.levels[:, i].tolist()
        return mtf_diagnostics(trend, last, sma, hour, upper, lower)


_PLAIN: dict[type[Strategy[Any]], type[Lane]] = {
    EmaCross: EmaLane,
    Ensemble: EmaLane,
    RsiReversion: RsiLane,
    MacdCross: MacdLane,
}
_WINDOWED: dict[type[Strategy[Any]], type[_WindowLane]] = {
    BollingerBreakout: BollingerLane,
    DonchianBreakout: DonchianLane,
    MtfTrend: MtfLane,
}


def batchable(strategy: Strategy[Any]) -> bool:
    """Whether a strategy's kind runs in a lane: a built-in class exactly (a consensus: of such
    members). The core also requires one timeframe and no rotation."""
    cls = type(strategy)
    if cls is Consensus:
        return all(batchable(m) for m in strategy.members)  # type: ignore[attr-defined]
    return cls in _PLAIN or cls in _WINDOWED


def lanes(runs: Sequence[tuple[int, Any]], timeframe: str) -> list[Lane]:
    """The lanes of (rank, run) pairs of batchable entries on one (venue, symbol, timeframe)."""
    groups: dict[type[Lane], list[tuple[int, Any]]] = {}
    for rank, run in runs:
        cls = type(run.strategy)
        lane_cls = ConsensusLane if cls is Consensus else _PLAIN.get(cls) or _WINDOWED[cls]
        groups.setdefault(lane_cls, []).append((rank, run))
    out: list[Lane] = []
    for lane_cls, members in groups.items():
        ranks = [rank for rank, _ in members]
        chosen = [run for _, run in members]
        if issubclass(lane_cls, _WindowLane | ConsensusLane):
            out.append(lane_cls(chosen, ranks, timeframe))
        else:
            out.append(lane_cls(chosen, ranks))
    return out


class _Member:
    """A consensus's member strategy as a lane entry."""

    __slots__ = ("strategy",)

    def __init__(self, strategy: Strategy[Any]) -> None:
        self.strategy = strategy


class ConsensusLane(Lane):
    """consensus of batchable members: the members of every instance stepped in their own lanes,
    each instance's k of n counted from the votes (a member's last side; None until it has one)."""

    def __init__(self, runs: Sequence[Any], ranks: Sequence[int], timeframe: str) -> None:
        super().__init__(runs, ranks)
        members = [m for r in runs for m in r.strategy.members]
        self.members = lanes([(j, _Member(m)) for j, m in enumerate(members)], timeframe)
        counts = [len(r.strategy.members) for r in runs]
        self.starts: I64 = np.cumsum([0, *counts[:-1]], dtype=np.int64)
        self.n: I64 = np.asarray(counts, np.int64)
        self.k: I64 = np.asarray([r.strategy.params.k for r in runs], np.int64)
        self.short_ok: B = np.asarray([r.strategy.params.allow_short for r in runs], np.bool_)
        self.votes: I8 = np.zeros(len(members), np.int8)
        self.voted: B = np.zeros(len(members), np.bool_)
        self.longs: I64 = np.zeros(len(runs), np.int64)
        self.shorts: I64 = np.zeros(len(runs), np.int64)

    def step(self, bar: BarClosed, history: BarHistory) -> tuple[I8, B]:
        for lane in self.members:
            sides, ready = lane.step(bar, history)
            at = np.asarray(lane.ranks, np.int64)[ready]
            self.votes[at] = sides[ready]
            self.voted[at] = True
        ready = np.add.reduceat(self.voted, self.starts, dtype=np.int64) == self.n
        self.longs = np.add.reduceat(self.votes == 1, self.starts, dtype=np.int64)
        self.shorts = np.add.reduceat(self.votes == -1, self.starts, dtype=np.int64)
        long = self.longs >= self.k
        short = ~long & (self.shorts >= self.k) & self.short_ok
        return (long.astype(np.int8) - short.astype(np.int8)), ready

    def diagnostics(self, i: int) -> Diagnostics:
        params = self.runs[i].strategy.params
        longs, shorts, k = int(self.longs[i]), int(self.shorts[i]), params.k
        agree = longs if longs >= k else shorts if shorts >= k and params.allow_short else max(longs, shorts)
        lo = int(self.starts[i])
        votes = [SIDE_OF[v] for v in self.votes[lo : lo + len(params.members)].tolist()]
        return {
            "k": k,
            "n": len(votes),
            "agree": agree,
            "votes": [
                {"member": m.label, "kind": m.kind, "side": v} for m, v in zip(params.members, votes, strict=True)
            ],
        }
