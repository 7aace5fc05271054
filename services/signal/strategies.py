"""The built-in strategy kinds, written against the plug-in API (ticktape.strategy) like any
installed one: `ensemble` (n EMA heads, k of n must agree) and `ema_cross` (one head, k = 1).

Their diagnostics are what version-1 signals carried as fields (k, n, agree, votes), so the same
decision writes the same bytes in either version (ticktape.events.signals)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from services.signal.ema import Ema
from ticktape.events.signals import Vote, ensemble_diagnostics
from ticktape.strategy import Context, Params, Strategy, Target

Period = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class Head(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One EMA pair: votes +1 when the fast EMA is above the slow one, -1 below."""

    fast: Period
    slow: Period

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow (got fast={self.fast}, slow={self.slow})")

    @property
    def name(self) -> str:
        return f"ema_{self.fast}_{self.slow}"


DEFAULT_HEADS: tuple[Head, ...] = tuple(
    Head(fast=f, slow=s) for f, s in ((3, 10), (4, 12), (5, 15), (6, 18), (7, 21), (8, 24), (9, 27), (10, 30), (12, 36))
)


class EmaCrossParams(Params, frozen=True, kw_only=True):
    """A single EMA crossover: long when fast > slow, short (or flat) when fast < slow."""

    fast: Period = 9
    slow: Period = 21
    allow_short: bool = True

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow (got fast={self.fast}, slow={self.slow})")


class EnsembleParams(Params, frozen=True, kw_only=True):
    """n EMA heads; long when at least k vote +1, short when at least k vote -1, else flat."""

    heads: tuple[Head, ...] = DEFAULT_HEADS
    k: Annotated[int, msgspec.Meta(ge=1)] = 5
    allow_short: bool = True

    def __post_init__(self) -> None:
        n = len(self.heads)
        if n == 0:
            raise ValueError("heads must not be empty")
        pairs = [(h.fast, h.slow) for h in self.heads]
        if len(set(pairs)) != n:
            raise ValueError(f"heads must be distinct (fast, slow) pairs (got {pairs})")
        # k > n/2 so that long and short can never both reach k on the same bar.
        if not n < 2 * self.k <= 2 * n:
            raise ValueError(f"k must satisfy n/2 < k <= n (got k={self.k}, n={n})")


class _Heads:
    """One symbol's EMA pairs."""

    __slots__ = ("fast", "slow")

    def __init__(self, heads: tuple[Head, ...]) -> None:
        self.fast = [Ema(h.fast) for h in heads]
        self.slow = [Ema(h.slow) for h in heads]


class _EmaHeads(Strategy[Any]):
    """n EMA heads per (venue, symbol); long when >= k vote +1, short when >= k vote -1.

    Warm once every head's EMAs are seeded; until then on_bar returns None. A single-head
    ensemble with k = 1 is the plain EMA crossover."""

    heads: tuple[Head, ...]
    k: int
    allow_short: bool

    def __init__(self, params: Any, *, name: str) -> None:
        super().__init__(params, name=name)
        self._state: dict[tuple[str, str], _Heads] = {}

    def on_bar(self, ctx: Context) -> Target | None:
        """Update this symbol's heads with the bar's close and decide a side."""
        bar = ctx.bar
        close = bar.close
        if not (math.isfinite(close) and close > 0):
            raise ValueError(f"bad close {close!r} for {bar.venue}/{bar.symbol} at {bar.open_time}")
        key = (bar.venue, bar.symbol)
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _Heads(self.heads)
        fasts = [e.update(close) for e in state.fast]
        slows = [e.update(close) for e in state.slow]
        ups = downs = 0
        warm = True
        for f, s in zip(fasts, slows, strict=True):
            if f is None or s is None:
                warm = False
            elif f > s:
                ups += 1
            elif f < s:
                downs += 1
        if not warm:
            return None
        side: Any = "flat"
        agree = max(ups, downs)
        if ups >= self.k:
            side, agree = "long", ups
        elif downs >= self.k and self.allow_short:
            side, agree = "short", downs
        return Target(side, None, _Diagnostics(self.heads, self.k, agree, fasts, slows))


class _Diagnostics:
    """The votes of one decision, turned into diagnostics only when a signal carries them."""

    __slots__ = ("heads", "k", "agree", "fasts", "slows")

    def __init__(self, heads: tuple[Head, ...], k: int, agree: int, fasts: list[Any], slows: list[Any]) -> None:
        self.heads, self.k, self.agree, self.fasts, self.slows = heads, k, agree, fasts, slows

    def __call__(self) -> Mapping[str, Any]:
        votes = tuple(
            Vote(
                head=h.name,
                fast=h.fast,
                slow=h.slow,
                fast_ema=f,
                slow_ema=s,
                vote=1 if f > s else -1 if f < s else 0,
            )
            for h, f, s in zip(self.heads, self.fasts, self.slows, strict=True)
        )
        return ensemble_diagnostics(self.k, len(self.heads), self.agree, votes)


class Ensemble(_EmaHeads):
    """Built-in kind `ensemble`."""

    params_type = EnsembleParams

    def __init__(self, params: EnsembleParams, *, name: str) -> None:
        super().__init__(params, name=name)
        self.heads, self.k, self.allow_short = params.heads, params.k, params.allow_short


class EmaCross(_EmaHeads):
    """Built-in kind `ema_cross`: one head, k = 1."""

    params_type = EmaCrossParams

    def __init__(self, params: EmaCrossParams, *, name: str) -> None:
        super().__init__(params, name=name)
        self.heads, self.k, self.allow_short = (Head(fast=params.fast, slow=params.slow),), 1, params.allow_short


BUILTINS: dict[str, type[Strategy[Any]]] = {"ema_cross": EmaCross, "ensemble": Ensemble}
