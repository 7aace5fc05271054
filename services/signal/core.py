"""Pure signal core: closed bars in, SignalGenerated out whenever a strategy's target changes.

Strategies are classes of the plug-in API (ticktape.strategy), handed to the core already loaded
(`kinds`: the built-ins, plus what services/signal/loading.py discovered); the core instantiates
one per configured entry, routes each bar to the entries subscribed to its (venue, symbol,
timeframe), keeps the history windows they declared (BarHistory, filled from the bars it has seen,
so a restart's rebuild refills them) and decides what to emit.

No trading on history: a backfilled bar (market data's REST backfill: a new symbol's history, or
the minutes an outage missed) is folded into the strategies like any bar, so they are warm, but
it signals nothing. The target each strategy last signalled for a symbol stays what risk and
execution have acted on; the first live bar after a backfill compares the strategy's target with
it, so a side the history changed is signalled once, on that bar, at its close, and a side the
history changed and changed back is not signalled at all. A signal's price is therefore always a
live bar's close. `signal.trade_backfilled: true` restores the old behaviour (history signals),
which recordings made before the key existed ran with (see SignalConfig.LEGACY_DEFAULTS).

A strategy that raises, or returns something unusable, is quarantined for good (all symbols) and
the others keep running; with event_version 2 the core says so with a StrategyQuarantined event."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import msgspec
import numpy as np

from services.signal.config import SignalConfig, StrategyEntry, Subscription
from services.signal.strategies import BUILTINS, build
from ticktape import ids, subjects
from ticktape.clock import TIMEFRAME_NS
from ticktape.errors import InvalidInput
from ticktape.events import BarClosed, Event, SignalGenerated, StrategyQuarantined
from ticktape.events.market import bar_problem
from ticktape.events.signals import SIDE_TARGET, Side
from ticktape.memo import InputMemo
from ticktape.sanity import nonfinite_field
from ticktape.strategy import MAX_HISTORY, BarHistory, Context, Strategy, Target

# Every bar; the core drops timeframes no strategy uses (see filter_subjects).
FILTER_SUBJECTS: tuple[str, ...] = (subjects.bars(),)

# How many recent inputs' outputs a core remembers to answer redeliveries identically.
REMEMBERED = 1_000

_DIAGNOSTICS = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


class StrategySetupError(ValueError):
    """An entry the core cannot run; the message starts with its key path (strategies[i]...)."""


def _timeframes(config: SignalConfig) -> tuple[str, ...]:
    """The timeframes the entries subscribe to, config.timeframe for those that name none."""
    found: list[str] = []
    for entry in config.strategies:
        for sub in entry.subscribe or (Subscription(),):
            for tf in sub.timeframes or (config.timeframe,):
                if tf not in found:
                    found.append(tf)
    return tuple(found)


def filter_subjects(config: SignalConfig) -> tuple[str, ...]:
    """The bars the subscriptions need, one filter per timeframe (SignalCore.filter_subjects adds
    the timeframes only read as history)."""
    return tuple(subjects.bars(timeframe=subjects.token(tf)) for tf in _timeframes(config))


class _Run:
    """One configured strategy as the core runs it."""

    __slots__ = ("entry", "name", "strategy", "subs", "limits", "states", "quarantined")

    def __init__(self, entry: StrategyEntry, strategy: Strategy[Any], subs: tuple[Subscription, ...], limits: Any):
        self.entry = entry
        self.name = entry.label
        self.strategy = strategy
        self.subs = subs
        self.limits: dict[str, int] = limits
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.quarantined = False

    def wants(self, venue: str, symbol: str, timeframe: str, default_tf: str) -> bool:
        return any(
            timeframe in (sub.timeframes or (default_tf,))
            and fnmatchcase(venue, sub.venue)
            and any(fnmatchcase(symbol, s) for s in sub.symbols)
            for sub in self.subs
        )


def _build(config: SignalConfig, kinds: Mapping[str, type[Strategy[Any]]]) -> list[_Run]:
    runs = []
    for i, entry in enumerate(config.strategies):
        where = f"strategies[{i}]"
        cls = kinds.get(entry.kind)
        if cls is None:
            raise StrategySetupError(f"{where}.kind: unknown strategy kind {entry.kind!r}")
        try:
            params = msgspec.convert(entry.params, cls.params_type, str_keys=True)
        except msgspec.ValidationError as exc:
            message, _, path = str(exc).partition(" - at `$")
            raise StrategySetupError(f"{where}.params{path.rstrip('`')}: {message}") from None
        try:
            strategy = build(cls, params, name=entry.label, kinds=kinds)  # a consensus: its members' kinds too
            declared: dict[Any, Any] = dict(strategy.history())  # a plug-in's: checked below
        except Exception as exc:  # noqa: BLE001 - a plug-in's constructor may fail any way: say which
            raise StrategySetupError(f"{where}: {entry.kind} cannot start: {type(exc).__name__}: {exc}") from None
        for tf, n in declared.items():
            if tf not in TIMEFRAME_NS or not isinstance(n, int) or not 0 <= n <= MAX_HISTORY:
                raise StrategySetupError(
                    f"{where}: {entry.kind}.history() must map timeframes ({', '.join(TIMEFRAME_NS)}) to "
                    f"0..{MAX_HISTORY} bars (got {tf!r}: {n!r})"
                )
        runs.append(_Run(entry, strategy, entry.subscribe or (Subscription(),), declared))
    return runs


class SignalCore:
    """Runs every strategy subscribed to each new bar.

    A redelivered bar returns its first outputs again; any other bar whose open_time is not
    after the last one seen for its (venue, symbol, timeframe) is ignored, so no strategy sees a
    bar twice. A backfilled bar moves the strategies but signals nothing unless
    config.trade_backfilled (see the module docstring); `_targets` holds the (side, target)
    last signalled, not the latest decisions. `quarantined` maps name -> error. `kinds`: the
    strategy classes by kind (default: the built-ins); StrategySetupError names a bad entry."""

    def __init__(self, config: SignalConfig, *, kinds: Mapping[str, type[Strategy[Any]]] | None = None) -> None:
        self.config = config
        self._memo = InputMemo(REMEMBERED)
        self._runs = _build(config, BUILTINS if kinds is None else kinds)
        capacity: dict[str, int] = {}
        for run in self._runs:
            for tf, n in run.limits.items():
                capacity[tf] = max(capacity.get(tf, 0), n)
        self._history = BarHistory(capacity)
        subscribed = _timeframes(config)
        self.timeframes: tuple[str, ...] = (*subscribed, *(tf for tf in self._history.capacity if tf not in subscribed))
        self._wanted = frozenset(self.timeframes)
        self._routes: dict[tuple[str, str, str], tuple[_Run, ...]] = {}
        self.quarantined: dict[str, str] = {}
        self._last_open: dict[tuple[str, str, str], int] = {}
        self._targets: dict[tuple[str, str, str], tuple[Side, float]] = {}

    @property
    def filter_subjects(self) -> tuple[str, ...]:
        """One bar filter per timeframe a strategy runs on or reads as history."""
        return tuple(subjects.bars(timeframe=subjects.token(tf)) for tf in self.timeframes)

    @property
    def strategies(self) -> tuple[Strategy[Any], ...]:
        return tuple(run.strategy for run in self._runs)

    @property
    def quarantined_count(self) -> int:
        """How many strategies are quarantined (a gauge for the shell to export)."""
        return len(self.quarantined)

    def handle(self, event: Event) -> list[Event]:
        """Apply one input event, return the events to publish (possibly empty).

        The same input twice (same event_id, within the last REMEMBERED) is applied once and
        returns the same outputs again; their ids are the same, so JetStream drops repeats."""
        return self._memo.apply(event, self._apply)

    def _route(self, venue: str, symbol: str, timeframe: str) -> tuple[_Run, ...]:
        key = (venue, symbol, timeframe)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = tuple(
                r for r in self._runs if r.wants(venue, symbol, timeframe, self.config.timeframe)
            )
        return found

    def _apply(self, event: Event) -> list[Event]:
        if not isinstance(event, BarClosed) or event.timeframe not in self._wanted:
            return []
        problem = bar_problem(event)
        if problem:  # bad data is rejected as input; it must not quarantine sound strategies
            raise InvalidInput(f"bar {event.symbol} {event.open_time}: {problem}")
        key = (event.venue, event.symbol, event.timeframe)
        last = self._last_open.get(key)
        if last is not None and event.open_time <= last:
            return []
        self._last_open[key] = event.open_time
        self._history.add(event)
        runs = self._route(*key)
        if not runs:
            return []
        history = event.backfilled and not self.config.trade_backfilled
        ctx = Context(event, self._history)
        out: list[Event] = []
        for run in runs:
            if run.quarantined:
                continue
            try:
                decision = run.strategy.on_bar(ctx.use(run.limits, run.states))
            except Exception as exc:  # noqa: BLE001 - isolating strategy bugs is the point
                out.extend(self._quarantine(run, event, "raised", f"{type(exc).__name__}: {exc}"))
                continue
            if decision is None:
                continue
            checked = _target(decision)
            if isinstance(checked, str):
                out.extend(self._quarantine(run, event, "bad_output", checked))
                continue
            if history:  # history only warms the strategy
                continue
            side_key = (run.name, event.venue, event.symbol)
            previous = self._targets.get(side_key, ("flat", 0.0))
            if checked == previous:
                continue
            diagnostics = _diagnostics(decision.diagnostics)
            if isinstance(diagnostics, str):
                out.extend(self._quarantine(run, event, "bad_output", diagnostics))
                continue
            self._targets[side_key] = checked
            out.append(
                SignalGenerated(
                    event_id=ids.child_id(event.event_id, f"signal.{run.name}", 0),
                    ts_event=event.close_time,
                    ts_init=event.ts_init,
                    causation_id=event.event_id,
                    correlation_id=event.correlation_id or event.event_id,
                    version=self.config.event_version,
                    strategy=run.name,
                    venue=event.venue,
                    symbol=event.symbol,
                    timeframe=event.timeframe,
                    side=checked[0],
                    previous_side=previous[0],
                    price=event.close,
                    bar_open_time=event.open_time,
                    target=checked[1],
                    diagnostics=diagnostics,
                )
            )
        return out

    def _quarantine(self, run: _Run, bar: BarClosed, reason: str, error: str) -> list[Event]:
        run.quarantined = True
        self.quarantined[run.name] = error
        if self.config.event_version < 2:  # the code before #10 only counted it
            return []
        return [
            StrategyQuarantined(
                event_id=ids.child_id(bar.event_id, f"quarantine.{run.name}", 0),
                ts_event=bar.close_time,
                ts_init=bar.ts_init,
                causation_id=bar.event_id,
                correlation_id=bar.correlation_id or bar.event_id,
                strategy=run.name,
                kind=run.entry.kind,
                venue=bar.venue,
                symbol=bar.symbol,
                timeframe=bar.timeframe,
                bar_open_time=bar.open_time,
                reason=reason,
                error=error[:1000],
            )
        ]


_SIDES: dict[object, Side] = {"long": "long", "short": "short", "flat": "flat"}


def _target(decision: object) -> tuple[Side, float] | str:
    """(side, signed target) of a strategy's answer, or why it is unusable."""
    if not isinstance(decision, Target):
        return f"on_bar returned a {type(decision).__name__}, not a ticktape.strategy.Target or None"
    weight: Any = decision.weight  # a plug-in's: any type may come
    given: Any = decision.side
    side = _SIDES.get(given) if isinstance(given, str) else None
    if side is None:
        return f"side must be long, short or flat (got {given!r})"
    if weight is None:
        return side, SIDE_TARGET[side]
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        return f"weight must be a finite number in [-1, 1] (got {weight!r})"
    target = float(weight)
    ok = 0 < target <= 1 if side == "long" else -1 <= target < 0 if side == "short" else target == 0
    if not ok:
        return f"weight {target!r} does not fit side {side} (long: (0, 1], short: [-1, 0), flat: 0)"
    return side, target


def _diagnostics(given: object) -> dict[str, Any] | str:
    """The diagnostics as the JSON values they are written as (so what the core emits equals what
    consumers decode), or why they cannot be written."""
    try:
        found = given() if callable(given) else given
    except Exception as exc:  # noqa: BLE001 - a strategy's own code: its failure quarantines it
        return f"diagnostics raised {type(exc).__name__}: {exc}"
    if found is None:
        return {}
    if not isinstance(found, Mapping) or not all(isinstance(k, str) for k in found):
        return f"diagnostics must be a mapping with string keys (got {type(found).__name__})"
    try:
        plain = msgspec.to_builtins(dict(found), enc_hook=_numpy)
        bad = nonfinite_field(_Holder(plain))
        if bad is not None:
            return f"diagnostics carry a non-finite number: {bad.removeprefix('d')}"
        return _DIAGNOSTICS.decode(_ENCODER.encode(plain))
    except (TypeError, ValueError, msgspec.MsgspecError) as exc:
        return f"diagnostics are not JSON values: {exc}"


def _numpy(obj: Any) -> Any:
    """numpy scalars and arrays (what strategies compute with) as plain numbers and lists."""
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


class _Holder(msgspec.Struct):
    d: Any
