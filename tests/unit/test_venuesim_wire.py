"""venuesim wire shapes: kline frames, REST kline selection, 24h ticker math, exchangeInfo."""

from __future__ import annotations

import json

import pytest

from ticktape.testing.data import shared_data
from venuesim.bars import Bar, BarSeries
from venuesim.binance_usdm import kline_event, kline_row, ticker_24hr, zero_like
from venuesim.exchange_info import exchange_info, split_symbol
from venuesim.market import DAY_MS, Market, Series
from venuesim.pump import initial_events

T0 = 1_699_999_980_000  # a minute boundary


def bar(i: int, o: str, h: str, lo: str, c: str, v: str, q: str, n: int) -> Bar:
    t = T0 + i * 60_000
    return Bar(t, o, h, lo, c, v, t + 59_999, q, n, "1.000", "100.00")


BARS = [
    bar(0, "100.00", "101.00", "99.45", "100.50", "2.000", "201.00", 3),
    bar(1, "100.50", "103.20", "100.10", "102.00", "1.500", "153.00", 0),
    bar(2, "102.00", "102.50", "98.00", "99.00", "0.500", "49.75", 2),
]


def series() -> Series:
    return Series("BTCUSDT", BarSeries.from_bars(BARS))


def captured_kline_frame() -> dict:
    """The first real `<symbol>@kline_1m` payload in the cryptofeed USDT-M capture."""
    for line in shared_data("cryptofeed", "BINANCE_FUTURES.ws.1.0").read_text().splitlines():
        _, sep, body = line.partition(": ")
        if sep and body.startswith("{") and '@kline_1m"' in body:
            return json.loads(body)["data"]
    raise AssertionError("no kline frame in the capture")


def _shape(obj: dict) -> dict:
    return {k: (_shape(v) if isinstance(v, dict) else type(v)) for k, v in obj.items()}


@pytest.mark.parametrize("closed", [True, False])
def test_kline_event_when_built_then_same_keys_and_types_as_real_binance_frame(closed):
    frame = kline_event(series(), 0, T0 + 60_000, closed=closed)
    assert _shape(frame) == _shape(captured_kline_frame())
    assert list(frame["k"]) == list(captured_kline_frame()["k"])  # same key order too


def test_kline_event_when_closed_then_carries_recorded_bar_and_synthetic_trade_ids():
    s = series()
    frames = [kline_event(s, i, T0 + (i + 1) * 60_000, closed=True) for i in range(3)]
    k0 = frames[0]["k"]
    assert frames[0]["E"] == T0 + 60_000 and frames[0]["s"] == "BTCUSDT" and frames[0]["e"] == "kline"
    assert (k0["t"], k0["T"], k0["o"], k0["h"], k0["l"], k0["c"], k0["v"], k0["q"], k0["n"], k0["V"], k0["Q"]) == (
        T0,
        T0 + 59_999,
        "100.00",
        "101.00",
        "99.45",
        "100.50",
        "2.000",
        "201.00",
        3,
        "1.000",
        "100.00",
    )
    assert (k0["x"], k0["i"], k0["B"]) == (True, "1m", "0")
    assert [(f["k"]["f"], f["k"]["L"]) for f in frames] == [(1, 3), (-1, -1), (4, 5)]


def test_kline_event_when_in_progress_then_open_price_and_zero_volume():
    k = kline_event(series(), 1, T0 + 60_000, closed=False)["k"]
    assert (k["o"], k["h"], k["l"], k["c"]) == ("100.50",) * 4
    assert (k["v"], k["q"], k["V"], k["Q"], k["n"], k["f"], k["L"], k["x"]) == (
        "0.000", "0.00", "0.000", "0.00", 0, -1, -1, False)  # fmt: skip


def test_zero_like_when_decimals_then_same_width():
    assert (zero_like("12.340"), zero_like("7"), zero_like("0.1")) == ("0.000", "0", "0.0")


def test_kline_row_when_built_then_binance_rest_layout():
    assert kline_row(series(), 0) == [T0, "100.00", "101.00", "99.45", "100.50", "2.000", T0 + 59_999, "201.00", 3,
                                  "1.000", "100.00", "0"]  # fmt: skip


@pytest.mark.parametrize(
    ("now", "start", "end", "limit", "expected"),
    [
        (T0 + 59_999, None, None, 500, []),  # bar 0 not closed yet
        (T0 + 60_000, None, None, 500, [0]),
        (T0 + 150_000, None, None, 500, [0, 1]),
        (T0 + 10 * 60_000, None, None, 2, [1, 2]),  # latest `limit`
        (T0 + 10 * 60_000, T0 + 1, None, 500, [1, 2]),  # from startTime forward
        (T0 + 10 * 60_000, T0, None, 1, [0]),
        (T0 + 10 * 60_000, None, T0 + 60_000, 500, [0, 1]),  # up to endTime
    ],
)
def test_closed_range_when_queried_then_only_closed_bars_as_binance_selects(now, start, end, limit, expected):
    assert list(series().closed_range(now, start, end, limit)) == expected


def test_ticker_when_bars_closed_then_24h_statistics_of_closed_bars():
    t = ticker_24hr(series(), T0 + 3 * 60_000, started=True)
    assert t == {
        "symbol": "BTCUSDT", "priceChange": "-1.00", "priceChangePercent": "-1.000",
        "weightedAvgPrice": "100.94", "lastPrice": "99.00", "lastQty": "0.0", "openPrice": "100.00",
        "highPrice": "103.20", "lowPrice": "98.00", "volume": "4.0", "quoteVolume": "403.75",
        "openTime": T0, "closeTime": T0 + 179_999, "firstId": 1, "lastId": 5, "count": 5,
    }  # fmt: skip


def test_ticker_when_bar_in_progress_then_excluded():
    t = ticker_24hr(series(), T0 + 2 * 60_000 + 30_000, started=True)
    assert (t["lastPrice"], t["volume"], t["count"], t["closeTime"]) == ("102.00", "3.5", 3, T0 + 119_999)


def test_ticker_when_clock_not_started_then_first_24h_of_data():
    flat = [bar(i, "1.0", "1.0", "1.0", "1.0", "1.0", "1.0", 1) for i in range(1500)]
    long = Series("BTCUSDT", BarSeries.from_bars(flat))
    t = ticker_24hr(long, T0, started=False)
    assert (t["openTime"], t["closeTime"], t["count"]) == (T0, T0 + DAY_MS - 1, 1440)


def test_ticker_when_window_moved_past_the_data_then_no_activity():
    t = ticker_24hr(series(), T0 + 3 * DAY_MS, started=True)
    assert (t["lastPrice"], t["volume"], t["count"], t["firstId"], t["priceChange"]) == ("99.00", "0.0", 0, -1, "0.00")


def test_split_symbol_when_known_quote_suffix_then_base_and_quote():
    assert [split_symbol(s) for s in ("BTCUSDT", "ETHUSDC", "BNBBUSD", "BTCUSD")] == [
        ("BTC", "USDT"), ("ETH", "USDC"), ("BNB", "BUSD"), ("BTCUSD", "USDT")]  # fmt: skip


def test_exchange_info_when_built_then_same_shape_as_real_capture():
    capture = shared_data("nautilus_trader", "binance_rest", "http_futures_market_exchange_info.json")
    real = json.loads(capture.read_text())
    ours = exchange_info(Market({"BTCUSDT": BarSeries.from_bars(BARS)}), T0)
    assert set(ours) >= set(real)
    real_symbol, symbol = real["symbols"][0], ours["symbols"][0]
    assert set(symbol) >= set(real_symbol)
    assert {k: type(v) for k, v in symbol.items() if k in real_symbol} == {k: type(v) for k, v in real_symbol.items()}
    assert {f["filterType"] for f in symbol["filters"]} >= {f["filterType"] for f in real_symbol["filters"]}
    assert (symbol["pricePrecision"], symbol["quantityPrecision"], symbol["onboardDate"]) == (2, 1, T0)
    price_filter = next(f for f in symbol["filters"] if f["filterType"] == "PRICE_FILTER")
    assert price_filter["tickSize"] == "0.01"


def test_initial_events_when_clock_starts_mid_bar_then_that_bar_opens_at_once():
    market = Market({"BTCUSDT": BarSeries.from_bars(BARS)})
    assert initial_events(market, T0 + 90_000) == [(T0 + 60_000, 1, 0, 1)]  # bar 1, due already
    assert initial_events(market, T0 + 10 * 60_000) == []  # all closed: left to REST
