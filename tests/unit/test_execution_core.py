"""The paper execution core: submit, fill at the next bar's open, mark, emergency stop."""

from __future__ import annotations

import dataclasses
import math

import msgspec
import pytest

from services.execution import paper
from services.execution.config import AccountConfig, ExecutionConfig
from services.execution.core import FILTER_SUBJECTS, ExecutionCore, order_id_for
from services.execution.portfolio import Position
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.errors import InvalidInput
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
    codec,
)
from ticktape.events.risk import OrderSide
from ticktape.sanity import NonFiniteOutput

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
    assert FILTER_SUBJECTS == ("risk.>", "md.bar.*.*.*", "control.>", "symbols.universe.>", "venue.>", "md.funding.>")


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


# -- nothing is trusted: approvals, bars and fills are checked before anything is filled --------


def forged(qty: float, *, price: float = 100.0, notional: float | None = None, tag: str = "") -> OrderApproved:
    """An approval as a forger (or a broken risk) would send it."""
    a = approval("buy", 1.0, tag=f"forged-{qty}-{price}-{tag}")
    return msgspec.structs.replace(
        a, quantity=qty, reference_price=price, notional=qty * price if notional is None else notional
    )


@pytest.mark.parametrize(
    ("approved", "reason"),
    [
        (forged(1e308), "invalid_notional"),  # 1e308 x 100 = inf
        (forged(-1.0), "invalid_quantity"),
        (forged(0.0), "invalid_quantity"),
        (forged(math.nan, notional=0.0), "invalid_quantity"),
        (forged(math.inf, notional=0.0), "invalid_quantity"),
        (forged(1.0, price=0.0), "invalid_price"),
        (forged(1.0, price=-100.0), "invalid_price"),
        (forged(1.0, price=1e308), "invalid_price"),
        (forged(1.0, price=1e-320), "invalid_price"),
        (forged(1.0, notional=1.0), "invalid_notional"),  # says 1, is 100
        (forged(2e10, price=100.0), "invalid_notional"),  # 2e12 > the hard cap
        (forged(1_001.0), "max_leverage"),  # 100_100 > 10 x 10_000
    ],
)
def test_execution_when_approval_is_not_sane_then_canceled_with_a_reason_and_never_filled(
    approved: OrderApproved, reason: str
) -> None:
    core = ExecutionCore(ExecutionConfig())
    (canceled,) = core.handle(approved)
    assert isinstance(canceled, OrderCanceled)
    assert (canceled.reason, canceled.order_id) == (reason, order_id_for(approved.event_id))
    assert (canceled.causation_id, canceled.correlation_id) == (approved.event_id, "bar-0")
    assert not core.pending
    assert core.handle(bar(1, 100.0)) == []  # nothing to fill, nothing to mark
    assert core.accounts["paper-main"].positions == {}


def test_execution_when_forged_approvals_then_later_fills_and_accounts_stay_finite() -> None:
    core = ExecutionCore(ExecutionConfig())
    out = core.handle(forged(1e308)) + core.handle(forged(-1.0))
    out += core.handle(approval("buy", 2.0))
    out += core.handle(bar(1, 100.0, 101.0))
    out += core.handle(bar(2, 102.0, 99.0))
    assert [e.reason for e in of(out, OrderCanceled)] == ["invalid_notional", "invalid_quantity"]
    (fill,) = of(out, OrderFilled)
    assert fill.quantity == 2.0
    accounts = of(out, AccountUpdated)
    assert len(accounts) == 2 and all(math.isfinite(a.equity) for a in accounts)
    for e in out:  # every output survives the wire: msgspec would have written inf as null
        assert codec.decode(codec.encode(e)) == e


def test_execution_when_over_leverage_then_reductions_still_pass() -> None:
    core = ExecutionCore(ExecutionConfig(accounts=(AccountConfig(max_leverage=1.0),)))
    core.handle(approval("buy", 90.0))
    core.handle(bar(1, 100.0))  # 9_000 of 10_000
    (more,) = core.handle(approval("buy", 20.0, at_bar=1))  # 11_000 > 1 x equity
    assert isinstance(more, OrderCanceled) and more.reason == "max_leverage"
    (flip,) = core.handle(approval("sell", 100.0, at_bar=1))  # to -10 x 100: 1_000 gross, lower
    assert isinstance(flip, OrderSubmitted)


def test_execution_when_pending_orders_then_they_count_toward_leverage() -> None:
    core = ExecutionCore(ExecutionConfig(accounts=(AccountConfig(max_leverage=1.0),)))
    assert isinstance(core.handle(approval("buy", 60.0))[0], OrderSubmitted)
    (second,) = core.handle(approval("buy", 60.0, symbol="ETHUSDT"))  # 6_000 pending + 6_000
    assert isinstance(second, OrderCanceled) and second.reason == "max_leverage"


@pytest.mark.parametrize(
    "changes",
    [
        {"open": 1e308, "high": 1e308},
        {"low": 1e-320},
        {"close": math.inf, "high": math.inf},
        {"high": 50.0},  # below open and close
        {"volume": -1.0},
    ],
)
def test_execution_when_bar_is_not_sound_then_rejected_as_input_and_nothing_changes(changes: dict) -> None:
    core = no_costs()
    core.handle(approval("buy", 1.0))
    with pytest.raises(InvalidInput):
        core.handle(msgspec.structs.replace(bar(1, 100.0), **changes))
    assert core.pending and core.accounts["paper-main"].positions == {}
    assert of(core.handle(bar(1, 100.0)), OrderFilled)  # the sound bar of that minute still fills


def test_execution_when_a_fill_would_be_non_finite_then_canceled_and_the_position_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = no_costs()
    core.handle(approval("buy", 1.0))
    core.handle(bar(1, 100.0))
    before = dataclasses.replace(core.accounts["paper-main"].positions[("binance", "BTCUSDT")])
    core.handle(approval("buy", 1.0, at_bar=1))
    monkeypatch.setattr(paper, "fill", lambda *a, **k: paper.PaperFill(price=100.0, fee=math.inf))
    out = core.handle(bar(2, 100.0))
    assert [type(e).__name__ for e in out] == ["OrderCanceled", "PositionUpdated", "AccountUpdated"]
    assert isinstance(out[0], OrderCanceled) and out[0].reason == "invalid_fill"
    assert core.accounts["paper-main"].positions[("binance", "BTCUSDT")] == before
    assert math.isfinite(of(out, AccountUpdated)[0].equity)


def test_execution_when_an_output_would_carry_nan_then_it_raises_instead_of_publishing_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = no_costs()
    core.handle(approval("buy", 1.0))
    core.handle(bar(1, 100.0))
    monkeypatch.setattr(Position, "unrealized_pnl", property(lambda self: math.nan))  # a bug in the marks
    with pytest.raises(NonFiniteOutput, match="PositionUpdated .* unrealized_pnl=nan"):
        core.handle(bar(2, 100.0))
