"""Market-data events (stream subjects md.>)."""

from __future__ import annotations

import msgspec

from ticktape.events.envelope import Envelope
from ticktape.sanity import amount_problem, price_problem


class BarClosed(Envelope, frozen=True, kw_only=True, tag="md.bar.closed"):
    """A closed OHLCV bar. open_time/close_time in ns; close_time is the bar's last instant
    (open_time + timeframe - 1ms, as Binance reports it)."""

    venue: str
    symbol: str
    timeframe: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int = 0
    taker_buy_volume: float = 0.0
    taker_buy_quote_volume: float = 0.0
    backfilled: bool = False


def bar_problem(bar: BarClosed) -> str | None:
    """Why a bar cannot be traded on (a price not finite or outside the hard sanity band of
    ticktape.sanity, high < low, open or close outside [low, high], a volume not finite,
    negative or absurd), or None when it is sound."""
    for name, value in (("open", bar.open), ("high", bar.high), ("low", bar.low), ("close", bar.close)):
        problem = price_problem(name, value)
        if problem is not None:
            return problem
    if not (bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high):
        return f"open/close must lie within [low, high] (got o={bar.open} h={bar.high} l={bar.low} c={bar.close})"
    for name, value in (
        ("volume", bar.volume),
        ("quote_volume", bar.quote_volume),
        ("taker_buy_volume", bar.taker_buy_volume),
        ("taker_buy_quote_volume", bar.taker_buy_quote_volume),
    ):
        problem = amount_problem(name, value)
        if problem is not None:
            return problem
    return None


class BarRejected(Envelope, frozen=True, kw_only=True, tag="md.bar.rejected"):
    """A closed bar from a venue that market data refused to publish, so no bar exists for that
    minute. `reason` is a stable code: open_time (before the configured minimum, not on a
    timeframe boundary, or too far after the symbol's previous bar), price (not finite or
    outside the configured band), range (open or close outside [low, high]), volume (not
    finite, negative or absurd), price_band (high or low too far from the previous accepted
    close); `detail` says why, with the values. ts_event is the bar's close time."""

    venue: str
    symbol: str
    timeframe: str
    open_time: int
    reason: str
    detail: str
    backfilled: bool = False


class TradeTick(Envelope, frozen=True, kw_only=True, tag="md.trade"):
    """One public trade. aggressor is the taker's side ("buy"/"sell"), "" when the venue does
    not say. trade_id is the venue's id as a string."""

    venue: str
    symbol: str
    trade_id: str
    price: float
    size: float
    aggressor: str = ""


class ShardStatus(msgspec.Struct, frozen=True, kw_only=True):
    shard: int
    connected: bool
    symbols: int
    last_frame_age_ms: int | None
    reconnects: int
    frames_per_s: float


class MarketDataStatus(Envelope, frozen=True, kw_only=True, tag="md.status"):
    """Health of one venue's WebSocket shards, published periodically."""

    venue: str
    shards: tuple[ShardStatus, ...]


class FundingRate(Envelope, frozen=True, kw_only=True, tag="md.funding"):
    """One settled funding of a perpetual, as the venue's funding history reports it (Binance
    USDT-M GET /fapi/v1/fundingRate, every 8 h for most symbols; Hyperliquid /info
    fundingHistory, every hour). funding_time (ns) is the settlement; rate is per settlement
    (0.0001 = 0.01%): holders of long positions pay `quantity x mark x rate` when it is positive,
    shorts receive it. mark_price is the venue's mark at the settlement, 0.0 when the venue does
    not say (Hyperliquid; Binance's older records). The id derives from (venue, symbol,
    funding_time), so a re-poll of the same settlement is the same event. ts_event = funding_time."""

    venue: str
    symbol: str
    funding_time: int
    rate: float
    mark_price: float = 0.0
