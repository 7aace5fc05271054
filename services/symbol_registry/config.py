"""Typed settings of the symbol-registry service (section `symbol_registry` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class SymbolRegistryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which venue to rank, how many symbols to keep, and how often to refresh."""

    venue: str = "binance_usdm"
    rest_url: str = "https://fapi.binance.com"
    top_n: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    quote_asset: str = "USDT"
    refresh_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 86400.0
