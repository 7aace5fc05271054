"""Real captures from Binance spot, Binance USDT-M and Hyperliquid come out as the same
TradeTick and BarClosed shapes, with values that match the raw JSON.

Also the capture loaders the other market-data tests use."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest
import yaml

from exchanges import FrameError
from services.market_data.core import MarketDataCore
from ticktape import ids, subjects
from ticktape.clock import NS_PER_MS
from ticktape.events import BarClosed, TradeTick, codec
from ticktape.testing.data import shared_data
from ticktape.venues import BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID

# -- loaders ------------------------------------------------------------------------------------


def cryptofeed_frames(name: str, *suffixes: str) -> list[bytes]:
    """Inbound frames (`<ts>: <json>` lines) of a cryptofeed capture whose stream ends with
    one of the suffixes (all inbound frames when none is given)."""
    out = []
    for line in shared_data("cryptofeed", name).read_text().splitlines():
        ts, sep, body = line.partition(": ")
        if not sep or not ts.replace(".", "").isdigit():
            continue  # connect / subscribe / REST lines
        stream = json.loads(body).get("stream", "")
        if not suffixes or stream.endswith(suffixes):
            out.append(body.encode())
    return out


def hftbacktest_frames(name: str) -> list[bytes]:
    """Every message of an hftbacktest capture (gzip lines `<local_ns> <json>`)."""
    with gzip.open(shared_data("hftbacktest", name), "rt") as f:
        return [line.rstrip("\n").partition(" ")[2].encode() for line in f if line.strip()]


def hftbacktest_streams(name: str, suffix: str) -> list[bytes]:
    return [raw for raw in hftbacktest_frames(name) if json.loads(raw).get("stream", "").endswith(suffix)]


def hyperliquid_candle_snapshot() -> tuple[dict[str, object], bytes]:
    """(request, response body) of the recorded POST /info candleSnapshot (kPEPE 1h)."""
    cassette = yaml.safe_load(
        shared_data("hyperliquid_python_sdk_cassettes", "test_get_candles_snapshot.yaml").read_text()
    )
    for interaction in cassette["interactions"]:
        request = json.loads(interaction["request"]["body"])
        if request.get("type") == "candleSnapshot":
            return request, interaction["response"]["body"]["string"].encode()
    raise AssertionError("no candleSnapshot interaction in the cassette")


def hyperliquid_trade_frames() -> list[bytes]:
    return [
        raw
        for raw in hftbacktest_frames("hyperliquid_btcusd_20250126.gz")
        if json.loads(raw).get("channel") == "trades"
    ]


# -- trades --------------------------------------------------------------------------------------


def _raw_trades(raw: bytes) -> list[dict[str, object]]:
    msg = json.loads(raw)
    return msg["data"] if isinstance(msg.get("data"), list) else [msg["data"]]


def _expected_binance(venue: str, t: dict[str, object]) -> tuple[object, ...]:
    trade_id = str(t["a"] if t["e"] == "aggTrade" else t["t"])
    return (
        venue,
        t["s"],
        trade_id,
        float(t["p"]),
        float(t["q"]),  # type: ignore[arg-type]
        "sell" if t["m"] else "buy",
        int(t["T"]) * NS_PER_MS,
    )  # type: ignore[call-overload]


def _expected_hyperliquid(t: dict[str, object]) -> tuple[object, ...]:
    return (
        HYPERLIQUID,
        t["coin"],
        str(t["tid"]),
        float(t["px"]),
        float(t["sz"]),  # type: ignore[arg-type]
        "buy" if t["side"] == "B" else "sell",
        int(t["time"]) * NS_PER_MS,
    )  # type: ignore[call-overload]


TRADE_CASES = [
    pytest.param(
        BINANCE_SPOT, lambda: cryptofeed_frames("BINANCE.ws.1.0", "@aggTrade"), 2, id="spot-cryptofeed-aggTrade"
    ),
    pytest.param(
        BINANCE_SPOT,
        lambda: hftbacktest_streams("spot_btcusdt_20240808.gz", "@trade"),
        9757,
        id="spot-hftbacktest-trade",
    ),
    pytest.param(
        BINANCE_USDM,
        lambda: cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@aggTrade"),
        91,
        id="usdm-cryptofeed-aggTrade",
    ),
    pytest.param(
        BINANCE_USDM,
        lambda: hftbacktest_streams("usdm_btcusdt_20240718.gz", "@trade"),
        974,
        id="usdm-hftbacktest-trade",
    ),
    pytest.param(HYPERLIQUID, hyperliquid_trade_frames, 64, id="hyperliquid-hftbacktest-trades"),
]


@pytest.mark.parametrize(("venue", "frames", "count"), TRADE_CASES)
def test_captured_trades_become_trade_ticks_matching_the_raw_json(venue, frames, count) -> None:
    core = MarketDataCore(venue)
    ticks: list[TradeTick] = []
    expected: list[tuple[object, ...]] = []
    for raw in frames():
        events = core.on_frame(raw, ts_init=7)
        assert all(type(e) is TradeTick for e in events)
        ticks += events  # type: ignore[arg-type]
        expected += [
            _expected_hyperliquid(t) if venue == HYPERLIQUID else _expected_binance(venue, t) for t in _raw_trades(raw)
        ]
    assert len(ticks) == count
    assert [(t.venue, t.symbol, t.trade_id, t.price, t.size, t.aggressor, t.ts_event) for t in ticks] == expected
    for t in ticks:
        assert t.event_id == ids.trade_id(venue, t.symbol, t.trade_id)
        assert t.ts_init == 7 and t.aggressor in ("buy", "sell")
        assert codec.decode(codec.encode(t)) == t
        assert subjects.for_event(t) == f"md.trade.{venue}.{t.symbol}"
    assert len({t.event_id for t in ticks}) == count  # every trade id is distinct in these captures


def test_spot_check_one_trade_per_venue_with_literal_values() -> None:
    spot = MarketDataCore(BINANCE_SPOT).on_frame(
        hftbacktest_streams("spot_btcusdt_20240808.gz", "@trade")[0], ts_init=1
    )
    usdm = MarketDataCore(BINANCE_USDM).on_frame(
        hftbacktest_streams("usdm_btcusdt_20240718.gz", "@trade")[0], ts_init=1
    )
    hl = MarketDataCore(HYPERLIQUID).on_frame(hyperliquid_trade_frames()[1], ts_init=1)
    # {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000",
    #  "q":"0.02000000","T":1723161255342,"m":true,"M":true}
    assert spot == [
        TradeTick(
            event_id=ids.trade_id(BINANCE_SPOT, "BTCUSDT", "3735683259"),
            ts_event=1723161255342 * NS_PER_MS,
            ts_init=1,
            venue=BINANCE_SPOT,
            symbol="BTCUSDT",
            trade_id="3735683259",
            price=61837.63,
            size=0.02,
            aggressor="sell",
        )
    ]
    # {"e":"trade","E":1721347022956,"T":1721347022956,"s":"BTCUSDT","t":5182005737,
    #  "p":"63943.90","q":"0.003","X":"MARKET","m":true}
    assert usdm == [
        TradeTick(
            event_id=ids.trade_id(BINANCE_USDM, "BTCUSDT", "5182005737"),
            ts_event=1721347022956 * NS_PER_MS,
            ts_init=1,
            venue=BINANCE_USDM,
            symbol="BTCUSDT",
            trade_id="5182005737",
            price=63943.9,
            size=0.003,
            aggressor="sell",
        )
    ]
    # {"coin":"BTC","px":"105056.0","side":"B","sz":"0.02222","tid":917211710228416,"time":1737918847000}
    assert hl == [
        TradeTick(
            event_id=ids.trade_id(HYPERLIQUID, "BTC", "917211710228416"),
            ts_event=1737918847000 * NS_PER_MS,
            ts_init=1,
            venue=HYPERLIQUID,
            symbol="BTC",
            trade_id="917211710228416",
            price=105056.0,
            size=0.02222,
            aggressor="buy",
        )
    ]


@pytest.mark.parametrize(
    ("venue", "name", "trades", "rejected"),
    [
        (
            BINANCE_USDM,
            "usdm_btcusdt_20240718.gz",
            974,
            {
                "unknown event type 'bookTicker'": 7113,
                "unknown event type 'depthUpdate'": 3326,
                "not a stream frame": 1,
            },
        ),
        (
            BINANCE_SPOT,
            "spot_btcusdt_20240808.gz",
            9757,
            {
                "not a kline or trade event: data has no 'e'": 28040,
                "unknown event type 'depthUpdate'": 3451,
                "not a stream frame": 1,
            },
        ),
        (HYPERLIQUID, "hyperliquid_btcusd_20250126.gz", 64, {"unknown channel 'l2Book'": 46}),
    ],
)
def test_whole_capture_every_message_is_a_trade_or_a_named_rejection(venue, name, trades, rejected) -> None:
    """Book data (and the REST snapshot on the first line) is not ours to parse: each such
    message raises FrameError whose reason says what it was."""
    core = MarketDataCore(venue)
    seen, reasons = 0, Counter[str]()
    for raw in hftbacktest_frames(name):
        try:
            seen += len(core.on_frame(raw, ts_init=0))
        except FrameError as exc:
            reasons[next((p for p in rejected if exc.reason.startswith(p)), exc.reason)] += 1
    assert seen == trades
    assert reasons == rejected


# -- bars ----------------------------------------------------------------------------------------

REST_COLUMNS = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q")


def test_bars_from_every_venue_have_the_same_shape_and_match_the_raw_values() -> None:
    # USDT-M: live kline frames (4 of 67 are closed)
    usdm = MarketDataCore(BINANCE_USDM)
    usdm_bars = [
        b for raw in cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@kline_1m") for b in usdm.on_frame(raw, ts_init=5)
    ]
    # spot: the captured WS klines are all still open, so REST klines (GET /api/v3/klines)
    spot = MarketDataCore(BINANCE_SPOT)
    spot_raw = shared_data("nautilus_trader", "binance_rest", "http_spot_market_klines.json").read_bytes()
    spot_bars = spot.on_backfill("BTCUSDT", spot_raw, ts_init=5, now_ms=1634944440000)
    # Hyperliquid: POST /info candleSnapshot (kPEPE, 1h)
    request, body = hyperliquid_candle_snapshot()
    hl = MarketDataCore(HYPERLIQUID, "1h")
    hl_bars = hl.on_backfill("kPEPE", body, ts_init=5, now_ms=request["req"]["endTime"])  # type: ignore[index]

    assert [len(usdm_bars), len(spot_bars), len(hl_bars)] == [4, 10, 23]
    for venue, bars, raw_rows in [
        (
            BINANCE_USDM,
            usdm_bars,
            [
                json.loads(r)["data"]["k"]
                for r in cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@kline_1m")
                if json.loads(r)["data"]["k"]["x"]
            ],
        ),
        (
            BINANCE_SPOT,
            spot_bars,
            [{"s": "BTCUSDT", **dict(zip(REST_COLUMNS, row, strict=False))} for row in json.loads(spot_raw)],
        ),
        (HYPERLIQUID, hl_bars, json.loads(body)[:23]),
    ]:
        by_open = {(r["s"], int(r["t"])): r for r in raw_rows}
        for bar in bars:
            r = by_open[bar.symbol, bar.open_time // NS_PER_MS]
            assert type(bar) is BarClosed and bar.venue == venue and bar.ts_init == 5
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(float(r[f]) for f in "ohlcv")
            assert bar.trades == int(r["n"])
            assert bar.close_time == int(r["T"]) * NS_PER_MS == bar.ts_event
            assert bar.event_id == ids.bar_id(venue, bar.symbol, bar.timeframe, bar.open_time)
            assert bar.quote_volume == (float(r["q"]) if venue != HYPERLIQUID else 0.0)
            assert bar.taker_buy_volume == (float(r["V"]) if venue != HYPERLIQUID else 0.0)
            assert codec.decode(codec.encode(bar)) == bar
    assert {b.symbol for b in hl_bars} == {"kPEPE"} and {b.timeframe for b in hl_bars} == {"1h"}
    assert all(b.backfilled for b in spot_bars + hl_bars) and not any(b.backfilled for b in usdm_bars)


def test_same_shape_means_same_fields_across_venues() -> None:
    """Every venue's events are the kernel's TradeTick/BarClosed with the same fields set."""
    spot = MarketDataCore(BINANCE_SPOT).on_frame(cryptofeed_frames("BINANCE.ws.1.0", "@aggTrade")[0], 1)
    usdm = MarketDataCore(BINANCE_USDM).on_frame(cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@aggTrade")[0], 1)
    hl = MarketDataCore(HYPERLIQUID).on_frame(hyperliquid_trade_frames()[0], 1)[:1]
    shapes = {type(e): sorted(json.loads(codec.encode(e))) for e in spot + usdm + hl}
    assert list(shapes) == [TradeTick]
    assert shapes[TradeTick] == sorted(
        [
            "type",
            "event_id",
            "ts_event",
            "ts_init",
            "causation_id",
            "correlation_id",
            "version",
            "venue",
            "symbol",
            "trade_id",
            "price",
            "size",
            "aggressor",
        ]
    )
