"""Market-data events (stream subjects md.>)."""

from __future__ import annotations

import math

import msgspec

from ticktape.events.envelope import Envelope


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
    """Why a bar cannot be traded on (non-finite or non-positive prices, high < low, open or
    close outside [low, high], negative volume), or None when it is sound."""
    prices = (bar.open, bar.high, bar.low, bar.close)
    if not all(math.isfinite(p) and p > 0 for p in prices):
        return f"prices must be finite and > 0 (got o={bar.open} h={bar.high} l={bar.low} c={bar.close})"
    if not (bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high):
        return f"open/close must lie within [low, high] (got o={bar.open} h={bar.high} l={bar.low} c={bar.close})"
    if not (math.isfinite(bar.volume) and bar.volume >= 0):
        return f"volume must be finite and >= 0 (got {bar.volume})"
    return None


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
