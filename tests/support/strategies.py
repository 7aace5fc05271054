"""Strategies written against the plug-in API (ticktape.strategy) the way a user's package would,
for the tests of the API; the configuration names them by import path
(`kind: tests.support.strategies:Lookback`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from ticktape.strategy import Context, NoParams, Params, Strategy, Target


class LookbackParams(Params, frozen=True, kw_only=True):
    period: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    threshold: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class Lookback(Strategy[LookbackParams]):
    """Long when the close is above the close `period` bars before (by more than threshold),
    short below, flat between; records the window it read."""

    params_type = LookbackParams

    def history(self) -> Mapping[str, int]:
        return {"1m": self.params.period + 1}

    def on_bar(self, ctx: Context) -> Target | None:
        w = ctx.bars(ctx.symbol, ctx.timeframe, self.params.period + 1)
        if len(w) <= self.params.period:
            return None
        change = float(w.close[-1] / w.close[0] - 1)
        side: Any = "long" if change > self.params.threshold else "short" if change < -self.params.threshold else "flat"
        return Target(side, diagnostics={"change": change, "window": w.close, "first_open": w.open_time[0]})


class HourlyBias(Strategy[NoParams]):
    """Runs on 1m bars and reads the 1h window: long while the minute's close is above the last
    closed hour's close, short below. Multi-timeframe: subscribe to 1m, declare 1h history."""

    def history(self) -> Mapping[str, int]:
        return {"1h": 2}

    def on_bar(self, ctx: Context) -> Target | None:
        hours = ctx.bars(ctx.symbol, "1h", 2)
        if not len(hours):
            return None
        ref = float(hours.close[-1])
        side: Any = "long" if ctx.bar.close > ref else "short" if ctx.bar.close < ref else "flat"
        return Target(side, diagnostics={"hour": int(hours.open_time[-1]), "hour_close": ref})


class Ramp(Strategy[NoParams]):
    """Always long, with a weight that grows by 0.25 a bar per symbol (kept in ctx.state) up to 1."""

    def on_bar(self, ctx: Context) -> Target | None:
        n = ctx.state["n"] = ctx.state.get("n", 0) + 1
        return Target("long", min(1.0, 0.25 * n))


class BadParams(Params, frozen=True, kw_only=True):
    how: str = "type"
    after: Annotated[int, msgspec.Meta(ge=0)] = 0


class Misbehaving(Strategy[BadParams]):
    """Returns something unusable (params.how) from its `after`-th bar on."""

    params_type = BadParams

    def __init__(self, params: BadParams, *, name: str) -> None:
        super().__init__(params, name=name)
        self.calls = 0

    def on_bar(self, ctx: Context) -> Target | None:
        self.calls += 1
        if self.calls <= self.params.after:
            return None
        match self.params.how:
            case "type":
                return "long"  # type: ignore[return-value]
            case "side":
                return Target("up")  # type: ignore[arg-type]
            case "weight":
                return Target("short", 0.5)
            case "nan":
                return Target("long", diagnostics={"x": [1.0, math.nan]})
            case "object":
                return Target("long", diagnostics={"x": object()})
            case "history":
                ctx.bars(ctx.symbol, "1m", 5)  # declared none
        return None


class NeedsEven(Strategy[LookbackParams]):
    """Refuses odd periods in __init__: a constructor's check is a config error."""

    params_type = LookbackParams

    def __init__(self, params: LookbackParams, *, name: str) -> None:
        if params.period % 2:
            raise ValueError(f"period must be even (got {params.period})")
        super().__init__(params, name=name)


NOT_A_STRATEGY = 42


class Guarded(Strategy[NoParams]):
    """Always long, with a lock in its instance state: not plain data, so the signal service cannot
    snapshot its state (it falls back to a full rebuild at each start)."""

    def __init__(self, params: NoParams, *, name: str) -> None:
        super().__init__(params, name=name)
        import threading

        self.lock = threading.Lock()

    def on_bar(self, ctx: Context) -> Target | None:
        return Target("long")
