"""Binance USDT-M futures: klines and aggregate trades (<symbol>@aggTrade) on fstream's /market
path, REST on fapi /fapi/v1. Universe: TRADING perpetuals only."""

from __future__ import annotations

from exchanges._binance import BinanceAdapter, _SymbolInfo
from exchanges.base import Limits
from ticktape.venues import BINANCE_USDM

# Source unless noted: developers.binance.com/docs/derivatives/usds-margined-futures/
# websocket-market-streams.
LIMITS = Limits(
    streams_per_connection=1024,  # "A single connection can listen to a maximum of 1024 streams"
    streams_per_request=200,  # not documented; kept small like spot
    messages_per_second_per_connection=10,  # "limit of 10 incoming messages per second"
    # Not documented for fstream; we assume spot's "300 connections per attempt every 5 minutes".
    connection_attempts=300,
    connection_window_s=300,
    max_connection_age_s=24 * 3600,  # "only valid for 24 hours; expect to be disconnected"
    server_ping_interval_s=180,  # "ping frame every 3 minutes"
    pong_timeout_s=600,  # "does not receive a pong frame back ... within a 10 minute period"
    backfill_max_rows=1500,  # GET /fapi/v1/klines: "limit ... Default 500; max 1500"
    # .../usds-margined-futures/general-info "Limits": REQUEST_WEIGHT 2400 per minute per IP.
    rest_weight_per_minute_per_ip=2400,
)


class BinanceUsdmAdapter(BinanceAdapter):
    venue = BINANCE_USDM
    limits = LIMITS
    default_rest_url = "https://fapi.binance.com"
    # Since 2026-04-23 fstream routes by path: kline and aggTrade live on /market, only book
    # data on /public (Binance announcement 2026-03-06; developers.binance.com CAAS
    # "Market Data Streams"). A bare wss://fstream.binance.com/stream no longer delivers them.
    default_ws_url = "wss://fstream.binance.com/market"
    api_prefix = "/fapi/v1"
    trade_stream_kind = "aggTrade"  # {"e":"aggTrade","a":id,...}; raw @trade frames parse too
    # Each endpoint's "Request Weight": exchangeInfo 1; ticker/24hr without a symbol 40; time 1;
    # klines by limit (klines_weight).
    rest_weights = {"/exchangeInfo": 1, "/ticker/24hr": 40, "/time": 1}

    def klines_weight(self, limit: int) -> int:
        """GET /fapi/v1/klines: "[1,100) 1; [100, 500) 2; [500, 1000] 5; > 1000 10"."""
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def _tradable(self, s: _SymbolInfo) -> bool:
        return s.status == "TRADING" and s.contractType == "PERPETUAL"
