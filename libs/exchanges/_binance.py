"""Binance's JSON market streams and REST klines, shared by spot and USDT-M (same shapes).

One msgspec decoder takes every frame in one pass: a combined-stream wrapper {stream, data}
whose data is a tagged union on "e" (kline | trade | aggTrade), or a request response
{result|error, id}. Trades decode straight into the normalized Trade/AggTrade, so the hot path
makes no intermediate object. Prices and volumes arrive as decimal strings; the decoder runs in lax mode
so they become floats, constrained to finite, non-negative values."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from exchanges.base import (
    AggTrade,
    Amount,
    Count,
    FrameError,
    HttpRequest,
    Kline,
    Limits,
    Millis,
    Trade,
    UniverseEntry,
    excerpt,
    explain,
    invalid_tag,
    rule,
    split_error,
    usable_symbol,
)
from ticktape import jsonlimits

EVENT_TYPES = ("kline", "trade", "aggTrade")


class _KlineEvent(msgspec.Struct, tag_field="e", tag="kline", gc=False):
    k: Kline


_Event = _KlineEvent | Trade | AggTrade


class _Data(msgspec.Struct, gc=False):
    """The hot path: a combined-stream frame's event, everything else skipped."""

    data: _Event | None = None


class _Frame(msgspec.Struct, gc=False):
    """Combined {stream, data}, a response {result|error, id}, or (raw stream) a bare event."""

    stream: str | None = None
    data: _Event | None = None
    e: str | None = None
    id: int | str | None = None
    error: msgspec.Raw = msgspec.Raw(b"")


class _RestRow(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """[openTime, o, h, l, c, v, closeTime, q, trades, V, Q, ignore] from GET .../klines."""

    open_time: Millis
    open: Amount
    high: Amount
    low: Amount
    close: Amount
    volume: Amount
    close_time: Millis
    quote_volume: Amount
    trades: Count
    taker_buy_volume: Amount
    taker_buy_quote_volume: Amount


class _Filter(msgspec.Struct, gc=False):
    """One of a symbol's exchangeInfo filters; only the trading rules execution checks are read."""

    filterType: str
    tickSize: str | float | None = None  # PRICE_FILTER
    stepSize: str | float | None = None  # LOT_SIZE
    notional: str | float | None = None  # MIN_NOTIONAL (USD-M futures)
    minNotional: str | float | None = None  # NOTIONAL, MIN_NOTIONAL (spot)


class _SymbolInfo(msgspec.Struct, gc=False):
    symbol: str
    status: str
    quoteAsset: str
    contractType: str | None = None
    isSpotTradingAllowed: bool = True
    filters: list[_Filter] = []

    def rules(self) -> tuple[float, float, float]:
        """(tick size, lot size, min notional) from the filters; 0.0 where none states it."""
        tick = lot = notional = 0.0
        for f in self.filters:
            if f.filterType == "PRICE_FILTER":
                tick = rule(f.tickSize)
            elif f.filterType == "LOT_SIZE":
                lot = rule(f.stepSize)
            elif f.filterType in ("MIN_NOTIONAL", "NOTIONAL"):
                notional = rule(f.notional if f.notional is not None else f.minNotional)
        return tick, lot, notional


class _ExchangeInfo(msgspec.Struct, gc=False):
    symbols: list[_SymbolInfo]


class _Ticker(msgspec.Struct, gc=False):
    symbol: str
    quoteVolume: Amount


class _ServerTime(msgspec.Struct, gc=False):
    serverTime: Millis


# The per-frame decoder is msgspec's own: on the hot path a too-deep frame is caught as the
# RecursionError msgspec raises (free when none is raised), not by a depth scan of every frame.
_data_decoder = msgspec.json.Decoder(_Data, strict=False)
_frame_decoder = jsonlimits.Limited(msgspec.json.Decoder(_Frame, strict=False))
_event_decoder = jsonlimits.Limited(msgspec.json.Decoder(_Event, strict=False))
_rest_decoder = jsonlimits.Limited(msgspec.json.Decoder(list[_RestRow], strict=False))
_info_decoder = jsonlimits.Limited(msgspec.json.Decoder(_ExchangeInfo, strict=False))
_tickers_decoder = jsonlimits.Limited(msgspec.json.Decoder(list[_Ticker], strict=False))
_time_decoder = jsonlimits.Limited(msgspec.json.Decoder(_ServerTime, strict=False))
_encoder = msgspec.json.Encoder()

FIELD_NAMES = {
    "t": "open time",
    "T": "close time",
    "s": "symbol",
    "i": "interval",
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "volume",
    "q": "quote volume",
    "n": "trades",
    "V": "taker buy volume",
    "Q": "taker buy quote volume",
    "x": "closed flag",
}
_EVENT_FIELD_NAMES = {
    "k": "kline object",
    "t": "trade id",
    "a": "aggregate trade id",
    "p": "price",
    "q": "quantity",
    "T": "trade time",
    "m": "buyer-is-maker flag",
    "s": "symbol",
}
_REST_COLUMNS = (
    "open time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close time",
    "quote volume",
    "trades",
    "taker buy volume",
    "taker buy quote volume",
)


def decode_frame(raw: bytes | str) -> list[Kline | Trade]:
    """The kline or trade in a combined or raw stream frame; [] for a request response.

    Raises FrameError for anything else: not JSON, a missing or mistyped field, a non-finite
    or negative amount, another event type, or an error response to a request."""
    try:
        event = _data_decoder.decode(raw).data
    except msgspec.ValidationError as exc:
        raise FrameError(_explain_frame(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    except RecursionError:
        raise FrameError("not JSON we accept: nested too deep") from None
    # Exact-class tests (they narrow `event` for the checker, and cost less than isinstance on a
    # msgspec Struct): the union decodes to exactly one of these classes, or None.
    if event.__class__ is Trade or event.__class__ is AggTrade:  # the hot path: most frames are trades
        return [event]
    if event.__class__ is _KlineEvent:
        return [event.k]
    return _without_data(raw)  # no `data`


def _items(event: _Event) -> list[Kline | Trade]:
    return [event.k] if isinstance(event, _KlineEvent) else [event]


def _without_data(raw: bytes | str) -> list[Kline | Trade]:
    """A frame without `data`: a raw stream event, a request response, or garbage."""
    try:
        frame = _frame_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise FrameError(_explain_frame(str(exc))) from None
    except msgspec.DecodeError as exc:  # deeper than jsonlimits allows, though msgspec skipped it
        raise FrameError(f"not JSON we accept: {exc}") from None
    if frame.e is not None:  # a raw (not combined) stream frame
        return _items(_decode_raw_event(raw))
    if frame.error:
        raise FrameError(f"error response to request {excerpt(repr(frame.id))}: {excerpt(bytes(frame.error))}")
    if frame.id is not None:
        return []  # {"result": null, "id": 1}: a (un)subscribe acknowledgement
    if frame.stream is not None:
        raise FrameError("stream frame without its 'data' object")
    raise FrameError("not a stream frame: no 'data' or 'e', and not a request response")


def _decode_raw_event(raw: bytes | str) -> _Event:
    try:
        return _event_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise FrameError(_explain_frame(str(exc), prefix="data.")) from None
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON we accept: {exc}") from None


def _explain_frame(message: str, prefix: str = "") -> str:
    msg, path = split_error(message)
    path = prefix + path if path else prefix.rstrip(".")
    tag = invalid_tag(msg)
    if tag is not None and path.endswith("e"):
        return f"unknown event type {excerpt(repr(tag))}: expected one of {', '.join(map(repr, EVENT_TYPES))}"
    if "missing required field `e`" in msg:
        return f"not a kline or trade event: {path or 'frame'} has no 'e' (event type)"
    names = FIELD_NAMES if ".k." in f".{path}." or path.endswith(".k") else _EVENT_FIELD_NAMES
    return explain(f"{msg} - at `$.{path}`" if path else msg, names)


def decode_rest_klines(rows: bytes | str | list[Any], symbol: str, interval: str) -> list[Kline]:
    """Rows of GET /api/v3/klines or /fapi/v1/klines (bytes or already-decoded lists) as Klines
    with closed=True; the caller drops the still-forming last bar by its close time."""
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
            open_time=r.open_time,
            close_time=r.close_time,
            symbol=symbol,
            interval=interval,
            open=r.open,
            high=r.high,
            low=r.low,
            close=r.close,
            volume=r.volume,
            quote_volume=r.quote_volume,
            trades=r.trades,
            taker_buy_volume=r.taker_buy_volume,
            taker_buy_quote_volume=r.taker_buy_quote_volume,
            closed=True,
        )
        for r in parsed
    ]


def _explain_rest(message: str) -> str:
    msg, path = split_error(message)
    if not path and msg == message and " - at " not in message:
        return f"bad klines payload: {message}"
    cols = re.findall(r"\[(\d+)\]", path)
    if len(cols) == 2 and int(cols[1]) < len(_REST_COLUMNS):
        return f"bad klines row {cols[0]} column {cols[1]} ({_REST_COLUMNS[int(cols[1])]}): {msg}"
    return f"bad klines payload at ${path or ' (top level)'}: {msg}"


class BinanceAdapter:
    """Binance combined streams, SUBSCRIBE/UNSUBSCRIBE control messages, REST klines, server
    time and the 24h-volume universe. Subclasses set the venue, paths, trade stream and limits."""

    venue: str
    limits: Limits
    default_rest_url: str
    default_ws_url: str
    api_prefix: str  # "/api/v3" (spot) or "/fapi/v1" (USDT-M)
    trade_stream_kind: str  # "trade" or "aggTrade"
    # Documented request weight per endpoint (after api_prefix; ticker/24hr: without a symbol,
    # the only way it is called here); klines by klines_weight.
    rest_weights: dict[str, int]

    def kline_stream(self, symbol: str, interval: str) -> str:
        """'btcusdt@kline_1m' (Binance stream names are lowercase)."""
        return f"{symbol.lower()}@kline_{interval}"

    def trade_stream(self, symbol: str) -> str:
        return f"{symbol.lower()}@{self.trade_stream_kind}"

    def streams(self, symbol: str, interval: str, *, trades: bool = True) -> list[str]:
        out = [self.kline_stream(symbol, interval)]
        return out + [self.trade_stream(symbol)] if trades else out

    def connect_url(self, ws_url: str, streams: Sequence[str]) -> str:
        """wss://.../stream?streams=a/b/c: one connection subscribed to all streams at once."""
        return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"

    def on_connect_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]:
        return []  # the streams are in the connect URL

    def subscribe_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]:
        return self._control("SUBSCRIBE", streams, first_id)

    def unsubscribe_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]:
        return self._control("UNSUBSCRIBE", streams, first_id)

    def _control(self, method: str, streams: Sequence[str], first_id: int) -> list[bytes]:
        n = self.limits.streams_per_request
        chunks = [list(streams[i : i + n]) for i in range(0, len(streams), n)]
        return [
            _encoder.encode({"method": method, "params": chunk, "id": first_id + i}) for i, chunk in enumerate(chunks)
        ]

    def heartbeat_message(self) -> bytes | None:
        return None  # the server pings; the WebSocket client answers with pongs

    # The kline or trade in a frame, [] for acks; FrameError for anything else. Bound straight
    # to the decoder: one Python call less per frame on the hot path.
    parse = staticmethod(decode_frame)

    def reset(self, symbols: Iterable[str] | None = None) -> None:
        """Nothing to forget: every Binance frame stands alone."""

    def backfill_request(
        self, rest_url: str, symbol: str, interval: str, *, start_ms: int | None, limit: int, now_ms: int
    ) -> HttpRequest:
        """GET .../klines from start_ms (inclusive, by open time), or the most recent `limit`."""
        url = (
            f"{rest_url.rstrip('/')}{self.api_prefix}/klines?symbol={symbol}&interval={interval}"
            f"&limit={min(limit, self.limits.backfill_max_rows)}"
        )
        return HttpRequest(method="GET", url=url if start_ms is None else f"{url}&startTime={start_ms}")

    def parse_backfill(self, body: bytes | str | list[object], symbol: str, interval: str) -> list[Kline]:
        return decode_rest_klines(body, symbol, interval)

    def server_time_request(self, rest_url: str) -> HttpRequest | None:
        return HttpRequest(method="GET", url=f"{rest_url.rstrip('/')}{self.api_prefix}/time")

    def request_weight(self, request: HttpRequest) -> int:
        """What the request costs of the per-IP REST weight budget (limits.rest_weight_per_minute_per_ip):
        the endpoint's documented weight; 1 for an endpoint not listed."""
        path, _, query = request.url.partition("?")
        endpoint = path[path.rfind(self.api_prefix) + len(self.api_prefix) :] if self.api_prefix in path else path
        if endpoint == "/klines":
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            limit = params.get("limit", "")
            return self.klines_weight(int(limit) if limit.isdigit() else 500)
        return self.rest_weights.get(endpoint, 1)

    def klines_weight(self, limit: int) -> int:
        return self.rest_weights["/klines"]

    def parse_server_time(self, body: bytes | str) -> int:
        try:
            return _time_decoder.decode(body).serverTime
        except msgspec.MsgspecError as exc:
            raise FrameError(f"bad server time response: {exc}") from None

    def universe_requests(self, rest_url: str) -> list[HttpRequest]:
        """exchangeInfo (which symbols trade) and ticker/24hr without a symbol (24h volumes)."""
        base = f"{rest_url.rstrip('/')}{self.api_prefix}"
        return [
            HttpRequest(method="GET", url=f"{base}/exchangeInfo"),
            HttpRequest(method="GET", url=f"{base}/ticker/24hr"),
        ]

    def parse_universe(self, bodies: Sequence[bytes | str], quote_asset: str) -> list[UniverseEntry]:
        """Tradable symbols quoted in quote_asset, by 24h quote volume (desc, then name)."""
        if len(bodies) != 2:
            raise FrameError(f"expected 2 bodies (exchangeInfo, ticker/24hr), got {len(bodies)}")
        try:
            info = _info_decoder.decode(bodies[0])
        except msgspec.MsgspecError as exc:
            raise FrameError(f"bad exchangeInfo: {exc}") from None
        try:
            tickers = _tickers_decoder.decode(bodies[1])
        except msgspec.MsgspecError as exc:
            raise FrameError(f"bad ticker/24hr: {exc}") from None
        eligible = {
            s.symbol: s.rules()
            for s in info.symbols
            if s.quoteAsset == quote_asset and self._tradable(s) and usable_symbol(s.symbol)
        }
        volumes = {t.symbol: t.quoteVolume for t in tickers if t.symbol in eligible}
        ranked = sorted(volumes.items(), key=lambda kv: (-kv[1], kv[0]))
        return [UniverseEntry(symbol, volume, *eligible[symbol]) for symbol, volume in ranked]

    def _tradable(self, s: _SymbolInfo) -> bool:
        return s.status == "TRADING"
