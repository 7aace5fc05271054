"""What every venue adapter speaks: normalized klines and trades, documented limits, HTTP
requests to make, and the adapter protocol the core and the shell program against.

Adapters are pure: they build URLs, messages and requests, and parse bytes; the shell does the
I/O. Times stay in venue milliseconds here; the core converts to ns."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal, Protocol

import msgspec

# Finite and >= 0: "NaN", "-1" and "inf" all fail the constraint ("1e400" overflows).
Amount = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
# At most what an event's int64 nanoseconds can hold (2**63 - 1 ns, in the year 2262): a larger
# time would be refused downstream (PostgreSQL bigint), long after the frame was acked.
Millis = Annotated[int, msgspec.Meta(ge=0, le=(2**63 - 1) // 1_000_000)]
# Symbols and trade ids become subject tokens and event ids: never empty (no subject token),
# never long enough to overflow an index or a bus message. Venues use at most ~20 characters.
SYMBOL_MAX = 128
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=SYMBOL_MAX)]
TradeId = int | Annotated[str, msgspec.Meta(min_length=1, max_length=SYMBOL_MAX)]
Interval = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]  # "1m", "1h", "1M"
Count = Annotated[int, msgspec.Meta(ge=0)]
Aggressor = Literal["buy", "sell", ""]


class FrameError(ValueError):
    """Input from a venue (a WebSocket frame or a REST body) that is not valid; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Kline(msgspec.Struct, frozen=True, gc=False):
    """One kline (candle) as the venue reports it, times in ms. `closed` is False while the bar
    is still forming. Binance frames decode straight into this (hence the wire names);
    venues that do not report a field (Hyperliquid: quote and taker volumes) give 0.0."""

    open_time: Millis = msgspec.field(name="t")
    close_time: Millis = msgspec.field(name="T")
    symbol: Symbol = msgspec.field(name="s")
    interval: Interval = msgspec.field(name="i")
    open: Amount = msgspec.field(name="o")
    high: Amount = msgspec.field(name="h")
    low: Amount = msgspec.field(name="l")
    close: Amount = msgspec.field(name="c")
    volume: Amount = msgspec.field(name="v")
    quote_volume: Amount = msgspec.field(name="q")
    trades: Count = msgspec.field(name="n")
    taker_buy_volume: Amount = msgspec.field(name="V")
    taker_buy_quote_volume: Amount = msgspec.field(name="Q")
    closed: bool = msgspec.field(name="x")


class Trade(msgspec.Struct, frozen=True, gc=False, tag_field="e", tag="trade"):
    """One public trade. Binance `trade` events decode straight into it (hence the wire names
    and the tag: no copy on the hot path); other venues construct it.

    trade_id is the venue's id (int or str; events carry it as a string). buyer_maker is True
    when the buyer's order was resting, so the taker (aggressor) sold; None when the venue
    does not say."""

    symbol: Symbol = msgspec.field(name="s")
    trade_id: TradeId = msgspec.field(name="t")
    price: Amount = msgspec.field(name="p")
    size: Amount = msgspec.field(name="q")
    time_ms: Millis = msgspec.field(name="T")
    buyer_maker: bool | None = msgspec.field(name="m")

    @property
    def aggressor(self) -> Aggressor:
        return AGGRESSOR[self.buyer_maker]


class AggTrade(Trade, frozen=True, gc=False, tag="aggTrade"):
    """Trades of one taker order at one price (Binance aggTrade): trade_id is the aggregate id."""

    trade_id: TradeId = msgspec.field(name="a")


AGGRESSOR: dict[bool | None, Aggressor] = {True: "sell", False: "buy", None: ""}


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's documented connection limits; None where the venue documents none. Each
    adapter module says where every number comes from."""

    streams_per_connection: int
    streams_per_request: int
    # Messages we may send per connection per second (Binance counts pings, pongs and JSON).
    messages_per_second_per_connection: float | None = None
    messages_per_minute_per_ip: int | None = None
    # New connections per IP: at most `connection_attempts` per `connection_window_s`.
    connection_attempts: int | None = None
    connection_window_s: int | None = None
    connections_per_ip: int | None = None
    subscriptions_per_ip: int | None = None
    # The venue drops a connection at this age; reconnect before it does.
    max_connection_age_s: int | None = None
    # Server-initiated ping frames: answer with a pong within pong_timeout_s.
    server_ping_interval_s: int | None = None
    pong_timeout_s: int | None = None
    # The server closes a connection idle this long; send heartbeat_message() before.
    idle_timeout_s: int | None = None
    # REST request weight per IP per minute; each request's cost is the adapter's request_weight.
    rest_weight_per_minute_per_ip: int | None = None
    backfill_max_rows: int


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A REST call for the shell to make; body is JSON when set (Content-Type: application/json)."""

    method: Literal["GET", "POST"]
    url: str
    body: bytes | None = None


class UniverseEntry(msgspec.Struct, frozen=True):
    """A tradable symbol with its 24h quote (notional) volume, for ranking, and the trading rules
    the venue's metadata states for it (0: not stated): price tick, quantity step (lot), and
    minimum order value (notional, in the quote asset)."""

    symbol: str
    quote_volume: float
    tick_size: float = 0.0
    lot_size: float = 0.0
    min_notional: float = 0.0


def rule(value: str | float | None) -> float:
    """A trading rule from venue metadata as a positive finite float; 0.0 (not stated) for a
    missing, unreadable, zero, negative or non-finite value, so one odd listing never fails a
    whole universe (it is left unchecked instead)."""
    try:
        number = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return number if 0.0 < number < float("inf") else 0.0


class VenueAdapter(Protocol):
    """One venue's wire protocol. Pure: no I/O, no clock. Stateful only where the venue forces
    it (Hyperliquid infers candle closes from the next candle), and then deterministically."""

    venue: str
    limits: Limits
    default_rest_url: str
    default_ws_url: str

    def kline_stream(self, symbol: str, interval: str) -> str: ...
    def trade_stream(self, symbol: str) -> str: ...
    def streams(self, symbol: str, interval: str, *, trades: bool = True) -> list[str]: ...
    def connect_url(self, ws_url: str, streams: Sequence[str]) -> str: ...
    def on_connect_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]: ...
    def subscribe_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]: ...
    def unsubscribe_messages(self, streams: Sequence[str], first_id: int = 1) -> list[bytes]: ...
    def heartbeat_message(self) -> bytes | None: ...
    def parse(self, raw: bytes | str) -> list[Kline | Trade]: ...
    def reset(self, symbols: Iterable[str] | None = None) -> None: ...
    def backfill_request(
        self, rest_url: str, symbol: str, interval: str, *, start_ms: int | None, limit: int, now_ms: int
    ) -> HttpRequest: ...
    def parse_backfill(self, body: bytes | str | list[object], symbol: str, interval: str) -> list[Kline]: ...
    def server_time_request(self, rest_url: str) -> HttpRequest | None: ...
    def request_weight(self, request: HttpRequest) -> int: ...
    def parse_server_time(self, body: bytes | str) -> int: ...
    def universe_requests(self, rest_url: str) -> list[HttpRequest]: ...
    def parse_universe(self, bodies: Sequence[bytes | str], quote_asset: str) -> list[UniverseEntry]: ...


# -- turning msgspec validation messages into reasons a person can act on ----------------------

_AT = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$", re.S)
_MISSING_FIELD = re.compile(r"missing required field `(?P<field>[^`]+)`")
_INVALID_TAG = re.compile(r"^Invalid value '(?P<tag>[^']*)'$")


def split_error(message: str) -> tuple[str, str]:
    """('Expected `float`...', 'data.k.o') from msgspec's '<msg> - at `$.data.k.o`'."""
    m = _AT.match(message)
    return (m.group("msg"), m.group("path").lstrip(".")) if m else (message, "")


def invalid_tag(message: str) -> str | None:
    """The unknown tag value of a tagged-union validation message, else None."""
    m = _INVALID_TAG.match(message)
    return m.group("tag") if m else None


def explain(message: str, names: dict[str, str]) -> str:
    """A reason naming the field, e.g. 'bad value at data.k.o (open): Expected ...'."""
    msg, path = split_error(message)
    missing = _MISSING_FIELD.search(msg)
    if missing:
        field = missing.group("field")
        where = f"{path}.{field}".lstrip(".")
        return f"missing field {where}{label(field, names)}"
    field = path.rsplit(".", 1)[-1]
    hint = " (amounts must be finite, non-negative decimal strings)" if "float" in msg else ""
    return f"bad value at {path or 'top level'}{label(field, names)}: {msg}{hint}"


def label(field: str, names: dict[str, str]) -> str:
    name = names.get(field)
    return f" ({name})" if name else ""


EXCERPT_CHARS = 300


def excerpt(value: bytes | str) -> str:
    """Venue-supplied text for a FrameError reason: invalid UTF-8 replaced (msgspec.Raw is not
    validated), cut to EXCERPT_CHARS, since a reason is logged and dead-lettered per frame."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return text if len(text) <= EXCERPT_CHARS else f"{text[:EXCERPT_CHARS]}... ({len(text)} chars)"


def usable_symbol(symbol: str) -> bool:
    """Whether a universe entry's name can be a Symbol; a universe leaves out the others rather
    than fail whole for one odd listing."""
    return 0 < len(symbol) <= SYMBOL_MAX


def closed_before(klines: list[Kline], now_ms: int) -> list[Kline]:
    """The klines that had closed by now_ms (close_time < now_ms), oldest first, closed=True."""
    done = sorted((k for k in klines if k.close_time < now_ms), key=lambda k: k.open_time)
    return [k if k.closed else msgspec.structs.replace(k, closed=True) for k in done]
