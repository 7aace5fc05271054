"""Binance USDT-M kline wire formats: WebSocket frames and REST klines, parsed into `Kline`.

Pure and fast: one msgspec decoder per shape, validation in C. Prices and volumes arrive as
decimal strings; the decoder runs in lax mode so they become floats, constrained to finite,
non-negative values. Times stay in Binance milliseconds here; the core converts to ns."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import msgspec

# Finite and >= 0: "NaN", "-1" and "inf" all fail the constraint ("1e400" overflows).
Amount = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
Millis = Annotated[int, msgspec.Meta(ge=0)]


class FrameError(ValueError):
    """A frame that is not a valid kline event or subscription response; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Kline(msgspec.Struct, frozen=True, gc=False):
    """One kline as Binance reports it (times in ms). `closed` is False while the bar is open."""

    open_time: Millis = msgspec.field(name="t")
    close_time: Millis = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    interval: str = msgspec.field(name="i")
    open: Amount = msgspec.field(name="o")
    high: Amount = msgspec.field(name="h")
    low: Amount = msgspec.field(name="l")
    close: Amount = msgspec.field(name="c")
    volume: Amount = msgspec.field(name="v")
    quote_volume: Amount = msgspec.field(name="q")
    trades: Annotated[int, msgspec.Meta(ge=0)] = msgspec.field(name="n")
    taker_buy_volume: Amount = msgspec.field(name="V")
    taker_buy_quote_volume: Amount = msgspec.field(name="Q")
    closed: bool = msgspec.field(name="x")


class _Event(msgspec.Struct, gc=False):
    e: str
    k: Kline | None = None


class _Frame(msgspec.Struct, gc=False):
    """Every shape in one pass: combined {stream, data}, raw {e, k}, response {result|error, id}."""

    stream: str | None = None
    data: _Event | None = None
    e: str | None = None
    k: Kline | None = None
    id: int | str | None = None
    error: msgspec.Raw = msgspec.Raw(b"")


class _RestRow(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """[openTime, o, h, l, c, v, closeTime, q, trades, V, Q, ignore] from GET /fapi/v1/klines."""

    open_time: Millis
    open: Amount
    high: Amount
    low: Amount
    close: Amount
    volume: Amount
    close_time: Millis
    quote_volume: Amount
    trades: Annotated[int, msgspec.Meta(ge=0)]
    taker_buy_volume: Amount
    taker_buy_quote_volume: Amount


_frame_decoder = msgspec.json.Decoder(_Frame, strict=False)
_rest_decoder = msgspec.json.Decoder(list[_RestRow], strict=False)

_FIELD_NAMES = {
    "t": "open time", "T": "close time", "s": "symbol", "i": "interval", "o": "open",
    "h": "high", "l": "low", "c": "close", "v": "volume", "q": "quote volume", "n": "trades",
    "V": "taker buy volume", "Q": "taker buy quote volume", "x": "closed flag",
}
_REST_COLUMNS = (
    "open time", "open", "high", "low", "close", "volume", "close time", "quote volume",
    "trades", "taker buy volume", "taker buy quote volume",
)
_AT = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$", re.S)
_MISSING_FIELD = re.compile(r"missing required field `(?P<field>[^`]+)`")


def parse_frame(raw: bytes | str) -> Kline | None:
    """The kline in a combined or raw stream frame; None for a subscription acknowledgement.

    Raises FrameError for anything else: not JSON, a missing or mistyped field, a non-finite or
    negative amount, another event type, or an error response to a subscribe request."""
    try:
        frame = _frame_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        kind = _probe_event_type(raw)
        if kind is not None and kind != "kline":
            raise FrameError(f"unknown event type {kind!r}: expected 'kline'") from None
        raise FrameError(_explain(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    event = frame.data
    if event is not None:
        kind, kline = event.e, event.k
    elif frame.e is not None:
        kind, kline = frame.e, frame.k
    elif frame.error:
        raise FrameError(f"error response to request {frame.id!r}: {bytes(frame.error).decode()}")
    elif frame.id is not None:
        return None  # {"result": null, "id": 1}: a (un)subscribe acknowledgement
    else:
        raise FrameError("not a stream frame: no 'data' or 'e', and not a request response")
    if kind != "kline":
        raise FrameError(f"unknown event type {kind!r}: expected 'kline'")
    if kline is None:
        raise FrameError("kline event without its 'k' object")
    return kline


def parse_rest_klines(rows: bytes | str | list[Any], symbol: str, interval: str) -> list[Kline]:
    """Rows of GET /fapi/v1/klines (raw bytes or already-decoded lists) as closed Klines.

    `closed` is True for every row; the caller drops the still-open last bar by close time."""
    try:
        if isinstance(rows, (bytes, str)):
            parsed = _rest_decoder.decode(rows)
        else:
            parsed = msgspec.convert(rows, list[_RestRow], strict=False)
    except msgspec.ValidationError as exc:
        raise FrameError(_explain_rest(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    return [
        Kline(
            open_time=r.open_time, close_time=r.close_time, symbol=symbol, interval=interval,
            open=r.open, high=r.high, low=r.low, close=r.close, volume=r.volume,
            quote_volume=r.quote_volume, trades=r.trades, taker_buy_volume=r.taker_buy_volume,
            taker_buy_quote_volume=r.taker_buy_quote_volume, closed=True,
        )
        for r in parsed
    ]


class _Probe(msgspec.Struct):
    e: Any = None
    data: Any = None


def _probe_event_type(raw: bytes | str) -> object:
    """The 'e' of a frame that failed typed decoding, so another event type reads as such."""
    try:
        probe = msgspec.json.decode(raw, type=_Probe)
    except msgspec.MsgspecError:
        return None
    if isinstance(probe.data, dict):
        return probe.data.get("e")
    return probe.e


def _explain(message: str) -> str:
    m = _AT.match(message)
    msg, path = (m.group("msg"), m.group("path")) if m else (message, "")
    missing = _MISSING_FIELD.search(msg)
    if missing:
        field = missing.group("field")
        where = f"{path.lstrip('.')}.{field}".lstrip(".")
        return f"missing field {where}{_label(field)}"
    field = path.rsplit(".", 1)[-1]
    hint = " (amounts must be finite, non-negative decimal strings)" if "float" in msg else ""
    return f"bad value at {path.lstrip('.') or 'top level'}{_label(field)}: {msg}{hint}"


def _explain_rest(message: str) -> str:
    m = _AT.match(message)
    if not m:
        return f"bad klines payload: {message}"
    msg, path = m.group("msg"), m.group("path")
    cols = re.findall(r"\[(\d+)\]", path)
    if len(cols) == 2 and int(cols[1]) < len(_REST_COLUMNS):
        return f"bad klines row {cols[0]} column {cols[1]} ({_REST_COLUMNS[int(cols[1])]}): {msg}"
    return f"bad klines payload at {path or 'top level'}: {msg}"


def _label(field: str) -> str:
    name = _FIELD_NAMES.get(field)
    return f" ({name})" if name else ""


def kline_stream(symbol: str, interval: str) -> str:
    """The stream name for a symbol's klines: 'btcusdt@kline_1m' (Binance wants lowercase)."""
    return f"{symbol.lower()}@kline_{interval}"


def combined_stream_url(ws_url: str, streams: list[str] | tuple[str, ...]) -> str:
    """wss://.../stream?streams=a/b/c: one connection carrying several streams."""
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


def klines_url(rest_url: str, symbol: str, interval: str, *, start_ms: int | None = None,
               limit: int = 1000) -> str:
    """GET /fapi/v1/klines for a backfill from start_ms (inclusive, by open time)."""
    url = f"{rest_url.rstrip('/')}/fapi/v1/klines?symbol={symbol}&interval={interval}&limit={limit}"
    return url if start_ms is None else f"{url}&startTime={start_ms}"
