"""Hyperliquid requests (exchanges.trading.hyperliquid_orders): exact actions and /exchange and
/info bodies, the price and size rules with the docs' own examples, and "market" orders as
IOC limits bounded by the slippage."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges.trading import hyperliquid_orders as orders
from exchanges.trading.hyperliquid_orders import Asset, OrderRuleError
from exchanges.trading.hyperliquid_sign import HyperliquidSigner, recover_signer

BTC = Asset(coin="BTC", asset=0, sz_decimals=5)
ETH = Asset(coin="ETH", asset=1, sz_decimals=4)
KPEPE = Asset(coin="kPEPE", asset=12, sz_decimals=0)
CLOID = "0x0123456789abcdef0123456789abcdef"
USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"


# -- the rules, with the examples of for-developers/api/tick-and-lot-size ------------------------


@pytest.mark.parametrize(
    "price, sz_decimals, buy, sell",
    [
        ("1234.5", 0, "1234.5", "1234.5"),  # valid as is
        ("1234.56", 0, "1234.5", "1234.6"),  # "not valid (too many significant figures)"
        ("0.001234", 0, "0.001234", "0.001234"),  # valid
        ("0.0012345", 0, "0.001234", "0.001235"),  # "more than 6 decimal places"
        ("0.01234", 1, "0.01234", "0.01234"),  # valid with szDecimals = 1
        ("0.012345", 1, "0.01234", "0.01235"),  # "more than 6 - szDecimals decimal places"
        ("123456", 0, "123456", "123456"),  # "Integer prices are always allowed"
        ("123456.7", 0, "123456", "123457"),
        ("12345.6", 0, "12345", "12346"),  # "12345.6 is not" (6 significant figures)
        ("99999.5", 0, "99999", "100000"),
        ("9.999995", 0, "9.9999", "10"),
        ("100", 2, "100", "100"),
        (0.1, 0, "0.1", "0.1"),  # a float is its shortest repr, not 0.1000000000000000055
    ],
)
def test_round_price_follows_the_docs_examples_toward_the_passive_side(price, sz_decimals, buy, sell):
    assert orders.round_price(price, sz_decimals, is_buy=True) == Decimal(buy)
    assert orders.round_price(price, sz_decimals, is_buy=False) == Decimal(sell)


@pytest.mark.parametrize("price", ["0", "-1", "nan", "inf", "abc", "0.0000001"])
def test_round_price_refuses_a_price_that_is_not_positive_or_rounds_to_zero(price):
    with pytest.raises(OrderRuleError) as err:
        orders.round_price(price, 0, is_buy=True)
    assert err.value.reason == "invalid_price"


def test_round_size_rounds_down_to_sz_decimals():
    # "if szDecimals = 3 then 1.001 is a valid size but 1.0001 is not"
    assert orders.round_size("1.001", 3) == Decimal("1.001")
    assert orders.round_size("1.0009", 3) == Decimal("1")
    assert orders.round_size(0.1 + 0.2, 5) == Decimal("0.3")
    assert orders.round_size("32123.9", 0) == Decimal("32123")


def test_round_size_below_one_lot_is_invalid_lot_and_non_positive_invalid_quantity():
    with pytest.raises(OrderRuleError) as lot:
        orders.round_size("0.000009", 5)
    assert lot.value.reason == "invalid_lot"
    with pytest.raises(OrderRuleError) as qty:
        orders.round_size("-1", 5)
    assert qty.value.reason == "invalid_quantity"


def _valid_perp_price(px: Decimal, sz_decimals: int) -> bool:
    if px == px.to_integral_value():
        return True
    digits = px.normalize().as_tuple()
    assert isinstance(digits.exponent, int)
    return -digits.exponent <= 6 - sz_decimals and len(digits.digits) <= 5


@given(
    price=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("10000000"), places=8),
    sz_decimals=st.integers(min_value=0, max_value=5),
    is_buy=st.booleans(),
)
def test_every_rounded_price_is_valid_and_never_more_aggressive(price, sz_decimals, is_buy):
    try:
        px = orders.round_price(price, sz_decimals, is_buy=is_buy)
    except OrderRuleError as err:
        assert err.reason == "invalid_price"
        assert price < Decimal(1).scaleb(-(6 - sz_decimals))  # only below the smallest price step
        return
    assert _valid_perp_price(px, sz_decimals)
    assert (px <= price) if is_buy else (px >= price)


# -- orders --------------------------------------------------------------------------------------


def test_limit_order_wire_is_exact_with_cloid_and_reduce_only():
    wire = orders.limit_order(
        ETH, is_buy=False, price="3456.789", size="0.12345", tif="Alo", reduce_only=True, cloid=CLOID
    )
    assert wire == {
        "a": 1,
        "b": False,
        "p": "3456.8",  # a sell rounds up to 5 significant figures
        "s": "0.1234",  # down to szDecimals 4
        "r": True,
        "t": {"limit": {"tif": "Alo"}},
        "c": CLOID,
    }
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]  # the hashed key order


def test_order_action_and_exchange_body_bytes_are_exact():
    wire = orders.limit_order(BTC, is_buy=True, price=65000.5, size=0.001, tif="Gtc", cloid=CLOID)
    action = orders.order_action(wire)
    body = orders.exchange_body(action, 1_700_000_000_000, {"r": "0x1", "s": "0x2", "v": 27})
    assert orders.encode(body) == (
        b'{"action":{"type":"order","orders":[{"a":0,"b":true,"p":"65000","s":"0.001","r":false,'
        b'"t":{"limit":{"tif":"Gtc"}},"c":"0x0123456789abcdef0123456789abcdef"}],"grouping":"na"},'
        b'"nonce":1700000000000,"signature":{"r":"0x1","s":"0x2","v":27},"vaultAddress":null,"expiresAfter":null}'
    )


def test_exchange_body_carries_the_vault_and_expiry():
    body = orders.exchange_body(
        orders.cancel_action(BTC, 77), 5, {"r": "0x1", "s": "0x2", "v": 28}, vault_address=USER, expires_after=9
    )
    assert orders.encode(body) == (
        b'{"action":{"type":"cancel","cancels":[{"a":0,"o":77}]},"nonce":5,'
        b'"signature":{"r":"0x1","s":"0x2","v":28},"vaultAddress":"0x5e9ee1089755c3435139848e47e6635505d5a13a",'
        b'"expiresAfter":9}'
    )


def test_cancel_cancel_by_cloid_and_modify_actions_are_exact():
    assert orders.cancel_action(ETH, 123456789) == {"type": "cancel", "cancels": [{"a": 1, "o": 123456789}]}
    assert orders.cancel_by_cloid_action(ETH, CLOID) == {
        "type": "cancelByCloid",
        "cancels": [{"asset": 1, "cloid": CLOID}],
    }
    new = orders.limit_order(ETH, is_buy=True, price="27.5", size="1.0", cloid=CLOID)
    by_oid = orders.modify_action(123456789, new)
    assert orders.encode(by_oid) == (
        b'{"type":"modify","oid":123456789,"order":{"a":1,"b":true,"p":"27.5","s":"1","r":false,'
        b'"t":{"limit":{"tif":"Gtc"}},"c":"0x0123456789abcdef0123456789abcdef"}}'
    )
    assert orders.modify_action(CLOID, new) == {"type": "modify", "oid": CLOID, "order": new}


def test_a_signed_modify_and_cancel_recover_to_the_signer():
    signer = HyperliquidSigner.from_key(KEY)
    for action in (
        orders.modify_action(CLOID, orders.limit_order(ETH, is_buy=True, price=30, size=1)),
        orders.cancel_action(ETH, 1),
        orders.cancel_by_cloid_action(ETH, CLOID),
    ):
        body = signer.exchange_body(action, 42, is_mainnet=False)
        assert recover_signer(body["action"], body["signature"], body["nonce"], body["vaultAddress"], False) == (
            signer.signer_address
        )


@pytest.mark.parametrize("bad", [-1, True, "0xABC", "0x" + "G" * 32, "0x" + "AB" * 16])
def test_a_bad_oid_or_cloid_is_refused(bad):
    with pytest.raises(ValueError):
        if isinstance(bad, str):
            orders.cancel_by_cloid_action(ETH, bad)
        else:
            orders.cancel_action(ETH, bad)


def test_an_order_worth_less_than_ten_dollars_is_refused_unless_reduce_only():
    with pytest.raises(OrderRuleError) as err:
        orders.limit_order(ETH, is_buy=True, price=3000, size="0.0033")  # 9.90
    assert err.value.reason == "below_min_notional"
    assert orders.limit_order(ETH, is_buy=True, price=3000, size="0.0034")["s"] == "0.0034"  # 10.20
    assert orders.limit_order(ETH, is_buy=True, price=3000, size="0.0033", reduce_only=True)["r"] is True


def test_an_unknown_tif_or_malformed_cloid_is_refused():
    with pytest.raises(OrderRuleError) as tif:
        orders.limit_order(ETH, is_buy=True, price=3000, size=1, tif="Fok")  # type: ignore[arg-type]
    assert tif.value.reason == "invalid_order_type"
    with pytest.raises(OrderRuleError) as cloid:
        orders.limit_order(ETH, is_buy=True, price=3000, size=1, cloid="0x12")
    assert cloid.value.reason == "invalid_client_order_id"


# -- "market" orders -----------------------------------------------------------------------------


def test_market_order_is_an_ioc_limit_at_the_slippage_bound():
    buy = orders.market_order(ETH, is_buy=True, size="0.5", reference_price="1670.1", slippage="0.05", cloid=CLOID)
    assert buy == {
        "a": 1,
        "b": True,
        "p": "1753.6",  # 1670.1 x 1.05 = 1753.605, down to 5 significant figures
        "s": "0.5",
        "r": False,
        "t": {"limit": {"tif": "Ioc"}},
        "c": CLOID,
    }
    sell = orders.market_order(ETH, is_buy=False, size="0.5", reference_price="1670.1", slippage="0.05")
    assert sell["p"] == "1586.6"  # 1670.1 x 0.95 = 1586.595, up
    assert sell["t"] == {"limit": {"tif": "Ioc"}} and "c" not in sell


def test_market_order_on_a_coin_with_integer_sizes_and_tiny_prices():
    wire = orders.market_order(KPEPE, is_buy=False, size=32123, reference_price="0.009886", slippage="0.05")
    assert (wire["p"], wire["s"]) == ("0.009392", "32123")  # 0.0093917 has 7 decimals: up to 6


@given(
    reference=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("200000"), places=6),
    slippage=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.2"), places=4),
    sz_decimals=st.integers(min_value=0, max_value=4),
    is_buy=st.booleans(),
)
def test_the_market_price_never_passes_the_slippage_bound(reference, slippage, sz_decimals, is_buy):
    try:
        px = orders.slippage_price(reference, slippage, sz_decimals, is_buy=is_buy)
    except OrderRuleError as err:
        assert err.reason == "invalid_price"
        return
    assert _valid_perp_price(px, sz_decimals)
    if is_buy:
        assert px <= reference * (1 + slippage)
    else:
        assert px >= reference * (1 - slippage)


@pytest.mark.parametrize("slippage", ["0", "-0.01", "1", "1.5"])
def test_a_slippage_outside_zero_to_one_is_refused(slippage):
    with pytest.raises(OrderRuleError) as err:
        orders.market_order(ETH, is_buy=True, size=1, reference_price=3000, slippage=slippage)
    assert err.value.reason == "invalid_slippage"


def test_a_market_sell_is_valued_at_the_lower_of_limit_and_reference():
    # 0.0035 x 3000 = 10.50 at the reference, but 0.0035 x 2850 = 9.975 at the limit
    with pytest.raises(OrderRuleError) as err:
        orders.market_order(ETH, is_buy=False, size="0.0035", reference_price=3000, slippage="0.05")
    assert err.value.reason == "below_min_notional"


# -- /info ---------------------------------------------------------------------------------------


def test_info_bodies_are_exact_and_name_the_account_in_lowercase():
    upper = "0x" + USER[2:].upper()
    assert orders.encode(orders.clearinghouse_state(upper)) == (
        b'{"type":"clearinghouseState","user":"0x5e9ee1089755c3435139848e47e6635505d5a13a"}'
    )
    assert orders.open_orders(USER) == {"type": "openOrders", "user": USER}
    assert orders.order_status(USER, 91490942) == {"type": "orderStatus", "user": USER, "oid": 91490942}
    assert orders.order_status(USER, CLOID) == {"type": "orderStatus", "user": USER, "oid": CLOID}
    assert orders.user_fills(USER) == {"type": "userFills", "user": USER}
    assert orders.user_fills_by_time(USER, 1_700_000_000_000) == {
        "type": "userFillsByTime",
        "user": USER,
        "startTime": 1_700_000_000_000,
    }
    assert orders.user_fills_by_time(USER, 1, 2)["endTime"] == 2


@pytest.mark.parametrize("user", ["", "0x1234", "5e9ee1089755c3435139848e47e6635505d5a13a00", "0x" + "g" * 40])
def test_info_refuses_what_is_not_an_address(user):
    with pytest.raises(ValueError):
        orders.open_orders(user)


def test_asset_refuses_impossible_metadata():
    with pytest.raises(ValueError):
        Asset(coin="X", asset=-1, sz_decimals=2)
    with pytest.raises(ValueError):
        Asset(coin="X", asset=0, sz_decimals=7)
