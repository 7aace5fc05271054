"""Managed strategies in the signal core: the pure helpers behind SignalCore's StrategyChanged handling.

`ticktape strategies` (and the API) keep strategies in PostgreSQL and write every change to the
log as a StrategyChanged (ticktape.events.strategies); the core applies them in stream order, so a
replay runs exactly the set that was live at every moment. An added strategy is checked like a
configuration entry (its kind, its params against the kind's Params, the timeframes it uses among
signal.managed_timeframes); one that cannot run is refused with a StrategyQuarantined (reason
`invalid`) instead of stopping the core. It is then warmed up: fed the latest bars the core kept
of what it subscribes to and reads (signal.warmup_bars, or what its history() declares if more),
oldest first, signalling nothing, as backfilled bars; its first signal can only come on a live bar.

Pause: the strategy keeps being fed bars (it stays warm) but signals nothing; what it last
signalled stays the accounts' target, so a position it opened stays open. Resume: the first live
bar compares its target with what it last signalled and signals the difference once, like the
first live bar after a backfill. Retire: it stops for good (its last signalled targets stay too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

from services.signal.config import StrategyEntry, Subscription
from ticktape import ids
from ticktape.clock import TIMEFRAME_NS
from ticktape.events import BarClosed, StrategyChanged, StrategyQuarantined
from ticktape.strategy import BarHistory

INVALID = "invalid"  # StrategyQuarantined.reason of a managed strategy the core refused to run


class StrategySetupError(ValueError):
    """An entry the core cannot run; the message starts with its key path (strategies[i]...)."""


def _problem(exc: msgspec.ValidationError, names: Mapping[str, str]) -> str:
    """A msgspec error as `key: message`, the key as the change's field (`$.subscribe` -> symbols)."""
    message, _, path = str(exc).partition(" - at `$.")
    path = path.rstrip("`")
    head, dot, rest = path.partition(".")
    key = names.get(head, head) + dot + rest if path else ""
    return f"{key}: {message}" if key else message


def entry_of(change: StrategyChanged) -> StrategyEntry:
    """The configuration entry a change describes, or StrategySetupError naming the bad field
    (id, kind, venue, symbols, timeframes) as `ticktape strategies add` spells it."""
    try:
        sub = msgspec.convert(
            {"venue": change.venue, "symbols": list(change.symbols), "timeframes": list(change.timeframes)},
            Subscription,
        )
    except msgspec.ValidationError as exc:
        raise StrategySetupError(_problem(exc, {})) from None
    try:
        return msgspec.convert(
            {"kind": change.kind, "name": change.strategy, "params": change.params, "subscribe": [sub]},
            StrategyEntry,
        )
    except msgspec.ValidationError as exc:
        raise StrategySetupError(_problem(exc, {"name": "id"})) from None


def refused(change: StrategyChanged, error: str) -> StrategyQuarantined:
    """What the core says of a managed strategy it will not run (no bar involved: empty fields)."""
    return StrategyQuarantined(
        event_id=ids.child_id(change.event_id, f"quarantine.{change.strategy}", 0),
        ts_event=change.ts_event,
        ts_init=change.ts_init,
        causation_id=change.event_id,
        correlation_id=change.correlation_id or change.event_id,
        strategy=change.strategy,
        kind=change.kind,
        venue="",
        symbol="",
        timeframe="",
        bar_open_time=0,
        reason=INVALID,
        error=error[:1000],
    )


def kept_bars(
    history: BarHistory, depth: Mapping[str, int], wanted: Callable[[str, str, str], bool], ts_init: int
) -> Iterator[BarClosed]:
    """The last depth[tf] kept bars of every (venue, symbol) of each timeframe that `wanted`
    accepts, merged in close order (ties: timeframe order of `depth`, then the order the series
    were first seen), rebuilt as backfilled bars (OHLCV and times; what the windows keep)."""
    found: list[tuple[int, int, BarClosed]] = []
    order = 0
    for tf, n in depth.items():
        span = TIMEFRAME_NS[tf]
        for venue, symbol in history.series(tf):
            order += 1
            if not wanted(venue, symbol, tf):
                continue
            bars = history.last(venue, symbol, tf, n)
            for i in range(len(bars)):
                open_time = int(bars.open_time[i])
                close_time = open_time + span - 1_000_000
                found.append(
                    (
                        open_time + span,
                        order,
                        BarClosed(
                            event_id=ids.bar_id(venue, symbol, tf, open_time),
                            ts_event=close_time,
                            ts_init=ts_init,
                            venue=venue,
                            symbol=symbol,
                            timeframe=tf,
                            open_time=open_time,
                            close_time=close_time,
                            open=float(bars.open[i]),
                            high=float(bars.high[i]),
                            low=float(bars.low[i]),
                            close=float(bars.close[i]),
                            volume=float(bars.volume[i]),
                            quote_volume=0.0,
                            backfilled=True,
                        ),
                    )
                )
    found.sort(key=lambda item: (item[0], item[1]))
    return (bar for _, _, bar in found)


def timeframes_used(entry: StrategyEntry, limits: Mapping[str, Any], default_tf: str) -> tuple[str, ...]:
    """The timeframes an entry subscribes to (default_tf when none) and reads as history."""
    found: list[str] = []
    for sub in entry.subscribe or (Subscription(),):
        for tf in sub.timeframes or (default_tf,):
            if tf not in found:
                found.append(tf)
    return (*found, *(tf for tf in limits if tf not in found))
