"""The simulator's matching engine and account model (venuesim.trading, venuesim.accounts): pure,
no I/O; and the Hyperliquid user documents against the key sets of recorded answers (the SDK's
cassettes in the shared data)."""

from __future__ import annotations

import json
from decimal import Decimal

import eth_account
import msgspec
import pytest
from hyperliquid.utils.signing import sign_l1_action
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_fuzz_exchange_frames import FUZZ, hostile
from tests.unit.test_venuesim_venue_wire import T0, bar, cassette_bodies
from venuesim import hyperliquid_orders as hl
from venuesim.accounts import Account
from venuesim.bars import MINUTE_MS, BarSeries
from venuesim.clock import SimClock
from venuesim.exchange_hyperliquid import HyperliquidExchange
from venuesim.feed import Hub
from venuesim.funding import HOUR_MS, Settlements, next_due
from venuesim.hyperliquid_trading import HyperliquidTrading, hyperliquid_instruments
from venuesim.market import Market
from venuesim.rest_hyperliquid import _Rejected, parse_body
from venuesim.trading import Engine, Fees, Instrument, OrderRequest, Reject, Rejected, price_at
from venuesim.trading_config import parse

D = Decimal
# bar 3 opens with a gap down to 97; bar 5 is missing (a gap in the data)
BARS = [
    bar(0, "100.00", "101.00", "99.50", "100.50", "2.0", "201.0", 3),
    bar(1, "100.50", "103.20", "100.10", "102.00", "1.5", "153.0", 2),
    bar(2, "102.00", "102.50", "98.00", "99.00", "0.5", "49.5", 2),
    bar(3, "97.00", "98.00", "96.00", "97.50", "1.0", "97.5", 1),
    bar(4, "97.50", "99.00", "97.00", "98.80", "1.0", "98.8", 1),
    bar(6, "99.00", "99.50", "98.50", "99.20", "1.0", "99.2", 1),
]
FEES = Fees(maker=D("0.0002"), taker=D("0.0005"))
INST = Instrument("BTCUSDT", 2, 3, D("0.01"), D("0.001"), D("5"))


def at(i: int, seconds: int = 0) -> int:
    return T0 + i * MINUTE_MS + seconds * 1000


def engine(balance: str = "1000", client_ids: str = "open") -> Engine:
    market = Market({"BTCUSDT": BarSeries.from_bars(BARS)})
    return Engine(market, {"BTCUSDT": INST}, FEES, accounts={"a": D(balance)}, client_ids=client_ids)  # type: ignore[arg-type]


def limit(side: str, qty: str, price: str, **kw: object) -> OrderRequest:
    return OrderRequest("BTCUSDT", side, "LIMIT", D(qty), D(price), **kw)  # type: ignore[arg-type]


def market(side: str, qty: str, **kw: object) -> OrderRequest:
    return OrderRequest("BTCUSDT", side, "MARKET", D(qty), **kw)  # type: ignore[arg-type]


def test_price_when_feed_moves_then_open_of_bar_in_progress_or_close_after_it():
    series = Market({"BTCUSDT": BarSeries.from_bars(BARS)}).series["BTCUSDT"]
    assert price_at(series, T0 - 1) is None
    assert price_at(series, at(0)) == D("100.00") and price_at(series, at(0, 59)) == D("100.00")
    assert price_at(series, at(1)) == D("100.50")  # bar 1's open, sent just after bar 0's close
    assert price_at(series, at(5, 30)) == D("98.80")  # the data has no bar 5: bar 4's close
    assert price_at(series, at(9)) == D("99.20")  # after the data: the last close


def test_marketable_orders_when_placed_then_fill_at_the_market_as_taker():
    e = engine()
    order, events = e.place("a", market("BUY", "1"), at(0, 10))
    assert (order.status, order.filled, order.avg_price) == ("FILLED", D(1), D("100.00"))
    assert [ev.kind for ev in events] == ["new", "fill"]
    fill = events[1].fill
    assert fill is not None and (fill.maker, fill.fee) == (False, D("100.00") * D("0.0005"))
    # a limit through the market fills at the market price, not at its limit
    order, _ = e.place("a", limit("BUY", "1", "105.00"), at(0, 20))
    assert (order.status, order.avg_price) == ("FILLED", D("100.00"))
    assert e.accounts["a"].positions["BTCUSDT"].size == D(2)


def test_resting_orders_when_feed_crosses_them_then_fill_at_their_limit_as_maker():
    e = engine()
    bid, _ = e.place("a", limit("BUY", "1", "98.50"), at(0, 10))  # bar 2's low (98.00) reaches it
    ask, _ = e.place("a", limit("SELL", "1", "103.00"), at(0, 10))  # bar 1's high (103.20) reaches it
    assert bid.status == ask.status == "NEW" and e.next_event_ms() == at(1)
    events = e.advance(at(1, 59))
    assert events == []  # bar 1 has not closed: its high is not known yet
    events = e.advance(at(2))
    assert [(ev.kind, ev.order.oid, ev.time_ms) for ev in events] == [("fill", ask.oid, at(2))]
    assert events[0].fill is not None and (events[0].fill.price, events[0].fill.maker) == (D("103.00"), True)
    events = e.advance(at(3))
    assert [(ev.order.oid, ev.fill.price if ev.fill else None, ev.time_ms) for ev in events] == [
        (bid.oid, D("98.50"), at(3))]  # fmt: skip
    assert e.next_event_ms() is None


def test_resting_order_when_bar_opens_through_it_then_fills_at_that_open():
    e = engine()
    bid, _ = e.place("a", limit("BUY", "1", "97.50"), at(2, 30))  # bar 3 opens at 97.00
    events = e.advance(at(3, 1))
    assert [(ev.order.oid, ev.time_ms) for ev in events] == [(bid.oid, at(3))]
    assert events[0].fill is not None and events[0].fill.price == D("97.50")


def test_order_placed_mid_bar_when_that_bar_reached_its_price_earlier_then_not_filled_by_that_bar():
    e = engine()
    bid, _ = e.place("a", limit("BUY", "1", "99.60"), at(0, 30))  # bar 0's low 99.50 may have been earlier
    assert e.advance(at(1)) == []
    assert e.advance(at(2)) == []  # bar 1 never went below 100.10
    assert [ev.order.oid for ev in e.advance(at(3))] == [bid.oid]  # bar 2 reaches 98.00


def test_reduce_only_when_position_smaller_then_fills_what_it_reduces_and_never_opens():
    e = engine()
    e.place("a", market("BUY", "2"), at(0))
    with pytest.raises(Rejected) as refused:
        e.place("a", market("BUY", "1", reduce_only=True), at(0))
    assert refused.value.reason == Reject.REDUCE_ONLY
    order, _ = e.place("a", market("SELL", "5", reduce_only=True), at(0, 1))
    assert (order.filled, order.status, e.accounts["a"].size("BTCUSDT")) == (D(2), "EXPIRED", D(0))
    # a resting reduce-only order is canceled once there is nothing left to reduce
    e.place("a", market("BUY", "1"), at(0, 2))
    tp, _ = e.place("a", limit("SELL", "1", "103.00", reduce_only=True), at(0, 3))
    e.place("a", market("SELL", "1"), at(0, 4))  # flat again
    events = e.advance(at(2))
    assert [(ev.kind, ev.order.cancel_reason) for ev in events] == [("canceled", "reduce_only")]
    assert e.orders[tp.oid].status == "CANCELED"


def test_account_when_position_flips_then_realizes_pnl_and_reopens_at_the_fill_price():
    acct = Account("a", D(1000), 20)
    acct.apply_fill("X", D(2), D(100), D(0), 0)
    assert acct.apply_fill("X", D(-3), D(110), D(1), 1) == D(20)  # 2 closed at +10
    pos = acct.positions["X"]
    assert (pos.size, pos.entry, pos.realized, acct.balance) == (D(-1), D(110), D(20), D(1019))
    assert acct.equity({"X": D(100)}) == D(1029)  # the short gained 10
    assert acct.apply_fill("X", D(-1), D(90), D(0), 2) == D(0)  # adding averages the entry
    assert pos.entry == D(100)


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (OrderRequest("ETHUSDT", "BUY", "MARKET", D(1)), Reject.UNKNOWN_SYMBOL),
        (market("BUY", "0"), Reject.ZERO_SIZE),
        (market("BUY", "0.0001"), Reject.SIZE_PRECISION),
        (limit("BUY", "1", "99.001"), Reject.PRICE_PRECISION),
        (limit("BUY", "0.01", "99.00"), Reject.MIN_NOTIONAL),
        (market("BUY", "300"), Reject.INSUFFICIENT_MARGIN),  # 30,000 at 20x needs 1,500
        (limit("BUY", "1", "101.00", tif="ALO"), Reject.POST_ONLY_WOULD_CROSS),
        (OrderRequest("BTCUSDT", "BUY", "LIMIT", D(1)), Reject.MISSING_PRICE),
    ],
)
def test_place_when_rule_broken_then_rejected_with_the_reason(req, reason):
    e = engine()
    with pytest.raises(Rejected) as refused:
        e.place("a", req, at(0, 5))
    assert refused.value.reason == reason and e.orders == {}


def test_margin_when_orders_rest_then_they_use_it_and_a_reducing_order_needs_none():
    e = engine(balance="100")
    e.place("a", limit("BUY", "15", "90.00"), at(0))  # 1,350 at 20x: 67.5 of 100
    with pytest.raises(Rejected):
        e.place("a", limit("BUY", "8", "90.00"), at(0))  # another 36
    e2 = engine(balance="100")
    e2.place("a", market("BUY", "19"), at(0))  # 95 of margin
    order, _ = e2.place("a", market("SELL", "19"), at(0, 1))  # closing needs none
    assert order.status == "FILLED"


def test_client_ids_when_reused_then_open_scope_allows_after_fill_and_all_scope_never():
    for scope, allowed in (("open", True), ("all", False)):
        e = engine(client_ids=scope)
        e.place("a", market("BUY", "1", client_id="x"), at(0))
        resting, _ = e.place("a", limit("BUY", "1", "90.00", client_id="y"), at(0))
        with pytest.raises(Rejected):
            e.place("a", limit("BUY", "1", "90.00", client_id="y"), at(0))
        if allowed:
            assert e.place("a", market("BUY", "1", client_id="x"), at(0, 1))[0].status == "FILLED"
        else:
            with pytest.raises(Rejected):
                e.place("a", market("BUY", "1", client_id="x"), at(0, 1))
        assert e.find("a", client_id="y") == resting


def test_engine_when_same_inputs_then_same_ids_orders_and_fills():
    def run() -> tuple[object, ...]:
        e = engine()
        e.place("a", market("BUY", "1"), at(0))
        e.place("a", limit("SELL", "1", "103.00"), at(0, 5))
        e.place("a", limit("BUY", "2", "98.50"), at(1, 5))
        events = e.advance(at(6))
        return tuple(e.orders.values()), tuple(e.fills["a"]), tuple(events)

    assert run() == run()


def test_hyperliquid_documents_when_rendered_then_keys_of_recorded_answers():
    e = Engine(
        Market({"BTC": BarSeries.from_bars(BARS)}),
        {"BTC": Instrument("BTC", 1, 5, D("0.1"), D("0.00001"), D(10), "sigfig5")},
        FEES, accounts={"u": D(1000)}, client_ids="all",
    )  # fmt: skip
    order, _ = e.place("u", OrderRequest("BTC", "BUY", "LIMIT", D("0.2"), D("99.0"), client_id="0x" + "1" * 32), at(0))
    e.place("u", OrderRequest("BTC", "BUY", "LIMIT", D("0.2"), D("101.0"), tif="IOC"), at(0))
    fill = e.fills["u"][0]
    state = hl.clearinghouse_state(e.accounts["u"], e.marks(at(0)), at(0))

    recorded = cassette_bodies("test_get_user_state.yaml")[0]
    assert set(recorded) <= set(state)
    recorded_position = set(recorded["assetPositions"][0]["position"]) - {"maxTradeSzs"}  # since dropped
    assert recorded_position <= set(state["assetPositions"][0]["position"])
    assert set(recorded["marginSummary"]) == set(state["marginSummary"])
    assert set(cassette_bodies("test_get_open_orders.yaml")[0][0]) == set(hl.open_order(order))
    assert set(cassette_bodies("test_get_frontend_open_orders.yaml")[0][0]) == set(hl.frontend_open_order(order))
    assert set(cassette_bodies("test_get_user_fills.yaml")[0][0]) <= set(hl.fill_doc(fill, "0x" + "00" * 32))
    historical = cassette_bodies("test_historical_orders.yaml")[0][0]
    status = hl.order_status(order)
    assert set(historical) == set(status["order"]) and set(historical["order"]) == set(status["order"]["order"])
    assert hl.order_status(None) == {"status": "unknownOid"}


def _hl_exchange() -> HyperliquidExchange:
    coins = Market({"BTC": BarSeries.from_bars(BARS)})
    accounts = parse({"hyperliquid": {"accounts": [{"address": SIGNER.address, "balance": "1000"}]}})
    e = Engine(
        coins, hyperliquid_instruments(coins), FEES, accounts={SIGNER.address.lower(): D(1000)}, client_ids="all"
    )
    return HyperliquidExchange(HyperliquidTrading(e, SimClock(at(0, 5)), accounts.hyperliquid, Hub()))


SIGNER = eth_account.Account.from_key("0x" + "77" * 32)


def _seed(action: dict, nonce: int = at(0, 5)) -> bytes:
    signature = sign_l1_action(SIGNER, action, None, nonce, None, False)
    return json.dumps({"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}).encode()


EXCHANGE_SEEDS = (
    _seed({"type": "order", "orders": [{"a": 0, "b": True, "p": "99", "s": "0.2", "r": False,
                                        "t": {"limit": {"tif": "Gtc"}}, "c": "0x" + "ab" * 16}], "grouping": "na"}),
    _seed({"type": "cancel", "cancels": [{"a": 0, "o": 1}]}),
    _seed({"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": "0x" + "ab" * 16}]}),
    _seed({"type": "batchModify", "modifies": [{"oid": 1, "order": {"a": 0, "b": False, "p": "120", "s": "0.2",
                                                                   "r": True, "t": {"limit": {"tif": "Alo"}}}}]}),
)  # fmt: skip


def test_hyperliquid_exchange_when_seed_bodies_then_accepted():
    exchange = _hl_exchange()
    placed = exchange.answer(json.loads(EXCHANGE_SEEDS[0]))
    assert placed == {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"resting": {"oid": 1, "cloid": "0x" + "ab" * 16}}]}}}  # fmt: skip


@FUZZ
@given(data=st.data())
def test_hyperliquid_exchange_on_hostile_bodies_answers_or_refuses_and_never_raises(data):
    raw = data.draw(hostile(EXCHANGE_SEEDS), label="body")
    try:
        body = parse_body(raw)
    except _Rejected:
        return
    try:
        answer = _hl_exchange().answer(body)
    except _Rejected as exc:
        assert 400 <= exc.status < 500
        return
    assert answer["status"] in ("ok", "err")
    msgspec.json.encode(answer)


def test_funding_settlement_moves_the_balance_of_each_open_position_by_its_payment():
    e = engine()
    e.place("a", market("SELL", "2"), at(0, 10))  # short 2 at 100.00
    balance = e.accounts["a"].balance
    [(name, size, amount)] = e.settle_funding("BTCUSDT", D("0.0001"), D("101.00"))
    assert (name, size, amount) == ("a", D(-2), D("0.0202"))  # a short receives a positive rate
    assert e.accounts["a"].balance == balance + D("0.0202")
    assert engine().settle_funding("BTCUSDT", D("0.0001"), D("100")) == []  # nothing held, nothing paid


def test_settlements_are_due_on_the_interval_from_the_venues_first_step_and_once():
    s = Settlements(HOUR_MS)
    assert s.due(5 * HOUR_MS + 10) == []  # the first step: nothing before it is booked
    assert s.next_after(5 * HOUR_MS + 20) == 6 * HOUR_MS
    assert s.due(8 * HOUR_MS) == [6 * HOUR_MS, 7 * HOUR_MS, 8 * HOUR_MS]
    assert s.due(8 * HOUR_MS + 1) == []
    assert next_due(None, s, True, 8 * HOUR_MS + 1) == 9 * HOUR_MS
    assert next_due(7, s, True, 0) == 7 and next_due(None, s, False, 0) is None and next_due(3, None, True, 0) == 3


def test_partial_fill_fault_fills_a_fraction_down_to_the_lot_and_the_rest_of_a_market_or_ioc_expires():
    e = engine()
    e.partial_fill = D("0.5")
    order, events = e.place("a", market("BUY", "0.125"), at(0, 10))
    assert (order.status, order.filled) == ("EXPIRED", D("0.062"))  # 0.0625 down to the 0.001 lot
    assert [ev.kind for ev in events] == ["new", "fill", "expired"]
    e.partial_fill = D("0.1")
    order, _ = e.place("a", limit("BUY", "0.051", "100.00", tif="IOC"), at(0, 20))
    assert order.filled == D("0.005")  # 0.0051 down to the lot
