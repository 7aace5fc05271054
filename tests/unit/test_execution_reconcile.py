"""Reconciliation in the execution core (services.execution.reconcile): a live account trades only
after a VenueSnapshot reconciled it; every difference with the venue is a ReconciliationDifference
resolved by the account's policy; the same inputs give the same bytes. The gateway's outbox
(services.execution.outbox) tracks the cancels the reconciliation decided."""

from __future__ import annotations

from typing import Any

import pytest

from services.execution.config import AccountConfig, ExecutionConfig
from services.execution.core import ExecutionCore
from services.execution.outbox import CancelEntry, Outbox
from tests.support.live_account import T0, live_account, venue_snapshot
from ticktape import subjects
from ticktape.errors import InvalidInput
from ticktape.events import (
    AccountReconciled,
    AccountUpdated,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    ReconciliationDifference,
    VenueCancelRequested,
    VenueFill,
    VenueOpenOrder,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenuePosition,
    VenueSnapshot,
    codec,
)
from ticktape.events import venue as venue_ids


def config(**policy: Any) -> ExecutionConfig:
    return ExecutionConfig(accounts=(live_account(**policy), AccountConfig(name="paper-main")))


def snapshot(
    tag: str,
    *,
    orders: tuple[VenueOpenOrder, ...] = (),
    positions: tuple[VenuePosition, ...] = (),
    balance: float = 1000.0,
    reason: str = "start",
) -> VenueSnapshot:
    return venue_snapshot(tag, reason=reason, orders=orders, positions=positions, balance=balance)


HAND_ORDER = VenueOpenOrder(
    symbol="BTCUSDT", venue_order_id="9001", client_order_id="by-hand", side="buy", quantity=0.5, price=50.0
)


def approval(tag: str, account: str = "live-a", side: str = "buy", qty: float = 1.0) -> OrderApproved:
    return OrderApproved(
        event_id=f"appr-{tag}", ts_event=T0 + 10, ts_init=T0 + 11, account=account, strategy="s",
        venue="binance_usdm", symbol="BTCUSDT", side=side, quantity=qty, reference_price=100.0,  # type: ignore[arg-type]
        notional=qty * 100.0, target_quantity=qty, signal_id="sig", bar_open_time=T0,
    )  # fmt: skip


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.kind, e.resolution) for e in events if isinstance(e, ReconciliationDifference)]


def test_a_live_account_does_not_trade_before_it_has_reconciled_and_paper_accounts_are_not_held() -> None:
    core = ExecutionCore(config())
    [canceled] = core.handle(approval("early"))
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "not_reconciled"
    [paper] = core.handle(approval("paper", account="paper-main"))
    assert isinstance(paper, OrderSubmitted) and paper.mode == "paper"
    [done] = core.handle(snapshot("clean"))
    assert isinstance(done, AccountReconciled) and (done.differences, done.snapshot_id) == (0, "snap-clean")
    assert subjects.for_event(done) == "accounts.live-a.reconciliation"
    [order] = core.handle(approval("after"))
    assert isinstance(order, OrderSubmitted) and order.mode == "live"


def test_an_unknown_open_order_is_canceled_by_policy_and_the_gateway_is_asked_to_cancel_it() -> None:
    core = ExecutionCore(config(unknown_orders="cancel"))
    out = core.handle(snapshot("a", orders=(HAND_ORDER,)))
    assert kinds(out) == [("unknown_open_order", "cancel")]
    [cancel] = [e for e in out if isinstance(e, VenueCancelRequested)]
    assert (cancel.venue_order_id, cancel.symbol, cancel.reason) == ("9001", "BTCUSDT", "reconcile_unknown_order")
    assert subjects.for_event(cancel) == "orders.live-a.BTCUSDT"  # where the gateway reads the account's orders
    assert isinstance(out[-1], AccountReconciled) and out[-1].differences == 1
    # the gateway's outbox: one cancel entry per order, answered by the venue's cancel report
    box = Outbox(["live-a"])
    entry = box.apply(cancel, 1)
    assert isinstance(entry, CancelEntry) and box.apply(cancel, 2) is None
    assert box.unanswered_cancels() == [entry]
    gone = VenueOrderCanceled(
        event_id=venue_ids.canceled_id("binance_usdm", "live-a", "9001"), ts_event=T0, ts_init=T0,
        account="live-a", venue="binance_usdm", symbol="BTCUSDT", venue_order_id="9001", reason="canceled",
    )  # fmt: skip
    box.apply(gone, 3)
    assert box.unanswered_cancels() == []
    assert core.handle(gone) == []  # not an order of the book: nothing to cancel in the log


def test_an_adopted_open_order_joins_the_book_and_its_fills_count() -> None:
    core = ExecutionCore(config(unknown_orders="adopt"))
    out = core.handle(snapshot("a", orders=(HAND_ORDER,)))
    [diff] = [e for e in out if isinstance(e, ReconciliationDifference)]
    assert (diff.kind, diff.resolution, diff.venue_quantity) == ("unknown_open_order", "adopt", 0.5)
    assert not any(isinstance(e, (OrderSubmitted, VenueCancelRequested)) for e in out)  # nothing to send
    assert isinstance(out[-1], AccountReconciled)
    trade = VenueFill(
        event_id=venue_ids.fill_id("binance_usdm", "live-a", "BTCUSDT", "t1"), ts_event=T0 + 5, ts_init=T0 + 6,
        account="live-a", venue="binance_usdm", symbol="BTCUSDT", fill_id="t1", venue_order_id="9001",
        side="buy", quantity=0.5, price=50.0, fee=0.01,
    )  # fmt: skip
    filled, position, account = core.handle(trade)
    assert isinstance(filled, OrderFilled) and filled.order_id == diff.order_id
    assert isinstance(position, PositionUpdated) and position.quantity == 0.5
    # the next snapshot: the order is gone, the position is there: nothing differs
    out = core.handle(snapshot("b", positions=(VenuePosition(symbol="BTCUSDT", quantity=0.5, entry_price=50.0),),
                               balance=1000.0 - 0.01, reason="periodic"))  # fmt: skip
    assert kinds(out) == [] and isinstance(out[-1], AccountReconciled)


def test_an_alerted_unknown_order_keeps_the_account_blocked_until_it_is_gone() -> None:
    core = ExecutionCore(config(unknown_orders="alert"))
    out = core.handle(snapshot("a", orders=(HAND_ORDER,)))
    assert kinds(out) == [("unknown_open_order", "alert")] and not any(isinstance(e, AccountReconciled) for e in out)
    [canceled] = core.handle(approval("blocked"))
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "not_reconciled"
    assert isinstance(core.handle(snapshot("b", reason="periodic"))[-1], AccountReconciled)
    assert isinstance(core.handle(approval("free"))[0], OrderSubmitted)


def test_a_position_the_log_does_not_have_is_adopted_or_alerted() -> None:
    venue_position = (VenuePosition(symbol="BTCUSDT", quantity=-0.2, entry_price=120.0),)
    adopt = ExecutionCore(config(positions="adopt"))
    out = adopt.handle(snapshot("a", positions=venue_position))
    [diff] = [e for e in out if isinstance(e, ReconciliationDifference)]
    assert (diff.kind, diff.resolution, diff.log_quantity, diff.venue_quantity, diff.venue_price) == (
        "position_mismatch", "adopt", 0.0, -0.2, 120.0)  # fmt: skip
    [pos] = [e for e in out if isinstance(e, PositionUpdated)]
    assert (pos.quantity, pos.avg_price, pos.mark_price) == (-0.2, 120.0, 120.0)
    [acct] = [e for e in out if isinstance(e, AccountUpdated)]
    assert acct.gross_exposure == pytest.approx(24.0) and isinstance(out[-1], AccountReconciled)

    alert = ExecutionCore(config(positions="alert"))
    out = alert.handle(snapshot("a", positions=venue_position))
    assert kinds(out) == [("position_mismatch", "alert")] and not any(isinstance(e, AccountReconciled) for e in out)
    assert alert.handle(approval("x"))[0].reason == "not_reconciled"  # type: ignore[union-attr]


def test_a_balance_difference_is_adopted_into_equity_or_alerted() -> None:
    core = ExecutionCore(config())
    out = core.handle(snapshot("a", balance=1250.0))
    [diff] = [e for e in out if isinstance(e, ReconciliationDifference)]
    assert (diff.kind, diff.resolution, diff.log_balance, diff.venue_balance) == (
        "balance_mismatch", "adopt", 1000.0, 1250.0)  # fmt: skip
    [acct] = [e for e in out if isinstance(e, AccountUpdated)]
    assert acct.equity == 1250.0 and acct.initial_equity == 1000.0
    assert kinds(core.handle(snapshot("b", balance=1250.004, reason="periodic"))) == []  # within 0.01
    blocked = ExecutionCore(config(balances="alert"))
    assert kinds(blocked.handle(snapshot("a", balance=900.0))) == [("balance_mismatch", "alert")]
    assert not blocked.reconciled["live-a"]


def test_an_order_the_log_holds_open_that_the_venue_does_not_list_is_closed() -> None:
    core = ExecutionCore(config())
    core.handle(snapshot("a"))
    [order] = core.handle(approval("o1"))
    assert isinstance(order, OrderSubmitted) and isinstance(order.client_order_id, str)
    core.handle(
        VenueOrderAccepted(
            event_id="acc",
            ts_event=T0,
            ts_init=T0,
            order_id=order.order_id,
            account="live-a",
            venue="binance_usdm",
            symbol="BTCUSDT",
            client_order_id=order.client_order_id,
            venue_order_id="55",
            status="open",
        )  # fmt: skip
    )
    out = core.handle(snapshot("b", reason="periodic"))
    assert kinds(out) == [("missing_open_order", "close")]
    [canceled] = [e for e in out if isinstance(e, OrderCanceled)]
    assert (canceled.order_id, canceled.reason) == (order.order_id, "missing_at_venue")
    assert not core.live.in_flight("live-a")


def test_a_snapshot_with_a_number_that_is_not_finite_is_refused_as_input() -> None:
    core = ExecutionCore(config())
    with pytest.raises(InvalidInput):
        core.handle(snapshot("nan", balance=float("nan")))
    assert not core.reconciled["live-a"]


def test_reconciliation_is_deterministic_byte_for_byte() -> None:
    inputs: list[Event] = [
        approval("early"),
        snapshot(
            "a",
            orders=(HAND_ORDER,),
            positions=(VenuePosition(symbol="ETHUSDT", quantity=1.5, entry_price=3.0),),
            balance=990.0,
        ),  # fmt: skip
        approval("later"),
        snapshot("b", reason="periodic"),
    ]

    def run() -> list[bytes]:
        core = ExecutionCore(config(unknown_orders="adopt", positions="adopt"))
        return [codec.encode(e) for i in inputs for e in core.handle(i)]

    first = run()
    assert first == run() and len(first) > 6
