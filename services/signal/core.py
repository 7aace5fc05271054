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
the others keep running; with event_version 2 the core says so with a StrategyQuarantined event.

Besides the configured entries, managed strategies (`ticktape strategies`) are added, paused,
resumed and retired by StrategyChanged events on strategies.>; services/signal/managed.py says
what each means and how an added one is warmed up from the bar windows the core keeps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, ClassVar

import msgspec
import numpy as np

from services.signal import batched, managed, rotation
from services.signal.config import SignalConfig, StrategyEntry, Subscription, managed_timeframes
from services.signal.managed import StrategySetupError
from services.signal.strategies import BUILTINS, build
from ticktape import ids, subjects
from ticktape.clock import TIMEFRAME_NS
from ticktape.errors import InvalidInput
from ticktape.events import BarClosed, Event, SignalGenerated, StrategyChanged, StrategyQuarantined
from ticktape.events.market import bar_problem
from ticktape.events.signals import SIDE_TARGET, Side
from ticktape.memo import InputMemo
from ticktape.sanity import nonfinite_field
from ticktape.snapshots.codec import StateSnapshots
from ticktape.strategy import MAX_HISTORY, BarHistory, Context, Strategy, Target

# Every bar; the core drops timeframes no strategy uses (see filter_subjects).
FILTER_SUBJECTS: tuple[str, ...] = (subjects.bars(),)

# How many recent inputs' outputs a core remembers to answer redeliveries identically.
REMEMBERED = 1_000

_DIAGNOSTICS = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


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

    __slots__ = ("entry", "name", "strategy", "subs", "limits", "states", "quarantined", "paused", "every", "batched")

    def __init__(self, entry: StrategyEntry, strategy: Strategy[Any], subs: tuple[Subscription, ...], limits: Any):
        self.entry = entry
        self.name = entry.label
        self.strategy = strategy
        self.subs = subs
        self.limits: dict[str, int] = limits
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.quarantined = False
        self.paused = False  # a managed strategy paused: fed bars, signals nothing
        self.every = entry.rotate_every  # evaluated on one bar in `every` of a symbol (services/signal/rotation.py)
        self.batched = False  # may run in a lane of services/signal/batched.py (configured entries only)

    def wants(self, venue: str, symbol: str, timeframe: str, default_tf: str) -> bool:
        return any(
            timeframe in (sub.timeframes or (default_tf,))
            and fnmatchcase(venue, sub.venue)
            and any(fnmatchcase(symbol, s) for s in sub.symbols)
            for sub in self.subs
        )


def _build(config: SignalConfig, kinds: Mapping[str, type[Strategy[Any]]]) -> list[_Run]:
    return [_build_one(entry, f"strategies[{i}].", kinds) for i, entry in enumerate(config.strategies)]


def _build_one(entry: StrategyEntry, at: str, kinds: Mapping[str, type[Strategy[Any]]]) -> _Run:
    """One entry's run; `at` prefixes the key paths of its errors ("strategies[3]." or "")."""
    where = at.rstrip(".") or entry.label
    cls = kinds.get(entry.kind)
    if cls is None:
        raise StrategySetupError(f"{at}kind: unknown strategy kind {entry.kind!r}")
    try:
        params = msgspec.convert(entry.params, cls.params_type, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$")
        raise StrategySetupError(f"{at}params{path.rstrip('`')}: {message}") from None
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
    return _Run(entry, strategy, entry.subscribe or (Subscription(),), declared)


class SignalCore(StateSnapshots):
    """Runs every strategy subscribed to each new bar.

    A redelivered bar returns its first outputs again; any other bar whose open_time is not
    after the last one seen for its (venue, symbol, timeframe) is ignored, so no strategy sees a
    bar twice. A backfilled bar moves the strategies but signals nothing unless
    config.trade_backfilled (see the module docstring); `_targets` holds the (side, target)
    last signalled, not the latest decisions. `quarantined` maps name -> error. `kinds`: the
    strategy classes by kind (default: the built-ins; a mapping may find more on lookup, for the
    kinds managed strategies name); StrategySetupError names a bad entry."""

    # not state (ticktape.snapshots.codec): the configuration, and the kinds found by name
    snapshot_skips: ClassVar[tuple[str, ...]] = ("config", "_kinds")

    def __init__(self, config: SignalConfig, *, kinds: Mapping[str, type[Strategy[Any]]] | None = None) -> None:
        self.config = config
        self._memo = InputMemo(REMEMBERED)
        self._kinds = BUILTINS if kinds is None else kinds  # code, not state (a snapshot skips it)
        self._runs = _build(config, self._kinds)
        # --- batched evaluation (services/signal/batched.py): configured entries of the built-in kinds
        for run in self._runs:
            tfs = {tf for sub in run.subs for tf in (sub.timeframes or (config.timeframe,))}
            run.batched = len(tfs) == 1 and run.every == 1  # and of a kind batched.py runs (at _route)
        if sum(r.batched and batched.batchable(r.strategy) for r in self._runs) < batched.MIN_ENTRIES:
            for run in self._runs:  # a few entries: numpy's per-call cost exceeds what it saves
                run.batched = False
        self._lanes: dict[tuple[str, str, str], list[batched.Lane]] = {}
        # --- end batched
        capacity: dict[str, int] = {}
        for run in self._runs:
            for tf, n in run.limits.items():
                capacity[tf] = max(capacity.get(tf, 0), n)
        for tf in managed_timeframes(config):  # kept for warming up managed strategies
            capacity[tf] = max(capacity.get(tf, 0), config.warmup_bars)
        self._history = BarHistory(capacity)
        subscribed = _timeframes(config)
        self.timeframes: tuple[str, ...] = tuple(
            dict.fromkeys((*subscribed, *self._history.capacity, *managed_timeframes(config)))
        )
        self._wanted = frozenset(self.timeframes)
        self._routes: dict[tuple[str, str, str], tuple[tuple[int, _Run], ...]] = {}  # (rank, run) not batched
        self.quarantined: dict[str, str] = {}
        self._last_open: dict[tuple[str, str, str], int] = {}
        self._targets: dict[tuple[str, str, str], tuple[Side, float]] = {}
        self._managed: dict[str, _Run] = {}  # the managed strategies running, by name
        self._revisions: dict[str, int] = {}  # the last StrategyChanged revision applied, by name
        self._retired: dict[str, int] = {}  # managed strategies retired (for good), with the revision

    @property
    def filter_subjects(self) -> tuple[str, ...]:
        """One bar filter per timeframe a strategy runs on, reads as history or may run on as a
        managed strategy, and the managed strategies' changes."""
        bars = (subjects.bars(timeframe=subjects.token(tf)) for tf in self.timeframes)
        return (*bars, subjects.ALL_STRATEGIES)

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

    def _route(self, venue: str, symbol: str, timeframe: str) -> tuple[tuple[int, _Run], ...]:
        """The (rank: position among the runs, run) of the runs subscribed to the key that are not
        in a lane, in order."""
        key = (venue, symbol, timeframe)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = tuple(
                (i, r)
                for i, r in enumerate(self._runs)
                if not (r.batched and batched.batchable(r.strategy))
                and r.wants(venue, symbol, timeframe, self.config.timeframe)
            )
        return found

    def _lanes_of(self, venue: str, symbol: str, timeframe: str) -> list[batched.Lane]:
        """The lanes of the key: made at its first bar from the configured entries (which never
        change; the ones added at run time are not batched), kept with their state."""
        key = (venue, symbol, timeframe)
        found = self._lanes.get(key)
        if found is None:
            default_tf = self.config.timeframe
            wanted = [
                (i, r)
                for i, r in enumerate(self._runs)
                if r.batched and batched.batchable(r.strategy) and r.wants(*key, default_tf)
            ]
            found = self._lanes[key] = batched.lanes(wanted, timeframe)
        return found

    def _apply(self, event: Event) -> list[Event]:
        if isinstance(event, StrategyChanged):
            return self._change(event)
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
        lanes = self._lanes_of(*key)
        if not runs and not lanes:
            return []
        history = event.backfilled and not self.config.trade_backfilled
        ctx = Context(event, self._history)
        if not lanes:
            out: list[Event] = []
            for _, run in runs:
                out.extend(self._one(run, event, ctx, history))
            return out
        # --- batched: the lanes' signals and the other runs' outputs, in the runs' order
        ranked: list[tuple[int, list[Event]]] = []
        if math.isfinite(event.close) and event.close > 0:
            for lane in lanes:
                self._lane(lane, event, history, ranked)
        else:  # the strategies' own check quarantines them (batched.py's docstring)
            runs = tuple(
                sorted(
                    (*runs, *((r, run) for lane in lanes for r, run in zip(lane.ranks, lane.runs, strict=True))),
                    key=lambda pair: pair[0],
                )
            )
        for rank, run in runs:
            ranked.append((rank, self._one(run, event, ctx, history)))
        ranked.sort(key=lambda pair: pair[0])
        return [e for _, found in ranked for e in found]

    def _lane(self, lane: batched.Lane, event: BarClosed, history: bool, ranked: list[tuple[int, list[Event]]]) -> None:
        """Step one lane on the bar and add the signals of the entries whose side changed."""
        if lane.seen != len(self.quarantined):
            lane.live = np.asarray([not r.quarantined for r in lane.runs], np.bool_)
            lane.seen = len(self.quarantined)
        sides, ready = lane.step(event, self._history)
        if history:
            return
        for i in np.flatnonzero(ready & lane.live & (sides != lane.sent)).tolist():
            run = lane.runs[i]
            side = batched.SIDE_OF[sides[i]]
            ranked.append((lane.ranks[i], self._signal(run, event, (side, SIDE_TARGET[side]), lane.diagnostics(i))))
            lane.sent[i] = _CODES[self._targets.get((run.name, event.venue, event.symbol), ("flat", 0.0))[0]]
        # --- end batched

    def _one(self, run: _Run, event: BarClosed, ctx: Context, history: bool) -> list[Event]:
        """One run's outputs on the bar: its signal, its quarantine, or nothing."""
        if run.quarantined or (run.every > 1 and not rotation.due(run.every, event)):
            return []
        try:
            decision = run.strategy.on_bar(ctx.use(run.limits, run.states))
        except Exception as exc:  # noqa: BLE001 - isolating strategy bugs is the point
            return self._quarantine(run, event, "raised", f"{type(exc).__name__}: {exc}")
        if decision is None:
            return []
        checked = _target(decision)
        if isinstance(checked, str):
            return self._quarantine(run, event, "bad_output", checked)
        if history or run.paused:  # history only warms the strategy; a paused one too
            return []
        return self._signal(run, event, checked, decision.diagnostics)

    def _signal(self, run: _Run, event: BarClosed, checked: tuple[Side, float], given: object) -> list[Event]:
        """The signal of a run's decided target if it differs from the one last signalled
        (`given`: the decision's diagnostics, a bad one quarantines the run)."""
        side_key = (run.name, event.venue, event.symbol)
        previous = self._targets.get(side_key, ("flat", 0.0))
        if checked == previous:
            return []
        diagnostics = _diagnostics(given)
        if isinstance(diagnostics, str):
            return self._quarantine(run, event, "bad_output", diagnostics)
        self._targets[side_key] = checked
        return [
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
        ]

    # --- managed strategies (services/signal/managed.py) ---------------------------------------

    def refusal(self, change: StrategyChanged) -> str | None:
        """Why the strategy a change adds cannot run (its key path first), or None. Changes no
        state: `ticktape strategies add` asks it before it stores anything."""
        return self._check(change)[1]

    def _check(self, change: StrategyChanged) -> tuple[_Run | None, str | None]:
        """(the run an added strategy would be, None) or (None, why it cannot run): the checks of a
        configured entry, plus the managed ones."""
        if self.config.event_version < 2:
            return None, "signal.event_version 1 runs no managed strategies; use event_version 2"
        if any(run.name == change.strategy for run in self._runs if run not in self._managed.values()):
            return None, f"id: the configuration already runs a strategy named {change.strategy!r}"
        try:
            run = _build_one(managed.entry_of(change), "", self._kinds)
        except StrategySetupError as exc:
            return None, str(exc)
        allowed = managed_timeframes(self.config)
        for tf in managed.timeframes_used(run.entry, run.limits, self.config.timeframe):
            if tf not in allowed:
                return None, (
                    f"timeframes: {change.kind} uses {tf}, which managed strategies cannot "
                    f"(signal.managed_timeframes: {', '.join(allowed)})"
                )
        return run, None

    def _change(self, change: StrategyChanged) -> list[Event]:
        name = change.strategy
        if change.revision <= self._revisions.get(name, 0) or name in self._retired:
            return []  # applied already (a publish retried after the duplicate window), or retired
        self._revisions[name] = change.revision
        if change.status == "retired":
            self._retired[name] = change.revision
        running = self._managed.get(name)
        if running is not None:
            if change.status == "retired":
                del self._managed[name]
                self._runs.remove(running)
                self._routes.clear()
            running.paused = change.status == "paused"
            return []
        if change.status == "retired" or name in self.quarantined:
            return []
        run, problem = self._check(change)
        if run is None:
            self.quarantined[name] = problem or "invalid"
            return [managed.refused(change, self.quarantined[name])] if self.config.event_version >= 2 else []
        run.paused = change.status == "paused"
        self._managed[name] = run
        self._runs.append(run)
        self._routes.clear()
        return self._warm(run, change)

    def _warm(self, run: _Run, change: StrategyChanged) -> list[Event]:
        """Feed a new strategy the kept bars of what it subscribes to and reads, signalling nothing."""
        for tf, n in run.limits.items():
            self._history.grow(tf, n)  # its windows, from now on
        used = managed.timeframes_used(run.entry, run.limits, self.config.timeframe)
        depth = {tf: max(self.config.warmup_bars, run.limits.get(tf, 0)) for tf in used}
        default_tf = self.config.timeframe

        def wanted(venue: str, symbol: str, tf: str) -> bool:
            return tf in run.limits or run.wants(venue, symbol, tf, default_tf)

        private = BarHistory(run.limits)  # its windows as they were at each warm-up bar
        for bar in managed.kept_bars(self._history, depth, wanted, change.ts_init):
            private.add(bar)
            if not run.wants(bar.venue, bar.symbol, bar.timeframe, default_tf):
                continue
            try:
                decision = run.strategy.on_bar(Context(bar, private).use(run.limits, run.states))
            except Exception as exc:  # noqa: BLE001 - as on a live bar
                return self._quarantine(run, bar, "raised", f"{type(exc).__name__}: {exc}")
            checked = _target(decision) if decision is not None else None
            if isinstance(checked, str):
                return self._quarantine(run, bar, "bad_output", checked)
        return []

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
_CODES: dict[str, int] = {"flat": 0, "long": 1, "short": -1}  # batched.SIDE_OF's inverse


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
    plain = _plain_json(found)
    if plain is not None:  # the usual case, without the round trip below
        return plain
    try:
        plain = msgspec.to_builtins(dict(found), enc_hook=_numpy)
        bad = nonfinite_field(_Holder(plain))
        if bad is not None:
            return f"diagnostics carry a non-finite number: {bad.removeprefix('d')}"
        return _DIAGNOSTICS.decode(_ENCODER.encode(plain))
    except (TypeError, ValueError, msgspec.MsgspecError) as exc:
        return f"diagnostics are not JSON values: {exc}"


def _plain_json(value: Any) -> Any:
    """A copy of value if it is made only of dicts with str keys, lists, tuples (as lists), str,
    bool, None, ints within 64 bits and finite floats: what the JSON round trip of _diagnostics
    would give; None for anything else (which takes the round trip, and its errors)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is bool:
        return value
    if kind is str:  # JSON writes any str but lone surrogates
        return value if value.isascii() else None
    if kind is int:
        return value if -(2**63) <= value < 2**64 else None
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                return None
            copied = _plain_json(item)
            if copied is None and item is not None:
                return None
            out[key] = copied
        return out
    if kind is list or kind is tuple:
        items = []
        for item in value:
            copied = _plain_json(item)
            if copied is None and item is not None:
                return None
            items.append(copied)
        return items
    return None


def _numpy(obj: Any) -> Any:
    """numpy scalars and arrays (what strategies compute with) as plain numbers and lists."""
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


class _Holder(msgspec.Struct):
    d: Any
