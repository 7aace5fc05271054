"""The venue gateway's pure parts: user-stream frames to venue events (ids from the venue's keys,
so a fill seen twice has one id), and the outbox folded from the log (which orders still need an
answer, which accepted orders lack fills)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchanges.trading import model
from services.execution import reports
from services.execution.outbox import Outbox
from ticktape.events import OrderSubmitted, VenueFill, VenueOrderCanceled
from ticktape.events import venue as venue_ids

RECEIVED = 1_700_000_000_123_456_789


def update(x: str, status: str, **o: object) -> str:
    """An ORDER_TRADE_UPDATE as Binance's documentation prints one (fields used by the gateway)."""
    body = {"s": "BTCUSDT", "c": "tt-" + "a" * 32, "S": "BUY", "o": "MARKET", "f": "GTC", "q": "0.002",
            "p": "0", "ap": "0", "sp": "0", "x": x, "X": status, "i": 8886774, "l": "0", "z": "0", "L": "0",
            "T": 1568879465650, "t": 0, "b": "0", "a": "0", "m": False, "R": False, "rp": "0"}  # fmt: skip
    body.update(o)
    return json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650, "o": body})


def test_a_binance_trade_becomes_a_venue_fill_with_the_venues_numbers():
    frame = update("TRADE", "FILLED", l="0.002", z="0.002", L="9162.01", n="0.00916201", N="USDT", t=5, m=True,
                   rp="0.5")  # fmt: skip
    [event] = reports.binance_user_frame("acct", frame, received_ns=RECEIVED)
    assert isinstance(event, VenueFill)
    assert (event.fill_id, event.venue_order_id, event.client_order_id) == ("5", "8886774", "tt-" + "a" * 32)
    assert (event.side, event.quantity, event.price, event.fee, event.liquidity) == (
        "buy", 0.002, 9162.01, 0.00916201, "maker")  # fmt: skip
    assert (event.ts_event, event.ts_init) == (1568879465650 * 1_000_000, RECEIVED)
    assert event.event_id == venue_ids.fill_id("binance_usdm", "acct", "BTCUSDT", "5")


def test_a_binance_expiry_ends_the_order_and_new_or_account_updates_say_nothing():
    [event] = reports.binance_user_frame("acct", update("EXPIRED", "EXPIRED", z="0.001"), received_ns=RECEIVED)
    assert isinstance(event, VenueOrderCanceled) and (event.reason, event.filled_quantity) == ("expired", 0.001)
    assert event.event_id == venue_ids.canceled_id("binance_usdm", "acct", "8886774")
    assert reports.binance_user_frame("acct", update("NEW", "NEW"), received_ns=RECEIVED) == []
    assert reports.binance_user_frame("acct", '{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{}}', received_ns=1) == []


@pytest.mark.parametrize("frame", ['{"e":"ORDER_TRADE_UPDATE"}', "not json", update("TRADE", "FILLED", l="0")])
def test_a_binance_frame_that_is_not_as_documented_is_a_report_error(frame):
    with pytest.raises(reports.ReportError):
        reports.binance_user_frame("acct", frame, received_ns=RECEIVED)


def test_hyperliquid_frames_give_fills_ends_and_the_cloids_of_order_ids():
    cloid = "0x" + "b" * 32
    updates = {"channel": "orderUpdates", "data": [
        {"order": {"coin": "BTC", "side": "B", "limitPx": "1.0", "sz": "0.0", "oid": 7, "timestamp": 1,
                   "origSz": "1.0", "cloid": cloid}, "status": "filled", "statusTimestamp": 5},
        {"order": {"coin": "ETH", "side": "A", "limitPx": "1.0", "sz": "0.0", "oid": 8, "timestamp": 1,
                   "origSz": "1.0"}, "status": "iocCancelRejected", "statusTimestamp": 6},
    ]}  # fmt: skip
    parsed = reports.hyperliquid_user_frame(json.dumps(updates))
    assert parsed.cloids == (("7", cloid),) and parsed.ends == (("ETH", "8", "", "expired", 6),)
    [end] = reports.hyperliquid_ends("acct", parsed, received_ns=RECEIVED)
    assert (end.symbol, end.venue_order_id, end.reason, end.ts_event) == ("ETH", "8", "expired", 6_000_000)
    fills = {"channel": "userFills", "data": {"isSnapshot": True, "user": "0x" + "1" * 40, "fills": [
        {"coin": "BTC", "px": "100.5", "sz": "1.0", "side": "B", "time": 9, "oid": 7, "tid": 11, "crossed": True,
         "fee": "0.045", "closedPnl": "0.0", "feeToken": "USDC", "hash": "0x0", "startPosition": "0.0",
         "dir": "Open Long"},
    ]}}  # fmt: skip
    parsed = reports.hyperliquid_user_frame(json.dumps(fills))
    assert parsed.snapshot and len(parsed.fills) == 1
    [event] = reports.fills_of("acct", parsed.fills, {"7": cloid}, received_ns=RECEIVED)
    assert (event.client_order_id, event.venue_order_id, event.liquidity, event.fee_asset) == (
        cloid, "7", "taker", "USDC")  # fmt: skip
    assert reports.hyperliquid_user_frame('{"channel":"pong"}') == reports.HyperliquidUserFrame()


def test_a_fill_from_a_rest_query_has_the_id_of_the_same_fill_from_the_stream():
    rest = model.Fill(venue="binance_usdm", symbol="BTCUSDT", trade_id="5", venue_order_id=8886774,
                      client_order_id=None, side="buy", price=Decimal("9162.01"), quantity=Decimal("0.002"),
                      fee=Decimal("0.00916201"), fee_asset="USDT", maker=True, realized_pnl=Decimal(0),
                      time_ms=1568879465650)  # fmt: skip
    [from_rest] = reports.fills_of("acct", [rest], {"8886774": "tt-" + "a" * 32}, received_ns=1)
    [from_stream] = reports.binance_user_frame(
        "acct", update("TRADE", "FILLED", l="0.002", L="9162.01", n="0.00916201", t=5), received_ns=2
    )
    assert from_rest.event_id == from_stream.event_id and from_rest.client_order_id == from_stream.client_order_id


def order(order_id: str, *, account: str = "live-a", mode: str = "live") -> OrderSubmitted:
    return OrderSubmitted(
        event_id=f"sub-{order_id}", ts_event=1, ts_init=1, order_id=order_id, account=account, venue="binance_usdm",
        symbol="BTCUSDT", side="buy", quantity=1.0, mode=mode, client_order_id=f"cid-{order_id}",  # type: ignore[arg-type]
        reference_price=100.0,
    )  # fmt: skip


def test_the_outbox_holds_the_live_orders_the_log_has_no_answer_for():
    from tests.unit.test_execution_live import accepted, fill

    box = Outbox(["live-a"])
    a, b, c = order("a"), order("b"), order("c")
    assert box.apply(order("p", account="paper-main", mode="paper"), 1) is None  # never a paper order
    assert box.apply(order("x", account="other"), 1) is None  # nor another account's
    for o in (a, b, c):
        assert box.apply(o, 5) is not None
    assert box.apply(a, 5) is None  # seen already
    box.apply(accepted(a, venue_order_id="1", filled=1.0), 6)
    assert [e.order.order_id for e in box.unanswered()] == ["b", "c"]
    assert [e.order.order_id for e in box.fills_missing()] == ["a"]
    box.apply(fill(a, "t1", 1.0, 100.0, venue_order_id="1", with_client_id=False), 7)
    assert box.fills_missing() == [] and box.client_ids("live-a") == {"1": "cid-a"}


def test_the_outbox_counts_a_fill_that_came_before_the_answer_naming_its_venue_order_id():
    """Hyperliquid's fills name only the venue's order id: one that arrives before the placement's
    answer is counted once the answer names that id, so the order settles (its copy from a REST
    query would be the same stored event, never seen again) and nothing stays in flight."""
    from tests.unit.test_execution_live import accepted, fill

    box = Outbox(["live-a"])
    a = order("a")
    box.apply(a, 5)
    box.apply(fill(a, "t1", 1.0, 100.0, venue_order_id="9", with_client_id=False), 6)  # before the answer
    assert [e.order.order_id for e in box.in_flight("live-a")] == ["a"]
    box.apply(accepted(a, venue_order_id="9", filled=1.0), 7)
    assert box.in_flight("live-a") == [] and box.fills_missing() == []
    box.apply(fill(a, "t1", 1.0, 100.0, venue_order_id="9", with_client_id=False), 8)  # seen again: once
    assert box.entries["a"].filled == 1.0
