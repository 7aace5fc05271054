"""Hyperliquid perps: `candle` and `trades` WebSocket subscriptions, POST /info candleSnapshot
for backfill and metaAndAssetCtxs for the universe. Symbols are coins as Hyperliquid names them
("BTC", "kPEPE").

Hyperliquid candles carry no closed flag: updates of the current candle stream in until one
with a later open time `t` arrives for the same coin and interval. The adapter keeps the last
candle per (coin, interval) and emits it closed at that moment (deterministic: the same frames
in the same order give the same output). Call reset(coins) on every (re)connect, then backfill
those coins: a candle held across a disconnect may lack its final updates, so it must not be
emitted closed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from exchanges.base import (
    Amount,
    Count,
    FrameError,
    HttpRequest,
    Interval,
    Kline,
    Limits,
    Millis,
    Symbol,
    Trade,
    UniverseEntry,
    excerpt,
    explain,
    invalid_tag,
    split_error,
    usable_symbol,
)
from ticktape import jsonlimits
from ticktape.clock import NS_PER_MS, TIMEFRAME_NS
from ticktape.venues import HYPERLIQUID

# Source unless noted: hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits.
LIMITS = Limits(
    # Only a per-IP cap is documented, so one connection may carry all of it.
    streams_per_connection=1000,
    streams_per_request=1,  # one subscription per {"method":"subscribe"} message
    messages_per_minute_per_ip=2000,  # "2000 messages sent to Hyperliquid per minute" (all connections)
    # The page has said "100 websocket connections"; current SDK docs quote 10 per IP and 30 new
    # per minute. We take the stricter numbers.
    connections_per_ip=10,
    connection_attempts=30,
    connection_window_s=60,
    subscriptions_per_ip=1000,  # "Maximum of 1000 websocket subscriptions"
    # .../websocket/timeouts-and-heartbeats: the server closes a connection it has sent
    # nothing to for 60 s; {"method":"ping"} keeps it open.
    idle_timeout_s=60,
    # .../info-endpoint, candle snapshot: "Only the most recent 5000 candles are available".
    backfill_max_rows=5000,
    # rate-limits: "REST requests share an aggregated weight limit of 1200 per minute" (per IP).
    rest_weight_per_minute_per_ip=1200,
)
# rate-limits: info requests weigh 20 (l2Book, allMids and a few user queries 2), and
# candleSnapshot "an additional weight per 60 items returned".
INFO_WEIGHT = 20
CANDLES_PER_EXTRA_WEIGHT = 60

CHANNELS = ("trades", "candle", "subscriptionResponse", "pong", "error")


class _WsTrade(msgspec.Struct, gc=False):
    """One element of the trades channel; side "B" = the buyer was the aggressor, "A" = seller."""

    coin: Symbol
    side: Literal["A", "B"]
    px: Amount
    sz: Amount
    time: Millis
    tid: int


class _Candle(msgspec.Struct, frozen=True, gc=False):
    """A candle as in the candle channel and candleSnapshot: {t, T, s, i, o, c, h, l, v, n}."""

    t: Millis
    T: Millis
    s: Symbol
    i: Interval
    o: Amount
    c: Amount
    h: Amount
    l: Amount  # noqa: E741 - the wire name
    v: Amount
    n: Count


class _TradesMsg(msgspec.Struct, tag_field="channel", tag="trades", gc=False):
    data: list[_WsTrade]


class _CandleMsg(msgspec.Struct, tag_field="channel", tag="candle", gc=False):
    data: _Candle


class _SubscriptionResponse(msgspec.Struct, tag_field="channel", tag="subscriptionResponse", gc=False):
    data: msgspec.Raw = msgspec.Raw(b"")


class _Pong(msgspec.Struct, tag_field="channel", tag="pong", gc=False):
    pass


class _ErrorMsg(msgspec.Struct, tag_field="channel", tag="error", gc=False):
    data: msgspec.Raw = msgspec.Raw(b"")


_Msg = _TradesMsg | _CandleMsg | _SubscriptionResponse | _Pong | _ErrorMsg


class _Asset(msgspec.Struct, gc=False):
    name: str
    isDelisted: bool | None = None
    szDecimals: int | None = None  # sizes are multiples of 10**-szDecimals


# Hyperliquid's documented minimum order value, in USDC. Its price rule (at most 5 significant
# figures and 6 - szDecimals decimals for perps) depends on the price, so no fixed tick is stated.
MIN_ORDER_VALUE = 10.0


class _Meta(msgspec.Struct, gc=False):
    universe: list[_Asset]


class _AssetCtx(msgspec.Struct, gc=False):
    dayNtlVlm: Amount


# Per-frame: msgspec's own decoder; a too-deep frame is caught as its RecursionError (free when
# none is raised) rather than by a depth scan of every frame.
_msg_decoder = msgspec.json.Decoder(_Msg, strict=False)
_candles_decoder = jsonlimits.Limited(msgspec.json.Decoder(list[_Candle], strict=False))
_universe_decoder = jsonlimits.Limited(msgspec.json.Decoder(tuple[_Meta, list[_AssetCtx]], strict=False))
_encoder = msgspec.json.Encoder()


class _SnapshotReq(msgspec.Struct, gc=False):
    interval: str = ""
    startTime: int = 0
    endTime: int = 0


class _InfoBody(msgspec.Struct, gc=False):
    """Our own info request bodies, read back for their weight."""

    type: str = ""
    req: _SnapshotReq | None = None


_weight_decoder = msgspec.json.Decoder(_InfoBody)

_FIELD_NAMES = {
    "t": "open time",
    "T": "close time",
    "s": "coin",
    "i": "interval",
    "o": "open",
    "c": "close",
    "h": "high",
    "l": "low",
    "v": "volume",
    "n": "trades",
    "coin": "coin",
    "side": "side",
    "px": "price",
    "sz": "size",
    "time": "trade time",
    "tid": "trade id",
}
_HEARTBEAT = _encoder.encode({"method": "ping"})


class HyperliquidAdapter:
    venue = HYPERLIQUID
    limits = LIMITS
    default_rest_url = "https://api.hyperliquid.xyz"
    default_ws_url = "wss://api.hyperliquid.xyz/ws"

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], _Candle] = {}  # (coin, interval) -> current candle

    # -- streams and control messages ---------------------------------------------------------

    def kline_stream(self, symbol: str, interval: str) -> str:
        return f"candle:{symbol}:{interval}"

    def trade_stream(self, symbol: str) -> str:
        return f"trades:{symbol}"

    def streams(self, symbol: str, interval: str, *, trades: bool = True) -> list[str]:
        out = [self.kline_stream(symbol, interval)]
        return out + [self.trade_stream(symbol)] if trades else out

    def connect_url(self, ws_url: str, streams: Sequence[str]) -> str:
        return ws_url  # subscriptions are messages sent after connecting

    def on_connect_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]:
        return self.subscribe_messages(streams, first_id)

    def subscribe_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]:
        return [_encoder.encode({"method": "subscribe", "subscription": subscription(s)}) for s in streams]

    def unsubscribe_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]:
        return [_encoder.encode({"method": "unsubscribe", "subscription": subscription(s)}) for s in streams]

    def heartbeat_message(self) -> bytes | None:
        return _HEARTBEAT

    # -- frames -------------------------------------------------------------------------------

    def parse(self, raw: bytes | str) -> list[Kline | Trade]:
        """Trades of a trades message; for a candle update, the previous candle of that coin
        closed (if this one is later) then this one still open. [] for acks and pongs."""
        try:
            msg = _msg_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise FrameError(_explain(str(exc))) from None
        except msgspec.DecodeError as exc:
            raise FrameError(f"not JSON: {exc}") from None
        except RecursionError:
            raise FrameError("not JSON we accept: nested too deep") from None
        # Exact-class tests: they narrow `msg` for the checker and cost less than type() or isinstance.
        if msg.__class__ is _TradesMsg:
            # side "A": the seller was the aggressor, so the buyer was the maker
            return [
                Trade(symbol=t.coin, trade_id=t.tid, price=t.px, size=t.sz, time_ms=t.time, buyer_maker=t.side == "A")
                for t in msg.data
            ]
        if msg.__class__ is _CandleMsg:
            return self._candle(msg.data)
        if msg.__class__ is _ErrorMsg:
            raise FrameError(f"error message from Hyperliquid: {excerpt(bytes(msg.data))}")
        return []

    def _candle(self, c: _Candle) -> list[Kline | Trade]:
        key = (c.s, c.i)
        prev = self._last.get(key)
        if prev is not None and c.t < prev.t:
            return []  # a late update of a candle already superseded: ignore it
        self._last[key] = c
        if prev is None or c.t == prev.t:
            return [_kline(c, closed=False)]
        return [_kline(prev, closed=True), _kline(c, closed=False)]

    def reset(self, symbols: Iterable[str] | None = None) -> None:
        """Forget the candles in progress of these coins (all when None): call on every
        (re)connect with the coins of that connection, before backfilling them."""
        if symbols is None:
            self._last.clear()
            return
        gone = set(symbols)
        for key in [k for k in self._last if k[0] in gone]:
            del self._last[key]

    # -- REST ---------------------------------------------------------------------------------

    def backfill_request(
        self, rest_url: str, symbol: str, interval: str, *, start_ms: int | None, limit: int, now_ms: int
    ) -> HttpRequest:
        """POST /info candleSnapshot from start_ms (or the most recent `limit`) up to now_ms."""
        if interval not in TIMEFRAME_NS:
            raise ValueError(f"unknown interval {interval!r}; known: {', '.join(TIMEFRAME_NS)}")
        step_ms = TIMEFRAME_NS[interval] // NS_PER_MS
        rows = min(limit, self.limits.backfill_max_rows)
        start = now_ms - rows * step_ms if start_ms is None else start_ms
        req = {"coin": symbol, "interval": interval, "startTime": start, "endTime": now_ms}
        return HttpRequest(
            method="POST",
            url=f"{rest_url.rstrip('/')}/info",
            body=_encoder.encode({"type": "candleSnapshot", "req": req}),
        )

    def parse_backfill(self, body: bytes | str | list[object], symbol: str, interval: str) -> list[Kline]:
        """Candles of a candleSnapshot response with closed=True; the core keeps those whose
        close time T is before the server's now (the last one is usually still forming)."""
        try:
            if isinstance(body, (bytes, str)):
                candles = _candles_decoder.decode(body)
            else:
                candles = msgspec.convert(body, list[_Candle], strict=False)
        except msgspec.ValidationError as exc:
            raise FrameError(f"bad candleSnapshot: {_explain_rest(str(exc))}") from None
        except msgspec.DecodeError as exc:
            raise FrameError(f"not JSON: {exc}") from None
        for c in candles:
            if c.s != symbol or c.i != interval:
                raise FrameError(f"candleSnapshot for {symbol} {interval} holds a {c.s} {excerpt(c.i)} candle")
        return [_kline(c, closed=True) for c in candles]

    def server_time_request(self, rest_url: str) -> HttpRequest | None:
        return None  # no time endpoint: use the Date header of an /info response

    def request_weight(self, request: HttpRequest) -> int:
        """What the request costs of the per-IP REST weight budget: 20 per info request, and for
        a candleSnapshot one more per 60 candles it can return (counted from its time range,
        at most backfill_max_rows: the most it may cost)."""
        try:
            body = _weight_decoder.decode(request.body or b"{}")
        except msgspec.MsgspecError:
            return INFO_WEIGHT
        req = body.req
        if body.type != "candleSnapshot" or req is None or req.interval not in TIMEFRAME_NS:
            return INFO_WEIGHT
        step_ms = TIMEFRAME_NS[req.interval] // NS_PER_MS
        rows = min(self.limits.backfill_max_rows, max(0, req.endTime - req.startTime) // step_ms + 1)
        return INFO_WEIGHT + rows // CANDLES_PER_EXTRA_WEIGHT

    def parse_server_time(self, body: bytes | str) -> int:
        raise FrameError("Hyperliquid has no server-time endpoint; use the HTTP Date header")

    def universe_requests(self, rest_url: str) -> list[HttpRequest]:
        return [
            HttpRequest(
                method="POST", url=f"{rest_url.rstrip('/')}/info", body=_encoder.encode({"type": "metaAndAssetCtxs"})
            )
        ]

    def parse_universe(self, bodies: Sequence[bytes | str], quote_asset: str = "USDC") -> list[UniverseEntry]:
        """Listed perps by 24h notional volume (dayNtlVlm, USDC), desc then name. The response is
        [meta, assetCtxs]; the i-th context belongs to the i-th asset of meta.universe."""
        if quote_asset != "USDC":
            raise ValueError(f"Hyperliquid perps are quoted in USDC (got quote_asset {quote_asset!r})")
        if len(bodies) != 1:
            raise FrameError(f"expected 1 body (metaAndAssetCtxs), got {len(bodies)}")
        try:
            meta, ctxs = _universe_decoder.decode(bodies[0])
        except msgspec.MsgspecError as exc:
            raise FrameError(f"bad metaAndAssetCtxs: {exc}") from None
        if len(meta.universe) != len(ctxs):
            raise FrameError(f"metaAndAssetCtxs: {len(meta.universe)} assets but {len(ctxs)} contexts")
        listed = [
            (a, c) for a, c in zip(meta.universe, ctxs, strict=True) if not a.isDelisted and usable_symbol(a.name)
        ]
        volumes = {a.name: c.dayNtlVlm for a, c in listed}
        lots = {a.name: _lot(a.szDecimals) for a, _ in listed}
        ranked = sorted(volumes.items(), key=lambda kv: (-kv[1], kv[0]))
        return [UniverseEntry(symbol, volume, 0.0, lots[symbol], MIN_ORDER_VALUE) for symbol, volume in ranked]


def _lot(sz_decimals: int | None) -> float:
    """The size step of an asset with sz_decimals size decimals; 0.0 (not stated) when absent or
    out of any sane range."""
    return 10.0**-sz_decimals if sz_decimals is not None and 0 <= sz_decimals <= 18 else 0.0


def subscription(stream: str) -> dict[str, str]:
    """The subscription object of a stream key: 'candle:BTC:1m' or 'trades:BTC'. Coins may
    contain ':' (HIP-3 'km:US500'), so the interval is split off the right."""
    kind, _, rest = stream.partition(":")
    if kind == "trades" and rest:
        return {"type": "trades", "coin": rest}
    if kind == "candle" and ":" in rest:
        coin, _, interval = rest.rpartition(":")
        return {"type": "candle", "coin": coin, "interval": interval}
    raise ValueError(f"not a Hyperliquid stream key: {stream!r} (want 'candle:<coin>:<interval>' or 'trades:<coin>')")


def _kline(c: _Candle, *, closed: bool) -> Kline:
    return Kline(
        open_time=c.t,
        close_time=c.T,
        symbol=c.s,
        interval=c.i,
        open=c.o,
        high=c.h,
        low=c.l,
        close=c.c,
        volume=c.v,
        quote_volume=0.0,
        trades=c.n,
        taker_buy_volume=0.0,
        taker_buy_quote_volume=0.0,
        closed=closed,
    )


def _explain(message: str) -> str:
    msg, path = split_error(message)
    tag = invalid_tag(msg)
    if tag is not None and path == "channel":
        return f"unknown channel {excerpt(repr(tag))}: expected one of {', '.join(map(repr, CHANNELS))}"
    if "missing required field `channel`" in msg and not path:
        return "not a Hyperliquid message: no 'channel'"
    return explain(message, _FIELD_NAMES)


def _explain_rest(message: str) -> str:
    return explain(message, _FIELD_NAMES)
