"""The task that advances through sim time and publishes one venue's bar frames when they fall due.

Per bar two frames: the in-progress frame at the bar's open and the final frame (x: true on Binance;
Hyperliquid has no flag, the next candle's frame says it closed) at close_time + 1 ms, the first
instant the bar is closed (also when REST starts returning it as closed). At one instant all final
frames go out before all opening frames, so the bars of every symbol closing at a minute arrive as
one burst and each stream stays in time order. `skip(series, i)` drops both frames of a bar (the
skip-minutes fault); REST still serves it."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Protocol

import msgspec

from venuesim.bars import MINUTE_MS
from venuesim.binance_usdm import kline_event, stream_name
from venuesim.clock import SimClock
from venuesim.feed import Hub
from venuesim.market import Market, Series

_FINAL, _OPEN = 0, 1
# Events handled between yields to the event loop, so writers and REST keep running in a backlog.
_BATCH = 2_000


class BarFrames(Protocol):
    """A venue's stream name and encoded frame for a bar."""

    def stream(self, series: Series) -> str: ...

    def frame(self, series: Series, i: int, event_ms: int, closed: bool) -> str: ...


class KlineFrames:
    """Binance `<symbol>@kline_1m` payloads (USDT-M and spot share the shape)."""

    def __init__(self) -> None:
        self._encode = msgspec.json.Encoder().encode

    def stream(self, series: Series) -> str:
        return stream_name(series.symbol)

    def frame(self, series: Series, i: int, event_ms: int, closed: bool) -> str:
        return self._encode(kline_event(series, i, event_ms, closed=closed)).decode()


def initial_events(market: Market, t0_ms: int) -> list[tuple[int, int, int, int]]:
    """Heap of (due sim ms, phase, symbol index, bar index): each symbol's first bar not closed at t0.

    A bar already in progress at t0 gets its opening frame at once; closed bars are left to REST."""
    heap = []
    for sidx, series in enumerate(market.series.values()):
        index = series.closed_count(t0_ms)
        if index < len(series.open_times):
            heap.append((series.open_times[index], _OPEN, sidx, index))
    heapq.heapify(heap)
    return heap


async def run_pump(
    market: Market,
    clock: SimClock,
    hub: Hub,
    started: asyncio.Event,
    frames: BarFrames | None = None,
    skip: Callable[[Series, int], bool] | None = None,
    from_ms: Callable[[], int] | None = None,
) -> None:
    """Publish every frame as sim time reaches it; returns after the last bar's final frame.

    Starts once `started` is set, from sim time `from_ms()` (default: the clock's t0): a venue's
    pump waits for that venue's first subscription, so venues nobody uses cost nothing."""
    await started.wait()
    frames = frames or KlineFrames()
    all_series = list(market.series.values())
    names = [frames.stream(s) for s in all_series]
    heap = initial_events(market, clock.t0_ms if from_ms is None else from_ms())
    while heap:
        now = clock.now_ms()
        if heap[0][0] > now:
            await asyncio.sleep(clock.wall_seconds_until(heap[0][0]))
            continue
        for _ in range(_BATCH):
            if not heap or heap[0][0] > now:
                break
            _, phase, sidx, index = heapq.heappop(heap)
            series = all_series[sidx]
            if hub.wanted(names[sidx]) and (skip is None or not skip(series, index)):
                hub.publish(names[sidx], frames.frame(series, index, clock.now_ms(), phase == _FINAL))
            if phase == _OPEN:
                heapq.heappush(heap, (series.open_times[index] + MINUTE_MS, _FINAL, sidx, index))
            elif index + 1 < len(series.open_times):
                heapq.heappush(heap, (series.open_times[index + 1], _OPEN, sidx, index + 1))
        await asyncio.sleep(0)
