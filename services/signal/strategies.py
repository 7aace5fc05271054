"""The built-in strategy kinds, written against the plug-in API (ticktape.strategy) like any
installed one: `ensemble` (n EMA heads, k of n must agree), `ema_cross` (one head, k = 1),
`consensus` (k of n over member strategies of any kinds) and the library of
services/signal/library.py (`rsi_reversion`, `bollinger_breakout`, `donchian_breakout`, `macd`,
`mtf_trend`). BUILTINS maps every built-in kind name to its class.

Their diagnostics are what version-1 signals carried as fields (k, n, agree, votes), so the same
decision writes the same bytes in either version (ticktape.events.signals)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, cast

import msgspec

from services.signal.config import Kind
from services.signal.ema import Ema
from services.signal.library import BollingerBreakout, DonchianBreakout, MacdCross, MtfTrend, RsiReversion
from ticktape.events.signals import Side, Vote, ensemble_diagnostics
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


# --- k of n over any strategies -------------------------------------------------------------


class Member(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One strategy of a consensus: its kind (any kind a configuration entry may name: a
    built-in, an installed kind, `module:Class`, another consensus), its parameters (checked
    against the kind's Params when the consensus starts) and a name for the diagnostics
    (default: the kind)."""

    kind: Kind
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    params: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return self.name or self.kind


class ConsensusParams(Params, frozen=True, kw_only=True):
    """n member strategies of any kinds; long when at least k of them are long, short when at
    least k are short (flat instead when allow_short is false), else flat."""

    members: tuple[Member, ...]
    k: Annotated[int, msgspec.Meta(ge=1)]
    allow_short: bool = True

    def __post_init__(self) -> None:
        n = len(self.members)
        if n == 0:
            raise ValueError("members must not be empty")
        # k > n/2 so that long and short can never both reach k on the same bar.
        if not n < 2 * self.k <= 2 * n:
            raise ValueError(f"k must satisfy n/2 < k <= n (got k={self.k}, n={n})")


class Consensus(Strategy[ConsensusParams]):
    """Built-in kind `consensus`: k of n over member strategies of any kinds.

    Every member sees every bar the consensus runs on, with its own ctx.state and the history
    windows it declared (the consensus declares their union). A member's vote is the side of the
    last Target it returned for the (venue, symbol, timeframe); until every member has voted the
    consensus has no opinion. A member that raises or returns something unusable quarantines the
    consensus. `kinds` maps kind names to classes (the service passes what it discovered; default:
    the built-ins)."""

    params_type = ConsensusParams

    def __init__(
        self, params: ConsensusParams, *, name: str, kinds: Mapping[str, type[Strategy[Any]]] | None = None
    ) -> None:
        super().__init__(params, name=name)
        known = BUILTINS if kinds is None else kinds
        self.members: list[Strategy[Any]] = []
        self._states: list[dict[tuple[str, str], dict[str, Any]]] = []
        limits: dict[str, int] = {}
        for j, m in enumerate(params.members):
            cls = known.get(m.kind)
            if cls is None:
                raise ValueError(f"members[{j}].kind: unknown strategy kind {m.kind!r}")
            try:
                member_params = msgspec.convert(m.params, cls.params_type, str_keys=True)
            except msgspec.ValidationError as exc:
                message, _, path = str(exc).partition(" - at `$")
                raise ValueError(f"members[{j}].params{path.rstrip('`')}: {message}") from None
            label = f"{name}.{m.label}"
            try:
                member = build(cls, member_params, name=label, kinds=known)
            except Exception as exc:  # noqa: BLE001 - a member's constructor may fail any way: say which
                raise ValueError(f"members[{j}]: {m.kind} cannot start: {type(exc).__name__}: {exc}") from None
            for tf, n in dict(member.history()).items():
                limits[tf] = max(limits.get(tf, 0), n)
            self.members.append(member)
            self._states.append({})
        self._limits = limits

    def history(self) -> Mapping[str, int]:
        return self._limits

    def on_bar(self, ctx: Context) -> Target | None:
        key = f"votes.{ctx.timeframe}"
        votes: list[Side | None] = ctx.state.get(key) or [None] * len(self.members)
        for j, member in enumerate(self.members):
            decision: Any = member.on_bar(ctx.member(self._states[j]))  # a plug-in's: any type may come
            if decision is None:
                continue
            given: Any = decision.side if isinstance(decision, Target) else None
            vote = _SIDES.get(given) if isinstance(given, str) else None
            if vote is None:
                raise ValueError(
                    f"member {self.params.members[j].label} returned {decision!r}, not a Target with side "
                    "long, short or flat"
                )
            votes[j] = vote
        ctx.state[key] = votes
        if any(v is None for v in votes):
            return None
        longs = sum(v == "long" for v in votes)
        shorts = sum(v == "short" for v in votes)
        side: Side = "flat"
        agree = max(longs, shorts)
        if longs >= self.params.k:
            side, agree = "long", longs
        elif shorts >= self.params.k and self.params.allow_short:
            side, agree = "short", shorts
        members = self.params.members
        k, n = self.params.k, len(votes)
        cast = tuple(votes)

        def diagnostics() -> Mapping[str, Any]:
            return {
                "k": k,
                "n": n,
                "agree": agree,
                "votes": [{"member": m.label, "kind": m.kind, "side": v} for m, v in zip(members, cast, strict=True)],
            }

        return Target(side, None, diagnostics)


_SIDES: dict[str, Side] = {"long": "long", "short": "short", "flat": "flat"}


def build(
    cls: type[Strategy[Any]], params: Params, *, name: str, kinds: Mapping[str, type[Strategy[Any]]]
) -> Strategy[Any]:
    """An instance of a strategy class: a consensus is also given the kinds its members may name."""
    if issubclass(cls, Consensus):
        return cls(cast(ConsensusParams, params), name=name, kinds=kinds)
    return cls(params, name=name)


BUILTINS: dict[str, type[Strategy[Any]]] = {
    "ema_cross": EmaCross,
    "ensemble": Ensemble,
    "rsi_reversion": RsiReversion,
    "bollinger_breakout": BollingerBreakout,
    "donchian_breakout": DonchianBreakout,
    "macd": MacdCross,
    "mtf_trend": MtfTrend,
    "consensus": Consensus,
}
