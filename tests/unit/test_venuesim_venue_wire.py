"""venuesim wire shapes of Binance spot and Hyperliquid, checked against real captures' key sets."""

from __future__ import annotations

import json

import pytest
import yaml

from ticktape.testing.data import shared_data
from venuesim import binance_spot, hyperliquid
from venuesim.bars import Bar, BarSeries
from venuesim.binance_usdm import kline_event, kline_row
from venuesim.market import Market, Series

T0 = 1_699_999_980_000  # a minute boundary


def bar(i: int, o: str, h: str, lo: str, c: str, v: str, q: str, n: int) -> Bar:
    t = T0 + i * 60_000
    return Bar(t, o, h, lo, c, v, t + 59_999, q, n, "1.000", "100.00")


BARS = [
    bar(0, "100.00", "101.00", "99.45", "100.50", "2.000", "201.00", 3),
    bar(1, "100.50", "103.20", "100.10", "102.00", "1.500", "153.00", 0),
    bar(2, "102.00", "102.50", "98.00", "99.00", "0.500", "49.75", 2),
]


def series(symbol: str = "BTCUSDT") -> Series:
    return Series(symbol, BarSeries.from_bars(BARS))


def cassette_bodies(name: str) -> list:
    """Response bodies of a Hyperliquid SDK cassette (vcrpy YAML, verbatim response strings)."""
    doc = yaml.safe_load(shared_data("hyperliquid_python_sdk_cassettes", name).read_text())
    return [json.loads(i["response"]["body"]["string"]) for i in doc["interactions"]]


def cryptofeed_spot_exchange_info() -> dict:
    first = shared_data("cryptofeed", "BINANCE.0").read_text().splitlines()[0]
    return json.loads(first.split(": ", 1)[1])


def _types(obj: dict) -> dict:
    return {k: type(v) for k, v in obj.items()}


@pytest.mark.parametrize("source", ["nautilus", "cryptofeed"])
def test_spot_exchange_info_when_built_then_superset_of_real_spot_capture(source):
    if source == "nautilus":
        path = shared_data("nautilus_trader", "binance_rest", "http_spot_market_exchange_info.json")
        real = json.loads(path.read_text())
    else:
        real = cryptofeed_spot_exchange_info()
    ours = binance_spot.exchange_info(Market({"BTCUSDT": BarSeries.from_bars(BARS)}), T0)
    assert set(ours) >= set(real) and ours["serverTime"] == T0
    real_symbol, symbol = real["symbols"][0], ours["symbols"][0]
    assert set(symbol) >= set(real_symbol)
    assert {k: t for k, t in _types(symbol).items() if k in real_symbol} == _types(real_symbol)
    assert (symbol["symbol"], symbol["status"], symbol["baseAsset"], symbol["quoteAsset"]) == (
        "BTCUSDT", "TRADING", "BTC", "USDT")  # fmt: skip
    assert symbol["permissionSets"] == [["SPOT"]]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    for real_filter in real_symbol["filters"]:
        if real_filter["filterType"] in ("PRICE_FILTER", "LOT_SIZE", "ICEBERG_PARTS", "MAX_NUM_ORDERS"):
            assert set(filters[real_filter["filterType"]]) == set(real_filter)
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000" and filters["LOT_SIZE"]["stepSize"] == "0.10000000"


def test_spot_ticker_when_bars_closed_then_spot_fields_in_binance_order():
    t = binance_spot.ticker_24hr(series(), T0 + 3 * 60_000, started=True)
    assert list(t) == [
        "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice", "lastPrice",
        "lastQty", "bidPrice", "bidQty", "askPrice", "askQty", "openPrice", "highPrice", "lowPrice", "volume",
        "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count",
    ]  # fmt: skip
    assert (t["lastPrice"], t["bidPrice"], t["askPrice"], t["bidQty"], t["prevClosePrice"]) == (
        "99.00",
        "99.00",
        "99.00",
        "0.0",
        "100.00",
    )  # no bar before the window: its open price
    assert (t["volume"], t["quoteVolume"], t["count"], t["firstId"], t["lastId"]) == ("4.0", "403.75", 5, 1, 5)


def test_spot_kline_frame_when_built_then_same_keys_as_real_spot_kline_frame():
    for line in shared_data("cryptofeed", "BINANCE.ws.1.0").read_text().splitlines():
        _, sep, body = line.partition(": ")
        if sep and '@kline_1m"' in body:
            real = json.loads(body)["data"]
            break
    frame = kline_event(series(), 0, T0 + 60_000, closed=True)
    assert list(frame) == list(real) and list(frame["k"]) == list(real["k"])
    assert _types(frame["k"]) == _types(real["k"])


def test_spot_kline_row_when_built_then_same_layout_and_types_as_real_spot_klines():
    real = json.loads(shared_data("nautilus_trader", "binance_rest", "http_spot_market_klines.json").read_text())[0]
    ours = kline_row(series(), 0)
    assert [type(x) for x in ours] == [type(x) for x in real] and len(ours) == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100.00", "100.0"),
        ("0.0016040", "0.001604"),
        ("7", "7.0"),
        ("520665683.00000000", "520665683.0"),
        ("0.00000100", "0.000001"),
        ("1e-7", "0.0000001"),
    ],  # fmt: skip
)
def test_number_when_recorded_text_then_hyperliquid_spelling(text, expected):
    assert hyperliquid.number(text) == expected


def test_candle_when_built_then_same_keys_order_and_types_as_real_candle_snapshot():
    real = next(b for b in cassette_bodies("test_get_candles_snapshot.yaml") if isinstance(b, list))[0]
    ours = hyperliquid.candle(series("BTC"), 0, closed=True)
    assert list(ours) == list(real) and _types(ours) == _types(real)
    assert ours == {"T": T0 + 59_999, "c": "100.5", "h": "101.0", "i": "1m", "l": "99.45", "n": 3, "o": "100.0",
                    "s": "BTC", "t": T0, "v": "2.0"}  # fmt: skip
    opening = hyperliquid.candle(series("BTC"), 1, closed=False)
    assert (opening["o"], opening["h"], opening["l"], opening["c"], opening["v"], opening["n"]) == (
        "100.5", "100.5", "100.5", "100.5", "0.0", 0)  # fmt: skip


def test_meta_when_built_then_superset_of_real_meta():
    real = cassette_bodies("test_get_info.yaml")[0]
    ours = hyperliquid.meta(Market({"BTC": BarSeries.from_bars(BARS)}))
    assert set(ours) >= set(real)
    assert set(ours["universe"][0]) >= set(real["universe"][0])
    assert {k: t for k, t in _types(ours["universe"][0]).items() if k in real["universe"][0]} == _types(
        real["universe"][0]
    )
    # szDecimals: the volume decimals seen, trailing zeros ignored
    assert (ours["universe"][0]["name"], ours["universe"][0]["szDecimals"]) == ("BTC", 1)


def test_asset_ctx_when_built_then_same_keys_as_real_asset_ctx_and_24h_notional_volume():
    real_doc = json.loads(shared_data("nautilus_trader", "hyperliquid", "ws_all_dexs_asset_ctxs.json").read_text())
    real = real_doc["data"]["ctxs"][0][1][0]
    meta, ctxs = hyperliquid.meta_and_asset_ctxs(Market({"BTC": BarSeries.from_bars(BARS)}), T0 + 3 * 60_000, True)
    ours = ctxs[0]
    assert set(ours) == set(real) and _types(ours) == _types(real)
    assert (ours["dayNtlVlm"], ours["dayBaseVlm"], ours["prevDayPx"], ours["markPx"]) == (
        "403.75", "4.0", "100.0", "99.0")  # fmt: skip
    assert meta["universe"][0]["name"] == "BTC"


@pytest.mark.parametrize(
    ("now", "start", "end", "expected"),
    [
        (T0 + 150_000, T0 + 30_000, None, [0, 1, 2]),  # the candle holding startTime; ends with bar 2 in progress
        (T0 + 150_000, T0 + 60_000, T0 + 60_000, [1]),
        (T0 + 59_999, 0, None, [0]),  # only the candle in progress
        (T0 + 10 * 60_000, T0 + 120_000, None, [2]),
        (T0 - 1, 0, None, []),  # before the first bar opens
    ],
)
def test_snapshot_range_when_queried_then_overlapping_candles_up_to_now(now, start, end, expected):
    assert list(hyperliquid.snapshot_range(series("BTC"), now, start, end)) == expected


def test_snapshot_candle_when_in_progress_then_opening_state_else_final():
    s = series("BTC")
    assert hyperliquid.snapshot_candle(s, 1, T0 + 90_000)["v"] == "0.0"
    assert hyperliquid.snapshot_candle(s, 1, T0 + 120_000)["v"] == "1.5"
