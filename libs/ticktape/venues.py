"""Venue names as they appear in events and subjects."""

BINANCE_SPOT = "binance_spot"
BINANCE_USDM = "binance_usdm"
HYPERLIQUID = "hyperliquid"
ALL = (BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID)
