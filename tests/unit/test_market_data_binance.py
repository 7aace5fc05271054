"""Binance kline wire parsing: real captured frames, REST rows, and every kind of bad frame."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.market_data.binance import (
    FrameError,
    Kline,
    combined_stream_url,
    kline_stream,
    klines_url,
    parse_frame,
    parse_rest_klines,
)
from ticktape.testing.data import shared_data


def capture_frames(name: str, stream_suffix: str) -> list[tuple[float, bytes]]:
    """Inbound frames `<ts>: <json>` of a cryptofeed capture whose stream ends with suffix."""
    out = []
    for line in shared_data("cryptofeed", name).read_text().splitlines():
        ts, sep, body = line.partition(": ")
        if not sep or not ts.replace(".", "").isdigit():
            continue  # connect / subscribe / REST lines
        if json.loads(body).get("stream", "").endswith(stream_suffix):
            out.append((float(ts), body.encode()))
    return out


def kline_frame(**overrides: object) -> bytes:
    k = {"t": 1626992700000, "T": 1626992759999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 9,
         "o": "100.5", "c": "101.0", "h": "102.0", "l": "99.5", "v": "12.5", "n": 9, "x": True,
         "q": "1260.0", "V": "6.0", "Q": "605.0", "B": "0"}
    k.update(overrides)
    return json.dumps({"stream": "btcusdt@kline_1m",
                       "data": {"e": "kline", "E": 1626992760000, "s": "BTCUSDT", "k": k}}).encode()


def test_parse_every_captured_kline_frame_matches_the_json_values() -> None:
    frames = capture_frames("BINANCE_FUTURES.ws.1.0", "@kline_1m")
    assert len(frames) == 67
    closed = 0
    for _, raw in frames:
        k = json.loads(raw)["data"]["k"]
        kline = parse_frame(raw)
        assert kline == Kline(
            open_time=k["t"], close_time=k["T"], symbol=k["s"], interval=k["i"],
            open=float(k["o"]), high=float(k["h"]), low=float(k["l"]), close=float(k["c"]),
            volume=float(k["v"]), quote_volume=float(k["q"]), trades=k["n"],
            taker_buy_volume=float(k["V"]), taker_buy_quote_volume=float(k["Q"]), closed=k["x"],
        )
        closed += kline.closed
    assert closed == 4


def test_parse_captured_closed_keepusdt_kline_gives_exact_values() -> None:
    raw = next(r for _, r in capture_frames("BINANCE_FUTURES.ws.1.0", "@kline_1m")
               if b'"KEEPUSDT"' in r and b'"x":true' in r)
    assert parse_frame(raw) == Kline(
        open_time=1626992700000, close_time=1626992759999, symbol="KEEPUSDT", interval="1m",
        open=0.2463, high=0.2466, low=0.2458, close=0.2466, volume=8464.0, quote_volume=2082.4799,
        trades=14, taker_buy_volume=344.0, taker_buy_quote_volume=84.767, closed=True,
    )


def test_parse_raw_stream_frame_without_combined_wrapper() -> None:
    data = json.loads(kline_frame())["data"]
    kline = parse_frame(json.dumps(data))
    assert kline is not None and kline.symbol == "BTCUSDT" and kline.closed


@pytest.mark.parametrize("ack", [b'{"result":null,"id":1}', b'{"result":["btcusdt@kline_1m"],"id":"7"}'])
def test_parse_subscription_ack_returns_none(ack: bytes) -> None:
    assert parse_frame(ack) is None


@pytest.mark.parametrize(("raw", "reason"), [
    (kline_frame()[:-7], "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2]", "Expected `object`, got `array`"),
    (b"{}", "not a stream frame"),
    (json.dumps({"stream": "x", "data": {"e": "kline", "s": "BTCUSDT"}}).encode(), "without its 'k'"),
    (json.dumps({"data": {"e": "aggTrade", "s": "BTCUSDT", "p": "1"}}).encode(), "unknown event type 'aggTrade'"),
    (json.dumps({"data": {"e": "continuous_kline", "k": {"t": 1}}}).encode(), "unknown event type 'continuous_kline'"),
    (b'{"error":{"code":2,"msg":"Invalid request"},"id":1}', "error response to request 1"),
])
def test_parse_malformed_frame_raises_frame_error_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(raw)
    assert reason in info.value.reason


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("o", "abc", "bad value at data.k.o (open)"),
    ("c", "NaN", "bad value at data.k.c (close)"),
    ("h", "-1.5", "bad value at data.k.h (high)"),
    ("l", "inf", "bad value at data.k.l (low)"),
    ("v", "1e400", "bad value at data.k.v (volume)"),
    ("x", "maybe", "bad value at data.k.x (closed flag)"),
    ("n", [], "bad value at data.k.n (trades)"),
    ("t", "soon", "bad value at data.k.t (open time)"),
])
def test_parse_bad_field_value_raises_frame_error_naming_the_field(field: str, value: object,
                                                                   reason: str) -> None:
    with pytest.raises(FrameError, match="bad value") as info:
        parse_frame(kline_frame(**{field: value}))
    assert info.value.reason.startswith(reason)


def test_parse_non_finite_price_says_amounts_must_be_finite() -> None:
    with pytest.raises(FrameError, match="finite, non-negative"):
        parse_frame(kline_frame(o="NaN"))


@pytest.mark.parametrize("field", ["x", "t", "T", "s", "o", "Q"])
def test_parse_missing_kline_field_raises_frame_error_naming_it(field: str) -> None:
    frame = json.loads(kline_frame())
    del frame["data"]["k"][field]
    with pytest.raises(FrameError) as info:
        parse_frame(json.dumps(frame))
    assert info.value.reason.startswith(f"missing field data.k.{field}")


def test_parse_rest_klines_from_captured_response() -> None:
    raw = shared_data("nautilus_trader", "binance_rest", "http_spot_market_klines.json").read_bytes()
    klines = parse_rest_klines(raw, "BTCUSDT", "1m")
    assert len(klines) == 10
    assert klines[0] == Kline(
        open_time=1634943780000, close_time=1634943839999, symbol="BTCUSDT", interval="1m",
        open=60685.22, high=60729.84, low=60670.9, close=60719.27, volume=21.63272,
        quote_volume=1313200.0134041, trades=617, taker_buy_volume=12.28492,
        taker_buy_quote_volume=745719.4102284, closed=True,
    )
    assert parse_rest_klines(json.loads(raw), "BTCUSDT", "1m") == klines


@pytest.mark.parametrize(("rows", "reason"), [
    ([[1, "1", "2", "0.5", "1", "x", 60000, "1", 3, "1", "1", "0"]], "row 0 column 5 (volume)"),
    ([[1, "1", "2"]], "bad klines"),
    ({"code": -1121, "msg": "Invalid symbol."}, "bad klines payload"),
])
def test_parse_rest_klines_malformed_raises_frame_error(rows: object, reason: str) -> None:
    with pytest.raises(FrameError, match="bad klines") as info:
        parse_rest_klines(rows, "BTCUSDT", "1m")  # type: ignore[arg-type]
    assert reason in info.value.reason


amounts = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False, allow_infinity=False)


@settings(max_examples=200)
@given(
    open_ms=st.integers(min_value=0, max_value=2**42),
    symbol=st.from_regex(r"[A-Z0-9]{2,12}USDT", fullmatch=True),
    prices=st.lists(amounts, min_size=8, max_size=8),
    trades=st.integers(min_value=0, max_value=10**9),
    closed=st.booleans(),
)
def test_parse_random_valid_kline_round_trips(open_ms: int, symbol: str, prices: list[Decimal],
                                              trades: int, closed: bool) -> None:
    o, h, low, c, v, q, tv, tq = (format(p, "f") for p in prices)
    k = {"t": open_ms, "T": open_ms + 59_999, "s": symbol, "i": "1m", "f": 0, "L": 0, "o": o,
         "h": h, "l": low, "c": c, "v": v, "q": q, "n": trades, "x": closed, "V": tv, "Q": tq, "B": "0"}
    raw = json.dumps({"stream": f"{symbol.lower()}@kline_1m",
                      "data": {"e": "kline", "E": open_ms, "s": symbol, "k": k}})
    assert parse_frame(raw) == Kline(
        open_time=open_ms, close_time=open_ms + 59_999, symbol=symbol, interval="1m",
        open=float(o), high=float(h), low=float(low), close=float(c), volume=float(v),
        quote_volume=float(q), trades=trades, taker_buy_volume=float(tv),
        taker_buy_quote_volume=float(tq), closed=closed,
    )


def test_stream_and_rest_urls_follow_binance_conventions() -> None:
    streams = [kline_stream("BTCUSDT", "1m"), kline_stream("ETHUSDT", "1m")]
    assert streams == ["btcusdt@kline_1m", "ethusdt@kline_1m"]
    assert combined_stream_url("wss://fstream.binance.com/", streams) == (
        "wss://fstream.binance.com/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m")
    assert klines_url("https://fapi.binance.com", "BTCUSDT", "1m", start_ms=5, limit=10) == (
        "https://fapi.binance.com/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=10&startTime=5")
