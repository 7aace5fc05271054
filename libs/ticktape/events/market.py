"""Market-data events (stream subjects md.>)."""

from __future__ import annotations

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
