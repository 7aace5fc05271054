"""Hyperliquid adapter: trades, candle-close inference, candleSnapshot backfill, subscriptions,
the metaAndAssetCtxs universe, and bad messages."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges import FrameError, HyperliquidAdapter, Kline, Trade, UniverseEntry
from exchanges.hyperliquid import MIN_ORDER_VALUE, subscription
from services.market_data.core import MarketDataCore
from tests.unit.test_market_data_captures import hyperliquid_candle_snapshot, hyperliquid_trade_frames
from ticktape.clock import NS_PER_MS
from ticktape.events import BarClosed
from ticktape.testing.data import shared_data
from ticktape.venues import HYPERLIQUID


def candle_frames() -> list[bytes]:
    """The recorded candleSnapshot candles, each sent as a `candle` channel message (the WS
    candle payload has the same shape: {t, T, s, i, o, c, h, l, v, n})."""
    _, body = hyperliquid_candle_snapshot()
    return [json.dumps({"channel": "candle", "data": c}).encode() for c in json.loads(body)]


def candle(t: int, close: str = "1.5", coin: str = "BTC", interval: str = "1m") -> bytes:
    c = {
        "t": t,
        "T": t + 59_999,
        "s": coin,
        "i": interval,
        "o": "1.0",
        "c": close,
        "h": "2.0",
        "l": "0.5",
        "v": "10.0",
        "n": 3,
    }
    return json.dumps({"channel": "candle", "data": c}).encode()


T0 = 1737918780000  # a minute boundary


# -- trades ------------------------------------------------------------------------------------


def test_trades_message_gives_one_trade_per_element_with_side_b_as_buy() -> None:
    first = hyperliquid_trade_frames()[0]
    trades = HyperliquidAdapter().parse(first)
    raw = json.loads(first)["data"]
    assert len(trades) == 30
    assert trades[:3] == [
        Trade("BTC", 121451470284048, 105056.0, 0.00219, 1737918794873, False),
        Trade("BTC", 588047386913648, 105056.0, 0.00015, 1737918796007, False),
        Trade("BTC", raw[2]["tid"], 105055.0, 0.00219, 1737918796079, True),
    ]
    assert [t.aggressor for t in trades[:3]] == ["buy", "buy", "sell"]


# -- candles: closed when a later one arrives ----------------------------------------------------


def test_candle_is_closed_when_the_next_candle_of_the_coin_arrives() -> None:
    adapter = HyperliquidAdapter()
    out = [adapter.parse(raw) for raw in candle_frames()]
    assert [len(o) for o in out] == [1] + [2] * 23
    assert [k.closed for k in out[0]] == [False]
    candles = json.loads(hyperliquid_candle_snapshot()[1])
    for i in range(1, 24):
        closed, current = out[i]
        assert (closed.closed, current.closed) == (True, False)
        assert closed.open_time == candles[i - 1]["t"] and current.open_time == candles[i]["t"]
        assert closed == Kline(
            open_time=candles[i - 1]["t"],
            close_time=candles[i - 1]["T"],
            symbol="kPEPE",
            interval="1h",
            open=float(candles[i - 1]["o"]),
            high=float(candles[i - 1]["h"]),
            low=float(candles[i - 1]["l"]),
            close=float(candles[i - 1]["c"]),
            volume=float(candles[i - 1]["v"]),
            quote_volume=0.0,
            trades=candles[i - 1]["n"],
            taker_buy_volume=0.0,
            taker_buy_quote_volume=0.0,
            closed=True,
        )


def test_updates_of_the_current_candle_replace_it_and_the_last_update_is_what_closes() -> None:
    adapter = HyperliquidAdapter()
    assert [k.close for k in adapter.parse(candle(T0, "1.1"))] == [1.1]
    assert [k.close for k in adapter.parse(candle(T0, "1.2"))] == [1.2]
    assert adapter.parse(candle(T0 - 60_000, "9.9")) == []  # a late update of an older candle
    closed, current = adapter.parse(candle(T0 + 120_000, "1.3"))  # a minute without trades between
    assert (closed.open_time, closed.close, closed.closed) == (T0, 1.2, True)
    assert (current.open_time, current.closed) == (T0 + 120_000, False)


def test_candles_of_different_coins_and_intervals_close_independently() -> None:
    adapter = HyperliquidAdapter()
    adapter.parse(candle(T0, coin="BTC"))
    adapter.parse(candle(T0, coin="ETH"))
    adapter.parse(candle(T0, coin="BTC", interval="5m"))
    closed = [k for k in adapter.parse(candle(T0 + 60_000, coin="ETH")) if k.closed]
    assert [(k.symbol, k.interval, k.open_time) for k in closed] == [("ETH", "1m", T0)]


def test_reset_forgets_candles_in_progress_so_a_reconnect_emits_nothing_stale() -> None:
    adapter = HyperliquidAdapter()
    adapter.parse(candle(T0))
    adapter.reset()
    assert [k.closed for k in adapter.parse(candle(T0 + 60_000))] == [False]


def test_reset_of_some_coins_keeps_the_candles_of_the_others() -> None:
    adapter = HyperliquidAdapter()
    for coin in ("BTC", "ETH", "km:US500"):
        adapter.parse(candle(T0, coin=coin))
    adapter.reset(["ETH", "km:US500"])
    closed = [
        (k.symbol, k.closed)
        for coin in ("BTC", "ETH", "km:US500")
        for k in adapter.parse(candle(T0 + 60_000, coin=coin))
        if k.closed
    ]
    assert closed == [("BTC", True)]


@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["1.0", "1.5", "2.0"])), max_size=40))
def test_candle_inference_is_deterministic_and_closes_each_minute_at_most_once(steps) -> None:
    frames = [candle(T0 + m * 60_000, close) for m, close in steps]
    runs = [[k for raw in frames for k in HyperliquidAdapter().parse(raw)] for _ in range(2)]
    assert runs[0] == runs[1]
    adapter = HyperliquidAdapter()
    closed = [k.open_time for raw in frames for k in adapter.parse(raw) if k.closed]
    assert closed == sorted(set(closed))


def test_core_live_candles_and_rest_backfill_agree_on_every_closed_bar() -> None:
    request, body = hyperliquid_candle_snapshot()
    live = MarketDataCore(HYPERLIQUID, "1h")
    live_bars = [b for raw in candle_frames() for b in live.on_frame(raw, ts_init=1)]
    rest = MarketDataCore(HYPERLIQUID, "1h")
    rest_bars = rest.on_backfill("kPEPE", body, ts_init=1, now_ms=request["req"]["endTime"])  # type: ignore[index]
    assert len(live_bars) == len(rest_bars) == 23
    assert all(type(b) is BarClosed for b in live_bars)
    assert [msgspec.structs.replace(b, backfilled=True) for b in live_bars] == rest_bars


# -- REST ----------------------------------------------------------------------------------------


def test_backfill_request_is_a_candle_snapshot_post_from_the_start_to_now() -> None:
    adapter = HyperliquidAdapter()
    req = adapter.backfill_request(
        "https://api.hyperliquid.xyz/", "BTC", "1m", start_ms=T0, limit=500, now_ms=T0 + 600_000
    )
    assert (req.method, req.url) == ("POST", "https://api.hyperliquid.xyz/info")
    assert json.loads(req.body or b"") == {
        "type": "candleSnapshot",
        "req": {"coin": "BTC", "interval": "1m", "startTime": T0, "endTime": T0 + 600_000},
    }
    recent = adapter.backfill_request("u", "BTC", "1h", start_ms=None, limit=10_000, now_ms=T0)
    assert json.loads(recent.body or b"")["req"]["startTime"] == T0 - 5000 * 3_600_000
    with pytest.raises(ValueError, match="unknown interval '3m'"):
        adapter.backfill_request("u", "BTC", "3m", start_ms=None, limit=10, now_ms=T0)


def test_parse_backfill_of_the_recorded_snapshot() -> None:
    _, body = hyperliquid_candle_snapshot()
    klines = HyperliquidAdapter().parse_backfill(body, "kPEPE", "1h")
    assert len(klines) == 24 and all(k.closed for k in klines)
    # {"T":1684702799999,"c":"0.001604","h":"0.001616","i":"1h","l":"0.001601","n":709,
    #  "o":"0.001601","s":"kPEPE","t":1684699200000,"v":"520665683.0"}
    assert klines[0] == Kline(
        open_time=1684699200000,
        close_time=1684702799999,
        symbol="kPEPE",
        interval="1h",
        open=0.001601,
        high=0.001616,
        low=0.001601,
        close=0.001604,
        volume=520665683.0,
        quote_volume=0.0,
        trades=709,
        taker_buy_volume=0.0,
        taker_buy_quote_volume=0.0,
        closed=True,
    )


def test_core_backfill_keeps_only_candles_closed_before_server_now() -> None:
    _, body = hyperliquid_candle_snapshot()
    core = MarketDataCore(HYPERLIQUID, "1h")
    last_t = json.loads(body)[-1]["t"]
    assert len(core.on_backfill("kPEPE", body, ts_init=1, now_ms=last_t + 3_599_999)) == 23
    assert core.backfill_start_ms("kPEPE") == last_t
    assert [b.open_time // NS_PER_MS for b in core.on_backfill("kPEPE", body, 1, now_ms=last_t + 3_600_000)] == [last_t]


@pytest.mark.parametrize(
    ("body", "symbol", "reason"),
    [
        (
            b'[{"t":1,"T":2,"s":"BTC","i":"1m","o":"x","c":"1","h":"1","l":"1","v":"1","n":1}]',
            "BTC",
            "bad candleSnapshot: bad value at [0].o (open)",
        ),
        (
            b'[{"t":1,"T":2,"s":"ETH","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1","n":1}]',
            "BTC",
            "candleSnapshot for BTC 1m holds a ETH 1m candle",
        ),
        (b'{"error": "bad"}', "BTC", "bad candleSnapshot"),
        (b"[{", "BTC", "not JSON"),
    ],
)
def test_parse_backfill_malformed_raises_frame_error(body: bytes, symbol: str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        HyperliquidAdapter().parse_backfill(body, symbol, "1m")
    assert info.value.reason.startswith(reason)


def test_no_server_time_endpoint() -> None:
    adapter = HyperliquidAdapter()
    assert adapter.server_time_request("u") is None
    with pytest.raises(FrameError, match="Date header"):
        adapter.parse_server_time(b"{}")


# -- subscriptions -------------------------------------------------------------------------------


def test_streams_and_subscribe_messages() -> None:
    adapter = HyperliquidAdapter()
    streams = adapter.streams("BTC", "1m") + adapter.streams("km:US500", "1m", trades=False)
    assert streams == ["candle:BTC:1m", "trades:BTC", "candle:km:US500:1m"]
    assert adapter.connect_url("wss://api.hyperliquid.xyz/ws", streams) == "wss://api.hyperliquid.xyz/ws"
    assert [json.loads(m) for m in adapter.on_connect_messages(streams)] == [
        {"method": "subscribe", "subscription": {"type": "candle", "coin": "BTC", "interval": "1m"}},
        {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}},
        {"method": "subscribe", "subscription": {"type": "candle", "coin": "km:US500", "interval": "1m"}},
    ]
    assert json.loads(adapter.unsubscribe_messages(["trades:ETH"])[0]) == {
        "method": "unsubscribe",
        "subscription": {"type": "trades", "coin": "ETH"},
    }
    assert json.loads(adapter.heartbeat_message() or b"") == {"method": "ping"}
    for bad in ["l2Book:BTC", "candle:BTC", "trades:"]:
        with pytest.raises(ValueError, match="not a Hyperliquid stream key"):
            subscription(bad)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}',
        b'{"channel":"pong"}',
        b'{"channel":"trades","data":[]}',
    ],
)
def test_acks_pongs_and_empty_trades_give_nothing(raw: bytes) -> None:
    assert HyperliquidAdapter().parse(raw) == []


def test_limits_are_hyperliquids_documented_numbers() -> None:
    limits = HyperliquidAdapter().limits
    assert (limits.subscriptions_per_ip, limits.connections_per_ip) == (1000, 10)
    assert (limits.connection_attempts, limits.connection_window_s) == (30, 60)
    assert (limits.messages_per_minute_per_ip, limits.idle_timeout_s, limits.backfill_max_rows) == (2000, 60, 5000)


# -- universe ------------------------------------------------------------------------------------


def _meta_and_asset_ctxs() -> bytes:
    """[meta, assetCtxs] as metaAndAssetCtxs answers: the recorded BTC/ETH/ATOM meta with the
    recorded main-dex contexts of the same three assets (perp asset ids 0, 1, 2)."""
    meta = json.loads(shared_data("nautilus_trader", "hyperliquid", "http_meta_perp_sample.json").read_text())
    ws = json.loads(shared_data("nautilus_trader", "hyperliquid", "ws_all_dexs_asset_ctxs.json").read_text())
    main = dict((name, ctxs) for name, ctxs in ws["data"]["ctxs"])[""]
    return json.dumps([meta, main[:3]]).encode()


def test_universe_ranks_perps_by_day_notional_volume() -> None:
    adapter = HyperliquidAdapter()
    meta = json.loads(shared_data("nautilus_trader", "hyperliquid", "http_meta_perp_sample.json").read_text())
    lot = {a["name"]: 10.0 ** -a["szDecimals"] for a in meta["universe"]}  # the capture's size decimals
    assert adapter.parse_universe([_meta_and_asset_ctxs()]) == [
        UniverseEntry("BTC", 1516669192.1953897476, 0.0, lot["BTC"], MIN_ORDER_VALUE),
        UniverseEntry("ETH", 591989409.9392402172, 0.0, lot["ETH"], MIN_ORDER_VALUE),
        UniverseEntry("ATOM", 539123.9194869999, 0.0, lot["ATOM"], MIN_ORDER_VALUE),
    ]
    [req] = adapter.universe_requests("https://api.hyperliquid.xyz")
    assert (req.method, req.url, json.loads(req.body or b"")) == (
        "POST",
        "https://api.hyperliquid.xyz/info",
        {"type": "metaAndAssetCtxs"},
    )


def test_universe_leaves_out_delisted_perps() -> None:
    meta = {"universe": [{"name": "BTC"}, {"name": "OLD", "isDelisted": True}]}
    body = json.dumps([meta, [{"dayNtlVlm": "5"}, {"dayNtlVlm": "9"}]]).encode()
    assert [e.symbol for e in HyperliquidAdapter().parse_universe([body])] == ["BTC"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (json.dumps([{"universe": [{"name": "BTC"}]}, []]).encode(), "1 assets but 0 contexts"),
        (b'{"universe": []}', "bad metaAndAssetCtxs"),
    ],
)
def test_universe_malformed_raises_frame_error(body: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        HyperliquidAdapter().parse_universe([body])


def test_universe_quote_asset_must_be_usdc() -> None:
    with pytest.raises(ValueError, match="quoted in USDC"):
        HyperliquidAdapter().parse_universe([_meta_and_asset_ctxs()], "USDT")


# -- malformed messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("ws_allmids.json", "allMids"),
        ("ws_user_fill_liquidation.json", "user"),
        ("ws_all_dexs_asset_ctxs.json", "allDexsAssetCtxs"),
    ],
)
def test_recorded_messages_of_other_channels_raise_unknown_channel(name: str, channel: str) -> None:
    raw = shared_data("nautilus_trader", "hyperliquid", name).read_bytes()
    with pytest.raises(FrameError) as info:
        HyperliquidAdapter().parse(raw)
    assert info.value.reason.startswith(f"unknown channel {channel!r}: expected one of 'trades', 'candle'")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not JSON"),
        (b'{"channel":"trades","data":[{"coin":"BTC"', "not JSON"),
        (b"[]", "bad value at top level"),
        (b'{"data":[]}', "not a Hyperliquid message: no 'channel'"),
        (
            b'{"channel":"error","data":"Invalid subscription"}',
            'error message from Hyperliquid: "Invalid subscription"',
        ),
        (
            b'{"channel":"trades","data":[{"coin":"BTC","side":"S","px":"1","sz":"1","time":1,"tid":1}]}',
            "bad value at data[0].side (side)",
        ),
        (
            b'{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"-1","sz":"1","time":1,"tid":1}]}',
            "bad value at data[0].px (price)",
        ),
        (
            b'{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"1","sz":"1","time":1}]}',
            "missing field data[0].tid (trade id)",
        ),
        (b'{"channel":"trades","data":{"coin":"BTC"}}', "bad value at data"),
        (
            b'{"channel":"candle","data":{"t":1,"T":2,"s":"BTC","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"NaN","n":1}}',
            "bad value at data.v (volume)",
        ),
        (
            b'{"channel":"candle","data":{"t":1,"T":2,"s":"BTC","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1"}}',
            "missing field data.n (trades)",
        ),
    ],
)
def test_malformed_messages_raise_frame_error_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        HyperliquidAdapter().parse(raw)
    assert info.value.reason.startswith(reason)
