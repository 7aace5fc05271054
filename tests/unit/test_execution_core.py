"""The paper execution core: submit, fill at the next bar's open, mark, emergency stop."""

from __future__ import annotations

import msgspec
import pytest

from services.execution.config import AccountConfig, ExecutionConfig
from services.execution.core import FILTER_SUBJECTS, ExecutionCore, order_id_for
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.events import (
    AccountUpdated,
    BarClosed,
    EmergencyStop,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
)
from ticktape.events.risk import OrderSide

T0 = 1_700_000_000 * 1_000_000_000


def bar(
    i: int, open_: float, close: float | None = None, *, symbol: str = "BTCUSDT", timeframe: str = "1m"
) -> BarClosed:
    open_time = T0 + i * MINUTE_NS
    close_time = open_time + MINUTE_NS - NS_PER_MS
    close = open_ if close is None else close
    return BarClosed(
        event_id=ids.bar_id("binance", symbol, timeframe, open_time),
        ts_event=close_time,
        ts_init=close_time + 7,
        venue="binance",
        symbol=symbol,
        timeframe=timeframe,
        open_time=open_time,
        close_time=close_time,
        open=open_,
        high=max(open_, close),
        low=min(open_, close),
        close=close,
        volume=1.0,
        quote_volume=1.0,
    )


def approval(
    side: OrderSide, qty: float, *, at_bar: int = 0, account: str = "paper-main", symbol: str = "BTCUSDT", tag: str = ""
) -> OrderApproved:
    return OrderApproved(
        event_id=f"appr-{side}-{qty}-{at_bar}-{account}-{symbol}{tag}",
        ts_event=11,
        ts_init=12,
        causation_id="sig",
        correlation_id=f"bar-{at_bar}",
        account=account,
        strategy="s",
        venue="binance",
        symbol=symbol,
        side=side,
        quantity=qty,
        reference_price=100.0,
        notional=qty * 100.0,
        target_quantity=qty,
        signal_id="sig",
        bar_open_time=T0 + at_bar * MINUTE_NS,
    )


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def no_costs() -> ExecutionCore:
    return ExecutionCore(ExecutionConfig(slippage_bps=0.0, taker_fee_bps=0.0))


def test_execution_when_approved_then_submits_paper_order() -> None:
    a = approval("buy", 2.0)
    (sub,) = ExecutionCore(ExecutionConfig()).handle(a)
    assert isinstance(sub, OrderSubmitted)
    assert sub.order_id == order_id_for(a.event_id) == ids.child_id(a.event_id, "execution.order", 0)
    assert (sub.mode, sub.approval_id, sub.side, sub.quantity) == ("paper", a.event_id, "buy", 2.0)
    assert (sub.causation_id, sub.correlation_id) == (a.event_id, "bar-0")


def test_execution_when_bar_is_the_signal_bar_then_no_fill() -> None:
    core = ExecutionCore(ExecutionConfig())
    core.handle(approval("buy", 2.0, at_bar=5))
    assert core.handle(bar(5, 100.0)) == []  # the bar the signal closed on (e.g. a late copy)
    assert core.pending


def test_execution_when_next_bar_then_fills_at_open_with_slippage_and_fee() -> None:
    core = ExecutionCore(ExecutionConfig())
    a = approval("buy", 2.0, at_bar=0)
    (sub,) = core.handle(a)
    b = bar(1, 100.0, 110.0)
    out = core.handle(b)
    assert [type(e).__name__ for e in out] == ["OrderFilled", "PositionUpdated", "PositionUpdated", "AccountUpdated"]
    fill, pos, mark, acct = out
    assert isinstance(fill, OrderFilled)
    assert fill.price == 100.0 * (1 + 2.0 / 1e4)
    assert fill.fee == 2.0 * fill.price * 4.0 / 1e4
    assert (fill.order_id, fill.bar_open_time, fill.mode) == (order_id_for(a.event_id), b.open_time, "paper")
    assert fill.event_id == ids.child_id(b.event_id, "execution.fill", 0)  # triggered by the bar
    assert (fill.causation_id, fill.correlation_id) == (sub.event_id, "bar-0")  # a's chain
    assert (fill.ts_event, fill.ts_init) == (b.close_time, b.ts_init)
    assert isinstance(pos, PositionUpdated) and isinstance(mark, PositionUpdated)
    assert (pos.quantity, pos.avg_price, pos.mark_price) == (2.0, fill.price, fill.price)
    assert (pos.causation_id, pos.correlation_id) == (fill.event_id, "bar-0")
    assert (mark.mark_price, mark.unrealized_pnl) == (110.0, 2.0 * (110.0 - fill.price))
    assert (mark.causation_id, mark.correlation_id) == (b.event_id, b.event_id)
    assert isinstance(acct, AccountUpdated)
    assert acct.equity == 10_000.0 + mark.unrealized_pnl - fill.fee
    assert (acct.gross_exposure, acct.net_exposure, acct.fees_paid) == (220.0, 220.0, fill.fee)
    assert len({e.event_id for e in out}) == 4
    assert not core.pending


def test_execution_when_sell_then_fills_below_open() -> None:
    core = ExecutionCore(ExecutionConfig(slippage_bps=10.0))
    core.handle(approval("sell", 1.0))
    (fill,) = of(core.handle(bar(1, 200.0)), OrderFilled)
    assert fill.price == 200.0 * (1 - 10.0 / 1e4)


def test_execution_when_other_symbol_or_timeframe_bar_then_no_fill() -> None:
    core = no_costs()
    core.handle(approval("buy", 1.0))
    assert core.handle(bar(1, 100.0, symbol="ETHUSDT")) == []
    assert core.handle(bar(1, 100.0, timeframe="5m")) == []
    assert of(core.handle(bar(1, 100.0)), OrderFilled)


def test_execution_when_position_flips_then_realizes_pnl_and_reopens() -> None:
    core = no_costs()
    core.handle(approval("buy", 2.0, at_bar=0))
    core.handle(bar(1, 100.0))
    core.handle(approval("sell", 5.0, at_bar=1))
    out = core.handle(bar(2, 90.0, 95.0))
    (pos, mark) = of(out, PositionUpdated)
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (-3.0, 90.0, -20.0)
    assert (mark.mark_price, mark.unrealized_pnl) == (95.0, -15.0)
    (acct,) = of(out, AccountUpdated)
    assert (acct.equity, acct.realized_pnl, acct.unrealized_pnl) == (10_000.0 - 35.0, -20.0, -15.0)


def test_execution_when_position_closed_then_reports_flat_once() -> None:
    core = no_costs()
    core.handle(approval("buy", 2.0, at_bar=0))
    core.handle(bar(1, 100.0))
    core.handle(approval("sell", 2.0, at_bar=1))
    out = core.handle(bar(2, 120.0))
    assert [p.quantity for p in of(out, PositionUpdated)] == [0.0, 0.0]
    assert of(out, AccountUpdated)[0].equity == 10_040.0
    assert core.handle(bar(3, 130.0)) == []  # flat: nothing to mark any more


def test_execution_when_bars_arrive_then_open_positions_are_marked() -> None:
    core = no_costs()
    core.handle(approval("buy", 1.0, at_bar=0))
    core.handle(bar(1, 100.0))
    out = core.handle(bar(2, 101.0, 105.0))
    (mark,) = of(out, PositionUpdated)
    assert (mark.quantity, mark.mark_price, mark.unrealized_pnl) == (1.0, 105.0, 5.0)
    assert of(out, AccountUpdated)[0].equity == 10_005.0


def test_execution_when_input_redelivered_then_same_outputs_and_nothing_happens_twice() -> None:
    core = no_costs()
    a = approval("buy", 1.0)
    submitted = core.handle(a)
    assert core.handle(a) == submitted
    b = bar(1, 100.0)
    first = core.handle(b)
    assert len(of(first, OrderFilled)) == 1
    assert core.handle(b) == first
    assert core.accounts["paper-main"].positions[("binance", "BTCUSDT")].quantity == 1.0
    late = msgspec.structs.replace(bar(0, 50.0), event_id="late")
    assert core.handle(late) == []


def test_execution_when_emergency_stop_then_cancels_pending_and_halts() -> None:
    core = ExecutionCore(ExecutionConfig(accounts=(AccountConfig(name="a"), AccountConfig(name="b"))))
    a1, b1 = approval("buy", 1.0, account="a"), approval("buy", 1.0, account="b")
    core.handle(a1)
    core.handle(b1)
    stop = EmergencyStop(event_id="stop", ts_event=5, ts_init=6, reason="test", account="a")
    (cancel,) = core.handle(stop)
    assert isinstance(cancel, OrderCanceled)
    assert (cancel.order_id, cancel.reason) == (order_id_for(a1.event_id), "emergency_stop")
    assert (cancel.causation_id, cancel.correlation_id) == ("stop", "bar-0")
    (halted,) = core.handle(approval("buy", 2.0, account="a"))
    assert isinstance(halted, OrderCanceled) and halted.reason == "halted"
    fills = of(core.handle(bar(1, 100.0)), OrderFilled)
    assert [f.account for f in fills] == ["b"]
    core.handle(ResumeTrading(event_id="go", ts_event=7, ts_init=8, reason="ok", account="*"))
    assert isinstance(core.handle(approval("buy", 3.0, account="a"))[0], OrderSubmitted)


def test_execution_when_stop_for_all_then_every_account_halted() -> None:
    core = no_costs()
    core.handle(EmergencyStop(event_id="stop", ts_event=5, ts_init=6, reason="test"))
    (e,) = core.handle(approval("buy", 1.0))
    assert isinstance(e, OrderCanceled) and e.reason == "halted"


def test_execution_when_account_unknown_then_cancels() -> None:
    (e,) = no_costs().handle(approval("buy", 1.0, account="ghost"))
    assert isinstance(e, OrderCanceled) and e.reason == "unknown_account"


def test_execution_when_several_orders_fill_on_one_bar_then_ids_are_distinct() -> None:
    core = ExecutionCore(ExecutionConfig(accounts=(AccountConfig(name="a"), AccountConfig(name="b"))))
    core.handle(approval("buy", 1.0, account="a"))
    core.handle(approval("sell", 1.0, account="b"))
    core.handle(approval("buy", 1.0, account="a", tag="again"))
    out = core.handle(bar(1, 100.0))
    assert len(of(out, OrderFilled)) == 3
    assert len({e.event_id for e in out}) == len(out) == 3 * 2 + 2 * 2
    assert [p.quantity for p in of(out, PositionUpdated)][-2:] == [2.0, -1.0]


def test_execution_when_same_inputs_twice_then_byte_identical() -> None:
    def run() -> list[bytes]:
        core = ExecutionCore(ExecutionConfig())
        out: list[Event] = []
        for i in range(1, 20):
            out += core.handle(approval("buy" if i % 3 else "sell", 0.1 * i, at_bar=i - 1))
            out += core.handle(bar(i, 100.0 + i * 0.37, 100.0 + i * 0.41))
        return [msgspec.json.encode(e) for e in out]

    assert run() == run()


def test_filter_subjects_when_listed_then_cover_every_input() -> None:
    assert FILTER_SUBJECTS == ("risk.>", "md.bar.*.*.*", "control.>")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mode": "live"}, r"Invalid enum value 'live' - at `\$.mode`"),
        ({"slippage_bps": -1}, r"Expected `float` >= 0.0 - at `\$.slippage_bps`"),
        ({"accounts": [{"name": "x"}, {"name": "x"}]}, "account names must be unique"),
        ({"accounts": [{"initial_equity": 0}]}, r"\$.accounts\[0\].initial_equity"),
        ({"timeframe": "2m"}, "timeframe must be one of"),
        ({"fee": 1}, "unknown field"),
    ],
)
def test_execution_config_when_invalid_then_error_names_the_key(section: dict, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(section, ExecutionConfig)


def test_execution_config_when_section_empty_then_paper_defaults() -> None:
    cfg = msgspec.convert({}, ExecutionConfig)
    assert (cfg.mode, cfg.slippage_bps, cfg.taker_fee_bps, cfg.timeframe) == ("paper", 2.0, 4.0, "1m")
    assert [(a.name, a.initial_equity) for a in cfg.accounts] == [("paper-main", 10_000.0)]
