"""Binance spot public REST endpoints (/api/v3/...): the USDT-M handlers with spot's paths, limits
and document shapes. Errors are the same codes and messages as USDT-M's."""

from __future__ import annotations

from typing import Any

from venuesim import binance_spot
from venuesim.market import Series
from venuesim.rest import Rest


class SpotRest(Rest):
    PATH = "/api/v3"
    MAX_LIMIT = 1000  # spot klines: default 500, max 1000

    def exchange_info_doc(self) -> dict[str, Any]:
        return binance_spot.exchange_info(self.market, self.clock.now_ms())

    def ticker(self, series: Series) -> dict[str, Any]:
        return binance_spot.ticker_24hr(series, self.clock.now_ms(), self.clock.started)
