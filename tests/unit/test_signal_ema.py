"""The incremental EMA against a straightforward batch reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.signal.ema import Ema


def reference_ema(values: list[float], period: int) -> list[float | None]:
    """Textbook EMA over a whole list: SMA of the first `period` values, then recursive."""
    alpha = 2 / (period + 1)
    out: list[float | None] = [None] * min(period - 1, len(values))
    if len(values) < period:
        return out
    ema = sum(values[:period]) / period
    out.append(ema)
    for x in values[period:]:
        ema = ema + alpha * (x - ema)
        out.append(ema)
    return out


@given(
    values=st.lists(st.floats(min_value=1e-3, max_value=1e6), max_size=200),
    period=st.integers(min_value=1, max_value=60),
)
def test_ema_when_fed_values_then_matches_reference(values: list[float], period: int) -> None:
    ema = Ema(period)
    got = [ema.update(x) for x in values]
    expected = reference_ema(values, period)
    assert [g is None for g in got] == [e is None for e in expected]
    scale = max(values, default=0.0)  # the two forms round differently; errors scale with inputs
    for g, e in zip(got, expected, strict=True):
        if e is not None:
            assert g == pytest.approx(e, rel=1e-9, abs=1e-12 * scale)


@given(
    values=st.lists(st.floats(min_value=1e-3, max_value=1e6), min_size=1, max_size=100),
    period=st.integers(min_value=1, max_value=30),
)
def test_ema_when_warm_then_stays_within_input_range(values: list[float], period: int) -> None:
    ema = Ema(period)
    for x in values:
        v = ema.update(x)
        if v is not None:
            assert min(values) * (1 - 1e-12) <= v <= max(values) * (1 + 1e-12)


def test_ema_first_value_is_sma_of_first_period_values() -> None:
    ema = Ema(3)
    assert ema.update(1.0) is None
    assert ema.update(2.0) is None
    assert ema.update(6.0) == 3.0  # (1 + 2 + 6) / 3
    assert ema.update(5.0) == 0.5 * 5.0 + 0.5 * 3.0  # alpha = 2 / (3 + 1)


def test_ema_when_period_is_one_then_tracks_input() -> None:
    ema = Ema(1)
    assert [ema.update(x) for x in (4.0, 7.0, 1.5)] == [4.0, 7.0, 1.5]


def test_ema_when_period_below_one_then_refuses() -> None:
    with pytest.raises(ValueError, match="period"):
        Ema(0)
