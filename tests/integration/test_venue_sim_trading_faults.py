"""The simulator's trading faults on the wire (venuesim.trading_faults): the control endpoint, a
429 storm's answers, partial fills, and an accepted order whose answer never comes. How the
execution gateway copes with each: test_execution_live_faults."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.client_ids import binance_client_order_id
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from exchanges.trading.model import OrderAck, OrderIntent
from tests.integration.test_trading_clients_venuesim import ACCOUNTS, KEY, NOW_BAR, SECRET
from tests.integration.test_venue_sim import FakeWall, http, series, start_sim

__all__ = ["http", "series", "start_sim"]  # fixtures used here


async def post(http: aiohttp.ClientSession, base: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{base}/_sim/trading_fault", json=body) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("body", "named"),
    [({"nope": 1}, "nope"), ({"partial_fill": 2}, "partial_fill"), ({"throttle": -1}, "throttle"),
     ({"reorder": "yes"}, "reorder"), ({"hang_s": 601}, "hang_s"), ({"latency_s": -1}, "latency_s"),
     ([], "expected a JSON object")],
)  # fmt: skip
async def test_control_when_a_setting_is_bad_then_400_naming_it_and_nothing_changes(
    series, start_sim, http, body, named
):
    _, base = await start_sim(series, wall=FakeWall(), trading=ACCOUNTS)
    status, doc = await post(http, base, body)
    assert status == 400 and named in doc["error"]
    async with http.get(f"{base}/_sim/trading_fault") as resp:
        shown = await resp.json()
    assert shown["faults"]["throttle"] == 0 and shown["faults"]["partial_fill"] is None


async def test_throttle_answers_429_with_retry_after_for_the_next_n_trading_requests_only(series, start_sim, http):
    _, base = await start_sim(series, wall=FakeWall(), trading=ACCOUNTS)
    status, doc = await post(http, base, {"throttle": 2, "retry_after": 3})
    assert status == 200 and doc["faults"]["throttle"] == 2
    answers = []
    for _ in range(3):
        async with http.get(f"{base}/binance_usdm/fapi/v2/account") as resp:
            answers.append((resp.status, resp.headers.get("Retry-After"), (await resp.json()).get("code")))
    assert answers == [(429, "3", -1003), (429, "3", -1003), (401, None, -2014)]  # then: no API key
    async with http.get(f"{base}/binance_usdm/fapi/v1/time") as resp:
        assert resp.status == 200  # market data is never throttled
    async with http.get(f"{base}/_sim/trading_fault") as resp:
        assert (await resp.json())["counts"]["throttled"] == 2


async def test_partial_fill_fills_part_of_a_market_order_and_expires_the_rest(series, start_sim, http):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[NOW_BAR], wall=FakeWall(), trading=ACCOUNTS)
    client = BinanceUsdmClient(http, BinanceCredentials(KEY, SECRET), base_url=f"{base}/binance_usdm",
                               clock_ms=sim.clock.now_ms)  # fmt: skip
    await client.load_rules()
    await post(http, base, {"partial_fill": 0.5})
    price = Decimal(bars.fields(NOW_BAR)[1])
    order = OrderIntent(event_id="half", symbol="BTCUSDT", side="buy", quantity=Decimal("0.005"),
                        order_type="market", reference_price=price)  # fmt: skip
    ack = await client.place(order)
    assert isinstance(ack, OrderAck)
    state = await client.order("BTCUSDT", client_order_id=binance_client_order_id("half"))
    assert state is not None and (state.status, state.filled_quantity) == ("expired", Decimal("0.0025"))
    [held] = await client.positions()
    assert held.quantity == Decimal("0.0025")  # half of it, a multiple of the lot


async def test_timeout_after_accept_executes_the_order_and_never_answers(series, start_sim, http):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[NOW_BAR], wall=FakeWall(), trading=ACCOUNTS)
    client = BinanceUsdmClient(http, BinanceCredentials(KEY, SECRET), base_url=f"{base}/binance_usdm",
                               clock_ms=sim.clock.now_ms, timeout_s=0.5, recv_window_ms=1000)  # fmt: skip
    await client.load_rules()
    await post(http, base, {"timeout_after_accept": 1, "hang_s": 1})
    price = Decimal(bars.fields(NOW_BAR)[1])
    order = OrderIntent(event_id="lost-answer", symbol="BTCUSDT", side="buy", quantity=Decimal("0.002"),
                        order_type="market", reference_price=price)  # fmt: skip
    ack = await client.place(order)  # times out, then finds the order by its client id
    assert isinstance(ack, OrderAck) and ack.recovered and ack.status == "filled"
    cid = binance_client_order_id("lost-answer")
    assert [o.client_id for o in sim.binance_trading.engine.orders.values()] == [cid]  # placed once
    async with http.get(f"{base}/_sim/trading_fault") as resp:
        assert (await resp.json())["counts"]["timed_out"] == 1
