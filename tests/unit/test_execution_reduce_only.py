"""Paper execution of reduce-only orders: risk's protective exits and reducing orders pass a halt and
fill at once at the mark, clipped to the position; a stop or risk halt with flatten, and a
close_positions shutdown, close every position of the account; cancel_orders cancels without
halting."""

from __future__ import annotations

import msgspec
import pytest

from services.execution import paper
from services.execution.config import AccountConfig, ExecutionConfig
from services.execution.core import ExecutionCore, order_id_for
from tests.unit.test_execution_core import T0, approval, bar, of
from ticktape import ids
from ticktape.events import (
    AccountUpdated,
    EmergencyStop,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    RiskHalted,
    ShutdownRequested,
    UniverseMember,
    UniverseUpdated,
)
from ticktape.events.codec import decode, encode

SLIP, FEE = 2.0, 4.0


def core(*names: str) -> ExecutionCore:
    accounts = tuple(AccountConfig(name=n) for n in (names or ("paper-main",)))
    return ExecutionCore(ExecutionConfig(slippage_bps=SLIP, taker_fee_bps=FEE, accounts=accounts))


def holding(c: ExecutionCore, side: str, qty: float, *, symbol: str = "BTCUSDT", account: str = "paper-main") -> None:
    """A position of qty in symbol, bought (or sold) on bar 1 at 100 and marked at 110 on bar 2."""
    c.handle(approval(side, qty, at_bar=0, symbol=symbol, account=account, tag="-open"))  # type: ignore[arg-type]
    c.handle(bar(1, 100.0, symbol=symbol))
    c.handle(bar(2, 110.0, symbol=symbol))


def reduce_only(side: str, qty: float, *, reason: str = "stop_loss", symbol: str = "BTCUSDT") -> OrderApproved:
    a = approval(side, qty, at_bar=2, symbol=symbol, tag=f"-{reason}")  # type: ignore[arg-type]
    return msgspec.structs.replace(
        a, reference_price=110.0, notional=qty * 110.0, reduce_only=True, reason=reason, signal_id=""
    )


def stop(account: str = "*", *, flatten: bool = False) -> EmergencyStop:
    if flatten:
        return EmergencyStop(event_id="stop-f", ts_event=T0, ts_init=T0, reason="drill", account=account, flatten=True)
    return EmergencyStop(event_id="stop", ts_event=T0, ts_init=T0, reason="drill", account=account)


def halted_by_risk(*, flatten: bool) -> RiskHalted:
    return RiskHalted(
        event_id="halt",
        ts_event=T0,
        ts_init=T0,
        account="paper-main",
        reason="max_drawdown",
        detail="d",
        equity=9_000.0,
        reference_equity=10_000.0,
        limit=0.1,
        flatten=flatten,
    )


def shutdown(action: str) -> ShutdownRequested:
    return ShutdownRequested(event_id=f"sd-{action}", ts_event=T0, ts_init=T0, account="paper-main", action=action)  # type: ignore[arg-type]


def position_of(c: ExecutionCore, symbol: str = "BTCUSDT", account: str = "paper-main") -> float:
    pos = c.accounts[account].positions.get(("binance", symbol))
    return 0.0 if pos is None else pos.quantity


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


# --- reduce-only approvals -----------------------------------------------------------------


def test_a_reduce_only_approval_fills_at_once_at_the_mark_while_halted() -> None:
    c = core()
    holding(c, "buy", 3.0)
    c.handle(stop())
    a = reduce_only("sell", 3.0)
    out = c.handle(a)
    assert kinds(out) == ["OrderSubmitted", "OrderFilled", "PositionUpdated", "AccountUpdated"]
    sub, filled, pos, acct = out
    assert isinstance(sub, OrderSubmitted) and isinstance(filled, OrderFilled)
    assert isinstance(pos, PositionUpdated) and isinstance(acct, AccountUpdated)
    assert (sub.order_id, sub.reduce_only, sub.reason, sub.approval_id) == (
        order_id_for(a.event_id),
        True,
        "stop_loss",
        a.event_id,
    )
    price, fee = paper.fill("sell", 3.0, 110.0, slippage_bps=SLIP, taker_fee_bps=FEE)  # the mark, not a bar
    assert (filled.order_id, filled.quantity, filled.price, filled.fee) == (sub.order_id, 3.0, price, fee)
    assert (filled.causation_id, pos.causation_id) == (sub.event_id, filled.event_id)
    assert pos.quantity == 0.0 and position_of(c) == 0.0
    assert acct.equity == pytest.approx(
        10_000.0 + 3.0 * (price - 100.0 * (1 + SLIP / 1e4)) - fee - 100.0 * 3.0 * (1 + SLIP / 1e4) * FEE / 1e4
    )
    assert len({e.event_id for e in out}) == 4
    assert c.handle(bar(3, 120.0)) == []  # nothing left to fill or mark


def test_a_reduce_only_approval_is_clipped_to_the_position() -> None:
    c = core()
    holding(c, "sell", 2.0)
    sub, filled, *_ = c.handle(reduce_only("buy", 5.0))
    assert isinstance(sub, OrderSubmitted) and isinstance(filled, OrderFilled)
    assert (sub.quantity, filled.quantity, position_of(c)) == (2.0, 2.0, 0.0)


@pytest.mark.parametrize(("held_side", "side"), [(None, "sell"), ("buy", "buy"), ("sell", "sell")])
def test_a_reduce_only_approval_with_nothing_to_reduce_is_canceled(held_side: str | None, side: str) -> None:
    c = core()
    if held_side is not None:
        holding(c, held_side, 1.0)
    (canceled,) = c.handle(reduce_only(side, 1.0))
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "nothing_to_reduce"


def test_a_partial_reduce_only_is_rounded_down_to_the_lot_and_skips_the_minimum() -> None:
    c = core()
    rules = UniverseMember(symbol="BTCUSDT", rank=1, quote_volume=1.0, lot_size=0.5, min_notional=10_000.0)
    c.handle(
        UniverseUpdated(
            event_id="u",
            ts_event=0,
            ts_init=0,
            venue="binance",
            quote_asset="USDT",
            top_n=1,
            as_of=0,
            symbols=("BTCUSDT",),
            members=(rules,),
        )  # fmt: skip
    )
    c.handle(approval("buy", 200.0, at_bar=0, tag="-open"))  # 20,000: above the minimum
    c.handle(bar(1, 100.0))
    sub, _, pos, _ = c.handle(reduce_only("sell", 1.7))  # 187 of notional: below the minimum, still sent
    assert isinstance(sub, OrderSubmitted) and sub.quantity == 1.5
    assert isinstance(pos, PositionUpdated) and (pos.quantity, pos.mark_price) == (198.5, 100.0)  # still the bar's mark
    (canceled,) = c.handle(reduce_only("sell", 0.2, reason="take_profit"))
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "invalid_lot"


def test_an_ordinary_approval_while_halted_is_still_canceled() -> None:
    c = core()
    holding(c, "buy", 1.0)
    c.handle(stop())
    (canceled,) = c.handle(approval("sell", 1.0, at_bar=3))
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "halted"


# --- stop --flatten and risk's halts --------------------------------------------------------------


def test_stop_without_flatten_keeps_its_old_bytes_and_closes_nothing() -> None:
    event = stop()
    assert encode(event) == (
        b'{"type":"control.emergency_stop","event_id":"stop","ts_event":%d,"ts_init":%d,'
        b'"causation_id":null,"correlation_id":null,"version":1,"reason":"drill","account":"*"}' % (T0, T0)
    )
    c = core()
    holding(c, "buy", 1.0)
    c.handle(approval("buy", 1.0, at_bar=2, tag="-pending"))
    assert kinds(c.handle(event)) == ["OrderCanceled"]
    assert position_of(c) == 1.0


def test_stop_with_flatten_cancels_pending_then_closes_every_position_of_every_account_at_the_mark() -> None:
    c = core("a", "b")
    c.handle(approval("buy", 2.0, account="a"))
    c.handle(approval("sell", 3.0, symbol="ETHUSDT", account="a"))
    c.handle(approval("buy", 1.0, account="b"))
    for i, price in ((1, 100.0), (2, 110.0)):
        c.handle(bar(i, price))
        c.handle(bar(i, price, symbol="ETHUSDT"))
    pending = approval("buy", 1.0, at_bar=2, account="b", tag="-pending")
    c.handle(pending)
    event = stop(flatten=True)
    assert decode(encode(event)) == event and b'"flatten":true' in encode(event)
    out = c.handle(event)
    assert kinds(out) == [
        "OrderCanceled",
        *["OrderSubmitted", "OrderFilled", "PositionUpdated"] * 2,
        "AccountUpdated",
        *["OrderSubmitted", "OrderFilled", "PositionUpdated"],
        "AccountUpdated",
    ]
    canceled = of(out, OrderCanceled)[0]
    assert (canceled.order_id, canceled.reason) == (order_id_for(pending.event_id), "emergency_stop")
    orders = of(out, OrderSubmitted)
    assert [(o.account, o.symbol, o.side, o.quantity, o.reduce_only, o.reason) for o in orders] == [
        ("a", "BTCUSDT", "sell", 2.0, True, "flatten"),
        ("a", "ETHUSDT", "buy", 3.0, True, "flatten"),
        ("b", "BTCUSDT", "sell", 1.0, True, "flatten"),
    ]
    assert [o.order_id for o in orders] == [ids.child_id("stop-f", "execution.flatten_order", i) for i in range(3)]
    assert all(p.quantity == 0.0 for p in of(out, PositionUpdated))
    assert [f.price for f in of(out, OrderFilled)] == [
        paper.fill(o.side, o.quantity, 110.0, slippage_bps=SLIP, taker_fee_bps=FEE).price for o in orders
    ]
    assert c.halted == {"a": True, "b": True}
    assert c.handle(stop(flatten=True)) == out  # redelivered: the same outputs (same ids), applied once
    assert c.handle(msgspec.structs.replace(stop(flatten=True), event_id="again")) == []  # nothing left


def test_risk_halt_cancels_pending_halts_and_with_flatten_closes() -> None:
    c = core()
    holding(c, "buy", 1.0)
    c.handle(approval("buy", 1.0, at_bar=2, tag="-pending"))
    out = c.handle(halted_by_risk(flatten=False))
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in out] == [("OrderCanceled", "risk_halted")]
    assert c.halted["paper-main"] and position_of(c) == 1.0
    c = core()
    holding(c, "buy", 1.0)
    out = c.handle(halted_by_risk(flatten=True))
    assert kinds(out) == ["OrderSubmitted", "OrderFilled", "PositionUpdated", "AccountUpdated"]
    assert position_of(c) == 0.0


# --- on_shutdown -----------------------------------------------------------------------------------


def test_shutdown_cancel_orders_cancels_without_halting() -> None:
    c = core()
    holding(c, "buy", 1.0)
    c.handle(approval("buy", 1.0, at_bar=2, tag="-pending"))
    out = c.handle(shutdown("cancel_orders"))
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in out] == [("OrderCanceled", "shutdown")]
    assert not c.halted["paper-main"] and position_of(c) == 1.0
    assert kinds(c.handle(approval("buy", 1.0, at_bar=3, tag="-next"))) == ["OrderSubmitted"]


def test_shutdown_close_positions_closes_them_without_halting() -> None:
    c = core()
    holding(c, "buy", 1.0)
    out = c.handle(shutdown("close_positions"))
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in out][:1] == [("OrderSubmitted", "close_positions")]
    assert position_of(c) == 0.0 and not c.halted["paper-main"]
