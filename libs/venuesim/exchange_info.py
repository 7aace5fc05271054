"""GET /fapi/v1/exchangeInfo for the served symbols, in the shape of a real USDT-M capture.

Static limits (rate limits, order limits, notional) are typical USDT-M values; per-symbol precision,
tick and step sizes are derived from the recorded bars, not recorded from the exchange."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venuesim.market import Market, Series

QUOTE_ASSETS = ("USDT", "USDC", "BUSD")
# Binance's placeholder delivery date for perpetuals (2100-12-25 08:00 UTC).
PERPETUAL_DELIVERY_MS = 4133404800000

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]
MIN_NOTIONAL = "5"  # USDT, the MIN_NOTIONAL filter of every served symbol
ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX", "GTD"]


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) from the quote suffix. An unknown suffix is served as base=symbol, quote=USDT."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, "USDT"


def exchange_info(market: Market, server_time: int) -> dict[str, Any]:
    """The full exchangeInfo document listing every served symbol as a TRADING perpetual."""
    symbols = [symbol_info(s) for s in market.series.values()]
    assets = sorted({s["quoteAsset"] for s in symbols})
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "futuresType": "U_MARGINED",
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
        "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets],
        "symbols": symbols,
    }


def symbol_info(series: Series) -> dict[str, Any]:
    """One `symbols[]` entry; onboardDate is the first recorded bar."""
    base, quote = split_symbol(series.symbol)
    price_dp, qty_dp, _ = series.precision()
    tick, step = _step(price_dp), _step(qty_dp)
    return {
        "symbol": series.symbol,
        "pair": series.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": series.open_times[0],
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": price_dp,
        "quantityPrecision": qty_dp,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "10000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "10000000", "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "1000000", "stepSize": step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": MIN_NOTIONAL},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },  # fmt: skip
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": TIME_IN_FORCE,
    }


def _step(dp: int) -> str:
    return format(Decimal(1).scaleb(-dp), "f")
