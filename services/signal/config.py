"""Typed settings of the signal service: the bar timeframe and the list of strategies to run."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from ticktape.clock import TIMEFRAME_NS

# A strategy name becomes a subject token (signals.<strategy>.<venue>.<symbol>), so no dots.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
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


class EmaCrossConfig(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="ema_cross",
):
    """A single EMA crossover: long when fast > slow, short (or flat) when fast < slow."""

    name: Name = "ema_cross_9_21"
    fast: Period = 9
    slow: Period = 21
    allow_short: bool = True

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow (got fast={self.fast}, slow={self.slow})")


DEFAULT_HEADS: tuple[Head, ...] = tuple(
    Head(fast=f, slow=s) for f, s in ((3, 10), (4, 12), (5, 15), (6, 18), (7, 21), (8, 24), (9, 27), (10, 30), (12, 36))
)


class EnsembleConfig(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="ensemble",
):
    """n EMA heads; long when at least k vote +1, short when at least k vote -1, else flat."""

    name: Name = "ensemble9"
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


StrategyConfig = EmaCrossConfig | EnsembleConfig


class SignalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`timeframe`: which closed bars drive the strategies; `strategies`: what runs on them.

    `trade_backfilled`: whether backfilled bars (a new symbol's history, the minutes an outage
    missed) may signal. False (the default): they only warm the strategies, and a side they
    changed is signalled on the next live bar, at its price. True: history signals like live
    bars, as every run did before the key existed (LEGACY_DEFAULTS)."""

    # Keys whose default changed behaviour when they were added: a recorded configuration whose
    # section lacks one ran with this value (ticktape.config.recorded_as_run), and every new
    # recording states it (ticktape.config.state_defaults), so old sessions replay as they ran.
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"trade_backfilled": True}

    timeframe: str = "1m"
    strategies: tuple[StrategyConfig, ...] = (EnsembleConfig(), EmaCrossConfig())
    trade_backfilled: bool = False

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_NS:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAME_NS)} (got {self.timeframe!r})")
        if not self.strategies:
            raise ValueError("strategies must not be empty")
        names = [s.name for s in self.strategies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"strategy names must be unique (duplicated: {', '.join(dupes)})")
