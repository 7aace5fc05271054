"""Exchange wire protocols shared by the services: venue adapters that parse WebSocket frames and
REST payloads into plain structs, build URLs and subscribe messages, and know each venue's limits.
Pure (no I/O); the market-data and symbol-registry shells do the networking.

`adapter_for(venue)` gives a fresh adapter (Hyperliquid's keeps per-connection candle state, so
one adapter per core)."""

from __future__ import annotations

from collections.abc import Callable

from exchanges.base import (
    AggTrade,
    FrameError,
    HttpRequest,
    Kline,
    Limits,
    Trade,
    UniverseEntry,
    VenueAdapter,
)
from exchanges.binance_spot import BinanceSpotAdapter
from exchanges.binance_usdm import BinanceUsdmAdapter
from exchanges.hyperliquid import HyperliquidAdapter
from ticktape.venues import BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID

ADAPTERS: dict[str, Callable[[], VenueAdapter]] = {
    BINANCE_SPOT: BinanceSpotAdapter,
    BINANCE_USDM: BinanceUsdmAdapter,
    HYPERLIQUID: HyperliquidAdapter,
}


def adapter_for(venue: str) -> VenueAdapter:
    """A new adapter for a venue name from ticktape.venues; ValueError naming the known ones."""
    try:
        return ADAPTERS[venue]()
    except KeyError:
        raise ValueError(f"unknown venue {venue!r}; known: {', '.join(ADAPTERS)}") from None


__all__ = [
    "ADAPTERS",
    "AggTrade",
    "BinanceSpotAdapter",
    "BinanceUsdmAdapter",
    "FrameError",
    "HttpRequest",
    "HyperliquidAdapter",
    "Kline",
    "Limits",
    "Trade",
    "UniverseEntry",
    "VenueAdapter",
    "adapter_for",
]
