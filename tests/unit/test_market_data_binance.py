"""Binance spot and USDT-M adapters: real captured frames, REST rows, control messages, the
universe, and every kind of bad frame."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges import (
    AggTrade,
    BinanceSpotAdapter,
    BinanceUsdmAdapter,
    FrameError,
    Kline,
    Trade,
    UniverseEntry,
)
from tests.unit.test_market_data_captures import cryptofeed_frames
from ticktape.testing.data import shared_data

SPOT, USDM = BinanceSpotAdapter(), BinanceUsdmAdapter()
BOTH = pytest.mark.parametrize("adapter", [SPOT, USDM], ids=["spot", "usdm"])


def kline_frame(**overrides: object) -> bytes:
    k = {
        "t": 1626992700000,
        "T": 1626992759999,
        "s": "BTCUSDT",
        "i": "1m",
        "f": 1,
        "L": 9,
        "o": "100.5",
        "c": "101.0",
        "h": "102.0",
        "l": "99.5",
        "v": "12.5",
        "n": 9,
        "x": True,
        "q": "1260.0",
        "V": "6.0",
        "Q": "605.0",
        "B": "0",
    }
    k.update(overrides)
    return json.dumps(
        {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1626992760000, "s": "BTCUSDT", "k": k}}
    ).encode()


def trade_frame(kind: str = "trade", **overrides: object) -> bytes:
    data: dict[str, object] = {
        "e": kind,
        "E": 1723161255343,
        "s": "BTCUSDT",
        "p": "61837.63000000",
        "q": "0.02000000",
        "T": 1723161255342,
        "m": True,
        "M": True,
    }
    data.update({"t": 3735683259} if kind == "trade" else {"a": 46744553, "f": 1, "l": 2})
    data.update(overrides)
    return json.dumps({"stream": f"btcusdt@{kind}", "data": data}).encode()


# -- frames ------------------------------------------------------------------------------------


def test_parse_every_captured_usdm_kline_frame_matches_the_json_values() -> None:
    frames = cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@kline_1m")
    assert len(frames) == 67
    closed = 0
    for raw in frames:
        k = json.loads(raw)["data"]["k"]
        [kline] = USDM.parse(raw)
        assert kline == Kline(
            open_time=k["t"],
            close_time=k["T"],
            symbol=k["s"],
            interval=k["i"],
            open=float(k["o"]),
            high=float(k["h"]),
            low=float(k["l"]),
            close=float(k["c"]),
            volume=float(k["v"]),
            quote_volume=float(k["q"]),
            trades=k["n"],
            taker_buy_volume=float(k["V"]),
            taker_buy_quote_volume=float(k["Q"]),
            closed=k["x"],
        )
        closed += kline.closed
    assert closed == 4


def test_parse_captured_closed_keepusdt_kline_gives_exact_values() -> None:
    raw = next(
        r for r in cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@kline_1m") if b'"KEEPUSDT"' in r and b'"x":true' in r
    )
    assert USDM.parse(raw) == [
        Kline(
            open_time=1626992700000,
            close_time=1626992759999,
            symbol="KEEPUSDT",
            interval="1m",
            open=0.2463,
            high=0.2466,
            low=0.2458,
            close=0.2466,
            volume=8464.0,
            quote_volume=2082.4799,
            trades=14,
            taker_buy_volume=344.0,
            taker_buy_quote_volume=84.767,
            closed=True,
        )
    ]


def test_parse_captured_spot_kline_and_agg_trade_frames() -> None:
    klines = [k for raw in cryptofeed_frames("BINANCE.ws.1.0", "@kline_1m") for k in SPOT.parse(raw)]
    assert [(k.symbol, k.open, k.close, k.volume, k.closed) for k in klines] == [
        ("NKNUSDT", 0.3527, 0.3528, 25877.0, False),
        ("LRCBTC", 0.00000638, 0.00000638, 177.0, False),
    ]
    trades = [t for raw in cryptofeed_frames("BINANCE.ws.1.0", "@aggTrade") for t in SPOT.parse(raw)]
    assert trades == [
        AggTrade("NKNUSDT", 15683430, 0.3528, 58.0, 1633998523963, False),
        AggTrade("LRCBTC", 9213679, 0.00000638, 177.0, 1633998534486, False),
    ]
    assert [t.aggressor for t in trades] == ["buy", "buy"]


def test_parse_pretty_printed_spot_trade_message_from_nautilus() -> None:
    raw = shared_data("nautilus_trader", "binance_ws", "ws_spot_trade.json").read_bytes()
    # "t" is the trade id; "a" here is the seller's order id, not an aggregate id
    assert SPOT.parse(raw) == [Trade("ETHUSDT", 705291099, 4149.74, 0.4387, 1639351062243, True)]


@BOTH
@pytest.mark.parametrize(("buyer_is_maker", "aggressor"), [(True, "sell"), (False, "buy")])
@pytest.mark.parametrize("kind", ["trade", "aggTrade"])
def test_parse_trade_and_agg_trade_aggressor_follows_the_maker_flag(adapter, buyer_is_maker, aggressor, kind) -> None:
    [trade] = adapter.parse(trade_frame(kind, m=buyer_is_maker))
    cls, trade_id = (Trade, 3735683259) if kind == "trade" else (AggTrade, 46744553)
    assert trade == cls("BTCUSDT", trade_id, 61837.63, 0.02, 1723161255342, buyer_is_maker)
    assert trade.aggressor == aggressor


@pytest.mark.parametrize("frame", [kline_frame(), trade_frame(), trade_frame("aggTrade")])
def test_parse_raw_stream_frame_without_combined_wrapper(frame: bytes) -> None:
    wrapped = USDM.parse(frame)
    assert USDM.parse(json.dumps(json.loads(frame)["data"])) == wrapped != []


@BOTH
@pytest.mark.parametrize("ack", [b'{"result":null,"id":1}', b'{"result":["btcusdt@kline_1m"],"id":"7"}'])
def test_parse_subscription_ack_returns_nothing(adapter, ack: bytes) -> None:
    assert adapter.parse(ack) == []


@BOTH
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (kline_frame()[:-7], "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b"{}", "not a stream frame"),
        (b'{"stream":"btcusdt@trade"}', "stream frame without its 'data'"),
        (
            json.dumps({"stream": "x", "data": {"e": "kline", "s": "BTCUSDT"}}).encode(),
            "missing field data.k (kline object)",
        ),
        (json.dumps({"data": {"e": "depthUpdate", "s": "BTCUSDT"}}).encode(), "unknown event type 'depthUpdate'"),
        (
            json.dumps({"data": {"e": "continuous_kline", "k": {"t": 1}}}).encode(),
            "unknown event type 'continuous_kline': expected one of 'kline', 'trade', 'aggTrade'",
        ),
        (json.dumps({"e": "bookTicker", "u": 1}).encode(), "unknown event type 'bookTicker'"),
        (
            json.dumps({"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT"}}).encode(),
            "not a kline or trade event: data has no 'e'",
        ),
        (b'{"error":{"code":2,"msg":"Invalid request"},"id":1}', "error response to request 1"),
    ],
)
def test_parse_malformed_frame_raises_frame_error_with_reason(adapter, raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        adapter.parse(raw)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("o", "abc", "bad value at data.k.o (open)"),
        ("c", "NaN", "bad value at data.k.c (close)"),
        ("h", "-1.5", "bad value at data.k.h (high)"),
        ("l", "inf", "bad value at data.k.l (low)"),
        ("v", "1e400", "bad value at data.k.v (volume)"),
        ("x", "maybe", "bad value at data.k.x (closed flag)"),
        ("n", [], "bad value at data.k.n (trades)"),
        ("t", "soon", "bad value at data.k.t (open time)"),
    ],
)
def test_parse_bad_kline_field_raises_frame_error_naming_the_field(field: str, value: object, reason: str) -> None:
    with pytest.raises(FrameError, match="bad value") as info:
        USDM.parse(kline_frame(**{field: value}))
    assert info.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("kind", "field", "value", "reason"),
    [
        ("trade", "p", "NaN", "bad value at data.p (price)"),
        ("trade", "q", "-2", "bad value at data.q (quantity)"),
        ("trade", "m", "yes", "bad value at data.m (buyer-is-maker flag)"),
        ("trade", "t", 1.5, "bad value at data.t (trade id)"),
        ("aggTrade", "a", None, "bad value at data.a (aggregate trade id)"),
        ("aggTrade", "T", -5, "bad value at data.T (trade time)"),
    ],
)
def test_parse_bad_trade_field_raises_frame_error_naming_the_field(kind, field, value, reason) -> None:
    with pytest.raises(FrameError) as info:
        SPOT.parse(trade_frame(kind, **{field: value}))
    assert info.value.reason.startswith(reason)


def test_parse_non_finite_price_says_amounts_must_be_finite() -> None:
    with pytest.raises(FrameError, match="finite, non-negative"):
        USDM.parse(kline_frame(o="NaN"))


@pytest.mark.parametrize("field", ["x", "t", "T", "s", "o", "Q"])
def test_parse_missing_kline_field_raises_frame_error_naming_it(field: str) -> None:
    frame = json.loads(kline_frame())
    del frame["data"]["k"][field]
    with pytest.raises(FrameError) as info:
        USDM.parse(json.dumps(frame))
    assert info.value.reason.startswith(f"missing field data.k.{field}")


@pytest.mark.parametrize(("kind", "field"), [("trade", "t"), ("trade", "m"), ("aggTrade", "a"), ("aggTrade", "p")])
def test_parse_missing_trade_field_raises_frame_error_naming_it(kind: str, field: str) -> None:
    frame = json.loads(trade_frame(kind))
    del frame["data"][field]
    with pytest.raises(FrameError) as info:
        USDM.parse(json.dumps(frame))
    assert info.value.reason.startswith(f"missing field data.{field}")


amounts = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False, allow_infinity=False)


@settings(max_examples=200)
@given(
    open_ms=st.integers(min_value=0, max_value=2**42),
    symbol=st.from_regex(r"[A-Z0-9]{2,12}USDT", fullmatch=True),
    prices=st.lists(amounts, min_size=8, max_size=8),
    trades=st.integers(min_value=0, max_value=10**9),
    closed=st.booleans(),
)
def test_parse_random_valid_kline_round_trips(
    open_ms: int, symbol: str, prices: list[Decimal], trades: int, closed: bool
) -> None:
    o, h, low, c, v, q, tv, tq = (format(p, "f") for p in prices)
    k = {
        "t": open_ms,
        "T": open_ms + 59_999,
        "s": symbol,
        "i": "1m",
        "f": 0,
        "L": 0,
        "o": o,
        "h": h,
        "l": low,
        "c": c,
        "v": v,
        "q": q,
        "n": trades,
        "x": closed,
        "V": tv,
        "Q": tq,
        "B": "0",
    }
    raw = json.dumps(
        {"stream": f"{symbol.lower()}@kline_1m", "data": {"e": "kline", "E": open_ms, "s": symbol, "k": k}}
    )
    assert USDM.parse(raw) == [
        Kline(
            open_time=open_ms,
            close_time=open_ms + 59_999,
            symbol=symbol,
            interval="1m",
            open=float(o),
            high=float(h),
            low=float(low),
            close=float(c),
            volume=float(v),
            quote_volume=float(q),
            trades=trades,
            taker_buy_volume=float(tv),
            taker_buy_quote_volume=float(tq),
            closed=closed,
        )
    ]


@settings(max_examples=200)
@given(
    kind=st.sampled_from(["trade", "aggTrade"]),
    trade_id=st.integers(0, 2**62),
    price=amounts,
    qty=amounts,
    t_ms=st.integers(0, 2**42),
    maker=st.booleans(),
)
def test_parse_random_valid_trade_round_trips(kind, trade_id, price, qty, t_ms, maker) -> None:
    ident = {"t": trade_id} if kind == "trade" else {"a": trade_id}
    raw = trade_frame(kind, p=format(price, "f"), q=format(qty, "f"), T=t_ms, m=maker, **ident)
    cls = Trade if kind == "trade" else AggTrade
    assert SPOT.parse(raw) == [cls("BTCUSDT", trade_id, float(price), float(qty), t_ms, maker)]


# -- REST ------------------------------------------------------------------------------------


def test_parse_rest_klines_from_captured_spot_response() -> None:
    raw = shared_data("nautilus_trader", "binance_rest", "http_spot_market_klines.json").read_bytes()
    klines = SPOT.parse_backfill(raw, "BTCUSDT", "1m")
    assert len(klines) == 10
    assert klines[0] == Kline(
        open_time=1634943780000,
        close_time=1634943839999,
        symbol="BTCUSDT",
        interval="1m",
        open=60685.22,
        high=60729.84,
        low=60670.9,
        close=60719.27,
        volume=21.63272,
        quote_volume=1313200.0134041,
        trades=617,
        taker_buy_volume=12.28492,
        taker_buy_quote_volume=745719.4102284,
        closed=True,
    )
    assert SPOT.parse_backfill(json.loads(raw), "BTCUSDT", "1m") == klines


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([[1, "1", "2", "0.5", "1", "x", 60000, "1", 3, "1", "1", "0"]], "row 0 column 5 (volume)"),
        ([[1, "1", "2"]], "bad klines"),
        ({"code": -1121, "msg": "Invalid symbol."}, "bad klines payload"),
        (b'[[1, "1"', "not JSON"),
    ],
)
def test_parse_rest_klines_malformed_raises_frame_error(rows: object, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        USDM.parse_backfill(rows, "BTCUSDT", "1m")  # type: ignore[arg-type]
    assert reason in info.value.reason


def test_backfill_and_server_time_requests_use_each_products_paths_and_row_caps() -> None:
    assert USDM.backfill_request("https://fapi.binance.com", "BTCUSDT", "1m", start_ms=5, limit=10, now_ms=0).url == (
        "https://fapi.binance.com/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=10&startTime=5"
    )
    spot = SPOT.backfill_request("https://api.binance.com/", "ETHUSDT", "1m", start_ms=None, limit=5000, now_ms=0)
    assert (spot.method, spot.url, spot.body) == (
        "GET",
        "https://api.binance.com/api/v3/klines?symbol=ETHUSDT&interval=1m&limit=1000",
        None,
    )
    assert "limit=1500" in USDM.backfill_request("u", "X", "1m", start_ms=None, limit=9999, now_ms=0).url
    assert SPOT.server_time_request("https://api.binance.com").url == "https://api.binance.com/api/v3/time"
    assert USDM.server_time_request("https://fapi.binance.com").url == "https://fapi.binance.com/fapi/v1/time"
    assert USDM.parse_server_time(b'{"serverTime":1626858243909}') == 1626858243909
    with pytest.raises(FrameError, match="bad server time"):
        USDM.parse_server_time(b'{"code":-1}')


# -- streams and control messages --------------------------------------------------------------


def test_stream_names_connect_url_and_control_messages_follow_binance_conventions() -> None:
    assert SPOT.streams("BTCUSDT", "1m") == ["btcusdt@kline_1m", "btcusdt@trade"]
    assert USDM.streams("BTCUSDT", "1m") == ["btcusdt@kline_1m", "btcusdt@aggTrade"]
    assert USDM.streams("BTCUSDT", "1m", trades=False) == ["btcusdt@kline_1m"]
    assert USDM.connect_url(USDM.default_ws_url, ["btcusdt@kline_1m", "ethusdt@aggTrade"]) == (
        "wss://fstream.binance.com/market/stream?streams=btcusdt@kline_1m/ethusdt@aggTrade"
    )
    assert SPOT.connect_url(SPOT.default_ws_url + "/", ["a@trade"]) == (
        "wss://stream.binance.com:9443/stream?streams=a@trade"
    )
    assert USDM.on_connect_messages(["a@trade"]) == []
    streams = [f"s{i}usdt@kline_1m" for i in range(450)]
    subs = [json.loads(m) for m in USDM.subscribe_messages(streams, first_id=7)]
    assert [(m["method"], m["id"], len(m["params"])) for m in subs] == [
        ("SUBSCRIBE", 7, 200),
        ("SUBSCRIBE", 8, 200),
        ("SUBSCRIBE", 9, 50),
    ]
    assert [p for m in subs for p in m["params"]] == streams
    assert json.loads(SPOT.unsubscribe_messages(["btcusdt@trade"], 3)[0]) == {
        "method": "UNSUBSCRIBE",
        "params": ["btcusdt@trade"],
        "id": 3,
    }
    assert SPOT.heartbeat_message() is None


def test_limits_are_binances_documented_numbers() -> None:
    assert (SPOT.limits.streams_per_connection, USDM.limits.streams_per_connection) == (1024, 1024)
    assert (SPOT.limits.messages_per_second_per_connection, USDM.limits.messages_per_second_per_connection) == (5, 10)
    assert (SPOT.limits.connection_attempts, SPOT.limits.connection_window_s) == (300, 300)
    assert SPOT.limits.max_connection_age_s == USDM.limits.max_connection_age_s == 86400
    assert (SPOT.limits.server_ping_interval_s, SPOT.limits.pong_timeout_s) == (20, 60)
    assert (USDM.limits.server_ping_interval_s, USDM.limits.pong_timeout_s) == (180, 600)
    assert (SPOT.limits.backfill_max_rows, USDM.limits.backfill_max_rows) == (1000, 1500)


# -- universe ---------------------------------------------------------------------------------


def _exchange_info(name: str) -> bytes:
    first = shared_data("cryptofeed", name).read_text().splitlines()[0]
    return first.partition(": ")[2].encode()  # "<url> -> <ts>: <body>"


def test_spot_universe_keeps_trading_spot_symbols_of_the_quote_asset_by_volume() -> None:
    info = _exchange_info("BINANCE.0")
    symbols = {s["symbol"]: s for s in json.loads(info)["symbols"]}
    halted = next(s for s, v in symbols.items() if v["status"] == "BREAK" and v["quoteAsset"] == "USDT")
    margin_only = next(
        s
        for s, v in symbols.items()
        if v["status"] == "TRADING" and not v["isSpotTradingAllowed"] and v["quoteAsset"] == "USDT"
    )
    tickers = [
        {"symbol": "BTCUSDT", "quoteVolume": "2000.5"},
        {"symbol": "ETHUSDT", "quoteVolume": "2000.5"},
        {"symbol": "NKNUSDT", "quoteVolume": "10"},
        {"symbol": "LRCBTC", "quoteVolume": "1e9"},
        {"symbol": halted, "quoteVolume": "1e12"},
        {"symbol": margin_only, "quoteVolume": "1e12"},
        {"symbol": "NOTLISTED", "quoteVolume": "1e12"},
    ]
    ranked = SPOT.parse_universe([info, json.dumps(tickers).encode()], "USDT")

    def rules(symbol: str) -> tuple[float, float, float]:  # the capture's own filters
        filters = {f["filterType"]: f for f in symbols[symbol]["filters"]}
        notional = filters.get("NOTIONAL") or filters["MIN_NOTIONAL"]
        return (
            float(filters["PRICE_FILTER"]["tickSize"]),
            float(filters["LOT_SIZE"]["stepSize"]),
            float(notional["minNotional"]),
        )

    assert ranked == [
        UniverseEntry("BTCUSDT", 2000.5, *rules("BTCUSDT")),
        UniverseEntry("ETHUSDT", 2000.5, *rules("ETHUSDT")),
        UniverseEntry("NKNUSDT", 10.0, *rules("NKNUSDT")),
    ]
    assert all(e.tick_size > 0 and e.lot_size > 0 and e.min_notional > 0 for e in ranked)
    assert [r.url for r in SPOT.universe_requests("https://api.binance.com")] == [
        "https://api.binance.com/api/v3/exchangeInfo",
        "https://api.binance.com/api/v3/ticker/24hr",
    ]


def test_usdm_universe_keeps_trading_perpetuals_only() -> None:
    info = _exchange_info("BINANCE_FUTURES.0")
    entries = json.loads(info)["symbols"]
    perps = {
        s["symbol"]
        for s in entries
        if s["contractType"] == "PERPETUAL" and s["status"] == "TRADING" and s["quoteAsset"] == "USDT"
    }
    tickers = [{"symbol": s["symbol"], "quoteVolume": str(i)} for i, s in enumerate(entries)]
    ranked = USDM.parse_universe([info, json.dumps(tickers).encode()], "USDT")
    assert len(perps) == 117 and {e.symbol for e in ranked} == perps
    assert [e.quote_volume for e in ranked] == sorted((e.quote_volume for e in ranked), reverse=True)


@pytest.mark.parametrize(
    ("bodies", "reason"),
    [
        ([b"{}", b"[]"], "bad exchangeInfo"),
        ([b'{"symbols":[]}', b'[{"symbol":"X","quoteVolume":"-1"}]'], "bad ticker/24hr"),
        ([b"{}"], "expected 2 bodies"),
    ],
)
def test_universe_malformed_raises_frame_error(bodies, reason) -> None:
    with pytest.raises(FrameError, match=reason):
        USDM.parse_universe(bodies, "USDT")


# -- the helpers the current shell still imports ----------------------------------------------


def test_kline_struct_encodes_with_binance_wire_names() -> None:
    kline = USDM.parse(kline_frame())[0]
    assert json.loads(msgspec.json.encode(kline))["o"] == 100.5
