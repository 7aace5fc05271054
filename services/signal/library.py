"""The built-in library of single strategies beyond the EMA kinds, written against the plug-in API
(ticktape.strategy) like any installed one:

- `rsi_reversion`: Wilder's RSI mean reversion (long when oversold, short when overbought, out
  at the middle level);
- `bollinger_breakout`: close outside the Bollinger bands (SMA +- k population standard
  deviations of the last `period` closes), out when it comes back through the middle band;
- `donchian_breakout`: close beyond the highest high / lowest low of the previous `period` bars
  (turtle style), out on the opposite `exit_period` channel;
- `macd`: the MACD line against its signal line;
- `mtf_trend`: multi-timeframe, a 1h trend filter (last closed hour's close against the SMA of
  the last `trend_period` hourly closes) and 1m breakout entries in the trend's direction, out
  when the hourly trend no longer agrees.

Each keeps its per-(venue, symbol) state in ctx.state, under the timeframe of the bar (a strategy
subscribed to two timeframes keeps two independent states). Recursive indicators are incremental
(services/signal/indicators.py); windowed ones read ctx.bars. Each returns None until its
indicators exist, then a Target on every bar (flat while out of the market), with its indicator
values as diagnostics. All stateful rules evaluate exits before entries, so a bar that both ends a
position and triggers the opposite entry goes straight to the opposite side."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from services.signal.indicators import Macd, WilderRsi
from ticktape.clock import TIMEFRAME_NS
from ticktape.events.signals import Side
from ticktape.strategy import Context, Params, Strategy, Target

Period = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Window = Annotated[int, msgspec.Meta(ge=2, le=10_000)]
Level = Annotated[float, msgspec.Meta(gt=0, lt=100)]
Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]


def _state(ctx: Context) -> dict[str, Any]:
    """This strategy's state for the bar's (venue, symbol) and timeframe."""
    found = ctx.state.get(ctx.timeframe)
    if found is None:
        found = ctx.state[ctx.timeframe] = {"side": "flat"}
    return found


def _above_mean(x: float, values: Any) -> int:
    """The sign of x - mean(values), exactly: +1, -1, or 0 when x equals their average (which
    happens with prices on a tick grid). The differences x - v are exact for values within a
    factor 2 of x (Sterbenz), and fsum rounds their sum correctly, so its sign is the true one;
    comparing x with a float mean instead would decide a tie by the last bit of its rounding."""
    total = math.fsum((x - values).tolist())
    return 1 if total > 0 else -1 if total < 0 else 0


def _close(ctx: Context) -> float:
    close = ctx.bar.close
    if not (math.isfinite(close) and close > 0):
        raise ValueError(f"bad close {close!r} for {ctx.venue}/{ctx.symbol} at {ctx.bar.open_time}")
    return close


# --- RSI mean reversion --------------------------------------------------------------------------


class RsiReversionParams(Params, frozen=True, kw_only=True):
    """Wilder's RSI over `period` closes. Long when the RSI falls below `oversold`, short when it
    rises above `overbought` (flat instead when allow_short is false); a long ends when the RSI
    is back at or above `exit`, a short at or below it."""

    period: Period = 14
    oversold: Level = 30.0
    overbought: Level = 70.0
    exit: Level = 50.0
    allow_short: bool = True

    def __post_init__(self) -> None:
        if not self.oversold < self.exit < self.overbought:
            raise ValueError(
                f"levels must satisfy oversold < exit < overbought (got {self.oversold}, {self.exit}, "
                f"{self.overbought})"
            )


class RsiReversion(Strategy[RsiReversionParams]):
    """Built-in kind `rsi_reversion`."""

    params_type = RsiReversionParams

    def on_bar(self, ctx: Context) -> Target | None:
        p = self.params
        close = _close(ctx)
        state = _state(ctx)
        rsi_ind = state.get("rsi")
        if rsi_ind is None:
            rsi_ind = state["rsi"] = WilderRsi(p.period)
        rsi = rsi_ind.update(close)
        if rsi is None:
            return None
        side: Side = state["side"]
        if side == "long" and rsi >= p.exit or side == "short" and rsi <= p.exit:
            side = "flat"
        if rsi < p.oversold:
            side = "long"
        elif rsi > p.overbought and p.allow_short:
            side = "short"
        state["side"] = side
        return Target(side, diagnostics={"rsi": rsi})


# --- Bollinger breakout --------------------------------------------------------------------------


class BollingerParams(Params, frozen=True, kw_only=True):
    """Bands on `timeframe` bars: the SMA of the last `period` closes (this bar's included) +-
    `width` population standard deviations. Long when the close is above the upper band, short below the lower
    (flat instead when allow_short is false); a long ends when the close falls below the middle
    band, a short when it rises above it (compared exactly: a close equal to the average is
    neither)."""

    period: Window = 20
    width: Annotated[float, msgspec.Meta(gt=0, le=10)] = 2.0
    timeframe: Timeframe = "1m"
    allow_short: bool = True


class BollingerBreakout(Strategy[BollingerParams]):
    """Built-in kind `bollinger_breakout`; runs on `timeframe` bars (subscribe to them), reading
    the last `period` of them; bars of other timeframes are ignored."""

    params_type = BollingerParams

    def history(self) -> Mapping[str, int]:
        return {self.params.timeframe: self.params.period}

    def on_bar(self, ctx: Context) -> Target | None:
        p = self.params
        if ctx.timeframe != p.timeframe:
            return None
        close = _close(ctx)
        state = _state(ctx)
        closes = ctx.bars(ctx.symbol, ctx.timeframe, p.period).close
        if len(closes) < p.period:
            return None
        middle = float(closes.mean())
        spread = p.width * float(np.sqrt(np.mean((closes - middle) ** 2)))
        upper, lower = middle + spread, middle - spread
        side: Side = state["side"]
        vs_middle = _above_mean(close, closes)
        if side == "long" and vs_middle < 0 or side == "short" and vs_middle > 0:
            side = "flat"
        if close > upper:
            side = "long"
        elif close < lower and p.allow_short:
            side = "short"
        state["side"] = side
        return Target(side, diagnostics={"middle": middle, "upper": upper, "lower": lower})


# --- Donchian breakout ---------------------------------------------------------------------------


class DonchianParams(Params, frozen=True, kw_only=True):
    """On `timeframe` bars: long when the close is above the highest high of the previous
    `period` bars, short when below their lowest low (flat instead when allow_short is false); a
    long ends when the close is below the lowest low of the previous `exit_period` bars, a short
    above their highest high (the turtles' 20/10). exit_period defaults to period (then, with
    shorts allowed, the strategy is always in the market once in)."""

    period: Period = 20
    exit_period: Period | None = None
    timeframe: Timeframe = "1m"
    allow_short: bool = True

    def __post_init__(self) -> None:
        if self.exit_period is not None and self.exit_period > self.period:
            raise ValueError(f"exit_period must be <= period (got {self.exit_period} > {self.period})")


class DonchianBreakout(Strategy[DonchianParams]):
    """Built-in kind `donchian_breakout`; runs on `timeframe` bars (subscribe to them), reading
    the previous `period` of them; bars of other timeframes are ignored."""

    params_type = DonchianParams

    def history(self) -> Mapping[str, int]:
        return {self.params.timeframe: self.params.period + 1}

    def on_bar(self, ctx: Context) -> Target | None:
        p = self.params
        if ctx.timeframe != p.timeframe:
            return None
        close = _close(ctx)
        state = _state(ctx)
        w = ctx.bars(ctx.symbol, ctx.timeframe, p.period + 1)
        if len(w) <= p.period:
            return None
        upper, lower = float(w.high[:-1].max()), float(w.low[:-1].min())
        m = p.period if p.exit_period is None else p.exit_period
        exit_upper, exit_lower = float(w.high[-1 - m : -1].max()), float(w.low[-1 - m : -1].min())
        side: Side = state["side"]
        if side == "long" and close < exit_lower or side == "short" and close > exit_upper:
            side = "flat"
        if close > upper:
            side = "long"
        elif close < lower and p.allow_short:
            side = "short"
        state["side"] = side
        return Target(
            side,
            diagnostics={"upper": upper, "lower": lower, "exit_upper": exit_upper, "exit_lower": exit_lower},
        )


# --- MACD ----------------------------------------------------------------------------------------


class MacdParams(Params, frozen=True, kw_only=True):
    """MACD line = EMA(fast) - EMA(slow) of the closes, signal line = EMA(signal) of the MACD line
    (EMAs seeded with their first simple average). Long while the MACD line is above the signal
    line, short while below (flat instead when allow_short is false), flat when equal."""

    fast: Period = 12
    slow: Period = 26
    signal: Period = 9
    allow_short: bool = True

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow (got fast={self.fast}, slow={self.slow})")


class MacdCross(Strategy[MacdParams]):
    """Built-in kind `macd`."""

    params_type = MacdParams

    def on_bar(self, ctx: Context) -> Target | None:
        p = self.params
        close = _close(ctx)
        state = _state(ctx)
        ind = state.get("macd")
        if ind is None:
            ind = state["macd"] = Macd(p.fast, p.slow, p.signal)
        found = ind.update(close)
        if found is None:
            return None
        macd, signal = found
        side: Side = "long" if macd > signal else "short" if macd < signal and p.allow_short else "flat"
        return Target(side, diagnostics={"macd": macd, "signal": signal, "histogram": macd - signal})


# --- multi-timeframe: 1h trend filter, 1m entries ------------------------------------------------


class MtfTrendParams(Params, frozen=True, kw_only=True):
    """Trend: the last closed `trend_timeframe` bar's close against the SMA of the last
    `trend_period` closes of that timeframe (up above, down below, none when exactly equal).
    Entries on `entry_timeframe` bars (the strategy runs on those; subscribe to them): long when
    the trend is up and the close is above the highest high of the previous `entry_period` bars,
    short when the trend is down and the close is below their lowest low (no shorts when
    allow_short is false). A position ends when the trend no longer agrees with it."""

    trend_timeframe: Timeframe = "1h"
    trend_period: Period = 24
    entry_timeframe: Timeframe = "1m"
    entry_period: Period = 30
    allow_short: bool = True

    def __post_init__(self) -> None:
        if TIMEFRAME_NS[self.trend_timeframe] <= TIMEFRAME_NS[self.entry_timeframe]:
            raise ValueError(
                f"trend_timeframe must be longer than entry_timeframe (got {self.trend_timeframe} "
                f"and {self.entry_timeframe})"
            )


class MtfTrend(Strategy[MtfTrendParams]):
    """Built-in kind `mtf_trend`: runs on entry_timeframe bars and reads the trend_timeframe
    window (which the service then reads too, without the strategy subscribing to it)."""

    params_type = MtfTrendParams

    def history(self) -> Mapping[str, int]:
        p = self.params
        return {p.trend_timeframe: p.trend_period, p.entry_timeframe: p.entry_period + 1}

    def on_bar(self, ctx: Context) -> Target | None:
        p = self.params
        if ctx.timeframe != p.entry_timeframe:
            return None
        close = _close(ctx)
        state = _state(ctx)
        hours = ctx.bars(ctx.symbol, p.trend_timeframe, p.trend_period)
        w = ctx.bars(ctx.symbol, p.entry_timeframe, p.entry_period + 1)
        if len(hours) < p.trend_period or len(w) <= p.entry_period:
            return None
        last = float(hours.close[-1])
        sma = float(hours.close.mean())
        trend = _above_mean(last, hours.close)
        upper, lower = float(w.high[:-1].max()), float(w.low[:-1].min())
        side: Side = state["side"]
        if side == "long" and trend != 1 or side == "short" and trend != -1:
            side = "flat"
        if trend == 1 and close > upper:
            side = "long"
        elif trend == -1 and close < lower and p.allow_short:
            side = "short"
        state["side"] = side
        return Target(side, diagnostics=mtf_diagnostics(trend, last, sma, int(hours.open_time[-1]), upper, lower))


def mtf_diagnostics(trend: int, last: float, sma: float, hour: int, upper: float, lower: float) -> dict[str, Any]:
    """What an mtf_trend decision carries: the trend, the hour's close, SMA and open time, the
    entry channel."""
    return {"trend": trend, "trend_close": last, "trend_sma": sma, "trend_bar": hour, "upper": upper, "lower": lower}
