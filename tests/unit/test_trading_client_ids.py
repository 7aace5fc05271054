"""Client order ids derived from order event ids (exchanges.trading.client_ids): the venues' formats,
the same event id always giving the same id, different events different ids."""

from __future__ import annotations

import hashlib
import re

import pytest
from hyperliquid.utils.types import Cloid  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from exchanges.trading import client_ids
from exchanges.trading.hyperliquid_orders import Asset, limit_order
from ticktape import ids

EVENT = ids.child_id("approval-1", "execution")


def test_known_values_are_stable_across_releases():
    # pinned: a change here would re-send every order in flight under a new id after an upgrade
    assert client_ids.hyperliquid_cloid("order-event-1") == "0xde158397a8769daaac785477ba99d877"
    assert client_ids.binance_client_order_id("order-event-1") == "tt-edbe200f98417bb3f141314395930227"
    # what they are: blake2b-128 of "<label>\x1f<event id>"
    cloid = hashlib.blake2b(b"hyperliquid.cloid\x1forder-event-1", digest_size=16).hexdigest()
    coid = hashlib.blake2b(b"binance_usdm.newClientOrderId\x1forder-event-1", digest_size=16).hexdigest()
    assert (cloid, coid) == ("de158397a8769daaac785477ba99d877", "edbe200f98417bb3f141314395930227")


@given(st.text(min_size=1, max_size=200))
def test_the_formats_are_what_the_venues_accept(event_id):
    cloid = client_ids.hyperliquid_cloid(event_id)
    assert re.fullmatch(r"0x[0-9a-f]{32}", cloid) and client_ids.is_cloid(cloid)
    assert str(Cloid.from_str(cloid)) == cloid  # the SDK's own check: "0x" and 16 bytes
    coid = client_ids.binance_client_order_id(event_id)
    assert re.fullmatch(r"^[\.A-Z\:/a-z0-9_-]{1,36}$", coid) and len(coid) == 35
    assert client_ids.is_binance_client_order_id(coid) and client_ids.placed_by_ticktape(coid)


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_same_event_same_id_and_different_events_different_ids(a, b):
    assert client_ids.hyperliquid_cloid(a) == client_ids.hyperliquid_cloid(a)
    assert client_ids.binance_client_order_id(a) == client_ids.binance_client_order_id(a)
    if a != b:
        assert client_ids.hyperliquid_cloid(a) != client_ids.hyperliquid_cloid(b)
        assert client_ids.binance_client_order_id(a) != client_ids.binance_client_order_id(b)


def test_the_two_venues_ids_for_one_event_are_unrelated():
    assert client_ids.hyperliquid_cloid(EVENT)[2:] != client_ids.binance_client_order_id(EVENT)[3:]


def test_a_retry_builds_the_identical_order():
    eth = Asset(coin="ETH", asset=1, sz_decimals=4)
    first = limit_order(eth, is_buy=True, price=3000, size=1, cloid=client_ids.hyperliquid_cloid(EVENT))
    retry = limit_order(eth, is_buy=True, price=3000, size=1, cloid=client_ids.hyperliquid_cloid(EVENT))
    assert first == retry and first["c"] == client_ids.hyperliquid_cloid(EVENT)


@pytest.mark.parametrize("event_id", ["", None, 7])
def test_an_id_needs_an_event_id(event_id):
    with pytest.raises(ValueError):
        client_ids.hyperliquid_cloid(event_id)
    with pytest.raises(ValueError):
        client_ids.binance_client_order_id(event_id)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("tt-0123456789abcdef0123456789abcdef", True),
        ("web_Abc.1:2/3-x", True),
        ("x" * 36, True),
        ("x" * 37, False),
        ("", False),
        ("has space", False),
        ("percent%", False),
    ],
)
def test_binance_client_order_id_rule(value, ok):
    assert client_ids.is_binance_client_order_id(value) is ok


def test_placed_by_ticktape_tells_our_ids_from_others():
    assert client_ids.placed_by_ticktape("tt-0123456789abcdef0123456789abcdef")
    assert not client_ids.placed_by_ticktape("tt-manual")
    assert not client_ids.placed_by_ticktape("web_0123456789abcdef0123456789abcdef")
