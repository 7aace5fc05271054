"""A live account's funding as its venue books it: the venues' reports parsed into VenueFunding
(services.execution.venue_funding: ids from the account, symbol and settlement, so the stream's
report and a re-query's are one), and the execution core adding it to the position's and the
account's funding once, and to the wallet its reconciliation compares with the venue's."""

from __future__ import annotations

import json

import pytest

from services.execution import venue_funding
from tests.unit.test_execution_live import CONFIG, approval, fill, live_core, submit
from ticktape import subjects
from ticktape.events import AccountReconciled, AccountUpdated, PositionUpdated, VenuePosition, VenueSnapshot

RECEIVED = 1_700_000_000_123_456_789
HL_FUNDINGS = {"channel": "userFundings", "data": {"isSnapshot": True, "user": "0x" + "1" * 40, "fundings": [
    {"time": 1_700_000_000_000, "coin": "BTC", "usdc": "-0.5", "szi": "0.1", "fundingRate": "0.0000125"},
    {"time": 1_700_003_600_000, "coin": "BTC", "usdc": "0.25", "szi": "0.1", "fundingRate": "-0.00000625"},
]}}  # fmt: skip


def test_a_hyperliquid_snapshot_gives_the_settlements_since_the_accounts_first_order():
    events = venue_funding.hyperliquid_fundings(
        "acct", json.dumps(HL_FUNDINGS), since_ms=1_700_000_000_001, received_ns=RECEIVED
    )
    [event] = events  # the earlier one is from before the account's first order: not ours
    assert (event.symbol, event.amount, event.quantity, event.rate) == ("BTC", 0.25, 0.1, -0.00000625)
    assert event.funding_time == event.ts_event == 1_700_003_600_000 * 1_000_000
    live = {"channel": "userFundings", "data": {**HL_FUNDINGS["data"], "isSnapshot": False}}  # type: ignore[dict-item]
    again = venue_funding.hyperliquid_fundings("acct", json.dumps(live), since_ms=2**62, received_ns=1)
    assert [e.event_id for e in again][1] == event.event_id  # a live report: all taken, same ids
    assert subjects.for_event(event) == "venue.funding.acct.BTC"
    assert venue_funding.hyperliquid_fundings("acct", '{"channel":"pong"}', since_ms=0, received_ns=1) == []
    with pytest.raises(venue_funding.FundingReportError):
        venue_funding.hyperliquid_fundings("acct", '{"channel":"userFundings","data":{}}', since_ms=0, received_ns=1)


def test_binance_funding_fee_income_records_and_the_frame_that_announces_them():
    records = [
        {"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "-0.10000000", "asset": "USDT",
         "time": 1_700_000_000_000, "tranId": 7, "info": "", "tradeId": ""},
        {"symbol": "BTCUSDT", "incomeType": "COMMISSION", "income": "-0.2", "asset": "USDT", "time": 1_700_000_000_000,
         "tranId": 8, "info": "", "tradeId": "1"},
    ]  # fmt: skip
    [event] = venue_funding.binance_fundings("acct", records, since_ms=0, received_ns=RECEIVED)
    assert (event.venue, event.symbol, event.amount) == ("binance_usdm", "BTCUSDT", -0.1)
    frame = {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "FUNDING_FEE", "B": [], "P": []}}
    assert venue_funding.binance_funding_fee(json.dumps(frame))
    assert not venue_funding.binance_funding_fee(json.dumps({**frame, "a": {"m": "ORDER"}}))


def test_the_core_adds_venue_funding_to_the_live_position_and_account_once():
    core = live_core(CONFIG)
    order = submit(core, approval("buy", 2.0))
    core.handle(fill(order, "t1", 2.0, 100.0, fee=0.0))
    [paid] = venue_funding.binance_fundings(
        "live-a", [{"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "-0.5", "time": 5}], since_ms=0,
        received_ns=RECEIVED,
    )  # fmt: skip
    position, account = core.handle(paid)
    assert isinstance(position, PositionUpdated) and (position.quantity, position.funding) == (2.0, -0.5)
    assert isinstance(account, AccountUpdated) and account.funding == -0.5
    assert account.equity == pytest.approx(1000.0 - 0.5)
    core._memo._outputs.clear()  # as if long ago: the book's applied ids remember it
    assert core.handle(paid) == []
    # the venue's wallet took the funding: the log's (with it) is equal, no difference
    held = (VenuePosition(symbol="BTCUSDT", quantity=2.0, entry_price=100.0),)
    snapshot = VenueSnapshot(
        event_id="snap-2", ts_event=9, ts_init=9, account="live-a", venue="binance_usdm", wallet_balance=999.5,
        positions=held,
    )  # fmt: skip
    assert [type(e) for e in core.handle(snapshot)] == [AccountReconciled]  # no ReconciliationDifference
