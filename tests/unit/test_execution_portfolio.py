"""Positions and accounts: average price, realized P&L on reductions and flips, equity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.execution.paper import fill
from services.execution.portfolio import Account, Position


def test_position_when_increased_then_average_price_is_weighted() -> None:
    p = Position()
    p.apply_fill(2.0, 100.0, 0.0)
    p.apply_fill(1.0, 130.0, 0.0)
    assert (p.quantity, p.avg_price, p.realized_pnl) == (3.0, 110.0, 0.0)


def test_position_when_reduced_then_realizes_at_average_and_keeps_it() -> None:
    p = Position()
    p.apply_fill(4.0, 100.0, 1.0)
    p.apply_fill(-1.0, 110.0, 0.5)
    assert (p.quantity, p.avg_price, p.realized_pnl, p.fees_paid) == (3.0, 100.0, 10.0, 1.5)


def test_position_when_short_reduced_then_gains_on_lower_price() -> None:
    p = Position()
    p.apply_fill(-2.0, 100.0, 0.0)
    p.apply_fill(1.0, 90.0, 0.0)
    assert (p.quantity, p.avg_price, p.realized_pnl) == (-1.0, 100.0, 10.0)


def test_position_when_flipped_then_realizes_closed_part_and_reopens_at_fill() -> None:
    p = Position()
    p.apply_fill(2.0, 100.0, 0.0)
    p.apply_fill(-5.0, 90.0, 0.0)
    assert (p.quantity, p.avg_price, p.realized_pnl) == (-3.0, 90.0, -20.0)
    p.mark_price = 80.0
    assert p.unrealized_pnl == 30.0


def test_position_when_closed_then_flat_with_zero_average() -> None:
    p = Position()
    p.apply_fill(0.3, 100.0, 0.0)
    p.apply_fill(-0.1, 120.0, 0.0)
    p.apply_fill(-0.2, 120.0, 0.0)  # 0.3 - 0.1 - 0.2 is 2.8e-17 in floats
    assert (p.quantity, p.avg_price, p.unrealized_pnl) == (0.0, 0.0, 0.0)
    assert p.realized_pnl == pytest.approx(6.0)


@given(
    fills=st.lists(
        st.tuples(st.integers(min_value=-50, max_value=50).filter(bool), st.floats(min_value=1.0, max_value=1_000.0)),
        min_size=1,
        max_size=30,
    ),
    mark=st.floats(min_value=1.0, max_value=1_000.0),
)
def test_position_when_marked_then_total_pnl_equals_cash_flows(fills: list[tuple[int, float]], mark: float) -> None:
    p = Position()
    for qty, price in fills:
        p.apply_fill(float(qty), price, 0.0)
    p.mark_price = mark
    expected = sum(q * (mark - price) for q, price in fills)
    scale = sum(abs(q) * max(price, mark) for q, price in fills)
    assert p.realized_pnl + p.unrealized_pnl == pytest.approx(expected, abs=1e-9 * scale)
    assert p.quantity == sum(q for q, _ in fills)


def test_account_when_totals_then_equity_is_initial_plus_pnl_minus_fees() -> None:
    acct = Account("a", 1_000.0)
    btc = acct.position(("binance", "BTCUSDT"))
    btc.apply_fill(1.0, 100.0, 0.04)
    btc.mark_price = 110.0
    eth = acct.position(("binance", "ETHUSDT"))
    eth.apply_fill(-2.0, 50.0, 0.04)
    eth.apply_fill(1.0, 40.0, 0.02)
    eth.mark_price = 45.0
    t = acct.totals()
    assert (t.realized_pnl, t.unrealized_pnl) == (10.0, 10.0 + 5.0)
    assert t.fees_paid == pytest.approx(0.10)
    assert t.equity == pytest.approx(1_000.0 + 10.0 + 15.0 - 0.10)
    assert (t.gross_exposure, t.net_exposure) == (110.0 + 45.0, 110.0 - 45.0)


def test_paper_fill_when_buy_then_pays_slippage_and_fee() -> None:
    f = fill("buy", 2.0, 100.0, slippage_bps=2.0, taker_fee_bps=4.0)
    assert f.price == pytest.approx(100.02)
    assert f.fee == pytest.approx(2.0 * 100.02 * 0.0004)


def test_paper_fill_when_sell_then_receives_less() -> None:
    f = fill("sell", 2.0, 100.0, slippage_bps=2.0, taker_fee_bps=0.0)
    assert (f.price, f.fee) == (pytest.approx(99.98), 0.0)
