"""The gateway's model of a venue's clock (services.execution.gateway.VenueClock): the venue's time
at the last measurement plus the wall time since, times the venue's pace (1 for a real venue, a
simulator's --speed, 0 while a simulator's clock is frozen)."""

from __future__ import annotations

from services.execution.gateway import VenueClock


def test_unmeasured_it_is_the_wall_clock() -> None:
    clock = VenueClock()
    assert (clock.at_ms(1_000), clock.offset_ms, clock.pace) == (1_000, 0, 1.0)


def test_a_real_venue_is_the_wall_clock_plus_its_offset() -> None:
    clock = VenueClock()
    clock.set(10_000, 10_250)
    assert (clock.at_ms(10_000), clock.at_ms(70_000), clock.offset_ms) == (10_250, 70_250, 250)


def test_a_simulator_at_speed_30_runs_thirty_times_the_wall_clock_both_ways() -> None:
    clock = VenueClock()
    clock.set(10_000, 1_524_880_000_000, 30.0)
    assert clock.at_ms(12_000) == 1_524_880_060_000  # two wall seconds: a simulated minute
    assert clock.at_ms(9_000) == 1_524_879_970_000  # a time stored before the measurement
    assert clock.pace == 30.0


def test_a_frozen_simulator_stays_put_and_counts_as_pace_1_for_waits() -> None:
    clock = VenueClock()
    clock.set(10_000, 5_000, 0.0)
    assert clock.at_ms(99_000) == 5_000 and clock.pace == 1.0


def test_a_given_source_is_used_as_it_is() -> None:
    assert VenueClock(lambda: 42).now_ms() == 42
