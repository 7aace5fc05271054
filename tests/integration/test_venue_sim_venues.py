"""Three venues on one port: USDT-M under /binance_usdm, spot under /binance_spot, Hyperliquid under
/hyperliquid; the simulator in-process on a free port with real converted 1m bars (OctoBot)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.integration.test_venue_sim import SPEED, FakeWall, get, http, receive_until, series, start_sim
from venuesim.hyperliquid import number

__all__ = ["http", "series", "start_sim"]  # fixtures used here


async def post_info(http: aiohttp.ClientSession, base: str, body: Any) -> tuple[int, Any]:
    async with http.post(f"{base}/hyperliquid/info", json=body) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if resp.content_type == "application/json" else text)


async def test_usdm_prefix_when_queried_then_same_venue_as_root(series, start_sim, http):
    t0 = series["BTCUSDT"][0].open_time
    _, base = await start_sim(series, start_ms=t0 + 5 * 60_000, wall=FakeWall())
    for path in ("/fapi/v1/klines?symbol=BTCUSDT&interval=1m", "/fapi/v1/ticker/24hr", "/fapi/v1/exchangeInfo"):
        assert await get(http, f"{base}/binance_usdm{path}") == await get(http, f"{base}{path}")
    async with http.ws_connect(f"{base}/binance_usdm/ws") as ws:
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
        assert json.loads((await ws.receive(timeout=5)).data) == {"result": [], "id": 1}


async def test_spot_rest_when_queried_then_spot_paths_shapes_and_errors(series, start_sim, http):
    bars = series["BTCUSDT"]
    _, base = await start_sim(series, start_ms=bars[3].open_time, wall=FakeWall())
    spot = f"{base}/binance_spot/api/v3"
    assert await get(http, f"{spot}/ping") == (200, {})
    assert await get(http, f"{spot}/time") == (200, {"serverTime": bars[3].open_time})
    status, info = await get(http, f"{spot}/exchangeInfo")
    assert status == 200 and [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert "contractType" not in info["symbols"][0] and info["symbols"][0]["permissionSets"] == [["SPOT"]]
    status, ticker = await get(http, f"{spot}/ticker/24hr?symbol=BTCUSDT")
    assert status == 200 and ticker["prevClosePrice"] == bars[0].open and ticker["lastPrice"] == bars[2].close
    status, rows = await get(http, f"{spot}/klines?symbol=BTCUSDT&interval=1m")
    assert status == 200 and rows == (await get(http, f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m"))[1]
    assert [r[0] for r in rows] == [b.open_time for b in bars[:3]]
    assert (await get(http, f"{spot}/klines?symbol=BTCUSDT&interval=1m&limit=1001"))[1]["code"] == -1130
    assert (await get(http, f"{spot}/ticker/24hr?symbol=NOPE"))[1]["code"] == -1121


async def test_spot_ws_when_subscribed_then_kline_frames_and_binance_control_protocol(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED)
    async with http.ws_connect(f"{base}/binance_spot/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@kline_1m", "ethusdt@trade"], "id": 7})
        got = await receive_until(ws, lambda ms: sum(1 for m in ms if m.get("k", {}).get("x")) >= 2)
    assert got[0] == {"result": None, "id": 7}
    finals = [m["k"] for m in got[1:] if m["k"]["x"]]
    bars = series["ETHUSDT"]
    assert [(k["t"], k["o"], k["c"], k["v"]) for k in finals] == [
        (b.open_time, b.open, b.close, b.volume) for b in bars[:2]
    ]


async def test_hyperliquid_info_when_queried_then_meta_contexts_candles(series, start_sim, http):
    bars = series["BTCUSDT"]
    _, base = await start_sim(series, start_ms=bars[2].open_time + 30_000, wall=FakeWall())
    status, meta = await post_info(http, base, {"type": "meta"})
    assert status == 200 and [u["name"] for u in meta["universe"]] == ["BTC", "ETH"]
    status, (meta2, ctxs) = await post_info(http, base, {"type": "metaAndAssetCtxs"})
    assert status == 200 and meta2 == meta and ctxs[0]["markPx"] == number(bars[1].close)
    req = {"coin": "BTC", "interval": "1m", "startTime": bars[0].open_time + 1}
    status, candles = await post_info(http, base, {"type": "candleSnapshot", "req": req})
    assert status == 200 and [c["t"] for c in candles] == [b.open_time for b in bars[:3]]  # ends with bar in progress
    assert [(c["o"], c["c"], c["v"], c["n"], c["s"]) for c in candles] == [
        *[(number(b.open), number(b.close), number(b.volume), b.trades, "BTC") for b in bars[:2]],
        (number(bars[2].open), number(bars[2].open), "0.0", 0, "BTC"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"type": "allMidz"}, 422, "Failed to deserialize the JSON body into the target type: unknown variant"),
        ({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m"}}, 422, "missing field `startTime`"),
        ({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "2m", "startTime": 0}}, 422, "unknown variant"),
        ({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "5m", "startTime": 0}}, 422, "only `1m`"),
        ({"type": "candleSnapshot", "req": {"coin": "DOGE", "interval": "1m", "startTime": 0}}, 500, None),
    ],
)
async def test_hyperliquid_info_when_request_invalid_then_hyperliquid_errors(
    series, start_sim, http, body, status, text
):
    _, base = await start_sim(series, wall=FakeWall())
    got_status, got = await post_info(http, base, body)
    assert got_status == status
    assert got is None if text is None else text in got


async def test_hyperliquid_info_when_body_not_json_then_400_and_415(series, start_sim, http):
    _, base = await start_sim(series, wall=FakeWall())
    async with http.post(f"{base}/hyperliquid/info", data=b"{", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.text()).startswith("Failed to parse the request body as JSON")
    async with http.post(f"{base}/hyperliquid/info", data=b'{"type":"meta"}') as r:
        assert r.status == 415


async def hl_send(ws: aiohttp.ClientWebSocketResponse, method: str, subscription: Any = None) -> dict:
    """Send one request and return the next non-data reply."""
    await ws.send_json({"method": method} if subscription is None else {"method": method, "subscription": subscription})
    while True:
        reply = json.loads((await ws.receive(timeout=5)).data)
        if reply["channel"] not in ("candle", "trades", "l2Book"):
            return reply


async def test_hyperliquid_ws_when_requests_then_acks_pong_and_hyperliquid_errors(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED)
    candle = {"type": "candle", "coin": "BTC", "interval": "1m"}
    async with http.ws_connect(f"{base}/hyperliquid/ws") as ws:
        ack = await hl_send(ws, "subscribe", candle)
        assert ack == {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": candle}}
        assert await hl_send(ws, "ping") == {"channel": "pong"}
        again = await hl_send(ws, "subscribe", candle)
        assert again == {"channel": "error",
                         "data": 'Already subscribed: {"type":"candle","interval":"1m","coin":"BTC"}'}  # fmt: skip
        for bad in ({"type": "candle", "coin": "DOGE", "interval": "1m"}, {"type": "allMidz"}):
            compact = json.dumps(bad, separators=(",", ":"))
            assert (await hl_send(ws, "subscribe", bad))["data"] == f"Invalid subscription {compact}"
        trades = {"type": "trades", "coin": "BTC"}
        assert (await hl_send(ws, "subscribe", trades))["channel"] == "subscriptionResponse"
        unsub = await hl_send(ws, "unsubscribe", trades)
        assert unsub == {"channel": "subscriptionResponse", "data": {"method": "unsubscribe", "subscription": trades}}
        assert (await hl_send(ws, "unsubscribe", trades))["data"].startswith("Already unsubscribed:")


async def test_hyperliquid_ws_when_ip_subscription_cap_reached_then_error_until_one_is_freed(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED, hl_max_subscriptions=3)
    ack = "subscriptionResponse"

    def trades(coin: str) -> dict:
        return {"type": "trades", "coin": coin}

    async with http.ws_connect(f"{base}/hyperliquid/ws") as one, http.ws_connect(f"{base}/hyperliquid/ws") as two:
        assert [(await hl_send(one, "subscribe", trades(c)))["channel"] for c in ("BTC", "ETH")] == [ack, ack]
        assert (await hl_send(two, "subscribe", trades("SOL")))["channel"] == ack
        refused = await hl_send(two, "subscribe", trades("DOGE"))  # the cap is per IP, over its connections
        assert refused == {"channel": "error", "data": "Cannot subscribe to more than 3 channels."}
        await hl_send(one, "unsubscribe", trades("BTC"))
        assert (await hl_send(two, "subscribe", trades("DOGE")))["channel"] == ack


async def test_hyperliquid_candles_when_closes_inferred_from_later_t_then_each_equals_recorded_bar(
    series, start_sim, http
):
    """Hyperliquid has no closed flag: a candle is final when one with a later `t` arrives."""
    _, base = await start_sim(series, speed=SPEED)
    frames: list[dict] = []
    async with http.ws_connect(f"{base}/hyperliquid/ws") as ws:
        await hl_send(ws, "subscribe", {"type": "candle", "coin": "ETH", "interval": "1m"})
        while len({f["t"] for f in frames}) < 6:
            msg = json.loads((await ws.receive(timeout=5)).data)
            assert msg["channel"] == "candle"
            frames.append(msg["data"])
    closed: list[dict] = []
    for prev, nxt in zip(frames, frames[1:], strict=False):
        assert nxt["t"] >= prev["t"]
        if nxt["t"] > prev["t"]:
            closed.append(prev)  # the last update before a later candle is the closed candle
    bars = series["ETHUSDT"]
    assert [(c["t"], c["T"], c["o"], c["h"], c["l"], c["c"], c["v"], c["n"]) for c in closed] == [
        (b.open_time, b.close_time, number(b.open), number(b.high), number(b.low), number(b.close),
         number(b.volume), b.trades) for b in bars[:5]]  # fmt: skip
    # per candle: one update as it opens (open price, no volume), then the final values
    assert [(f["t"], f["v"] == "0.0") for f in frames[:4]] == [
        (bars[0].open_time, True),
        (bars[0].open_time, False),
        (bars[1].open_time, True),
        (bars[1].open_time, False),
    ]
    status, snapshot = await post_info(
        http, base, {"type": "candleSnapshot", "req": {"coin": "ETH", "interval": "1m", "startTime": 0}}
    )
    assert status == 200 and snapshot[:5] == closed
