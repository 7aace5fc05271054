"""Property-based fuzzing of every venue parser: the WebSocket frame decoders and REST payload
parsers of libs/exchanges (Binance spot, Binance USDT-M, Hyperliquid) and the venue simulator's
request parsers (libs/venuesim).

Inputs: arbitrary bytes, arbitrary JSON values, and real captured frames and bodies from
../shared/data (the seeds; the tests skip, naming the folder, without it) cut, byte-flipped, or
with one field replaced, deleted or added with a hostile value (wrong type, NaN, inf, 1e308,
negative, huge strings and numbers, deep nesting, huge arrays). Replies to requests, which no
capture holds, are seeded from the venues' documentation.

Property: a parser returns a valid value or raises FrameError (the error the market-data and
symbol-registry shells catch and dead-letter) with a bounded reason; nothing else escapes (no
KeyError, TypeError, RecursionError, UnicodeDecodeError). What it returns is finite,
non-negative and fits an event (times as int64 nanoseconds, symbols as subject tokens); the
market-data core turns a frame into events that fit one bus message (or BarRejected from
services/market_data/checks.py), or refuses it with FrameError; the symbol registry turns a
universe into an event whose symbols make subjects. Every input that once broke a parser is
kept in CRASHES."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges import ADAPTERS, Kline, Trade, adapter_for
from exchanges.base import FrameError
from services.market_data.core import MarketDataCore
from tests.unit.test_market_data_captures import (
    cryptofeed_frames,
    hftbacktest_streams,
    hyperliquid_candle_snapshot,
    hyperliquid_trade_frames,
)
from ticktape import subjects
from ticktape.bus.publisher import message_size, msg_headers
from ticktape.clock import NS_PER_MS
from ticktape.events.codec import encode
from ticktape.testing.data import shared_data

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
INT64_MAX = 2**63 - 1
MAX_PAYLOAD = 1024 * 1024  # the embedded nats-server's max_payload
MAX_REASON = 2000  # a FrameError reason is logged and dead-lettered per frame: bounded (deadletter.ERROR_CHARS)
SPOT, USDM, HL = "binance_spot", "binance_usdm", "hyperliquid"

# -- seeds: real captures ---------------------------------------------------------------------


@functools.cache
def _frames(venue: str) -> tuple[bytes, ...]:
    if venue == SPOT:
        frames = cryptofeed_frames("BINANCE.ws.1.0", "@aggTrade", "@kline_1m")
        frames += hftbacktest_streams("spot_btcusdt_20240808.gz", "@trade")[:20]
        frames.append(shared_data("nautilus_trader", "binance_ws", "ws_spot_trade.json").read_bytes())
    elif venue == USDM:
        frames = cryptofeed_frames("BINANCE_FUTURES.ws.1.0", "@aggTrade", "@kline_1m")[:60]
    else:
        frames = hyperliquid_trade_frames()
        _, body = hyperliquid_candle_snapshot()
        frames += [json.dumps({"channel": "candle", "data": c}).encode() for c in json.loads(body)[:20]]
    return tuple(frames) + _CONTROL[venue]


# Replies to our requests, as the venues document them (the captures hold none).
_BINANCE_CONTROL = (b'{"result":null,"id":1}', b'{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":3}')
_CONTROL = {
    SPOT: _BINANCE_CONTROL,
    USDM: _BINANCE_CONTROL,
    HL: (
        b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}',
        b'{"channel":"pong"}',
        b'{"channel":"error","data":"Invalid subscription {\\"type\\":\\"candle\\"}"}',
    ),
}


def _exchange_info(name: str) -> bytes:
    first = shared_data("cryptofeed", name).read_text().splitlines()[0]
    return first.partition(": ")[2].encode()  # "<url> -> <ts>: <body>"


@functools.cache
def _rest_bodies(venue: str) -> tuple[tuple[bytes, ...], ...]:
    """Per venue, the REST bodies the adapter parses: (klines/candles,) and the universe bodies."""
    if venue == HL:
        _, candles = hyperliquid_candle_snapshot()
        meta = json.loads(shared_data("nautilus_trader", "hyperliquid", "http_meta_perp_sample.json").read_bytes())
        ctxs = json.loads(shared_data("nautilus_trader", "hyperliquid", "ws_all_dexs_asset_ctxs.json").read_bytes())
        first_dex = ctxs["data"]["ctxs"][0][1]
        n = min(len(meta["universe"]), len(first_dex), 20)
        universe = json.dumps([{"universe": meta["universe"][:n]}, first_dex[:n]]).encode()
        return (candles,), (universe,)
    klines = shared_data("nautilus_trader", "binance_rest", "http_spot_market_klines.json").read_bytes()
    doc = json.loads(_exchange_info("BINANCE_US.0" if venue == SPOT else "BINANCE_FUTURES.0"))
    doc["symbols"] = doc["symbols"][:20]  # the first 20 listings: each example re-encodes the body
    info = json.dumps(doc).encode()
    # No full ticker/24hr capture exists (MANIFEST "missing"): one row per captured symbol.
    symbols = [s["symbol"] for s in doc["symbols"]]
    tickers = json.dumps([{"symbol": s, "quoteVolume": f"{i}.5"} for i, s in enumerate(symbols)]).encode()
    return (klines,), (info, tickers)


# -- mutations --------------------------------------------------------------------------------

_HOLE = "\x00hostile\x00"
_DEEP = st.sampled_from([1, 127, 128, 129, 1000, 100_000])
_HUGE = st.sampled_from([0, 1, 1000, 70_000, 1_100_000])

# Hostile values as raw JSON text (deep nesting cannot go through json.dumps).
_hostile_raw: st.SearchStrategy[bytes] = st.one_of(
    st.sampled_from(
        [
            b"null",
            b"true",
            b"false",
            b"0",
            b"-1",
            b"-0.0",
            b"1e308",
            b"-1e308",
            b"1e400",
            b"-1e400",
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b'"NaN"',
            b'"nan"',
            b'"inf"',
            b'"-inf"',
            b'"Infinity"',
            b'"-1"',
            b'"1e308"',
            b'"1e400"',
            b'"1e-400"',
            b'""',
            b'" 1"',
            b'"0x10"',
            b'"1_0"',
            b'"\\u0000"',
            b"18446744073709551616",
            b"-9223372036854775809",
            b"9223372036854775807",
            b"99999999999999999999999999999999",
            b"[]",
            b"{}",
            b'{"e":"kline"}',
            b"[null]",
            b'"\xff"',
        ]
    ),  # fmt: skip
    st.integers().map(lambda i: str(i).encode()),
    st.floats().map(lambda f: json.dumps(f).encode()),
    st.text(max_size=20).map(lambda s: json.dumps(s).encode()),
    _HUGE.map(lambda n: b'"' + b"9" * n + b'"'),
    _HUGE.map(lambda n: b"9" * max(n, 1)),
    _HUGE.map(lambda n: b'"' + b"x" * n + b'"'),
    st.tuples(_DEEP, st.sampled_from([b"[", b'{"a":'])).map(
        lambda d: d[1] * d[0] + b"1" + (b"]" if d[1] == b"[" else b"}") * d[0]
    ),
    _DEEP.map(lambda d: b"[" * d),  # unclosed
    _HUGE.map(lambda n: b"[" + b",".join([b"0"] * max(n // 2, 1)) + b"]"),
    _HUGE.map(lambda n: b"[" + b",".join([b'{"t":1}'] * max(n // 8, 1)) + b"]"),
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (the root included), in document order."""
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:12]):  # enough of a long list
            out += _paths(v, (*at, i))
    return out


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _set(value[head], rest, new)
    return copy


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if rest:
        copy[head] = _delete(value[head], rest)
    else:
        del copy[head]
    return copy


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A real frame or body with one field replaced, deleted or added, cut, or a byte flipped."""
    seed = draw(st.sampled_from(seeds))
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "cut", "flip", "pad"]))
    if kind == "cut":
        return seed[: draw(st.integers(0, len(seed)))]
    if kind == "flip":
        at = draw(st.integers(0, len(seed) - 1))
        return seed[:at] + bytes([draw(st.integers(0, 255))]) + seed[at + 1 :]
    if kind == "pad":
        return seed + b" " * draw(_HUGE)
    doc = json.loads(seed)
    paths = _paths(doc)
    if kind == "delete":
        path = draw(st.sampled_from(paths[1:] or paths))
        if path:
            return json.dumps(_delete(doc, path)).encode()
        return b""
    if kind == "add":
        objects = [p for p in paths if isinstance(_get(doc, p), dict)]
        if objects:
            path = draw(st.sampled_from(objects))
            name = draw(st.sampled_from(["zz", "e", "data", "k", "x", "channel", "error", "id", "stream"]))
            target = _get(doc, path)
            doc = _set(doc, path, {**target, name: _HOLE} if name not in target else {name: _HOLE, **target})
            return json.dumps(doc).encode().replace(json.dumps(_HOLE).encode(), draw(_hostile_raw), 1)
    path = draw(st.sampled_from(paths))
    return json.dumps(_set(doc, path, _HOLE)).encode().replace(json.dumps(_HOLE).encode(), draw(_hostile_raw), 1)


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=30,
)
_any_json = _json_values.map(lambda v: json.dumps(v).encode())


def hostile(seeds: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), _any_json, st.binary(max_size=200), _hostile_raw)


# -- the property -------------------------------------------------------------------------------


def _valid(item: Kline | Trade) -> None:
    """What a decoded kline or trade may hold: amounts finite and >= 0, times that fit the
    events' int64 nanoseconds."""
    if isinstance(item, Trade):
        amounts, times = [item.price, item.size], [item.time_ms]
        assert isinstance(item.trade_id, (int, str))
    else:
        amounts = [item.open, item.high, item.low, item.close, item.volume, item.quote_volume]
        amounts += [item.taker_buy_volume, item.taker_buy_quote_volume]
        times = [item.open_time, item.close_time]
        assert item.trades >= 0
    for x in amounts:
        assert isinstance(x, float) and math.isfinite(x) and x >= 0.0, item
    for t in times:
        assert t >= 0 and t * NS_PER_MS <= INT64_MAX, item


def _parsed(parse: Callable[[], list[Any]]) -> list[Any] | None:
    """parse()'s items, or None when it raised FrameError; any other exception fails the test."""
    try:
        items = parse()
    except FrameError as exc:
        assert isinstance(exc.reason, str) and 0 < len(exc.reason) <= MAX_REASON, exc.reason[:300]
        return None
    assert isinstance(items, list)
    return items


def check_frame(venue: str, raw: bytes) -> None:
    adapter = adapter_for(venue)
    items = _parsed(lambda: adapter.parse(raw))
    for item in items or []:
        _valid(item)
    try:  # the shell hands bytes; a str must behave the same
        text = raw.decode()
    except UnicodeDecodeError:
        pass
    else:
        _parsed(lambda: adapter_for(venue).parse(text))
    # the shell's path: the core turns what parses into events that encode, or FrameError
    core = MarketDataCore(adapter_for(venue), "1m")
    events = _parsed(lambda: core.on_frame(raw, 1))
    for event in events or []:
        subjects.for_event(event)
        assert message_size(encode(event), msg_headers(event)) <= MAX_PAYLOAD  # one bus message


def check_rest(venue: str, body: bytes, kind: str) -> None:
    adapter = adapter_for(venue)
    if kind == "backfill":
        symbol = "kPEPE" if venue == HL else "BTCUSDT"
        interval = "1h" if venue == HL else "1m"
        for item in _parsed(lambda: adapter.parse_backfill(body, symbol, interval)) or []:
            _valid(item)
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return
        _parsed(lambda: adapter.parse_backfill(decoded, symbol, interval))  # the already-decoded form
    elif kind == "time":
        try:
            ms = adapter.parse_server_time(body)
        except FrameError:
            return
        assert 0 <= ms * NS_PER_MS <= INT64_MAX
    else:
        raise AssertionError(kind)


def check_universe(venue: str, bodies: list[bytes]) -> None:
    adapter = adapter_for(venue)
    quote = "USDC" if venue == HL else "USDT"
    entries = _parsed(lambda: adapter.parse_universe(bodies, quote))
    for e in entries or []:
        assert 0 < len(e.symbol) <= 128 and math.isfinite(e.quote_volume) and e.quote_volume >= 0
    # the symbol registry's path: a universe event that encodes and has a subject, or FrameError
    from services.symbol_registry.core import select_universe

    events = _parsed(lambda: [select_universe(venue, bodies, quote_asset=quote, top_n=5, date_ms=1_700_000_000_000)])
    for event in events or []:
        encode(event)
        subjects.for_event(event)
        for symbol in event.symbols:
            subjects.bar(venue, symbol, "1m")


# -- crashes found by this fuzzing, kept as regression cases --------------------------------------


def _trade(symbol: bytes = b"BTCUSDT", t_ms: bytes = b"1", kind: bytes = b"trade") -> bytes:
    ident = b'"t":1' if kind == b"trade" else b'"a":1'
    return (
        b'{"stream":"btcusdt@' + kind + b'","data":{"e":"' + kind + b'","s":"' + symbol + b'",' + ident
        + b',"p":"1.5","q":"2","T":' + t_ms + b',"m":false}}'
    )  # fmt: skip


def _kline(symbol: bytes = b"BTCUSDT", t_ms: bytes = b"1700000040000") -> bytes:
    k = b'{"t":' + t_ms + b',"T":1700000099999,"s":"' + symbol + b'","i":"1m","o":"1","c":"1","h":"1","l":"1",'
    return b'{"stream":"x@kline_1m","data":{"e":"kline","k":' + k + b'"v":"1","n":1,"x":true,"q":"1","V":"1","Q":"1"}}}'


# (venue, parser, input, what it did before the fix). Each was found by the fuzz tests below.
CRASHES: list[tuple[str, str, bytes, str]] = [
    # msgspec skips an unknown field 129..~900 levels deep without RecursionError; the fallback
    # decoder (depth-limited) then raised msgspec.DecodeError, which only ValidationError was
    # caught for: the exception left parse() and the shard's connection task.
    (SPOT, "frame", b'{"a":' * 129 + b"1" + b"}" * 129, "DecodeError from _without_data"),
    (USDM, "frame", b'{"stream":"x","e":' + b"[" * 500 + b"]" * 500 + b"}", "DecodeError from _without_data"),
    # An empty symbol decoded fine; the shell's subjects.trade/bar raised SubjectError.
    (USDM, "frame", _trade(b"", kind=b"aggTrade"), "SubjectError: empty subject token"),
    (SPOT, "frame", _kline(b""), "SubjectError: empty subject token"),
    (
        HL,
        "frame",
        b'{"channel":"trades","data":[{"coin":"","side":"A","px":"1","sz":"1","time":1,"tid":1}]}',
        "SubjectError",
    ),
    # A 1.1 MB symbol made a TradeTick over max_payload: PayloadTooLarge out of the shell's publish.
    (SPOT, "frame", _trade(b"X" * 1_100_000), "PayloadTooLarge"),
    # A time whose ns do not fit int64 (year 2262+) decoded fine and became ts_event > 2**63 - 1,
    # which PostgreSQL's bigint refuses downstream.
    (SPOT, "frame", _trade(t_ms=b"9223372036855"), "ts_event past int64"),
    (
        HL,
        "backfill",
        b'[{"t":0,"T":99999999999999999,"s":"kPEPE","i":"1h","o":"1","c":"1","h":"1","l":"1","v":"1","n":1}]',
        "close time past int64",
    ),
    # An error reply's Raw bytes are not UTF-8-checked by msgspec: .decode() raised
    # UnicodeDecodeError. And a venue's own text went into the reason whole (100 KB per frame,
    # logged and dead-lettered).
    (USDM, "frame", b'{"error":{"\x80ode":2,"msg":"Invalid request"},"id":3}', "UnicodeDecodeError"),
    (HL, "frame", b'{"channel":"error","data":"\xff\xfe"}', "UnicodeDecodeError"),
    (SPOT, "frame", b'{"error":"' + b"x" * 100_000 + b'","id":1}', "a 100 KB reason"),
    (HL, "frame", b'{"channel":"error","data":"' + b"x" * 100_000 + b'"}', "a 100 KB reason"),
    (
        HL,
        "backfill",
        b'[{"t":0,"T":1,"s":"kPEPE","i":"' + b"x" * 100_000 + b'","o":"1","c":"1","h":"1","l":"1","v":"1","n":1}]',
        "a 100 KB reason",
    ),
    # An unknown event type or channel was quoted whole in the reason.
    (USDM, "frame", _trade().replace(b'"e":"trade"', b'"e":"' + b"9" * 70_000 + b'"'), "a 70 KB reason"),
    (HL, "frame", b'{"channel":"' + b"9" * 70_000 + b'","data":[]}', "a 70 KB reason"),
    # A closed kline of another interval is refused by the core, whose reason quoted it whole.
    (SPOT, "frame", _kline().replace(b'"i":"1m"', b'"i":"' + b"y" * 100_000 + b'"'), "a 100 KB reason"),
    # An empty name in a universe became a UniverseUpdated symbol, then market data's SubjectError.
    (HL, "universe", b'[{"universe":[{"name":""}]},[{"dayNtlVlm":"1"}]]', "SubjectError downstream"),
    # The simulator's request parsers: json.loads raises RecursionError (not ValueError) on deep
    # JSON, and "²".isdigit() is True but int("²") raises: each an exception out of the handler.
    (SPOT, "sim_ws", b"[" * 100_000, "RecursionError"),
    (USDM, "sim_ws", b'{"method":' + b"[" * 100_000, "RecursionError"),
    (HL, "sim_ws", b"[" * 100_000 + b"1" + b"]" * 100_000, "RecursionError"),
    (HL, "sim_info", b'{"type":' + b"{" * 100_000, "RecursionError"),
    (SPOT, "sim_rest_int", "²".encode(), "ValueError: invalid literal for int()"),
]


@pytest.mark.parametrize(
    ("venue", "parser", "data", "before"), CRASHES, ids=[f"{v}-{p}-{i}" for i, (v, p, _, _) in enumerate(CRASHES)]
)
def test_input_that_once_crashed_a_parser_now_raises_frame_error_or_decodes(venue, parser, data, before):
    if parser == "frame":
        check_frame(venue, data)
        with pytest.raises(FrameError):  # each of these is refused, not decoded
            MarketDataCore(adapter_for(venue), "1m").on_frame(data, 1)
    elif parser == "backfill":
        check_rest(venue, data, parser)
    elif parser == "universe":
        check_universe(venue, [data])
        assert adapter_for(venue).parse_universe([data], "USDC") == []
    elif parser == "sim_ws":
        check_sim_ws(venue, data.decode())
    elif parser == "sim_info":
        check_sim_info(data)
    else:
        check_sim_int(data.decode())


# -- the fuzz tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("venue", sorted(ADAPTERS))
@FUZZ
@given(data=st.data())
def test_frame_parser_on_hostile_frames_returns_valid_items_or_frame_error(venue, data):
    frames = st.one_of(hostile(_frames(venue)), mutated(_CONTROL[venue]))  # replies are rare in a feed
    check_frame(venue, data.draw(frames, label="frame"))


@pytest.mark.parametrize("venue", sorted(ADAPTERS))
@FUZZ
@given(data=st.data())
def test_backfill_parser_on_hostile_bodies_returns_valid_klines_or_frame_error(venue, data):
    (bodies,) = _rest_bodies(venue)[:1]
    check_rest(venue, data.draw(hostile(bodies), label="body"), "backfill")


@pytest.mark.parametrize("venue", [SPOT, USDM])
@FUZZ
@given(data=st.data())
def test_server_time_parser_on_hostile_bodies_returns_int64_ms_or_frame_error(venue, data):
    seeds = (b'{"serverTime":1499827319559}',)  # the documented response (no capture holds one)
    check_rest(venue, data.draw(hostile(seeds), label="body"), "time")


@pytest.mark.parametrize("venue", sorted(ADAPTERS))
@FUZZ
@given(data=st.data())
def test_universe_parser_on_hostile_bodies_returns_entries_or_frame_error(venue, data):
    bodies = list(_rest_bodies(venue)[1])
    at = data.draw(st.integers(0, len(bodies) - 1), label="which body")
    bodies[at] = data.draw(hostile((bodies[at],)), label="body")
    check_universe(venue, bodies)


# -- the venue simulator's request parsers ---------------------------------------------------------
# What a client sends the simulator: Binance WS control requests, Hyperliquid WS messages, Binance
# REST query parameters and Hyperliquid POST /info bodies. Each is answered (an error reply or
# status), never an exception out of the handler. Seeds: what the adapters send.


def _client_messages(venue: str) -> tuple[bytes, ...]:
    adapter = adapter_for(venue)
    streams = adapter.streams("BTCUSDT" if venue != HL else "BTC", "1m")
    msgs = adapter.subscribe_messages(streams) + adapter.unsubscribe_messages(streams)
    if venue == HL:
        msgs.append(adapter.heartbeat_message() or b"")
    else:
        msgs += [
            b'{"method":"LIST_SUBSCRIPTIONS","id":3}',
            b'{"method":"SET_PROPERTY","params":["combined",true],"id":5}',
        ]
        msgs += [b'{"method":"GET_PROPERTY","params":["combined"],"id":2}']
    return tuple(msgs)


def _sim_market() -> Any:
    from tests.unit.test_venuesim_venue_wire import BARS
    from venuesim.bars import BarSeries
    from venuesim.market import Market

    return Market({"BTC": BarSeries.from_bars(BARS), "BTCUSDT": BarSeries.from_bars(BARS)})


def check_sim_ws(venue: str, text: str) -> None:
    """A WS message from a client gets an answer the simulator can send back; nothing raises."""
    from venuesim.feed import Hub, Subscriber
    from venuesim.ws import WsEndpoint
    from venuesim.ws_hyperliquid import HyperliquidWs

    hub = Hub()
    sub = Subscriber(None, combined=True)  # type: ignore[arg-type]  # control never touches the socket
    if venue == HL:
        answer = HyperliquidWs(_sim_market(), hub, None).control(sub, "1.2.3.4", text)
        assert answer["channel"] in ("pong", "error", "subscriptionResponse")
    else:
        answer = WsEndpoint(hub, None, venue).control(sub, text)
        assert "result" in answer or "error" in answer
    msgspec.json.encode(answer)


def check_sim_int(value: str) -> None:
    from venuesim.rest import _BadRequest, _int_param

    try:
        got = _int_param({"limit": value}, "limit")
    except _BadRequest:
        return
    assert isinstance(got, int) and 0 <= got < 10**20


_SIM_NOW_MS = 1_700_000_100_000


def check_sim_info(raw: bytes) -> None:
    """POST /info: a response, or a 4xx refusal; nothing raises."""
    from aiohttp import web

    from venuesim.clock import SimClock
    from venuesim.rest_hyperliquid import HyperliquidRest, _Rejected, parse_body

    rest = HyperliquidRest(_sim_market(), SimClock(_SIM_NOW_MS))
    try:
        answer = rest._answer(parse_body(raw))
    except _Rejected as exc:
        assert 400 <= exc.status < 500
        return
    assert isinstance(answer, web.Response)


@pytest.mark.parametrize("venue", sorted(ADAPTERS))
@FUZZ
@given(data=st.data())
def test_simulator_ws_control_on_hostile_messages_answers_and_never_raises(venue, data):
    check_sim_ws(venue, data.draw(hostile(_client_messages(venue)), label="message").decode(errors="replace"))


@FUZZ
@given(st.one_of(st.text(max_size=30), _HUGE.map(lambda n: "9" * n), st.sampled_from(["²", "١٢", "+1", " 1", "-1"])))
def test_simulator_rest_int_parameter_is_an_int_or_a_bad_request(value):
    check_sim_int(value)


@FUZZ
@given(data=st.data())
def test_simulator_hyperliquid_info_on_hostile_bodies_answers_a_status(data):
    seeds = (
        b'{"type":"candleSnapshot","req":{"coin":"BTC","interval":"1m","startTime":1699999980000,"endTime":1700000100000}}',
        b'{"type":"metaAndAssetCtxs"}',
        b'{"type":"meta"}',
    )
    check_sim_info(data.draw(hostile(seeds), label="body"))
