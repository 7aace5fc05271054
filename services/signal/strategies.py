"""Strategies: per-symbol EMA heads that turn each closed bar into a side decision."""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, assert_never

from services.signal.config import EmaCrossConfig, EnsembleConfig, Head, StrategyConfig
from services.signal.ema import Ema
from ticktape.events import BarClosed, Vote
from ticktape.events.signals import Side


class Decision(NamedTuple):
    """What a strategy thinks after a bar: the side and the votes that decided it."""

    side: Side
    k: int
    n: int
    agree: int
    votes: tuple[Vote, ...]


class Strategy(Protocol):
    """Anything the signal core can run. on_bar returns None while warming up; raising makes
    the core quarantine the strategy."""

    name: str

    def on_bar(self, bar: BarClosed) -> Decision | None: ...


class _HeadState:
    __slots__ = ("head", "fast", "slow")

    def __init__(self, head: Head) -> None:
        self.head = head
        self.fast = Ema(head.fast)
        self.slow = Ema(head.slow)

    def update(self, close: float) -> Vote:
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        vote = 0
        if fast is not None and slow is not None:
            vote = 1 if fast > slow else -1 if fast < slow else 0
        return Vote(
            head=self.head.name,
            fast=self.head.fast,
            slow=self.head.slow,
            fast_ema=math.nan if fast is None else fast,
            slow_ema=math.nan if slow is None else slow,
            vote=vote,
        )

    @property
    def warm(self) -> bool:
        return self.slow.value is not None and self.fast.value is not None


class EnsembleStrategy:
    """n EMA heads per (venue, symbol); long when >= k vote +1, short when >= k vote -1.

    Warm once every head's slow EMA is seeded; until then on_bar returns None. A single-head
    ensemble with k = 1 is the plain EMA crossover."""

    def __init__(self, name: str, heads: tuple[Head, ...], k: int, *, allow_short: bool = True) -> None:
        self.name = name
        self.heads = heads
        self.k = k
        self.allow_short = allow_short
        self._state: dict[tuple[str, str], list[_HeadState]] = {}

    def on_bar(self, bar: BarClosed) -> Decision | None:
        """Update this symbol's heads with the bar's close and decide a side."""
        close = bar.close
        if not (math.isfinite(close) and close > 0):
            raise ValueError(f"bad close {close!r} for {bar.venue}/{bar.symbol} at {bar.open_time}")
        heads = self._state.get((bar.venue, bar.symbol))
        if heads is None:
            heads = self._state[(bar.venue, bar.symbol)] = [_HeadState(h) for h in self.heads]
        votes = tuple(h.update(close) for h in heads)
        if not all(h.warm for h in heads):
            return None
        ups = sum(1 for v in votes if v.vote > 0)
        downs = sum(1 for v in votes if v.vote < 0)
        side: Side = "flat"
        agree = max(ups, downs)
        if ups >= self.k:
            side, agree = "long", ups
        elif downs >= self.k and self.allow_short:
            side, agree = "short", downs
        return Decision(side=side, k=self.k, n=len(heads), agree=agree, votes=votes)


def _ema_cross(cfg: EmaCrossConfig) -> Strategy:
    return EnsembleStrategy(cfg.name, (Head(fast=cfg.fast, slow=cfg.slow),), 1, allow_short=cfg.allow_short)


def _ensemble(cfg: EnsembleConfig) -> Strategy:
    return EnsembleStrategy(cfg.name, cfg.heads, cfg.k, allow_short=cfg.allow_short)


def build(cfg: StrategyConfig) -> Strategy:
    """Instantiate the strategy a config entry describes. A new kind needs a config struct in
    StrategyConfig and a case here (the type checker fails on a kind without one)."""
    match cfg:
        case EmaCrossConfig():
            return _ema_cross(cfg)
        case EnsembleConfig():
            return _ensemble(cfg)
    assert_never(cfg)
