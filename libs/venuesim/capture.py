"""Raw WebSocket captures: files of `<receive_ns> <json>` lines (hftbacktest's layout), gzip or
plain, read lazily line by line, each frame keyed by the stream a client subscribes to.

Binance: the `stream` of a combined frame (`{"stream":..,"data":..}`); for a raw payload it is
derived from `e` and `s` (`trade` -> `<s>@trade`, `kline` -> `<s>@kline_<i>`, `depthUpdate` ->
`<s>@depth`: the speed suffix is not in the payload; a payload without `e` but with u/s/b/B/a/A is
`<s>@bookTicker`). Hyperliquid: `<channel>:<coin>` (`trades:BTC`, `l2Book:BTC`; candles
`candle:<coin>:<interval>`). Lines that are not frames (a REST depth snapshot, blank lines,
subscription acks) are skipped. Frames keep their exact recorded bytes."""

from __future__ import annotations

import dataclasses
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import msgspec

from venuesim.venues import HYPERLIQUID

_GZIP_MAGIC = b"\x1f\x8b"
_BINANCE_EVENTS = {
    "trade": "trade", "aggTrade": "aggTrade", "depthUpdate": "depth", "bookTicker": "bookTicker",
    "24hrTicker": "ticker", "24hrMiniTicker": "miniTicker", "markPriceUpdate": "markPrice",
}  # fmt: skip
_BOOK_TICKER_KEYS = {"u", "s", "b", "B", "a", "A"}
_NOT_DATA_CHANNELS = {"subscriptionResponse", "pong", "error", "post"}


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One recorded frame: `payload` is what a raw subscriber gets, `combined` (Binance combined
    captures only) what a combined subscriber gets; both are the recorded bytes."""

    recv_ns: int
    key: str
    payload: str
    combined: str | None = None


class _Combined(msgspec.Struct):
    stream: str
    data: msgspec.Raw


class _Channel(msgspec.Struct):
    channel: str
    data: msgspec.Raw


class _Coin(msgspec.Struct):
    coin: str


class _CandleData(msgspec.Struct):
    s: str
    i: str


_decode_combined = msgspec.json.Decoder(_Combined).decode
_decode_channel = msgspec.json.Decoder(_Channel).decode
_decode_any = msgspec.json.Decoder().decode
_decode_coin = msgspec.json.Decoder(_Coin).decode
_decode_coins = msgspec.json.Decoder(list[_Coin]).decode
_decode_candle = msgspec.json.Decoder(_CandleData).decode


def open_capture(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else path.open("rb")


def read_capture(path: Path, venue: str) -> Iterator[Frame]:
    """The frames of one capture file in file order, read lazily."""
    keyer = hyperliquid_frame if venue == HYPERLIQUID else binance_frame
    with open_capture(path) as fh:
        for raw_line in fh:
            ts, sep, body = raw_line.rstrip(b"\r\n").partition(b" ")
            if not sep or not ts.isdigit() or not body:
                continue
            frame = keyer(int(ts), body)
            if frame is not None:
                yield frame


def first_frame_ns(path: Path, venue: str) -> int | None:
    """receive_ns of the file's first frame (None when it has no frame)."""
    return next((frame.recv_ns for frame in read_capture(path, venue)), None)


def binance_frame(recv_ns: int, body: bytes) -> Frame | None:
    text = body.decode()
    try:
        combined = _decode_combined(body)
        return Frame(recv_ns, combined.stream, bytes(combined.data).decode(), text)
    except msgspec.DecodeError:
        pass
    try:
        payload = _decode_any(body)
    except msgspec.DecodeError:
        return None
    stream = binance_stream(payload) if isinstance(payload, dict) else None
    return None if stream is None else Frame(recv_ns, stream, text)


def binance_stream(payload: dict) -> str | None:
    """The stream of a raw Binance payload, from its event type and symbol."""
    symbol = payload.get("s")
    if not isinstance(symbol, str):
        return None
    event = payload.get("e")
    if event == "kline" and isinstance(payload.get("k"), dict):
        return f"{symbol.lower()}@kline_{payload['k'].get('i')}"
    if event in _BINANCE_EVENTS:
        return f"{symbol.lower()}@{_BINANCE_EVENTS[event]}"
    if event is None and payload.keys() >= _BOOK_TICKER_KEYS:
        return f"{symbol.lower()}@bookTicker"
    return None


def hyperliquid_frame(recv_ns: int, body: bytes) -> Frame | None:
    try:
        msg = _decode_channel(body)
        if msg.channel in _NOT_DATA_CHANNELS:
            return None
        if msg.channel == "candle":
            candle = _decode_candle(msg.data)
            key = f"candle:{candle.s}:{candle.i}"
        elif msg.channel == "trades":
            trades = _decode_coins(msg.data)
            if not trades:
                return None
            key = f"trades:{trades[0].coin}"
        else:
            key = f"{msg.channel}:{_decode_coin(msg.data).coin}"
    except msgspec.DecodeError:  # includes validation errors: not a frame we can key
        return None
    return Frame(recv_ns, key, body.decode())
