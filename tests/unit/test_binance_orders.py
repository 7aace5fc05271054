"""Binance USDT-M requests (exchanges.trading.binance_orders): exact methods, paths and query
strings (each signature recomputed here with hashlib/hmac, independently of the module), the
trading rules in Decimal, and the listenKey calls."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges.trading import binance_orders as b
from exchanges.trading.binance_orders import BinanceRequest, BinanceRules, OrderRuleError
from exchanges.trading.binance_sign import BinanceCredentials

API_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
CREDS = BinanceCredentials(API_KEY, SECRET)
TS = 1_700_000_000_123
COID = "tt-0123456789abcdef0123456789abcdef"

# exchangeInfo BTCUSDT, as fapi lists it (the filters execution reads)
BTCUSDT_INFO = {
    "symbol": "BTCUSDT",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "1000", "minQty": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "maxQty": "120", "minQty": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ],
}
BTC = BinanceRules.from_exchange_info(BTCUSDT_INFO)


def signed(total: str) -> str:
    """total&signature=<hex HMAC-SHA256 of total>, computed here, not by the module."""
    return f"{total}&signature={hmac.new(SECRET.encode(), total.encode(), hashlib.sha256).hexdigest()}"


# -- rules ---------------------------------------------------------------------------------------


def test_rules_from_exchange_info_are_decimals_as_stated():
    assert (
        BinanceRules(
            symbol="BTCUSDT",
            tick_size=Decimal("0.10"),
            step_size=Decimal("0.001"),
            min_notional=Decimal("100"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("1000"),
            min_price=Decimal("556.80"),
            max_price=Decimal("4529764"),
            market_step_size=Decimal("0.001"),
            market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal("120"),
        )
        == BTC
    )


def test_rules_of_universe_floats_take_their_shortest_repr():
    rules = BinanceRules.of("ETHUSDT", tick_size=0.01, step_size=0.001, min_notional=20.0)
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal("20.0"),
    )


def test_rules_without_tick_or_step_are_refused():
    with pytest.raises(ValueError, match="tickSize or stepSize"):
        BinanceRules.from_exchange_info({"symbol": "X", "filters": [{"filterType": "LOT_SIZE", "stepSize": "1"}]})
    with pytest.raises(ValueError, match="tick_size"):
        BinanceRules.of("X", tick_size=0, step_size=1)


@pytest.mark.parametrize(
    "price, side, expected",
    [
        ("65000.17", "BUY", "65000.1"),
        ("65000.17", "SELL", "65000.2"),
        ("65000.10", "BUY", "65000.1"),
        (0.1 + 65000.2, "SELL", "65000.3"),  # float 65000.299999999996 -> up to the tick
        (0.1 + 65000.2, "BUY", "65000.2"),
    ],
)
def test_price_rounds_to_the_tick_toward_the_passive_side(price, side, expected):
    assert BTC.round_price(price, side) == Decimal(expected)


def test_a_price_outside_the_price_filter_is_invalid_price():
    for price in ("500", "5000000", "0", "-1"):
        with pytest.raises(OrderRuleError) as err:
            BTC.round_price(price, "BUY")
        assert err.value.reason == "invalid_price"


def test_quantity_rounds_down_to_the_step_and_checks_min_and_max():
    assert BTC.round_quantity(0.1 + 0.2) == Decimal("0.3")  # never 0.30000000000000004
    assert BTC.round_quantity("1.23456") == Decimal("1.234")
    with pytest.raises(OrderRuleError) as low:
        BTC.round_quantity("0.0009")
    assert low.value.reason == "invalid_lot"
    with pytest.raises(OrderRuleError) as high:
        BTC.round_quantity("1000.001")
    assert high.value.reason == "max_quantity"
    with pytest.raises(OrderRuleError) as market_high:  # MARKET_LOT_SIZE maxQty 120
        BTC.round_quantity("121", market=True)
    assert market_high.value.reason == "max_quantity"
    assert BTC.round_quantity("121") == Decimal("121")


@given(
    price=st.decimals(min_value=Decimal("556.8"), max_value=Decimal("4529764"), places=6),
    side=st.sampled_from(["BUY", "SELL"]),
)
def test_every_rounded_price_is_a_tick_multiple_no_more_aggressive(price, side):
    try:
        px = BTC.round_price(price, side)
    except OrderRuleError:
        assert price > Decimal("4529764") - Decimal("0.1")  # only a sell rounding up past maxPrice
        return
    assert px % Decimal("0.1") == 0
    assert (px <= price) if side == "BUY" else (px >= price)
    assert abs(px - price) < Decimal("0.1")


# -- orders --------------------------------------------------------------------------------------


def test_limit_order_is_the_exact_signed_post():
    req = b.limit_order(
        CREDS, BTC, side="BUY", quantity="0.0125", price="65000.17", client_order_id=COID, timestamp_ms=TS
    )
    assert req == BinanceRequest(
        method="POST",
        path="/fapi/v1/order",
        query=signed(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.012&price=65000.1&timeInForce=GTC"
            f"&newClientOrderId={COID}&newOrderRespType=RESULT&recvWindow=5000&timestamp={TS}"
        ),
        security="SIGNED",
    )
    assert req.url("https://fapi.binance.com/") == f"https://fapi.binance.com/fapi/v1/order?{req.query}"


def test_post_only_reduce_only_limit_order():
    req = b.limit_order(
        CREDS,
        BTC,
        side="SELL",
        quantity=2,
        price=70000,
        client_order_id=COID,
        timestamp_ms=TS,
        time_in_force="GTX",
        reduce_only=True,
        recv_window_ms=3000,
    )
    assert req.query == signed(
        "symbol=BTCUSDT&side=SELL&type=LIMIT&quantity=2&price=70000&timeInForce=GTX&reduceOnly=true"
        f"&newClientOrderId={COID}&newOrderRespType=RESULT&recvWindow=3000&timestamp={TS}"
    )


def test_market_order_is_the_exact_signed_post():
    req = b.market_order(
        CREDS, BTC, side="SELL", quantity="0.0199", reference_price=65000, client_order_id=COID, timestamp_ms=TS
    )
    assert (req.method, req.path) == ("POST", "/fapi/v1/order")
    assert req.query == signed(
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.019"
        f"&newClientOrderId={COID}&newOrderRespType=RESULT&recvWindow=5000&timestamp={TS}"
    )


def test_an_order_below_min_notional_is_refused_unless_reduce_only():
    # 0.001 x 65000 = 65 < 100
    with pytest.raises(OrderRuleError) as limit:
        b.limit_order(CREDS, BTC, side="BUY", quantity="0.001", price=65000, client_order_id=COID, timestamp_ms=TS)
    assert limit.value.reason == "below_min_notional"
    with pytest.raises(OrderRuleError) as market:
        b.market_order(
            CREDS, BTC, side="BUY", quantity="0.001", reference_price=65000, client_order_id=COID, timestamp_ms=TS
        )
    assert market.value.reason == "below_min_notional"
    req = b.market_order(
        CREDS,
        BTC,
        side="SELL",
        quantity="0.001",
        reference_price=65000,
        client_order_id=COID,
        timestamp_ms=TS,
        reduce_only=True,
    )
    assert "&reduceOnly=true&" in req.query


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"side": "buy"}, "invalid_side"),
        ({"client_order_id": "has space"}, "invalid_client_order_id"),
        ({"client_order_id": "x" * 37}, "invalid_client_order_id"),
        ({"time_in_force": "GTD"}, "invalid_order_type"),
        ({"quantity": "0"}, "invalid_quantity"),
        ({"price": "nan"}, "invalid_price"),
    ],
)
def test_an_order_that_cannot_be_sent_raises_with_a_reason(kwargs, reason):
    args = {"side": "BUY", "quantity": "1", "price": "65000", "client_order_id": COID, "timestamp_ms": TS, **kwargs}
    with pytest.raises(OrderRuleError) as err:
        b.limit_order(CREDS, BTC, **args)
    assert err.value.reason == reason


def test_cancel_and_query_by_order_id_or_client_id():
    assert b.cancel_order(CREDS, "BTCUSDT", order_id=283194212, timestamp_ms=TS) == BinanceRequest(
        method="DELETE",
        path="/fapi/v1/order",
        query=signed(f"symbol=BTCUSDT&orderId=283194212&recvWindow=5000&timestamp={TS}"),
    )
    by_client = b.query_order(CREDS, "BTCUSDT", client_order_id=COID, timestamp_ms=TS)
    assert (by_client.method, by_client.path) == ("GET", "/fapi/v1/order")
    assert by_client.query == signed(f"symbol=BTCUSDT&origClientOrderId={COID}&recvWindow=5000&timestamp={TS}")


def test_an_order_is_named_by_exactly_one_id():
    with pytest.raises(ValueError, match="exactly one"):
        b.cancel_order(CREDS, "BTCUSDT", timestamp_ms=TS)
    with pytest.raises(ValueError, match="exactly one"):
        b.query_order(CREDS, "BTCUSDT", order_id=1, client_order_id=COID, timestamp_ms=TS)
    with pytest.raises(ValueError):
        b.cancel_order(CREDS, "BTC/USDT", order_id=1, timestamp_ms=TS)


def test_account_positions_open_orders_and_fills_requests():
    assert b.position_risk(CREDS, timestamp_ms=TS) == BinanceRequest(
        method="GET", path="/fapi/v2/positionRisk", query=signed(f"recvWindow=5000&timestamp={TS}")
    )
    assert b.position_risk(CREDS, symbol="ETHUSDT", timestamp_ms=TS).query == signed(
        f"symbol=ETHUSDT&recvWindow=5000&timestamp={TS}"
    )
    assert b.account(CREDS, timestamp_ms=TS) == BinanceRequest(
        method="GET", path="/fapi/v2/account", query=signed(f"recvWindow=5000&timestamp={TS}")
    )
    assert b.open_orders(CREDS, timestamp_ms=TS, symbol="BTCUSDT").path == "/fapi/v1/openOrders"
    trades = b.user_trades(CREDS, "BTCUSDT", timestamp_ms=TS, start_time_ms=1_699_000_000_000, limit=1000)
    assert (trades.method, trades.path) == ("GET", "/fapi/v1/userTrades")
    assert trades.query == signed(f"symbol=BTCUSDT&startTime=1699000000000&limit=1000&recvWindow=5000&timestamp={TS}")


def test_listen_key_calls_are_unsigned_and_carry_the_key_header():
    assert [
        (r.method, r.path, r.query, r.security)
        for r in (b.listen_key_create(), b.listen_key_keepalive(), b.listen_key_close())
    ] == [
        ("POST", "/fapi/v1/listenKey", "", "USER_STREAM"),
        ("PUT", "/fapi/v1/listenKey", "", "USER_STREAM"),
        ("DELETE", "/fapi/v1/listenKey", "", "USER_STREAM"),
    ]
    assert b.listen_key_create().url("http://127.0.0.1:8900") == "http://127.0.0.1:8900/fapi/v1/listenKey"


def test_no_request_holds_key_material():
    reqs = [
        b.limit_order(CREDS, BTC, side="BUY", quantity=1, price=65000, client_order_id=COID, timestamp_ms=TS),
        b.account(CREDS, timestamp_ms=TS),
        b.listen_key_create(),
    ]
    for req in reqs:
        for text in (repr(req), req.url("https://fapi.binance.com")):
            assert API_KEY not in text and SECRET not in text
