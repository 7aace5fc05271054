"""Pure signal core: closed bars in, SignalGenerated out whenever a strategy's side changes.

No trading on history: a backfilled bar (market data's REST backfill: a new symbol's history, or
the minutes an outage missed) is folded into the strategies like any bar, so they are warm, but
it signals nothing. The side each strategy last signalled for a symbol stays what risk and
execution have acted on; the first live bar after a backfill compares the strategy's side with
it, so a side the history changed is signalled once, on that bar, at its close, and a side the
history changed and changed back is not signalled at all. A signal's price is therefore always a
live bar's close. `signal.trade_backfilled: true` restores the old behaviour (history signals),
which recordings made before the key existed ran with (see SignalConfig.LEGACY_DEFAULTS)."""

from __future__ import annotations

from collections.abc import Sequence

from services.signal.config import SignalConfig
from services.signal.strategies import Strategy, build
from ticktape import ids, subjects
from ticktape.errors import InvalidInput
from ticktape.events import BarClosed, Event, SignalGenerated
from ticktape.events.market import bar_problem
from ticktape.events.signals import Side
from ticktape.memo import InputMemo

# Every bar; the core drops timeframes other than config.timeframe (see filter_subjects).
FILTER_SUBJECTS: tuple[str, ...] = (subjects.bars(),)

# How many recent inputs' outputs a core remembers to answer redeliveries identically.
REMEMBERED = 1_000


def filter_subjects(config: SignalConfig) -> tuple[str, ...]:
    """The narrowest bar filter for this config: only its timeframe."""
    return (subjects.bars(timeframe=subjects.token(config.timeframe)),)


class SignalCore:
    """Runs every strategy on each new bar of the configured timeframe.

    A redelivered bar returns its first outputs again; any other bar whose open_time is not
    after the last one seen for its (venue, symbol) is ignored, so no EMA moves twice. A
    backfilled bar moves the EMAs but signals nothing unless config.trade_backfilled (see the
    module docstring); `_sides` holds the sides last signalled, not the latest decisions.
    A strategy that raises is quarantined for good (all symbols) and the others keep running;
    `quarantined` maps name -> error. `strategies` replaces the ones built from the config
    (tests inject failing ones this way)."""

    def __init__(self, config: SignalConfig, *, strategies: Sequence[Strategy] | None = None) -> None:
        self.config = config
        self._memo = InputMemo(REMEMBERED)
        if strategies is None:
            strategies = [build(s) for s in config.strategies]
        self.strategies: tuple[Strategy, ...] = tuple(strategies)
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy names must be unique (got {names})")
        self.quarantined: dict[str, str] = {}
        self._last_open: dict[tuple[str, str], int] = {}
        self._sides: dict[tuple[str, str, str], Side] = {}

    @property
    def quarantined_count(self) -> int:
        """How many strategies are quarantined (a gauge for the shell to export)."""
        return len(self.quarantined)

    def handle(self, event: Event) -> list[Event]:
        """Apply one input event, return the events to publish (possibly empty).

        The same input twice (same event_id, within the last REMEMBERED) is applied once and
        returns the same outputs again; their ids are the same, so JetStream drops repeats."""
        return self._memo.apply(event, self._apply)

    def _apply(self, event: Event) -> list[Event]:
        if not isinstance(event, BarClosed) or event.timeframe != self.config.timeframe:
            return []
        problem = bar_problem(event)
        if problem:  # bad data is rejected as input; it must not quarantine sound strategies
            raise InvalidInput(f"bar {event.symbol} {event.open_time}: {problem}")
        key = (event.venue, event.symbol)
        last = self._last_open.get(key)
        if last is not None and event.open_time <= last:
            return []
        self._last_open[key] = event.open_time
        history = event.backfilled and not self.config.trade_backfilled
        out: list[Event] = []
        for strategy in self.strategies:
            if strategy.name in self.quarantined:
                continue
            try:
                decision = strategy.on_bar(event)
            except Exception as exc:  # noqa: BLE001 - isolating strategy bugs is the point
                self.quarantined[strategy.name] = f"{type(exc).__name__}: {exc}"
                continue
            if decision is None or history:  # history only warms the strategy
                continue
            side_key = (strategy.name, event.venue, event.symbol)
            previous = self._sides.get(side_key, "flat")
            if decision.side == previous:
                continue
            self._sides[side_key] = decision.side
            out.append(
                SignalGenerated(
                    event_id=ids.child_id(event.event_id, f"signal.{strategy.name}", 0),
                    ts_event=event.close_time,
                    ts_init=event.ts_init,
                    causation_id=event.event_id,
                    correlation_id=event.correlation_id or event.event_id,
                    strategy=strategy.name,
                    venue=event.venue,
                    symbol=event.symbol,
                    timeframe=event.timeframe,
                    side=decision.side,
                    previous_side=previous,
                    price=event.close,
                    bar_open_time=event.open_time,
                    k=decision.k,
                    n=decision.n,
                    agree=decision.agree,
                    votes=decision.votes,
                )
            )
        return out
