"""Binance USDT-M helpers under their original names, kept for the current shell (service.py,
shard.py) until it moves to the venue adapters in exchanges."""

from __future__ import annotations

from typing import Any

from exchanges._binance import decode_frame, decode_rest_klines
from exchanges.base import FrameError, Kline, Trade
from exchanges.binance_usdm import BinanceUsdmAdapter

__all__ = ["FrameError", "Kline", "combined_stream_url", "kline_stream", "klines_url",
           "parse_frame", "parse_rest_klines"]

_USDM = BinanceUsdmAdapter()


def parse_frame(raw: bytes | str) -> Kline | None:
    """The kline in a stream frame; None for a request response. FrameError for anything else,
    trades included (use the adapter's parse() for those)."""
    items = decode_frame(raw)
    if not items:
        return None
    item = items[0]
    if isinstance(item, Trade):
        raise FrameError("a trade frame, not a kline frame: parse it with a venue adapter")
    return item


def parse_rest_klines(rows: bytes | str | list[Any], symbol: str, interval: str) -> list[Kline]:
    """Rows of GET /fapi/v1/klines as closed Klines; the caller drops the still-open last bar."""
    return decode_rest_klines(rows, symbol, interval)


def kline_stream(symbol: str, interval: str) -> str:
    """'btcusdt@kline_1m' (Binance wants lowercase)."""
    return _USDM.kline_stream(symbol, interval)


def combined_stream_url(ws_url: str, streams: list[str] | tuple[str, ...]) -> str:
    """wss://.../stream?streams=a/b/c: one connection carrying several streams."""
    return _USDM.connect_url(ws_url, streams)


def klines_url(rest_url: str, symbol: str, interval: str, *, start_ms: int | None = None,
               limit: int = 1000) -> str:
    """GET /fapi/v1/klines for a backfill from start_ms (inclusive, by open time)."""
    return _USDM.backfill_request(rest_url, symbol, interval, start_ms=start_ms, limit=limit,
                                  now_ms=0).url
