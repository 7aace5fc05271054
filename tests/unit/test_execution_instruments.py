"""Execution checks approvals against the venue's trading rules that the symbol registry's
UniverseUpdated carries (lot size, minimum notional): the order's quantity is rounded down to
the lot, less than one lot is "invalid_lot", below the minimum order value "below_min_notional";
a symbol without stated rules is not checked."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from services.execution.config import ExecutionConfig
from services.execution.core import ExecutionCore
from tests.unit.test_execution_core import T0, approval, bar
from ticktape.events import OrderCanceled, OrderFilled, OrderSubmitted, UniverseMember, UniverseUpdated


def universe(
    lot: float = 0.0, min_notional: float = 0.0, tick: float = 0.0, symbol: str = "BTCUSDT"
) -> UniverseUpdated:
    return UniverseUpdated(
        event_id=f"universe-{lot}-{min_notional}-{symbol}",
        ts_event=T0 - 1,
        ts_init=T0 - 1,
        venue="binance",
        quote_asset="USDT",
        top_n=1,
        as_of=T0 - 1,
        symbols=(symbol,),
        members=(
            UniverseMember(
                symbol=symbol, rank=1, quote_volume=1.0, tick_size=tick, lot_size=lot, min_notional=min_notional
            ),
        ),
    )


def core_with(rules: UniverseUpdated) -> ExecutionCore:
    core = ExecutionCore(ExecutionConfig(slippage_bps=0.0, taker_fee_bps=0.0))
    assert core.handle(rules) == []
    return core


def test_quantity_off_the_lot_then_order_rounded_down_to_it() -> None:
    core = core_with(universe(lot=0.001, min_notional=5.0))
    (sub,) = core.handle(approval("buy", 0.123456))
    assert isinstance(sub, OrderSubmitted) and sub.quantity == 0.123
    (fill, *_) = core.handle(bar(1, 100.0))
    assert isinstance(fill, OrderFilled) and fill.quantity == 0.123


def test_quantity_on_the_lot_in_float_then_kept_whole() -> None:
    core = core_with(universe(lot=0.1))
    (sub,) = core.handle(approval("buy", 0.3))  # 0.3 / 0.1 is 2.9999999999999996 in floats
    assert isinstance(sub, OrderSubmitted) and sub.quantity == 0.3


def test_less_than_one_lot_then_canceled_invalid_lot() -> None:
    core = core_with(universe(lot=1.0))
    (cancel,) = core.handle(approval("buy", 0.5))
    assert isinstance(cancel, OrderCanceled) and cancel.reason == "invalid_lot"
    assert not core.pending


def test_below_min_notional_after_rounding_then_canceled() -> None:
    # 0.0599 at 100 is 5.99 approved, 0.05 lots (5.00) after rounding: below a minimum of 5.5
    core = core_with(universe(lot=0.01, min_notional=5.5))
    (cancel,) = core.handle(approval("buy", 0.0599))
    assert isinstance(cancel, OrderCanceled) and cancel.reason == "below_min_notional"


def test_symbol_without_stated_rules_then_not_checked() -> None:
    core = core_with(universe(lot=1.0, min_notional=1e9, symbol="ETHUSDT"))
    (sub,) = core.handle(approval("buy", 0.123456))  # BTCUSDT: no rules known
    assert isinstance(sub, OrderSubmitted) and sub.quantity == 0.123456


def test_later_universe_replaces_a_symbols_rules() -> None:
    core = core_with(universe(lot=1.0))
    core.handle(universe(lot=0.01))
    (sub,) = core.handle(approval("buy", 0.555))
    assert isinstance(sub, OrderSubmitted) and sub.quantity == 0.55


def test_tick_size_alone_never_changes_a_market_order() -> None:
    core = core_with(universe(tick=0.5))
    (sub,) = core.handle(approval("buy", 0.123456))
    assert isinstance(sub, OrderSubmitted) and sub.quantity == 0.123456


@given(
    qty=st.floats(min_value=1e-6, max_value=10.0),  # at 100 each: within the default leverage
    lot_exp=st.integers(min_value=-6, max_value=2),
)
def test_submitted_quantity_is_whole_lots_never_above_the_approval(qty: float, lot_exp: int) -> None:
    lot = 10.0**lot_exp
    core = core_with(universe(lot=lot))
    (out,) = core.handle(approval("buy", qty))
    if isinstance(out, OrderCanceled):
        assert out.reason == "invalid_lot" and qty < lot * (1 + 1e-9)
        return
    assert isinstance(out, OrderSubmitted)
    assert 0 < out.quantity <= qty * (1 + 1e-12)
    assert qty - out.quantity < lot * (1 + 1e-9)
    assert math.isclose(out.quantity / lot, round(out.quantity / lot), rel_tol=0, abs_tol=1e-6)
