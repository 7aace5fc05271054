"""The simulated Hyperliquid enforces its per-IP limits over all of an address's connections, as
the venue does: open connections, subscriptions and messages a minute; GET /_sim/stats shows the
peaks reached and the refusals, so a client's test can prove it stayed within them."""

from __future__ import annotations

import aiohttp
import pytest

from tests.integration.test_venue_sim import SPEED, get, http, series, start_sim
from tests.integration.test_venue_sim_venues import hl_send

__all__ = ["http", "series", "start_sim"]  # fixtures used here


async def ip_limits(http: aiohttp.ClientSession, base: str) -> dict:
    return (await get(http, f"{base}/_sim/stats"))[1]["ip_limits"]["hyperliquid"]


async def test_connections_beyond_the_per_ip_cap_get_429_until_one_closes(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED, hl_max_connections=2)
    url = f"{base}/hyperliquid/ws"
    async with http.ws_connect(url), http.ws_connect(url) as two:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 429
        assert await hl_send(two, "ping") == {"channel": "pong"}  # the open ones are untouched
    async with http.ws_connect(url) as again:  # both closed: room again
        assert await hl_send(again, "ping") == {"channel": "pong"}
    got = await ip_limits(http, base)
    assert (got["max_connections"], got["peak_connections"], got["refused_connections"]) == (2, 2, 1)


async def test_messages_beyond_the_per_ip_rate_are_refused_over_all_connections(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED, hl_max_messages_per_minute=3)
    url = f"{base}/hyperliquid/ws"
    async with http.ws_connect(url) as one, http.ws_connect(url) as two:
        assert await hl_send(one, "ping") == {"channel": "pong"}
        assert await hl_send(two, "ping") == {"channel": "pong"}
        ack = await hl_send(one, "subscribe", {"type": "trades", "coin": "BTC"})
        assert ack["channel"] == "subscriptionResponse"
        refused = await hl_send(two, "subscribe", {"type": "trades", "coin": "ETH"})
        assert refused == {"channel": "error", "data": "Too many messages: more than 3 a minute from this IP"}
    got = await ip_limits(http, base)
    assert (got["peak_messages_per_minute"], got["refused_messages"], got["peak_subscriptions"]) == (3, 1, 1)


async def test_subscription_peak_is_counted_over_the_address(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED, hl_max_subscriptions=2)
    url = f"{base}/hyperliquid/ws"
    async with http.ws_connect(url) as one, http.ws_connect(url) as two:
        await hl_send(one, "subscribe", {"type": "trades", "coin": "BTC"})
        await hl_send(two, "subscribe", {"type": "trades", "coin": "ETH"})
        assert (await hl_send(two, "subscribe", {"type": "l2Book", "coin": "ETH"}))["channel"] == "error"
    got = await ip_limits(http, base)
    assert (got["peak_subscriptions"], got["refused_subscriptions"]) == (2, 1)


async def test_info_requests_beyond_the_per_ip_weight_get_429(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED, hl_max_rest_weight_per_minute=40)
    statuses = []
    for _ in range(3):  # 20 each: the third finds the minute's 40 spent
        async with http.post(f"{base}/hyperliquid/info", json={"type": "meta"}) as resp:
            statuses.append(resp.status)
    assert statuses == [200, 200, 429]
    got = await ip_limits(http, base)
    assert (got["peak_rest_weight_per_minute"], got["refused_rest"]) == (40, 1)
