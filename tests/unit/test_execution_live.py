"""The execution core with live accounts: it never fills a live order itself; the venue's answers
(venue.> events) become fills, positions, accounts and cancels exactly as for paper, in any order
the venue's reports arrive, and a fill reported twice is applied once. Paper accounts beside a
live one trade as before."""

from __future__ import annotations

import pytest

from exchanges.trading.client_ids import binance_client_order_id, hyperliquid_cloid
from services.execution.config import AccountConfig, ExecutionConfig
from services.execution.core import ExecutionCore, order_id_for
from ticktape import ids, subjects
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.errors import InvalidInput
from ticktape.events import (
    AccountReconciled,
    AccountUpdated,
    BarClosed,
    EmergencyStop,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    VenueFill,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderRejected,
    VenueOrderUnknown,
    VenueSnapshot,
    codec,
)
from ticktape.events import venue as venue_ids
from ticktape.events.risk import OrderSide

T0 = 1_700_000_000 * 1_000_000_000
LIVE = AccountConfig(name="live-a", mode="live", venue="binance_usdm", network="testnet", initial_equity=1000.0)
PAPER = AccountConfig(name="paper-main")
CONFIG = ExecutionConfig(accounts=(LIVE, PAPER))


def live_core(config: ExecutionConfig) -> ExecutionCore:
    """A core whose live accounts have reconciled with a clean venue (no order, no position, the
    wallet at the initial equity): before that they do not trade (test_execution_reconcile)."""
    core = ExecutionCore(config)
    for a in config.live_accounts():
        out = core.handle(
            VenueSnapshot(
                event_id=f"snapshot-{a.name}",
                ts_event=1,
                ts_init=2,
                account=a.name,
                venue=a.venue or "",
                wallet_balance=a.initial_equity,
            )  # fmt: skip
        )
        assert [type(e) for e in out] == [AccountReconciled]
    return core


def bar(i: int, price: float, *, venue: str = "binance_usdm", symbol: str = "BTCUSDT") -> BarClosed:
    open_time = T0 + i * MINUTE_NS
    close_time = open_time + MINUTE_NS - NS_PER_MS
    return BarClosed(
        event_id=ids.bar_id(venue, symbol, "1m", open_time),
        ts_event=close_time,
        ts_init=close_time + 7,
        venue=venue,
        symbol=symbol,
        timeframe="1m",
        open_time=open_time,
        close_time=close_time,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=1.0,
        quote_volume=1.0,
    )


def approval(
    side: OrderSide, qty: float, *, account: str = "live-a", venue: str = "binance_usdm", tag: str = "", **extra: object
) -> OrderApproved:
    return OrderApproved(
        event_id=f"appr-{account}-{side}-{qty}{tag}",
        ts_event=11,
        ts_init=12,
        correlation_id="corr",
        account=account,
        strategy="s",
        venue=venue,
        symbol="BTCUSDT",
        side=side,
        quantity=qty,
        reference_price=100.0,
        notional=qty * 100.0,
        target_quantity=qty,
        signal_id="sig",
        bar_open_time=T0,
        **extra,  # type: ignore[arg-type]
    )


def fill(
    order: OrderSubmitted | None,
    trade: str,
    qty: float,
    price: float,
    *,
    fee: float = 0.05,
    venue_order_id: str = "77",
    side: OrderSide = "buy",
    with_client_id: bool = True,
) -> VenueFill:
    cid = order.client_order_id if order is not None and with_client_id else ""
    assert isinstance(cid, str)
    return VenueFill(
        event_id=venue_ids.fill_id("binance_usdm", "live-a", "BTCUSDT", trade),
        ts_event=T0 + 5,
        ts_init=T0 + 6,
        account="live-a",
        venue="binance_usdm",
        symbol="BTCUSDT",
        fill_id=trade,
        venue_order_id=venue_order_id,
        client_order_id=cid,
        side=side,
        quantity=qty,
        price=price,
        fee=fee,
        fee_asset="USDT",
    )


def accepted(order: OrderSubmitted, *, venue_order_id: str = "77", status: str = "filled", filled: float = 0.0):
    cid = order.client_order_id
    assert isinstance(cid, str)
    return VenueOrderAccepted(
        event_id=venue_ids.accepted_id("binance_usdm", order.account, cid),
        ts_event=T0 + 4,
        ts_init=T0 + 4,
        order_id=order.order_id,
        account=order.account,
        venue=order.venue,
        symbol=order.symbol,
        client_order_id=cid,
        venue_order_id=venue_order_id,
        status=status,  # type: ignore[arg-type]
        filled_quantity=filled or order.quantity,
    )


def submit(core: ExecutionCore, a: OrderApproved) -> OrderSubmitted:
    [out] = core.handle(a)
    assert isinstance(out, OrderSubmitted)
    return out


def test_a_live_approval_becomes_a_live_order_that_no_bar_fills():
    core = live_core(CONFIG)
    core.handle(bar(0, 100.0))
    order = submit(core, approval("buy", 2.0))
    assert (order.mode, order.order_id, order.quantity) == ("live", order_id_for("appr-live-a-buy-2.0"), 2.0)
    assert order.reference_price == 100.0
    assert order.client_order_id == binance_client_order_id(order.order_id)
    assert order.correlation_id == "corr"
    assert core.handle(bar(1, 101.0)) == []  # no fill, and no position to mark
    assert list(core.live.open) == [order.order_id]


def test_a_hyperliquid_account_gets_the_cloid_of_its_order():
    account = AccountConfig(name="hl", mode="live", venue="hyperliquid", network="testnet")
    core = live_core(ExecutionConfig(accounts=(account,)))
    order = submit(core, approval("sell", 1.0, account="hl", venue="hyperliquid"))
    assert order.client_order_id == hyperliquid_cloid(order.order_id)


def test_a_venue_fill_fills_the_order_and_updates_position_and_account():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 2.0))
    out = core.handle(fill(order, "t1", 2.0, 100.5, fee=0.1))
    filled, position, account = out
    assert isinstance(filled, OrderFilled) and (filled.mode, filled.quantity, filled.price, filled.fee) == (
        "live", 2.0, 100.5, 0.1)  # fmt: skip
    assert filled.order_id == order.order_id and filled.causation_id == order.event_id
    assert filled.correlation_id == "corr"
    assert isinstance(position, PositionUpdated) and (position.quantity, position.avg_price) == (2.0, 100.5)
    assert isinstance(account, AccountUpdated) and account.equity == pytest.approx(1000.0 - 0.1)
    assert order.order_id not in core.live.open  # filled in full
    assert [subjects.for_event(e) for e in out] == [
        "fills.live-a.BTCUSDT", "positions.live-a.BTCUSDT", "accounts.live-a"]  # fmt: skip


def test_partial_fills_then_the_rest_expires():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 3.0))
    assert len(core.handle(fill(order, "t1", 1.0, 100.0))) == 3
    assert order.order_id in core.live.open
    assert len(core.handle(fill(order, "t2", 1.0, 101.0))) == 3
    expired = VenueOrderCanceled(
        event_id=venue_ids.canceled_id("binance_usdm", "live-a", "77"), ts_event=T0 + 9, ts_init=T0 + 9,
        account="live-a", venue="binance_usdm", symbol="BTCUSDT", venue_order_id="77",
        client_order_id=order.client_order_id, reason="expired", filled_quantity=2.0,  # type: ignore[arg-type]
    )  # fmt: skip
    [canceled] = core.handle(expired)
    assert isinstance(canceled, OrderCanceled) and (canceled.order_id, canceled.reason) == (order.order_id, "expired")
    assert core.accounts["live-a"].positions[("binance_usdm", "BTCUSDT")].quantity == 2.0
    assert order.order_id not in core.live.open


def test_a_fill_that_comes_before_its_acceptance_waits_for_it():
    """Hyperliquid's fills carry no client id; the order's venue id comes with its acceptance."""
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 1.0))
    early = fill(order, "t9", 1.0, 99.0, venue_order_id="555", with_client_id=False)
    assert core.handle(early) == []  # parked
    out = core.handle(accepted(order, venue_order_id="555"))
    assert [type(e) for e in out] == [OrderFilled, PositionUpdated, AccountUpdated]
    assert out[0].event_id == ids.child_id(early.event_id, "execution.live_fill", 0)
    assert core.handle(fill(order, "t9", 1.0, 99.0, venue_order_id="555")) == []  # the same trade again


def test_the_same_fill_twice_is_applied_once_even_past_the_input_memo():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 2.0))
    first = fill(order, "t1", 1.0, 100.0)
    assert len(core.handle(first)) == 3
    core._memo._outputs.clear()  # as if long ago: only the book's applied fill ids remember it
    assert core.handle(first) == []
    assert core.accounts["live-a"].positions[("binance_usdm", "BTCUSDT")].quantity == 1.0


def test_a_rejection_cancels_with_the_venues_reason_once():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 50.0))
    cid = order.client_order_id
    assert isinstance(cid, str)
    rejected = VenueOrderRejected(
        event_id=venue_ids.rejected_id("binance_usdm", "live-a", cid), ts_event=T0, ts_init=T0,
        order_id=order.order_id, account="live-a", venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid,
        reason="insufficient_margin", message="Margin is insufficient.", http_status=400, code=-2019,
    )  # fmt: skip
    [canceled] = core.handle(rejected)
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "insufficient_margin"
    assert canceled.causation_id == order.event_id and canceled.correlation_id == "corr"
    again = VenueOrderCanceled(
        event_id="x", ts_event=T0, ts_init=T0, account="live-a", venue="binance_usdm", symbol="BTCUSDT",
        venue_order_id="1", client_order_id=cid, reason="expired",
    )  # fmt: skip
    assert core.handle(again) == []
    assert core.live.open == {}


def test_an_unknown_outcome_keeps_the_order_open_until_the_venue_answers():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 1.0))
    cid = order.client_order_id
    assert isinstance(cid, str)
    unknown = VenueOrderUnknown(
        event_id=venue_ids.unknown_id("binance_usdm", "live-a", cid), ts_event=T0, ts_init=T0, order_id=order.order_id,
        account="live-a", venue="binance_usdm", symbol="BTCUSDT", client_order_id=cid, reason="outcome_unknown",
    )  # fmt: skip
    assert core.handle(unknown) == [] and core.live.open[order.order_id].unknown
    assert core.handle(accepted(order, status="open")) == []
    assert not core.live.open[order.order_id].unknown


def test_an_approval_for_another_venue_than_the_live_accounts_is_canceled():
    core = live_core(CONFIG)
    [out] = core.handle(approval("buy", 1.0, venue="hyperliquid"))
    assert isinstance(out, OrderCanceled) and out.reason == "venue_mismatch"


def test_a_venue_fill_that_is_not_finite_or_not_positive_is_invalid_input():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 1.0))
    with pytest.raises(InvalidInput):
        core.handle(fill(order, "t1", 0.0, 100.0))
    with pytest.raises(InvalidInput):
        core.handle(fill(order, "t2", 1.0, float("inf")))
    assert order.order_id in core.live.open


def test_a_flatten_of_a_live_account_sends_reduce_only_orders_once():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 2.0))
    core.handle(fill(order, "t1", 2.0, 100.0))
    core.handle(bar(1, 103.0))
    stop = EmergencyStop(event_id="stop-1", ts_event=T0 + 10, ts_init=T0 + 10, account="live-a", reason="x",
                         flatten=True)  # fmt: skip
    [close] = core.handle(stop)
    assert isinstance(close, OrderSubmitted)
    assert (close.mode, close.side, close.quantity, close.reduce_only, close.reason, close.reference_price) == (
        "live", "sell", 2.0, True, "flatten", 103.0)  # fmt: skip
    assert core.accounts["live-a"].positions[("binance_usdm", "BTCUSDT")].quantity == 2.0  # until the venue fills
    again = EmergencyStop(event_id="stop-2", ts_event=T0 + 11, ts_init=T0 + 11, account="live-a", reason="x",
                          flatten=True)  # fmt: skip
    assert core.handle(again) == []  # the reduce-only order in flight closes it already
    out = core.handle(fill(close, "t2", 2.0, 103.0, side="sell", venue_order_id="78"))
    assert isinstance(out[1], PositionUpdated) and out[1].quantity == 0.0 and out[1].realized_pnl == pytest.approx(6.0)


def test_a_paper_account_beside_a_live_one_fills_at_the_next_bar_as_before():
    core = live_core(CONFIG)
    core.handle(bar(0, 100.0))
    [paper_order] = core.handle(approval("buy", 1.0, account="paper-main"))
    assert isinstance(paper_order, OrderSubmitted) and paper_order.mode == "paper"
    assert b"reference_price" not in codec.encode(paper_order) and b"client_order_id" not in codec.encode(paper_order)
    out = core.handle(bar(1, 101.0))
    assert [type(e) for e in out][:2] == [OrderFilled, PositionUpdated]
    assert isinstance(out[0], OrderFilled) and out[0].mode == "paper"


def test_two_cores_fed_the_same_venue_answers_publish_the_same_bytes():
    def run() -> list[bytes]:
        core = live_core(CONFIG)
        order = submit(core, approval("buy", 1.0))
        inputs: list[Event] = [
            bar(0, 100.0),
            fill(order, "t1", 1.0, 100.0, venue_order_id="9", with_client_id=False),
            accepted(order, venue_order_id="9"),
            bar(1, 102.0),
        ]
        return [codec.encode(order)] + [codec.encode(e) for i in inputs for e in core.handle(i)]

    first = run()
    assert first == run() and len(first) > 5


LIVE_DOC = {
    "live": True,
    "accounts": [
        {"name": "live-a", "venue": "binance_usdm", "mode": "live", "network": "testnet",
         "api_key_env": "TT_UNIT_KEY", "api_secret_env": "TT_UNIT_SECRET"},
    ],
}  # fmt: skip


def test_the_service_refuses_to_start_a_live_account_whose_credentials_are_not_in_its_environment(monkeypatch):
    from services.execution.service import load
    from ticktape.config import ConfigError

    monkeypatch.delenv("TT_UNIT_KEY", raising=False)
    monkeypatch.setenv("TT_UNIT_SECRET", "s" * 64)
    with pytest.raises(ConfigError, match="TT_UNIT_KEY is not set") as refused:
        load(LIVE_DOC)
    assert "s" * 64 not in str(refused.value)
    monkeypatch.setenv("TT_UNIT_KEY", "k" * 64)
    config = load(LIVE_DOC)
    assert [(a.name, a.mode, a.venue, a.network) for a in config.live_accounts()] == [
        ("live-a", "live", "binance_usdm", "testnet")]  # fmt: skip


def test_a_live_account_loads_only_when_the_configuration_lets_it_and_always_for_replay():
    from services.execution.loading import from_raw, recorded
    from ticktape.config import ConfigError

    without = {k: v for k, v in LIVE_DOC.items() if k != "live"}
    with pytest.raises(ConfigError, match="live"):
        from_raw(without)
    assert [a.mode for a in recorded(without).accounts] == ["live"]  # a replay sends nothing
    assert [a.mode for a in from_raw(LIVE_DOC).accounts] == ["live"]
