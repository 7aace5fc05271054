"""The strategy plug-in API: what a strategy is, what it is given on each bar, what it returns.

A strategy is a class that derives from `Strategy`, with its parameters as a `Params` struct. It
lives in any distribution, which registers it under a kind name in the entry-point group
`ticktape.strategies`:

    [project.entry-points."ticktape.strategies"]
    momentum = "my_strategies.momentum:Momentum"

and the configuration runs it (or names the class by import path, `kind: my_strategies.momentum:Momentum`):

    signal:
      strategies:
        - kind: momentum
          name: mom20
          params: {period: 20}
          subscribe: [{venue: binance_usdm, symbols: ["BTC*", ETHUSDT], timeframes: [1m]}]

The signal service validates `params` against the class's `params_type` at start (a config error
names the key path, e.g. signal.strategies[3].params.period) and calls `on_bar(ctx)` on every
closed bar of the subscribed (venue, symbols, timeframes), in stream order. `ctx.bars(symbol,
timeframe, n)` gives the last n closed bars of any timeframe the strategy declared in
`history()`, as arrays, filled from what the service has seen (at a restart, the stream it
rebuilds from). on_bar returns a `Target` (side, optional weight, diagnostics) or None (no opinion
yet, e.g. warming up); the service signals when the target changes. A strategy that raises, or
returns something unusable, is quarantined (a StrategyQuarantined event) and the others run on.

Determinism is the contract: on_bar may keep state (in the instance or in `ctx.state`), but it
may depend only on its parameters and the bars it was given, never on a clock, randomness, I/O
or the iteration order of a set; a replay then reproduces every signal byte for byte.

State snapshots (docs/determinism.md §3a): the signal service snapshots its state, strategies
included, so that a restart resumes from it instead of re-running the whole log. There is no hook
to write: the default snapshot is the strategy's attributes (and its ctx.state), written as data,
so keep them plain: numbers, strings, None, lists, tuples, dicts, sets, deques, numpy arrays of
numbers, frozen msgspec Structs, dataclasses and objects of classes made of those. A strategy
holding anything else (a lock, a file, a generator, a C extension object, a class with its own
__reduce__/__getstate__) still runs, but the service then logs "snapshots off" and re-runs the
whole log at every start (ticktape_snapshots_total{outcome="disabled"}); it never restores a
state it could not write exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import msgspec

from ticktape.events import BarClosed
from ticktape.events.signals import Side
from ticktape.strategy.history import BarHistory, Bars

__all__ = ["GROUP", "Bars", "BarHistory", "Context", "HistoryError", "NoParams", "Params", "Strategy", "Target"]

GROUP = "ticktape.strategies"
MAX_HISTORY = 100_000  # bars per (symbol, timeframe) a strategy may ask to keep


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of a strategy's parameters: subclass it with typed fields and defaults (msgspec
    constraints, e.g. Annotated[int, msgspec.Meta(ge=1)]); rules across fields go in
    __post_init__ (raise ValueError saying what is allowed). Unknown keys are refused."""


class NoParams(Params, frozen=True, kw_only=True):
    """A strategy without parameters."""


class Target(NamedTuple):
    """What a strategy wants for the symbol of the bar: `side` long, short or flat; `weight`
    the signed size in [-1, 1] (None: +1 long, -1 short, 0 flat; the sign must match the
    side); `diagnostics` what to record with the signal (JSON values: numbers, strings, bools,
    None, lists and string-keyed maps of them), or a function returning them, called only
    when a signal is emitted (cheap on the bars that change nothing)."""

    side: Side
    weight: float | None = None
    diagnostics: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None


class HistoryError(LookupError):
    """A strategy asked for bars it did not declare in history()."""


P = TypeVar("P", bound=Params)


class Context:
    """What on_bar is given: the closed `bar` (its venue, symbol, timeframe), the history
    windows (`bars`) and the strategy's own per-(venue, symbol) `state` dict, kept by the
    service. Valid during the call only: keep values, not the context or its arrays."""

    __slots__ = ("bar", "_history", "_limits", "_states")

    def __init__(self, bar: BarClosed, history: BarHistory) -> None:
        self.bar = bar
        self._history = history
        self._limits: Mapping[str, int] = {}
        self._states: dict[tuple[str, str], dict[str, Any]] = {}

    def use(self, limits: Mapping[str, int], states: dict[tuple[str, str], dict[str, Any]]) -> Context:
        """Point the context at one strategy's history bounds and state (the service's side)."""
        self._limits = limits
        self._states = states
        return self

    def member(self, states: dict[tuple[str, str], dict[str, Any]]) -> Context:
        """A context on the same bar, history windows and bounds, with another state store: what
        a strategy made of other strategies (the built-in `consensus`) hands each member, so the
        members' ctx.state never collide."""
        ctx = Context(self.bar, self._history)
        ctx._limits = self._limits
        ctx._states = states
        return ctx

    @property
    def venue(self) -> str:
        return self.bar.venue

    @property
    def symbol(self) -> str:
        return self.bar.symbol

    @property
    def timeframe(self) -> str:
        return self.bar.timeframe

    @property
    def state(self) -> dict[str, Any]:
        """This strategy's state for the bar's (venue, symbol): an empty dict at first."""
        key = (self.bar.venue, self.bar.symbol)
        found = self._states.get(key)
        if found is None:
            found = self._states[key] = {}
        return found

    def bars(self, symbol: str, timeframe: str, n: int, *, venue: str | None = None) -> Bars:
        """The last n closed bars of symbol/timeframe (oldest first; fewer while there are not
        that many yet), on the bar's venue unless `venue` is given. n is bounded by what the
        strategy declared in history() for that timeframe (HistoryError beyond it)."""
        limit = self._limits.get(timeframe, 0)
        if not 0 <= n <= limit:
            raise HistoryError(
                f"bars({symbol!r}, {timeframe!r}, {n}): history() declares {limit} bar(s) of {timeframe}; "
                "declare what on_bar reads"
            )
        return self._history.last(venue if venue is not None else self.bar.venue, symbol, timeframe, n)


class Strategy(Generic[P]):
    """Base of every strategy. Subclass with `params_type = YourParams`, override on_bar, and
    history() when on_bar reads bars through ctx.bars. One instance runs per configured entry,
    for every symbol it subscribes to: keep per-symbol state keyed by (venue, symbol), or in
    ctx.state. __init__ may check the parameters further (raise ValueError: a config error)."""

    params_type: ClassVar[type[Params]] = NoParams

    def __init__(self, params: P, *, name: str) -> None:
        self.params = params
        self.name = name

    def history(self) -> Mapping[str, int]:
        """timeframe -> how many closed bars per symbol ctx.bars may read (at most MAX_HISTORY);
        the service keeps those windows, and reads those timeframes' bars even if the strategy
        is not subscribed to them (a 1m strategy may read the 1h window)."""
        return {}

    def on_bar(self, ctx: Context) -> Target | None:
        """Decide on one closed bar of a subscribed (venue, symbol, timeframe)."""
        raise NotImplementedError
