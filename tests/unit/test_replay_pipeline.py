"""The in-memory bus: cores chained in one process, deterministic, each seeing its inputs in log
order, the whole cascade of one market event before the next."""

from __future__ import annotations

import dataclasses

import msgspec

from tests.support.bars import wave_bars
from ticktape import events as ev
from ticktape import subjects
from ticktape.corespec import load_specs
from ticktape.events.codec import encode
from ticktape.replay.memory_bus import MemoryBus


def run(bars):
    bus = MemoryBus(load_specs({}))
    return bus, [entry for bar in bars for entry in bus.publish(subjects.for_event(bar), bar)]


def interleaved(n: int = 240):
    bars = wave_bars("BTCUSDT", n) + wave_bars("ETHUSDT", n, period=30)
    return sorted(bars, key=lambda b: (b.open_time, b.symbol))


def test_same_inputs_give_the_same_log_byte_for_byte():
    _, first = run(interleaved())
    _, second = run(interleaved())
    assert [(s, encode(e), p) for s, e, p in first] == [(s, encode(e), p) for s, e, p in second]


def test_bars_flow_through_signal_risk_and_execution_to_fills_and_positions():
    _, log = run(interleaved())
    kinds = {type(e) for _, e, _ in log}
    assert {
        ev.SignalGenerated,
        ev.OrderApproved,
        ev.OrderSubmitted,
        ev.OrderFilled,
        ev.PositionUpdated,
        ev.AccountUpdated,
    } <= kinds
    assert all(s == subjects.for_event(e) for s, e, _ in log)


def test_a_bars_cascade_is_complete_before_the_next_bar_and_causes_come_first():
    _, log = run(interleaved())
    position = {e.event_id: i for i, (_, e, _) in enumerate(log)}
    bar_positions = [i for i, (_, e, _) in enumerate(log) if isinstance(e, ev.BarClosed)]
    for i, (_, e, producer) in enumerate(log):
        if producer is None:
            continue
        assert position[e.causation_id] < i, "an output precedes its cause"
        if isinstance(e, ev.OrderApproved):  # approvals of a signal come before the next bar
            signal_at = position[e.causation_id]
            next_bar = next((b for b in bar_positions if b > signal_at), len(log))
            assert i < next_bar


def test_each_core_sees_only_its_filter_subjects_in_log_order():
    seen: dict[str, list[str]] = {}

    def spy(spec):
        def handle(event):
            seen.setdefault(spec.name, []).append(event.event_id)
            return spec.core.handle(event)

        return dataclasses.replace(spec, core=_Core(handle))

    bus = MemoryBus([spy(s) for s in load_specs({})])
    log = [entry for bar in interleaved(120) for entry in bus.publish(subjects.for_event(bar), bar)]
    for spec in bus.specs:
        expected = [e.event_id for s, e, _ in log if any(subjects.matches(f, s) for f in spec.filter_subjects)]
        assert seen[spec.name] == expected


class _Core:
    def __init__(self, handle):
        self.handle = handle


def test_a_core_that_raises_on_an_input_is_counted_and_the_others_carry_on():
    bars = wave_bars("BTCUSDT", 120)
    bad = msgspec.structs.replace(bars[30], high=bars[30].low - 1.0)  # high < low: both bar consumers reject it
    bus = MemoryBus(load_specs({}))
    log = [entry for bar in bars[:30] + [bad] + bars[31:] for entry in bus.publish(subjects.for_event(bar), bar)]
    assert dict(bus.rejected) == {"signal": 1, "execution": 1}
    bad_at = next(i for i, (_, e, _) in enumerate(log) if e.event_id == bad.event_id)
    assert any(isinstance(e, ev.SignalGenerated) for _, e, _ in log[bad_at:])
