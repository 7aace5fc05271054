"""Binance USDT-M futures requests: place, cancel and query an order, open orders, fills,
positions and the account, all SIGNED (binance_sign), and the user data stream's listenKey.

Wire formats (binance-docs, USDⓈ-M futures; every parameter in the query string, the body empty,
signature last; all need the header X-MBX-APIKEY):
  POST   /fapi/v1/order   symbol, side=BUY|SELL, type=LIMIT|MARKET, quantity, [price,
                          timeInForce=GTC|IOC|FOK|GTX (GTX = post-only)], [reduceOnly=true],
                          newClientOrderId, newOrderRespType=RESULT, recvWindow, timestamp, signature
  DELETE /fapi/v1/order   symbol, orderId | origClientOrderId, recvWindow, timestamp, signature
  GET    /fapi/v1/order   symbol, orderId | origClientOrderId, recvWindow, timestamp, signature
  GET    /fapi/v1/openOrders   [symbol], recvWindow, timestamp, signature
  GET    /fapi/v1/userTrades   symbol, [startTime], [fromId], [limit], recvWindow, timestamp, signature
  GET    /fapi/v2/positionRisk [symbol], recvWindow, timestamp, signature
  GET    /fapi/v2/account      recvWindow, timestamp, signature
  POST | PUT | DELETE /fapi/v1/listenKey   no parameters, API key header only (USER_STREAM)
reduceOnly is sent only when true: Binance refuses the parameter altogether in hedge mode.

Trading rules (exchangeInfo filters): PRICE_FILTER tickSize (and minPrice/maxPrice), LOT_SIZE
stepSize/minQty/maxQty, MARKET_LOT_SIZE for market orders when stated, MIN_NOTIONAL notional.
All arithmetic is Decimal: a price is rounded to the tick toward the passive side (buy down,
sell up), a quantity down to the step, and the text sent has no float artefacts (0.1 + 0.2 is
"0.3", never "0.30000000000000004"). An order worth less than the minimum notional is refused
locally with "below_min_notional" unless it is reduce-only (-4164: "Order's notional must be no
smaller than 5.0 (unless you choose reduce only)")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from exchanges.trading._numbers import Number, OrderRuleError, ceil_to, floor_to, multiply, plain, positive, to_decimal
from exchanges.trading.binance_sign import (
    DEFAULT_RECV_WINDOW_MS,
    BinanceCredentials,
    signed_query,
)
from exchanges.trading.client_ids import is_binance_client_order_id

__all__ = [
    "BinanceRequest",
    "BinanceRules",
    "OrderRuleError",
    "account",
    "cancel_order",
    "limit_order",
    "listen_key_close",
    "listen_key_create",
    "listen_key_keepalive",
    "market_order",
    "open_orders",
    "position_risk",
    "query_order",
    "user_trades",
]

Side = Literal["BUY", "SELL"]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTX"]
_SIDES = ("BUY", "SELL")
_TIFS = ("GTC", "IOC", "FOK", "GTX")
ORDER_PATH = "/fapi/v1/order"
LISTEN_KEY_PATH = "/fapi/v1/listenKey"


class BinanceRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One REST call for the shell: method, path and the full query string (for SIGNED requests
    ending in &signature=...). It holds no key: the shell adds credentials.headers(); `security`
    says whether that is needed ("USER_STREAM" and "SIGNED" both send the API key)."""

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    query: str = ""
    security: Literal["SIGNED", "USER_STREAM"] = "SIGNED"

    def url(self, base_url: str) -> str:
        """base_url (e.g. https://fapi.binance.com or the simulator's) + path + ?query."""
        url = base_url.rstrip("/") + self.path
        return f"{url}?{self.query}" if self.query else url


class BinanceRules(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol's order rules from exchangeInfo; None where the venue states no such rule."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_notional: Decimal = Decimal(0)
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal | None = None
    min_price: Decimal = Decimal(0)
    max_price: Decimal | None = None
    market_step_size: Decimal | None = None
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("a symbol's rules need its symbol")
        for name in ("tick_size", "step_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{self.symbol}: {name} must be > 0")

    @classmethod
    def of(cls, symbol: str, *, tick_size: Number, step_size: Number, min_notional: Number = 0) -> BinanceRules:
        """From numbers as the universe carries them (floats become their shortest repr)."""
        return cls(
            symbol=symbol,
            tick_size=to_decimal(tick_size, "tick_size"),
            step_size=to_decimal(step_size, "step_size"),
            min_notional=to_decimal(min_notional, "min_notional"),
        )

    @classmethod
    def from_exchange_info(cls, symbol_info: Mapping[str, Any]) -> BinanceRules:
        """From one element of exchangeInfo's "symbols" (its "filters" list, decimal strings)."""
        filters = {f.get("filterType"): f for f in symbol_info.get("filters", []) if isinstance(f, Mapping)}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        market = filters.get("MARKET_LOT_SIZE", {})
        notional = filters.get("MIN_NOTIONAL", {})

        def number(f: Mapping[str, Any], key: str) -> Decimal | None:
            value = f.get(key)
            if value is None:
                return None
            d = to_decimal(value, key)
            return d if d > 0 else None  # 0 disables a rule in exchangeInfo

        tick, step = number(price, "tickSize"), number(lot, "stepSize")
        if tick is None or step is None:
            raise ValueError(f"{symbol_info.get('symbol')}: exchangeInfo states no tickSize or stepSize")
        return cls(
            symbol=str(symbol_info["symbol"]),
            tick_size=tick,
            step_size=step,
            min_notional=number(notional, "notional") or Decimal(0),
            min_qty=number(lot, "minQty") or Decimal(0),
            max_qty=number(lot, "maxQty"),
            min_price=number(price, "minPrice") or Decimal(0),
            max_price=number(price, "maxPrice"),
            market_step_size=number(market, "stepSize"),
            market_min_qty=number(market, "minQty"),
            market_max_qty=number(market, "maxQty"),
        )

    def round_price(self, price: Number, side: Side) -> Decimal:
        """price rounded to the tick toward the passive side; checked against min/max price."""
        px = positive(price, "price", "invalid_price")
        rounded = floor_to(px, self.tick_size) if side == "BUY" else ceil_to(px, self.tick_size)
        if rounded <= 0 or rounded < self.min_price or (self.max_price is not None and rounded > self.max_price):
            raise OrderRuleError("invalid_price", f"{self.symbol} price {plain(px)} is outside the price filter")
        return rounded

    def round_quantity(self, quantity: Number, *, market: bool = False) -> Decimal:
        """quantity rounded down to the step (MARKET_LOT_SIZE's for market orders when stated);
        "invalid_lot" below the minimum quantity or one step, "max_quantity" above the maximum."""
        qty = positive(quantity, "quantity", "invalid_quantity")
        step = (self.market_step_size if market else None) or self.step_size
        low = (self.market_min_qty if market else None) or self.min_qty
        high = (self.market_max_qty if market else None) or self.max_qty
        rounded = floor_to(qty, step)
        if rounded <= 0 or rounded < low:
            raise OrderRuleError(
                "invalid_lot", f"{self.symbol} quantity {plain(qty)} is below one lot ({plain(max(step, low))})"
            )
        if high is not None and rounded > high:
            raise OrderRuleError("max_quantity", f"{self.symbol} quantity {plain(rounded)} is above {plain(high)}")
        return rounded

    def check_notional(self, price: Decimal, quantity: Decimal, *, reduce_only: bool) -> None:
        value = multiply(price, quantity)
        if not reduce_only and value < self.min_notional:
            raise OrderRuleError(
                "below_min_notional", f"{self.symbol} order worth {plain(value)} is below {plain(self.min_notional)}"
            )


def _signed(
    method: Literal["GET", "POST", "DELETE"],
    path: str,
    params: Sequence[tuple[str, str]],
    credentials: BinanceCredentials,
    timestamp_ms: int,
    recv_window_ms: int,
) -> BinanceRequest:
    query = signed_query(params, credentials, timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)
    return BinanceRequest(method=method, path=path, query=query)


def _side(side: object) -> Side:
    if side == "BUY":
        return "BUY"
    if side == "SELL":
        return "SELL"
    raise OrderRuleError("invalid_side", f"side must be BUY or SELL, got {side!r}")


def _client_id(client_order_id: object) -> str:
    if not isinstance(client_order_id, str) or not is_binance_client_order_id(client_order_id):
        raise OrderRuleError("invalid_client_order_id", "newClientOrderId must match ^[.A-Z:/a-z0-9_-]{1,36}$")
    return client_order_id


def limit_order(
    credentials: BinanceCredentials,
    rules: BinanceRules,
    *,
    side: Side,
    quantity: Number,
    price: Number,
    client_order_id: str,
    timestamp_ms: int,
    time_in_force: TimeInForce = "GTC",
    reduce_only: bool = False,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """POST /fapi/v1/order type=LIMIT, price to the tick (passive side), quantity to the step."""
    if time_in_force not in _TIFS:
        raise OrderRuleError("invalid_order_type", f"timeInForce must be one of {', '.join(_TIFS)}")
    px = rules.round_price(price, _side(side))
    qty = rules.round_quantity(quantity)
    rules.check_notional(px, qty, reduce_only=reduce_only)
    params = [
        ("symbol", rules.symbol),
        ("side", side),
        ("type", "LIMIT"),
        ("quantity", plain(qty)),
        ("price", plain(px)),
        ("timeInForce", time_in_force),
        *([("reduceOnly", "true")] if reduce_only else []),
        ("newClientOrderId", _client_id(client_order_id)),
        ("newOrderRespType", "RESULT"),
    ]
    return _signed("POST", ORDER_PATH, params, credentials, timestamp_ms, recv_window_ms)


def market_order(
    credentials: BinanceCredentials,
    rules: BinanceRules,
    *,
    side: Side,
    quantity: Number,
    reference_price: Number,
    client_order_id: str,
    timestamp_ms: int,
    reduce_only: bool = False,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """POST /fapi/v1/order type=MARKET; the minimum notional is checked at reference_price."""
    _side(side)
    qty = rules.round_quantity(quantity, market=True)
    rules.check_notional(positive(reference_price, "reference price", "invalid_price"), qty, reduce_only=reduce_only)
    params = [
        ("symbol", rules.symbol),
        ("side", side),
        ("type", "MARKET"),
        ("quantity", plain(qty)),
        *([("reduceOnly", "true")] if reduce_only else []),
        ("newClientOrderId", _client_id(client_order_id)),
        ("newOrderRespType", "RESULT"),
    ]
    return _signed("POST", ORDER_PATH, params, credentials, timestamp_ms, recv_window_ms)


def _order_ref(symbol: str, order_id: int | None, client_order_id: str | None) -> list[tuple[str, str]]:
    if (order_id is None) == (client_order_id is None):
        raise ValueError("name the order by exactly one of order_id and client_order_id")
    if order_id is not None:
        return [("symbol", _symbol(symbol)), ("orderId", str(_count(order_id, "order_id")))]
    return [("symbol", _symbol(symbol)), ("origClientOrderId", _client_id(client_order_id))]


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _symbol(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol.isalnum():
        raise ValueError(f"symbol must be alphanumeric, got {symbol!r}")
    return symbol


def cancel_order(
    credentials: BinanceCredentials,
    symbol: str,
    *,
    timestamp_ms: int,
    order_id: int | None = None,
    client_order_id: str | None = None,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """DELETE /fapi/v1/order by orderId or by our client id (origClientOrderId)."""
    params = _order_ref(symbol, order_id, client_order_id)
    return _signed("DELETE", ORDER_PATH, params, credentials, timestamp_ms, recv_window_ms)


def query_order(
    credentials: BinanceCredentials,
    symbol: str,
    *,
    timestamp_ms: int,
    order_id: int | None = None,
    client_order_id: str | None = None,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """GET /fapi/v1/order: how a retry asks, by client id, whether the venue has the order."""
    params = _order_ref(symbol, order_id, client_order_id)
    return _signed("GET", ORDER_PATH, params, credentials, timestamp_ms, recv_window_ms)


def open_orders(
    credentials: BinanceCredentials,
    *,
    timestamp_ms: int,
    symbol: str | None = None,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """GET /fapi/v1/openOrders, of one symbol or (symbol None) all of them."""
    params = [] if symbol is None else [("symbol", _symbol(symbol))]
    return _signed("GET", "/fapi/v1/openOrders", params, credentials, timestamp_ms, recv_window_ms)


def user_trades(
    credentials: BinanceCredentials,
    symbol: str,
    *,
    timestamp_ms: int,
    start_time_ms: int | None = None,
    from_id: int | None = None,
    limit: int | None = None,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """GET /fapi/v1/userTrades: the account's fills in one symbol (for reconciliation)."""
    params = [("symbol", _symbol(symbol))]
    for name, value in (("startTime", start_time_ms), ("fromId", from_id), ("limit", limit)):
        if value is not None:
            params.append((name, str(_count(value, name))))
    return _signed("GET", "/fapi/v1/userTrades", params, credentials, timestamp_ms, recv_window_ms)


def income(
    credentials: BinanceCredentials,
    *,
    timestamp_ms: int,
    income_type: str | None = None,
    start_time_ms: int | None = None,
    limit: int | None = None,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """GET /fapi/v1/income: the account's income history (FUNDING_FEE: the funding it paid and
    received), of every symbol."""
    params: list[tuple[str, str]] = []
    if income_type is not None:
        if not income_type.replace("_", "").isalnum():
            raise ValueError(f"income_type must be a Binance income type, got {income_type!r}")
        params.append(("incomeType", income_type))
    for name, value in (("startTime", start_time_ms), ("limit", limit)):
        if value is not None:
            params.append((name, str(_count(value, name))))
    return _signed("GET", "/fapi/v1/income", params, credentials, timestamp_ms, recv_window_ms)


def position_risk(
    credentials: BinanceCredentials,
    *,
    timestamp_ms: int,
    symbol: str | None = None,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> BinanceRequest:
    """GET /fapi/v2/positionRisk, of one symbol or all."""
    params = [] if symbol is None else [("symbol", _symbol(symbol))]
    return _signed("GET", "/fapi/v2/positionRisk", params, credentials, timestamp_ms, recv_window_ms)


def account(
    credentials: BinanceCredentials, *, timestamp_ms: int, recv_window_ms: int = DEFAULT_RECV_WINDOW_MS
) -> BinanceRequest:
    """GET /fapi/v2/account: balances, margin and positions."""
    return _signed("GET", "/fapi/v2/account", [], credentials, timestamp_ms, recv_window_ms)


def listen_key_create() -> BinanceRequest:
    """POST /fapi/v1/listenKey: start (or get the current) user data stream; answers {"listenKey"}."""
    return BinanceRequest(method="POST", path=LISTEN_KEY_PATH, security="USER_STREAM")


def listen_key_keepalive() -> BinanceRequest:
    """PUT /fapi/v1/listenKey: keep the user data stream alive (it closes 60 minutes after the
    last keepalive)."""
    return BinanceRequest(method="PUT", path=LISTEN_KEY_PATH, security="USER_STREAM")


def listen_key_close() -> BinanceRequest:
    """DELETE /fapi/v1/listenKey: close the user data stream."""
    return BinanceRequest(method="DELETE", path=LISTEN_KEY_PATH, security="USER_STREAM")
