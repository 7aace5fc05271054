"""How many worker processes the signal service runs as: signal.workers, or with `auto` a count
chosen from the configured strategies and their measured evaluation time (ticktape.workers).

The measurement runs the configured strategies, subscribed to everything, over a deterministic
synthetic series: WARMUP bars to fill their history windows, then MEASURED bars timed one by one;
the mean is the evaluation time of one bar (a rotating strategy, `rotate_every: R`, runs on one
bar in R, so it counts for 1/R of its cost: the rotation is how an expensive strategy fits the
per-minute budget). With the universe's size (the symbol registry's
top_n summed over its venues) and signal.evaluation_budget_ms, ticktape.workers.auto_count
gives the count. `ticktape up` calls this before the session starts and records the result."""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any

import msgspec

from services.signal import loading
from services.signal.config import SignalConfig
from ticktape import config as cfg
from ticktape import ids, registry
from ticktape.clock import TIMEFRAME_NS
from ticktape.events import BarClosed
from ticktape.workers import WorkerPlan, auto_count

WARMUP = 300
MEASURED = 200
_VENUE, _SYMBOL = "measure", "MEASURE"


def plan(raw: dict[str, Any]) -> WorkerPlan:
    """The signal section's worker count, measured and chosen when it is `auto`."""
    config = cfg.load_section("signal", SignalConfig, raw)
    if isinstance(config.workers, int):
        return WorkerPlan(config.workers, str(config.workers), strategies=len(config.strategies))
    symbols = universe_size(raw)
    evaluation = evaluation_ns(config)
    budget = int(config.evaluation_budget_ms * 1_000_000)
    cpus = os.cpu_count() or 1
    return WorkerPlan(
        auto_count(symbols, evaluation, budget, cpus),
        "auto",
        strategies=len(config.strategies),
        symbols=symbols,
        evaluation_ns=evaluation,
        budget_ns=budget,
        cpus=cpus,
    )


def universe_size(raw: dict[str, Any]) -> int:
    """How many symbols the symbol registry's configuration ranks (its top_n summed over venues)."""
    try:
        info = registry.get("symbol_registry")
    except registry.RegistryError:
        return 1
    section = cfg.load_section(info.name, registry.config_type(info), raw)
    return max(1, sum(int(v.top_n) for v in getattr(section, "venues", ())))


def evaluation_ns(config: SignalConfig) -> int:
    """The mean time, in ns, of one bar through every configured strategy (all subscribed to the
    synthetic symbol on signal.timeframe, each on its rotation)."""
    everything = tuple(msgspec.structs.replace(e, subscribe=()) for e in config.strategies)
    core = loading.core(msgspec.structs.replace(config, strategies=everything))
    timings = []
    for i, bar in enumerate(_bars(config.timeframe, WARMUP + MEASURED)):
        started = time.perf_counter_ns()
        core.handle(bar)
        if i >= WARMUP:
            timings.append(time.perf_counter_ns() - started)
    return int(statistics.fmean(timings))


def _bars(timeframe: str, n: int) -> list[BarClosed]:
    step = TIMEFRAME_NS[timeframe]
    out = []
    for i in range(n):
        t = i * step
        close = 100.0 + 10.0 * math.sin(2 * math.pi * i / 40) + 0.01 * i
        last = 100.0 + 10.0 * math.sin(2 * math.pi * (i - 1) / 40) + 0.01 * (i - 1)
        out.append(
            BarClosed(
                event_id=ids.bar_id(_VENUE, _SYMBOL, timeframe, t),
                ts_event=t + step - 1,
                ts_init=t + step,
                venue=_VENUE,
                symbol=_SYMBOL,
                timeframe=timeframe,
                open_time=t,
                close_time=t + step - 1,
                open=last,
                high=max(last, close) + 0.5,
                low=min(last, close) - 0.5,
                close=close,
                volume=1.0,
                quote_volume=close,
            )
        )
    return out
