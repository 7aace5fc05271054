"""Binance spot: klines and raw trades (<symbol>@trade) on stream.binance.com, REST on /api/v3."""

from __future__ import annotations

from exchanges._binance import BinanceAdapter, _SymbolInfo
from exchanges.base import Limits
from ticktape.venues import BINANCE_SPOT

# Source for every WebSocket number: developers.binance.com/docs/binance-spot-api-docs/
# web-socket-streams ("General WSS information" and "WebSocket Limits").
LIMITS = Limits(
    streams_per_connection=1024,  # "A single connection can listen to a maximum of 1024 streams"
    # Not documented; one SUBSCRIBE per 200 names keeps each control message small.
    streams_per_request=200,
    messages_per_second_per_connection=5,  # "limit of 5 incoming messages per second" (ping, pong, JSON)
    connection_attempts=300,  # "300 connections per attempt every 5 minutes per IP"
    connection_window_s=300,
    max_connection_age_s=24 * 3600,  # "only valid for 24 hours; expect to be disconnected"
    server_ping_interval_s=20,  # "ping frame every 20 seconds"
    pong_timeout_s=60,  # "does not receive a pong frame back ... within a minute"
    backfill_max_rows=1000,  # rest-api.md, GET /api/v3/klines: "limit ... Default 500; max 1000"
    # rest-api.md, exchangeInfo rateLimits: REQUEST_WEIGHT, interval MINUTE, limit 6000 (per IP).
    rest_weight_per_minute_per_ip=6000,
)


class BinanceSpotAdapter(BinanceAdapter):
    venue = BINANCE_SPOT
    limits = LIMITS
    default_rest_url = "https://api.binance.com"
    default_ws_url = "wss://stream.binance.com:9443"
    api_prefix = "/api/v3"
    trade_stream_kind = "trade"  # every trade, {"e":"trade","t":id,...}
    # rest-api.md, each endpoint's "Weight": klines 2; exchangeInfo 20; ticker/24hr without a
    # symbol 80; time 1.
    rest_weights = {"/klines": 2, "/exchangeInfo": 20, "/ticker/24hr": 80, "/time": 1}

    def _tradable(self, s: _SymbolInfo) -> bool:
        return s.status == "TRADING" and s.isSpotTradingAllowed
