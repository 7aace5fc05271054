"""What each trading request costs of the venues' documented rate limits, and the limits
themselves, for the execution clients' pacing (exchanges.trading.clients.pacing). Pure: tables
and functions of a request, no clock.

Binance USDT-M (developers.binance.com/docs/derivatives/usds-margined-futures; the numbers are
those GET /fapi/v1/exchangeInfo's `rateLimits` states: REQUEST_WEIGHT 2400 per MINUTE,
ORDERS 1200 per MINUTE and 300 per 10 SECOND):
- request weight is counted per IP over a minute, 2400;
- orders are counted per account, 300 per 10 s and 1200 per minute;
- each endpoint's "Request Weight": POST /fapi/v1/order "1 on 10s order rate limit
  (X-MBX-ORDER-COUNT-10S); 1 on 1min order rate limit (X-MBX-ORDER-COUNT-1M); 0 on IP rate limit
  (x-mbx-used-weight-1m)"; DELETE and GET /fapi/v1/order 1; GET /fapi/v1/openOrders "1 for a
  single symbol; 40 when the symbol parameter is omitted"; GET /fapi/v1/userTrades 5;
  GET /fapi/v2/positionRisk 5; GET /fapi/v2/account 5; POST/PUT/DELETE /fapi/v1/listenKey 1;
  GET /fapi/v1/exchangeInfo 1;
- a 429 is answered with Retry-After (seconds); going on after 429s gets the IP banned, HTTP 418
  with Retry-After until the ban ends ("from 2 minutes to 3 days").

Hyperliquid (hyperliquid-docs for-developers/api/rate-limits, "per IP address"):
- "REST requests share an aggregated weight limit of 1200 per minute";
- exchange requests: "1 + floor(batch_length / 40)", batch_length the length of the action's
  array (orders, cancels, modifies);
- info requests: 2 for l2Book, allMids, clearinghouseState, orderStatus, spotClearinghouseState,
  exchangeStatus; 60 for userRole; 20 for every other documented type; userFills,
  userFillsByTime, historicalOrders (and a few others) "an additional rate limit weight per 20
  items returned", candleSnapshot per 60 items.
Hyperliquid's address-based limits (requests per USDC traded, open orders per address) depend on
the account's volume and are not paced here: the venue's refusal maps to a reason code
(exchanges.trading.errors)."""

from __future__ import annotations

from typing import Any

from exchanges.trading.binance_orders import BinanceRequest

__all__ = [
    "BINANCE_USDM_ORDERS_PER_10S",
    "BINANCE_USDM_ORDERS_PER_MINUTE",
    "BINANCE_USDM_REQUEST_WEIGHT_PER_MINUTE",
    "HYPERLIQUID_WEIGHT_PER_MINUTE",
    "binance_cost",
    "binance_request_cost",
    "hyperliquid_exchange_weight",
    "hyperliquid_info_extra_weight",
    "hyperliquid_info_weight",
]

BINANCE_USDM_REQUEST_WEIGHT_PER_MINUTE = 2400  # per IP
BINANCE_USDM_ORDERS_PER_10S = 300  # per account
BINANCE_USDM_ORDERS_PER_MINUTE = 1200  # per account
HYPERLIQUID_WEIGHT_PER_MINUTE = 1200  # per IP, /info and /exchange together

_BINANCE_WEIGHTS: dict[tuple[str, str], int] = {
    ("POST", "/fapi/v1/order"): 0,  # counted as an order instead
    ("DELETE", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/income"): 30,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v2/account"): 5,
    ("POST", "/fapi/v1/listenKey"): 1,
    ("PUT", "/fapi/v1/listenKey"): 1,
    ("DELETE", "/fapi/v1/listenKey"): 1,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
}
_OPEN_ORDERS_ONE, _OPEN_ORDERS_ALL = 1, 40
_BINANCE_DEFAULT_WEIGHT = 5  # an endpoint not in the table: the heavier common weight, never 0


def binance_cost(method: str, path: str, query: str = "") -> tuple[int, int]:
    """(IP request weight, orders) of one Binance USDT-M request."""
    if (method, path) == ("GET", "/fapi/v1/openOrders"):
        has_symbol = any(part.startswith("symbol=") for part in query.split("&"))
        return (_OPEN_ORDERS_ONE if has_symbol else _OPEN_ORDERS_ALL), 0
    weight = _BINANCE_WEIGHTS.get((method, path), _BINANCE_DEFAULT_WEIGHT)
    return weight, 1 if (method, path) == ("POST", "/fapi/v1/order") else 0


def binance_request_cost(request: BinanceRequest) -> tuple[int, int]:
    """binance_cost of a request built by exchanges.trading.binance_orders."""
    return binance_cost(request.method, request.path, request.query)


_BATCH_KEYS = ("orders", "cancels", "modifies")
ORDERS_PER_EXTRA_WEIGHT = 40


def hyperliquid_exchange_weight(action: dict[str, Any]) -> int:
    """1 + floor(batch_length / 40), batch_length the length of the action's array (an action
    without one, such as modify, is a batch of one)."""
    for key in _BATCH_KEYS:
        batch = action.get(key)
        if isinstance(batch, list):
            return 1 + len(batch) // ORDERS_PER_EXTRA_WEIGHT
    return 1


_INFO_LIGHT = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState",
                         "exchangeStatus"})  # fmt: skip
_INFO_HEAVY = {"userRole": 60}
INFO_WEIGHT = 20
_PER_ITEMS = {
    **dict.fromkeys(
        ("recentTrades", "historicalOrders", "userFills", "userFillsByTime", "fundingHistory", "userFunding",
         "nonUserFundingUpdates", "twapHistory", "userTwapSliceFills", "userTwapSliceFillsByTime",
         "delegatorHistory", "delegatorRewards", "validatorStats"),
        20,
    ),
    "candleSnapshot": 60,
}  # fmt: skip


def hyperliquid_info_weight(body: dict[str, Any]) -> int:
    """The weight of an /info request before its answer is counted."""
    kind = body.get("type")
    if kind in _INFO_LIGHT:
        return 2
    return _INFO_HEAVY.get(str(kind), INFO_WEIGHT)


def hyperliquid_info_extra_weight(kind: str, items: int) -> int:
    """The weight an /info answer of `items` elements adds (charged after the answer)."""
    per = _PER_ITEMS.get(kind)
    return items // per if per and items > 0 else 0
