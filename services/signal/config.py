"""Typed settings of the signal service: the bar timeframe and the list of strategies to run.

A strategy entry names its kind (a built-in, a kind installed through the `ticktape.strategies`
entry-point group, or `module:Class`), its name (a subject token), its parameters (checked
against the kind's Params struct when the service loads, services/signal/loading.py) and what it
subscribes to. The flat form the built-in kinds were written in before (`{kind: ema_cross, fast:
3, slow: 8}`) is still read: those keys move into `params`."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from ticktape.clock import TIMEFRAME_NS
from ticktape.workers import MAX_WORKERS

# A strategy name becomes a subject token (signals.<strategy>.<venue>.<symbol>), so no dots.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Kind = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^([A-Za-z0-9_-]+|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
]
# fnmatch-style selectors (`*`, `?`, `[...]`), matched case-sensitively
Selector = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]

BUILTIN_KINDS = ("ema_cross", "ensemble")
# the names an entry of a built-in kind had when the config left it out (before #10 too)
_DEFAULT_NAMES = {"ema_cross": "ema_cross_9_21", "ensemble": "ensemble9"}
_FLAT_KEYS = ("fast", "slow", "allow_short", "heads", "k")


class Subscription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bars a strategy runs on: of venues matching `venue`, symbols matching any of `symbols`,
    closed in any of `timeframes` (empty: signal.timeframe)."""

    venue: Selector = "*"
    symbols: tuple[Selector, ...] = ("*",)
    timeframes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols must not be empty (use ['*'] for every symbol)")
        bad = [tf for tf in self.timeframes if tf not in TIMEFRAME_NS]
        if bad:
            raise ValueError(f"timeframes must be among {', '.join(TIMEFRAME_NS)} (got {bad[0]!r})")


class StrategyEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One strategy to run. `params` are the kind's parameters (its Params struct, checked at
    load); `subscribe` empty: every venue and symbol, on signal.timeframe. `name` defaults to
    the kind (ema_cross_9_21 and ensemble9 for the built-ins, as before). `rotate_every: R` (an
    expensive strategy): evaluated on one bar in R of each symbol, in a deterministic rotation
    (services/signal/rotation.py), so on about 1/R of the symbols at each close.

    fast, slow, allow_short, heads, k: the flat form of the built-in kinds' parameters, read
    for configurations written before `params` existed and moved into params."""

    kind: Kind
    name: Name | None = None
    params: dict[str, Any] = {}
    subscribe: tuple[Subscription, ...] = ()
    rotate_every: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    fast: Any = None
    slow: Any = None
    allow_short: Any = None
    heads: Any = None
    k: Any = None

    def __post_init__(self) -> None:
        flat = {key: getattr(self, key) for key in _FLAT_KEYS if getattr(self, key) is not None}
        if flat:
            if self.kind not in BUILTIN_KINDS:
                raise ValueError(
                    f"{', '.join(flat)}: only the built-in kinds ({', '.join(BUILTIN_KINDS)}) take parameters "
                    "outside params; write them under params"
                )
            if self.params:
                raise ValueError(f"{', '.join(flat)}: give the parameters either under params or flat, not both")
            msgspec.structs.force_setattr(self, "params", flat)
            for key in flat:
                msgspec.structs.force_setattr(self, key, None)
        if self.name is None:
            name = _DEFAULT_NAMES.get(self.kind, self.kind)
            if re.fullmatch(NAME_PATTERN, name) is None:
                raise ValueError(f"name is required for kind {self.kind!r} (a subject token: letters, digits, _ -)")
            msgspec.structs.force_setattr(self, "name", name)

    @property
    def label(self) -> str:
        """The entry's name (always set once decoded)."""
        return self.name or self.kind


def EmaCrossConfig(  # the name of the pre-#10 struct, kept for its callers
    *, name: str = "ema_cross_9_21", fast: int = 9, slow: int = 21, allow_short: bool = True
) -> StrategyEntry:
    """An ema_cross entry (long when the fast EMA is above the slow one, short or flat below)."""
    return StrategyEntry(kind="ema_cross", name=name, params={"fast": fast, "slow": slow, "allow_short": allow_short})


def EnsembleConfig(  # the name of the pre-#10 struct, kept for its callers
    *,
    name: str = "ensemble9",
    heads: tuple[tuple[int, int], ...] | None = None,
    k: int = 5,
    allow_short: bool = True,
) -> StrategyEntry:
    """An ensemble entry: n EMA heads given as (fast, slow) pairs (None: the nine defaults)."""
    params: dict[str, Any] = {"k": k, "allow_short": allow_short}
    if heads is not None:
        params["heads"] = [{"fast": f, "slow": s} for f, s in heads]
    return StrategyEntry(kind="ensemble", name=name, params=params)


class SignalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`timeframe`: the closed bars strategies run on unless they subscribe otherwise;
    `strategies`: what runs.

    `trade_backfilled`: whether backfilled bars (a new symbol's history, the minutes an outage
    missed) may signal. False (the default): they only warm the strategies, and a side they
    changed is signalled on the next live bar, at its price. True: history signals like live
    bars, as every run did before the key existed (LEGACY_DEFAULTS).

    `event_version`: the SignalGenerated version emitted. 2 (the default): strategy-agnostic
    signals (target, diagnostics) and StrategyQuarantined events. 1: what the code before issue
    #10 emitted (EMA votes, no quarantine events), which recordings made before the key existed
    ran with (LEGACY_DEFAULTS), so their replay writes their bytes; only the built-in kinds,
    without subscriptions, can run that way.

    Managed strategies (`ticktape strategies`, StrategyChanged events on strategies.>) run beside
    these: `managed_timeframes` are the timeframes they may subscribe to or read (empty:
    `timeframe`), whose bars the service reads whether or not a strategy runs on them;
    `warmup_bars` how many of the latest bars of each (venue, symbol) of those timeframes it keeps,
    so that a strategy added at run time is first fed them (warming up, signalling nothing).
    0: a managed strategy starts cold.

    `workers`: how many processes `ticktape up` runs the service as, each owning a partition of
    the symbols (ticktape.workers); `auto`: chosen at start from the strategies and their measured
    evaluation time (services/signal/workers.py), so that one bar of every symbol is evaluated
    within `evaluation_budget_ms`; the choice is recorded (WorkersChosen) and written into the
    session's configuration. Run by hand (`python -m services.signal`), `auto` is one worker."""

    # Keys whose default changed behaviour when they were added: a recorded configuration whose
    # section lacks one ran with this value (ticktape.config.recorded_as_run), and every new
    # recording states it (ticktape.config.state_defaults), so old sessions replay as they ran.
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"trade_backfilled": True, "event_version": 1}

    timeframe: str = "1m"
    strategies: tuple[StrategyEntry, ...] = (StrategyEntry(kind="ensemble"), StrategyEntry(kind="ema_cross"))
    trade_backfilled: bool = False
    event_version: Literal[1, 2] = 2
    managed_timeframes: tuple[str, ...] = ()
    warmup_bars: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 500
    workers: int | Literal["auto"] = 1
    evaluation_budget_ms: Annotated[float, msgspec.Meta(gt=0, le=60_000)] = 1000.0

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_NS:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAME_NS)} (got {self.timeframe!r})")
        bad = [tf for tf in self.managed_timeframes if tf not in TIMEFRAME_NS]
        if bad:
            raise ValueError(f"managed_timeframes must be among {', '.join(TIMEFRAME_NS)} (got {bad[0]!r})")
        if not self.strategies:
            raise ValueError("strategies must not be empty")
        if isinstance(self.workers, int) and not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 1..{MAX_WORKERS} or auto (got {self.workers})")
        names = [s.label for s in self.strategies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"strategy names must be unique (duplicated: {', '.join(dupes)})")
        if self.event_version == 1:
            odd = [s.label for s in self.strategies if s.kind not in BUILTIN_KINDS or s.subscribe]
            if odd:
                raise ValueError(
                    f"event_version 1 runs only the built-in kinds ({', '.join(BUILTIN_KINDS)}) without "
                    f"subscribe (not: {', '.join(odd)}); use event_version 2"
                )


def managed_timeframes(config: SignalConfig) -> tuple[str, ...]:
    """The timeframes a managed strategy may use: signal.managed_timeframes, else signal.timeframe."""
    return config.managed_timeframes or (config.timeframe,)
