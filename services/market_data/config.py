"""Typed settings of the market-data service (section `market_data` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class MarketDataConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Binance USDT-M endpoints, connection fan-out, backfill depth and reconnect backoff."""

    venue: str = "binance_usdm"
    timeframe: str = "1m"
    rest_url: str = "https://fapi.binance.com"
    ws_url: str = "wss://fstream.binance.com"
    # Binance documents at most 1024 streams per USDT-M connection.
    streams_per_connection: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 100
    # GET /fapi/v1/klines returns at most 1500 rows per request.
    backfill_limit: Annotated[int, msgspec.Meta(ge=1, le=1500)] = 1000
    reconnect_backoff_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    reconnect_backoff_max_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0

    def __post_init__(self) -> None:
        if self.reconnect_backoff_max_s < self.reconnect_backoff_initial_s:
            raise ValueError(
                "reconnect_backoff_max_s must be >= reconnect_backoff_initial_s "
                f"(got {self.reconnect_backoff_max_s} < {self.reconnect_backoff_initial_s})"
            )
