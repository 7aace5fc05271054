"""Binance spot wire shapes built from bars: GET /api/v3/exchangeInfo and /api/v3/ticker/24hr.

Klines and kline stream frames are the same as USDT-M's (venuesim.binance_usdm). No `<symbol>@trade`
frames are made from bars: a bar holds a trade count, not the trades (price, size, side, time, id),
so any would be invented; `@trade` frames come only from replayed captures. Not recorded, so
stated here: bidPrice = askPrice = lastPrice with zero quantities (bars hold no book), prevClosePrice
is the close of the bar before the 24h window (the window's open price when there is none); rate
limits, order types and filter bounds are typical spot values, tick and step sizes come from the data."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venuesim import binance_usdm
from venuesim.exchange_info import split_symbol
from venuesim.market import Market, Series

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]
STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]


def exchange_info(market: Market, server_time: int) -> dict[str, Any]:
    """The spot exchangeInfo document listing every served symbol as TRADING."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
        "symbols": [symbol_info(s) for s in market.series.values()],
    }


def symbol_info(series: Series) -> dict[str, Any]:
    """One spot `symbols[]` entry, keys in the order Binance sends them."""
    base, quote = split_symbol(series.symbol)
    price_dp, qty_dp, _ = series.precision()
    tick, step = _step8(price_dp), _step8(qty_dp)
    return {
        "symbol": series.symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8, "orderTypes": ORDER_TYPES, "icebergAllowed": True, "ocoAllowed": True,
        "otoAllowed": True, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
             "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
             "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": STP_MODES,
    }  # fmt: skip


def ticker_24hr(series: Series, now_ms: int, started: bool) -> dict[str, Any]:
    """GET /api/v3/ticker/24hr for one symbol: the USDT-M statistics plus spot's extra fields."""
    t = binance_usdm.ticker_24hr(series, now_ms, started)
    window = series.window_24h(now_ms, started)
    if window.start > 0:
        prev_close = Decimal(series.bars.fields(window.start - 1)[4])
        prev = f"{prev_close:.{series.precision()[0]}f}"
    else:
        prev = t["openPrice"]
    zero_qty = t["lastQty"]
    return {
        "symbol": t["symbol"], "priceChange": t["priceChange"], "priceChangePercent": t["priceChangePercent"],
        "weightedAvgPrice": t["weightedAvgPrice"], "prevClosePrice": prev, "lastPrice": t["lastPrice"],
        "lastQty": zero_qty, "bidPrice": t["lastPrice"], "bidQty": zero_qty, "askPrice": t["lastPrice"],
        "askQty": zero_qty, "openPrice": t["openPrice"], "highPrice": t["highPrice"], "lowPrice": t["lowPrice"],
        "volume": t["volume"], "quoteVolume": t["quoteVolume"], "openTime": t["openTime"],
        "closeTime": t["closeTime"], "firstId": t["firstId"], "lastId": t["lastId"], "count": t["count"],
    }  # fmt: skip


def _step8(dp: int) -> str:
    """Spot writes filter values with 8 decimals ("0.01000000")."""
    return f"{Decimal(1).scaleb(-dp):.{max(8, dp)}f}"
