"""The venue simulator in-process on a free port, fed with real converted 1m bars (OctoBot captures)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ticktape.testing import eventually
from ticktape.testing.data import shared_data
from venuesim.bars import Bar, align, load_dir
from venuesim.convert import convert_path
from venuesim.server import VenueSim

SPEED = 6000.0  # one sim minute = 10 ms
StartSim = Callable[..., Awaitable[tuple[VenueSim, str]]]


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict[str, list[Bar]]:
    """BTCUSDT (2018-04-28) and ETHUSDT (2018-07-16), aligned to start together."""
    out = tmp_path_factory.mktemp("bars")
    for name in ("AbstractExchangeHistoryCollector_1581774962.1269426.data",
                 "AbstractExchangeHistoryCollector_1581776676.5721796.data"):  # fmt: skip
        convert_path(shared_data("octobot", name), out)
    return align(load_dir(out))


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    runners: list[web.AppRunner] = []

    async def start(series: dict[str, list[Bar]], **kwargs: Any) -> tuple[VenueSim, str]:
        sim = VenueSim(series, **kwargs)
        runner = sim.runner()
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return sim, f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class FakeWall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def test_rest_when_queried_then_binance_shapes(series, start_sim, http):
    t0 = series["BTCUSDT"][0].open_time
    _, base = await start_sim(series, start_ms=t0 + 90_000, wall=FakeWall())

    assert await get(http, f"{base}/fapi/v1/ping") == (200, {})
    assert await get(http, f"{base}/fapi/v1/time") == (200, {"serverTime": t0 + 90_000})
    status, info = await get(http, f"{base}/fapi/v1/exchangeInfo")
    assert status == 200 and info["serverTime"] == t0 + 90_000
    assert [(s["symbol"], s["baseAsset"], s["quoteAsset"], s["contractType"], s["status"])
            for s in info["symbols"]] == [("BTCUSDT", "BTC", "USDT", "PERPETUAL", "TRADING"),
                                          ("ETHUSDT", "ETH", "USDT", "PERPETUAL", "TRADING")]  # fmt: skip
    status, tickers = await get(http, f"{base}/fapi/v1/ticker/24hr")
    assert status == 200 and [t["symbol"] for t in tickers] == ["BTCUSDT", "ETHUSDT"]
    status, ticker = await get(http, f"{base}/fapi/v1/ticker/24hr?symbol=ETHUSDT")
    assert status == 200 and ticker["lastPrice"] == series["ETHUSDT"][0].close  # one bar closed at t0+90s


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("symbol=NOPEUSDT&interval=1m", -1121),
        ("symbol=btcusdt&interval=1m", -1121),  # Binance symbols are case sensitive
        ("symbol=BTCUSDT&interval=5m", -1120),
        ("symbol=BTCUSDT", -1102),
        ("symbol=BTCUSDT&interval=1m&limit=1501", -1130),
        ("symbol=BTCUSDT&interval=1m&startTime=yesterday", -1100),
    ],
)
async def test_klines_when_request_invalid_then_binance_error(series, start_sim, http, query, code):
    _, base = await start_sim(series, wall=FakeWall())
    status, body = await get(http, f"{base}/fapi/v1/klines?{query}")
    assert status == 400 and body["code"] == code and body["msg"]


async def test_klines_when_bar_not_closed_then_omitted(series, start_sim, http):
    bars = series["BTCUSDT"]
    wall = FakeWall()
    _, base = await start_sim(series, start_ms=bars[2].open_time + 30_000, speed=1.0, wall=wall)
    url = f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m"

    status, rows = await get(http, url)
    assert status == 200
    assert rows == [[b.open_time, b.open, b.high, b.low, b.close, b.volume, b.close_time, b.quote_volume,
                     b.trades, b.taker_base, b.taker_quote, "0"] for b in bars[:2]]  # fmt: skip

    wall.t = 30.0  # sim time reaches the close of bar 2
    _, rows = await get(http, url)
    assert [r[0] for r in rows] == [b.open_time for b in bars[:3]]
    _, rows = await get(http, f"{url}&startTime={bars[1].open_time}&limit=1")
    assert [r[0] for r in rows] == [bars[1].open_time]


async def test_clock_when_no_subscription_yet_then_frozen_at_first_bar(series, start_sim, http):
    t0 = series["BTCUSDT"][0].open_time
    sim, base = await start_sim(series, speed=SPEED)
    assert await get(http, f"{base}/fapi/v1/time") == (200, {"serverTime": t0})
    _, rows = await get(http, f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m")
    assert rows == [] and not sim.clock.started

    async with http.ws_connect(f"{base}/stream?streams=btcusdt@kline_1m") as ws:
        first = json.loads((await ws.receive(timeout=5)).data)
        assert (first["data"]["k"]["t"], first["data"]["k"]["x"]) == (t0, False)  # nothing was missed

        async def server_time() -> int:
            return (await get(http, f"{base}/fapi/v1/time"))[1]["serverTime"]

        await eventually(lambda: _gt(server_time(), t0 + 60_000), timeout=5, what="the sim clock to run")


async def _gt(value: Awaitable[int], bound: int) -> bool:
    return await value > bound


async def receive_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[list[dict]], bool]) -> list[dict]:
    messages: list[dict] = []
    while not done(messages):
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        messages.append(json.loads(msg.data))
    return messages


def finals(messages: list[dict], stream: str) -> list[dict]:
    return [m["data"]["k"] for m in messages if m.get("stream") == stream and m["data"]["k"]["x"]]


async def test_combined_stream_when_bars_close_then_frames_in_order_and_final_equals_recorded_bar(
    series, start_sim, http
):
    _, base = await start_sim(series, speed=SPEED)
    async with http.ws_connect(f"{base}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m") as ws:
        messages = await receive_until(ws, lambda ms: len(finals(ms, "ethusdt@kline_1m")) >= 4)

    events = [m["data"]["E"] for m in messages]
    assert events == sorted(events)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        stream = f"{symbol.lower()}@kline_1m"
        frames = [m["data"] for m in messages if m["stream"] == stream]
        assert all(f["e"] == "kline" and f["s"] == symbol for f in frames)
        # per bar: in-progress then final, bars in time order
        assert [(f["k"]["t"], f["k"]["x"]) for f in frames] == [
            (b.open_time, x) for b in series[symbol][: (len(frames) + 1) // 2] for x in (False, True)
        ][: len(frames)]
        # the finals received so far: the first bars of the series
        for k, bar in zip(finals(messages, stream), series[symbol], strict=False):
            assert (k["t"], k["T"], k["o"], k["h"], k["l"], k["c"], k["v"], k["q"], k["n"]) == (
                bar.open_time, bar.close_time, bar.open, bar.high, bar.low, bar.close, bar.volume,
                bar.quote_volume, bar.trades)  # fmt: skip
    for m in messages:
        k = m["data"]["k"]
        assert m["data"]["E"] > k["T"] if k["x"] else m["data"]["E"] >= k["t"]
    # both symbols' bars closing at one minute come as one burst, before the next bars open
    order = [(m["data"]["k"]["t"], m["data"]["k"]["x"]) for m in messages]
    t1 = series["BTCUSDT"][1].open_time
    assert order.index((t1, False)) > max(i for i, key in enumerate(order) if key == (t1 - 60_000, True))


async def test_raw_stream_when_live_subscribe_and_unsubscribe_then_frames_follow(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED)
    async with http.ws_connect(f"{base}/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 1})
        got = await receive_until(ws, lambda ms: sum(1 for m in ms if m.get("k", {}).get("x")) >= 2)
        assert got[0] == {"result": None, "id": 1}
        assert all(m["e"] == "kline" and m["s"] == "BTCUSDT" and "stream" not in m for m in got[1:])

        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 3})
        await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@kline_1m"], "id": 4})
        got = await receive_until(ws, lambda ms: sum(1 for m in ms if m.get("s") == "ETHUSDT" and m["k"]["x"]) >= 2)
        replies = [m for m in got if "id" in m]
        assert replies == [{"result": ["btcusdt@kline_1m"], "id": 2}, {"result": None, "id": 3},
                           {"result": None, "id": 4}]  # fmt: skip
        after_unsubscribe = got[got.index({"result": None, "id": 3}) + 1 :]
        assert all(m.get("s") != "BTCUSDT" for m in after_unsubscribe)


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("not json", 3),
        ('{"params": [], "id": 1}', 2),
        ('{"method": "SUBSCRIBEX", "params": [], "id": 1}', 2),
        ('{"method": "SUBSCRIBE", "params": "btcusdt@kline_1m", "id": 1}', 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": -5}', 2),
        ('{"method": "GET_PROPERTY", "params": ["nope"], "id": 1}', 0),
    ],
)
async def test_ws_when_request_malformed_then_binance_error(series, start_sim, http, request_text, code):
    _, base = await start_sim(series, speed=SPEED)
    async with http.ws_connect(f"{base}/ws") as ws:
        await ws.send_str(request_text)
        reply = json.loads((await ws.receive(timeout=5)).data)
    assert set(reply) == {"error", "id"} and reply["error"]["code"] == code and reply["error"]["msg"]


async def test_ws_when_connected_then_server_pings_periodically(series, start_sim, http):
    _, base = await start_sim(series, speed=SPEED, heartbeat=0.2)
    async with http.ws_connect(f"{base}/ws", autoping=False) as ws:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.PING
        await ws.pong(msg.data)
