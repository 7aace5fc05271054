"""Reconciliation racing the user stream (services.execution.reconcile): the venue is asked over
REST while its user stream keeps reporting, so the log may hold, before a VenueSnapshot, reports
the venue's answer does not reflect yet, and the venue's answer may reflect what the log has not
heard yet. A snapshot names the last venue report the gateway had read back from the log before
it asked (last_report_id); the core compares only what both sides have seen and leaves the rest
to the next snapshot. Each test feeds the core the events in the racy order the gateway can
publish them; without the marker's distinction each would end in a spurious difference resolved
by policy (a position adopted twice, our own order canceled, an order closed that filled)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from msgspec import UNSET

from services.execution.config import ExecutionConfig
from services.execution.core import ExecutionCore
from tests.support.live_account import T0, live_account, venue_snapshot
from tests.unit.test_execution_live import accepted, approval, fill, submit
from ticktape.events import (
    AccountReconciled,
    Event,
    OrderCanceled,
    OrderSubmitted,
    PositionUpdated,
    ReconciliationDifference,
    VenueCancelRequested,
    VenueFunding,
    VenueOpenOrder,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenuePosition,
    VenueSnapshot,
    codec,
)
from ticktape.events import venue as venue_ids

ALL_ADOPT = {"unknown_orders": "cancel", "positions": "adopt", "balances": "adopt"}


def core_for(**policy: Any) -> ExecutionCore:
    core = ExecutionCore(ExecutionConfig(accounts=(live_account(**(policy or ALL_ADOPT)),)))
    assert isinstance(core.handle(snapshot("start", marker=""))[-1], AccountReconciled)
    return core


def snapshot(
    tag: str,
    *,
    marker: str | None,
    orders: tuple[VenueOpenOrder, ...] = (),
    positions: tuple[VenuePosition, ...] = (),
    balance: float = 1000.0,
) -> VenueSnapshot:
    return venue_snapshot(tag, reason="periodic", marker=marker, orders=orders, positions=positions, balance=balance)


def resting(order: OrderSubmitted, venue_order_id: str = "77") -> VenueOrderAccepted:
    """The venue's answer: the order is open, nothing filled yet."""
    return msgspec.structs.replace(accepted(order, venue_order_id=venue_order_id), status="open", filled_quantity=0.0)


def listed(order: OrderSubmitted, venue_order_id: str = "77") -> VenueOpenOrder:
    assert isinstance(order.client_order_id, str)
    return VenueOpenOrder(symbol="BTCUSDT", venue_order_id=venue_order_id, client_order_id=order.client_order_id,
                          side=order.side, quantity=order.quantity, price=100.0)  # fmt: skip


def held(qty: float, price: float = 100.0) -> tuple[VenuePosition, ...]:
    return (VenuePosition(symbol="BTCUSDT", quantity=qty, entry_price=price),)


def expired(order: OrderSubmitted, filled: float) -> VenueOrderCanceled:
    assert isinstance(order.client_order_id, str)
    return VenueOrderCanceled(
        event_id=venue_ids.canceled_id("binance_usdm", "live-a", "77"), ts_event=T0 + 6, ts_init=T0 + 6,
        account="live-a", venue="binance_usdm", symbol="BTCUSDT", venue_order_id="77",
        client_order_id=order.client_order_id, reason="expired", filled_quantity=filled,
    )  # fmt: skip


def differences(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.kind, e.resolution) for e in events if isinstance(e, ReconciliationDifference)]


def reconciled(events: list[Event]) -> AccountReconciled:
    assert isinstance(events[-1], AccountReconciled), events
    return events[-1]


def position(core: ExecutionCore) -> float:
    return core.accounts["live-a"].positions[("binance_usdm", "BTCUSDT")].quantity


def test_a_fill_stored_while_the_venue_was_asked_is_not_a_position_difference() -> None:
    """The venue was asked (no position), then the order's answer and fill were stored, then the
    snapshot: the fill is after the marker, so the position and the balance wait."""
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    answer, trade = accepted(order), fill(order, "t1", 2.0, 100.0, fee=0.1)
    core.handle(answer)
    core.handle(trade)
    out = core.handle(snapshot("stale", marker="", positions=(), balance=1000.0))
    assert differences(out) == [] and not any(isinstance(e, PositionUpdated) for e in out)
    assert reconciled(out).deferred == 2  # the position and the balance
    assert position(core) == 2.0
    # the next snapshot was asked after the fill was read back: it reflects it, nothing differs
    out = core.handle(snapshot("next", marker=trade.event_id, positions=held(2.0), balance=999.9))
    assert differences(out) == [] and reconciled(out).deferred is UNSET
    assert "deferred" not in codec.encode(reconciled(out)).decode()  # unset: the bytes of before


def test_without_the_marker_a_snapshot_is_compared_as_it_was_recorded() -> None:
    """A snapshot recorded before last_report_id existed (None) gets the comparison it got then
    (here the race's spurious adoption), so an old recording replays byte for byte."""
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    core.handle(accepted(order))
    core.handle(fill(order, "t1", 2.0, 100.0, fee=0.1))
    out = core.handle(snapshot("old", marker=None, positions=(), balance=1000.0))
    assert differences(out) == [("position_mismatch", "adopt"), ("balance_mismatch", "adopt")]
    assert "deferred" not in codec.encode(reconciled(out)).decode()


def test_an_expiry_before_its_fill_does_not_adopt_the_fill_twice() -> None:
    """The user stream reported the rest's expiry before the fill that preceded it; the venue's
    position already holds the fill when asked. The order is closed in the log, its fill still to
    come: the position waits for it instead of being adopted (which the fill would then double)."""
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    answer, end = resting(order), expired(order, filled=0.5)
    core.handle(answer)
    core.handle(end)  # the order is closed: 0.5 of it filled, its fill not reported yet
    out = core.handle(snapshot("ahead", marker=end.event_id, positions=held(0.5), balance=999.95))
    assert differences(out) == [] and reconciled(out).deferred == 2
    trade = fill(order, "t1", 0.5, 100.0, fee=0.05)
    core.handle(trade)
    assert position(core) == 0.5  # once
    out = core.handle(snapshot("after", marker=trade.event_id, positions=held(0.5), balance=999.95))
    assert differences(out) == [] and reconciled(out).deferred is UNSET


def test_fills_that_never_come_are_waited_for_one_snapshot_only() -> None:
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    answer, end = resting(order), expired(order, filled=0.5)
    core.handle(answer)
    core.handle(end)
    out = core.handle(snapshot("first", marker=end.event_id, positions=held(0.5), balance=999.95))
    assert differences(out) == [] and reconciled(out).deferred == 2
    out = core.handle(snapshot("second", marker=end.event_id, positions=held(0.5), balance=999.95))
    assert differences(out) == [("position_mismatch", "adopt"), ("balance_mismatch", "adopt")]


def test_an_order_answered_after_the_venue_was_asked_is_not_missing() -> None:
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    answer = resting(order)
    core.handle(answer)  # stored after the gateway started asking: the venue may not have had it
    out = core.handle(snapshot("before-ack", marker=""))
    assert differences(out) == [] and not any(isinstance(e, OrderCanceled) for e in out)
    assert [o.order.order_id for o in core.live.in_flight("live-a")] == [order.order_id]
    # asked again after the answer was read back, the venue lists it: nothing differs
    out = core.handle(snapshot("listed", marker=answer.event_id, orders=(listed(order),)))
    assert differences(out) == [] and core.live.in_flight("live-a")


def test_an_order_the_venue_no_longer_lists_is_closed_only_at_the_second_snapshot() -> None:
    """Accepted before the venue was asked and not listed: it ended at the venue and its end (or
    its fill) may be on its way. If the fill comes, the order fills and nothing differs; if the
    next snapshot does not list it either, it is missing."""
    core = core_for()
    filled_later = submit(core, approval("buy", 2.0))
    answer = resting(filled_later)
    core.handle(answer)
    out = core.handle(snapshot("first", marker=answer.event_id))
    assert differences(out) == [] and reconciled(out).deferred == 2  # the order, and the balance meanwhile
    trade = fill(filled_later, "t1", 2.0, 100.0, fee=0.1)
    filled = core.handle(trade)
    assert position(core) == 2.0 and not any(isinstance(e, OrderCanceled) for e in filled)
    out = core.handle(snapshot("second", marker=trade.event_id, positions=held(2.0), balance=999.9))
    assert differences(out) == []

    lost = submit(core, approval("sell", 1.0))
    answer = resting(lost, venue_order_id="78")
    core.handle(answer)
    assert differences(core.handle(snapshot("third", marker=answer.event_id, positions=held(2.0),
                                            balance=999.9))) == []  # fmt: skip
    out = core.handle(snapshot("fourth", marker=answer.event_id, positions=held(2.0), balance=999.9))
    assert differences(out) == [("missing_open_order", "close")]
    [canceled] = [e for e in out if isinstance(e, OrderCanceled)]
    assert (canceled.order_id, canceled.reason) == (lost.order_id, "missing_at_venue")


def test_our_order_closed_while_the_venue_was_asked_is_not_canceled_as_unknown() -> None:
    """The venue listed the order (asked before its expiry), the log closed it before the
    snapshot: not an unknown order to cancel; the next snapshot no longer lists it."""
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    answer, end = resting(order), expired(order, filled=0.0)
    core.handle(answer)
    core.handle(end)
    out = core.handle(snapshot("stale", marker=answer.event_id, orders=(listed(order),)))
    assert differences(out) == [] and not any(isinstance(e, VenueCancelRequested) for e in out)
    assert reconciled(out).deferred == 1
    # listed again by a snapshot asked after the expiry was read back: that is a real difference
    out = core.handle(snapshot("still", marker=end.event_id, orders=(listed(order),)))
    assert differences(out) == [("unknown_open_order", "cancel")]


def test_a_funding_stored_while_the_venue_was_asked_leaves_the_balance_to_the_next_snapshot() -> None:
    core = core_for()
    funding = VenueFunding(
        event_id=venue_ids.funding_id("binance_usdm", "live-a", "BTCUSDT", 1), ts_event=T0, ts_init=T0,
        account="live-a", venue="binance_usdm", symbol="BTCUSDT", funding_time=T0, amount=-1.5,
    )  # fmt: skip
    core.handle(funding)
    out = core.handle(snapshot("stale", marker="", balance=1000.0))
    assert differences(out) == [] and reconciled(out).deferred == 1
    out = core.handle(snapshot("next", marker=funding.event_id, balance=998.5))
    assert differences(out) == []


def test_the_reports_kept_for_the_comparison_stop_at_the_marker_and_replay_byte_for_byte() -> None:
    inputs: list[Any] = []

    def run() -> tuple[list[bytes], ExecutionCore]:
        core = core_for()
        order = submit(core, approval("buy", 2.0))
        answer, trade = accepted(order), fill(order, "t1", 2.0, 100.0, fee=0.1)
        inputs[:] = [answer, trade, snapshot("s1", marker=""), snapshot("s2", marker=trade.event_id,
                     positions=held(2.0), balance=999.9)]  # fmt: skip
        return [codec.encode(e) for i in inputs for e in core.handle(i)], core

    first, core = run()
    assert first == run()[0]
    assert list(core.reports._trails["live-a"]) == [inputs[1].event_id]  # from the last marker on


@pytest.mark.parametrize("marker", ["", "unknown-id"])
def test_a_marker_the_core_does_not_hold_counts_every_report_as_late(marker: str) -> None:
    core = core_for()
    order = submit(core, approval("buy", 2.0))
    core.handle(accepted(order))
    core.handle(fill(order, "t1", 2.0, 100.0, fee=0.1))
    out = core.handle(snapshot("x", marker=marker))
    assert differences(out) == [] and reconciled(out).deferred == 2
