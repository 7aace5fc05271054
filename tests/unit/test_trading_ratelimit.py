"""The venues' documented request weights (exchanges.trading.ratelimit) and the execution clients'
pacing (exchanges.trading.clients.pacing): a sliding window never lets more than its limit through
in any window, the gate a refusal closes honours Retry-After or backs off exponentially, and
acquire waits for every window at once, or refuses to wait past a deadline."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges.trading import binance_orders as b
from exchanges.trading import hyperliquid_orders as h
from exchanges.trading.binance_orders import BinanceRules
from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.clients.pacing import (
    Backoff,
    Pacer,
    RateLimitWait,
    Window,
    binance_order_windows,
    binance_pacer,
    hyperliquid_pacer,
    retry_after_seconds,
)
from exchanges.trading.hyperliquid_orders import Asset
from exchanges.trading.ratelimit import (
    binance_request_cost,
    hyperliquid_exchange_weight,
    hyperliquid_info_extra_weight,
    hyperliquid_info_weight,
)

CREDS = BinanceCredentials("key0123456789", "secret0123456789")
RULES = BinanceRules.of("BTCUSDT", tick_size="0.1", step_size="0.001", min_notional="100")
TS = 1_700_000_000_000
USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
BTC = Asset(coin="BTC", asset=0, sz_decimals=5)


def test_binance_costs_are_the_documented_weights_and_order_counts():
    order = b.limit_order(CREDS, RULES, side="BUY", quantity="0.01", price="60000", client_order_id="tt-1",
                          timestamp_ms=TS)  # fmt: skip
    assert binance_request_cost(order) == (0, 1)  # 0 on the IP weight, 1 on both order counts
    assert binance_request_cost(b.cancel_order(CREDS, "BTCUSDT", timestamp_ms=TS, order_id=1)) == (1, 0)
    assert binance_request_cost(b.query_order(CREDS, "BTCUSDT", timestamp_ms=TS, order_id=1)) == (1, 0)
    assert binance_request_cost(b.open_orders(CREDS, timestamp_ms=TS, symbol="BTCUSDT")) == (1, 0)
    assert binance_request_cost(b.open_orders(CREDS, timestamp_ms=TS)) == (40, 0)  # every symbol
    assert binance_request_cost(b.user_trades(CREDS, "BTCUSDT", timestamp_ms=TS)) == (5, 0)
    assert binance_request_cost(b.position_risk(CREDS, timestamp_ms=TS)) == (5, 0)
    assert binance_request_cost(b.account(CREDS, timestamp_ms=TS)) == (5, 0)
    for request in (b.listen_key_create(), b.listen_key_keepalive(), b.listen_key_close()):
        assert binance_request_cost(request) == (1, 0)


def test_hyperliquid_weights_are_the_documented_ones():
    wire = h.limit_order(BTC, is_buy=True, price="60000", size="0.001")
    assert hyperliquid_exchange_weight(h.order_action(wire)) == 1
    assert hyperliquid_exchange_weight(h.order_action(*[wire] * 39)) == 1
    assert hyperliquid_exchange_weight(h.order_action(*[wire] * 79)) == 2  # the docs' example
    assert hyperliquid_exchange_weight(h.cancel_action(BTC, 1)) == 1
    assert hyperliquid_exchange_weight(h.modify_action(1, wire)) == 1
    assert hyperliquid_info_weight(h.clearinghouse_state(USER)) == 2
    assert hyperliquid_info_weight(h.order_status(USER, 7)) == 2
    assert hyperliquid_info_weight(h.open_orders(USER)) == 20
    assert hyperliquid_info_weight(h.user_fills(USER)) == 20
    assert hyperliquid_info_weight({"type": "userRole", "user": USER}) == 60
    assert hyperliquid_info_weight({"type": "meta"}) == 20
    assert [hyperliquid_info_extra_weight("userFills", n) for n in (0, 19, 20, 45, 2000)] == [0, 0, 1, 2, 100]
    assert hyperliquid_info_extra_weight("candleSnapshot", 5000) == 83
    assert hyperliquid_info_extra_weight("openOrders", 500) == 0


def test_the_limits_are_the_documented_ones():
    assert binance_pacer().weight.limit == 2400 and binance_pacer().weight.window_s == 60
    ten, minute = binance_order_windows()
    assert (ten.limit, ten.window_s, minute.limit, minute.window_s) == (300, 10, 1200, 60)
    assert (hyperliquid_pacer().weight.limit, hyperliquid_pacer().weight.window_s) == (1200, 60)


@given(st.lists(st.tuples(st.floats(0, 30), st.integers(1, 7)), max_size=60))
def test_window_when_taken_only_as_it_says_then_never_over_the_limit_in_any_window(steps):
    window = Window("w", 10, 10.0)
    now, taken = 0.0, []
    for gap, units in steps:
        now += gap
        now += window.wait_s(units, now)
        assert window.wait_s(units, now) == 0
        window.take(units, now)
        taken.append((now, units))
    for start, _ in taken:
        in_window = sum(u for t, u in taken if start <= t < start + 10.0 - 1e-9)  # the window's float tolerance
        assert in_window <= 10


def test_window_when_a_request_is_heavier_than_the_limit_then_it_goes_once_the_window_is_empty():
    window = Window("w", 5, 60.0)
    window.take(3, 0.0)
    assert window.wait_s(9, 10.0) == 50.0
    assert window.wait_s(9, 60.0) == 0.0


def test_backoff_when_refused_then_retry_after_else_doubling_and_success_resets():
    gate = Backoff(base_s=1.0, max_s=8.0)
    assert gate.refused(0.0, 7) == 7 and gate.closed_for(3.0) == 4.0
    assert [gate.refused(100.0) for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]  # the first strike was the 429's
    gate.succeeded()
    assert gate.refused(200.0) == 1.0
    assert [retry_after_seconds(v) for v in ("7", " 12 ", "soon", "-1", None, "nan")] == [7, 12, None, None, None, None]


async def test_acquire_when_windows_and_gate_block_then_waits_for_all_and_refuses_past_the_deadline():
    clock = {"t": 0.0}
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        clock["t"] += s
        await asyncio.sleep(0)

    pacer = Pacer("v", Window("weight", 10, 60.0), clock=lambda: clock["t"], sleep=sleep)
    orders = Window("orders", 2, 10.0)
    for _ in range(2):
        await pacer.acquire([(pacer.weight, 4), (orders, 1)])
    await pacer.acquire([(pacer.weight, 2), (orders, 1)])  # orders full: waits 10 s for the first to leave
    assert slept == [10.0] and pacer.weight.used(clock["t"]) == 10
    pacer.refused(30, "ip_banned")
    with pytest.raises(RateLimitWait) as refused:
        await pacer.acquire([(pacer.weight, 0)], deadline=clock["t"] + 5)
    assert refused.value.reason == "ip_banned" and refused.value.wait_s == 30
    with pytest.raises(RateLimitWait) as full:
        await pacer.acquire([(pacer.weight, 5)], deadline=clock["t"] + 40)  # the weight frees only at t=60
    assert full.value.reason == "rate_limited" and full.value.what == "weight"
