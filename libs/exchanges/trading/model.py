"""The venue-neutral values the execution clients (exchanges.trading.clients) take and give back,
and the parsers from each venue's documented answers into them. Pure: no I/O, no clock.

In: an OrderIntent (what the order event asks for; its event id gives the client order id).
Out: OrderAck (the venue has the order: its id and state), OrderRejected (it does not, with a
stable reason code from exchanges.trading.errors or an order rule), OutcomeUnknown (every attempt
ended without an answer and the venue could not be asked: reconcile before trading on), and for
queries OrderState, Fill, Position and AccountState. All frozen msgspec Structs, numbers Decimal
(exact, encoded as strings), times venue milliseconds, so the execution service can turn them into
events as they are.

Status names, the same for both venues: "open" (resting, nothing filled), "partially_filled"
(resting, some filled), "filled", "canceled", "expired" (an IOC's unfilled rest, a GTX that would
have matched), "rejected". Binance: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED and
EXPIRED_IN_MATCH, REJECTED. Hyperliquid orderStatus: open, filled, canceled and every
"...Canceled", rejected and every "...Rejected" (iocCancelRejected, an IOC that matched nothing,
is "expired"), triggered as "open".

Parsers raise ResponseError (a ValueError) for an answer of the wrong shape; they never see keys."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from ticktape.venues import BINANCE_USDM, HYPERLIQUID

__all__ = [
    "AccountState",
    "CancelAck",
    "Fill",
    "OrderAck",
    "OrderIntent",
    "OrderRejected",
    "OrderState",
    "OutcomeUnknown",
    "PlaceResult",
    "Position",
    "ResponseError",
]

Side = Literal["buy", "sell"]
Status = Literal["open", "partially_filled", "filled", "canceled", "expired", "rejected"]
TimeInForce = Literal["gtc", "ioc", "post_only"]


class ResponseError(ValueError):
    """A venue answer that does not have the documented shape (the text names what, never a key)."""


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True):
    """One order to place. event_id: the order event's id (the client order id derives from it,
    so a retry or a restart sends the same one). symbol: Binance's symbol or Hyperliquid's coin.
    price: the limit price (limit orders). reference_price: market orders only: Binance checks
    the minimum notional at it, Hyperliquid bounds its IOC limit at it x (1 +/- slippage)."""

    event_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: Literal["limit", "market"] = "limit"
    price: Decimal | None = None
    time_in_force: TimeInForce = "gtc"
    reduce_only: bool = False
    reference_price: Decimal | None = None
    slippage: Decimal | None = None  # Hyperliquid market orders; None: the client's default


class OrderAck(msgspec.Struct, frozen=True, kw_only=True):
    """The venue has the order. recovered: it was found by client order id after an attempt
    whose outcome was unknown (a timeout, a 5xx), not from the answer to the placement."""

    venue: str
    symbol: str
    client_order_id: str
    venue_order_id: int | None
    status: Status
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    recovered: bool = False
    attempts: int = 1


class OrderRejected(msgspec.Struct, frozen=True, kw_only=True):
    """The venue does not have the order (or refused the cancel). reason: the stable code
    (exchanges.trading.errors, or an order rule's from binance_orders / hyperliquid_orders);
    http_status 0 and code None when it was refused here, before any request."""

    venue: str
    symbol: str
    client_order_id: str | None
    reason: str
    message: str
    http_status: int = 0
    code: int | None = None
    attempts: int = 0


class OutcomeUnknown(msgspec.Struct, frozen=True, kw_only=True):
    """No attempt got an answer that settles it, and the venue could not be asked which: the order
    may or may not exist. Reconcile (query by client_order_id) before anything else on it."""

    venue: str
    symbol: str
    client_order_id: str | None
    reason: str
    message: str
    attempts: int
    venue_order_id: int | None = None


class CancelAck(msgspec.Struct, frozen=True, kw_only=True):
    """The order is no longer open. status: "canceled" when this cancel did it; after an
    unknown outcome, the state the venue reports (it may have filled first)."""

    venue: str
    symbol: str
    client_order_id: str | None
    venue_order_id: int | None
    status: Status = "canceled"
    recovered: bool = False


PlaceResult = OrderAck | OrderRejected | OutcomeUnknown


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the venue reports it; None where that venue's answer does not say."""

    venue: str
    symbol: str
    venue_order_id: int
    client_order_id: str | None
    side: Side
    status: Status
    price: Decimal | None
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None = None
    reduce_only: bool | None = None
    time_in_force: str | None = None
    created_ms: int | None = None
    updated_ms: int | None = None


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One trade of the account. fee: as the venue reports it (a rebate may be negative).
    client_order_id: None where the venue's fill does not carry it (Hyperliquid's userFills)."""

    venue: str
    symbol: str
    trade_id: str
    venue_order_id: int
    client_order_id: str | None
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    realized_pnl: Decimal
    time_ms: int


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """A position: quantity signed (short < 0)."""

    venue: str
    symbol: str
    quantity: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal
    mark_price: Decimal | None = None
    leverage: int | None = None


class AccountState(msgspec.Struct, frozen=True, kw_only=True):
    """Margin account: equity (wallet balance + unrealized P&L), what is free, what margin is in
    use, and the open positions (quantity not zero)."""

    venue: str
    equity: Decimal
    wallet_balance: Decimal
    available: Decimal
    margin_used: Decimal
    unrealized_pnl: Decimal
    positions: tuple[Position, ...] = ()
    time_ms: int | None = None


# -- decoding -----------------------------------------------------------------------------------


def _convert(doc: Any, kind: type[Any], what: str) -> Any:
    try:
        return msgspec.convert(doc, kind)
    except msgspec.ValidationError as exc:
        raise ResponseError(f"{what}: {exc}") from None


def _finite(value: Decimal, what: str) -> Decimal:
    if not value.is_finite():
        raise ResponseError(f"{what} is not a finite number")
    return value


# -- Binance USDT-M -----------------------------------------------------------------------------

_BINANCE_STATUS: dict[str, Status] = {
    "NEW": "open",
    "PARTIALLY_FILLED": "partially_filled",
    "FILLED": "filled",
    "CANCELED": "canceled",
    "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
    "REJECTED": "rejected",
}


class _BinanceOrder(msgspec.Struct):
    """POST/DELETE/GET /fapi/v1/order and each of GET /fapi/v1/openOrders (the fields used)."""

    symbol: str
    orderId: int
    clientOrderId: str
    side: Literal["BUY", "SELL"]
    status: str
    origQty: Decimal
    executedQty: Decimal
    price: Decimal = Decimal(0)
    avgPrice: Decimal = Decimal(0)
    reduceOnly: bool | None = None
    timeInForce: str | None = None
    time: int | None = None
    updateTime: int | None = None


def binance_status(status: str) -> Status:
    try:
        return _BINANCE_STATUS[status]
    except KeyError:
        raise ResponseError(f"unknown Binance order status {status[:40]!r}") from None


def binance_order(doc: Any) -> OrderState:
    """An order answer (new order with RESULT, cancel, query, open orders element)."""
    o: _BinanceOrder = _convert(doc, _BinanceOrder, "Binance order")
    price = _finite(o.price, "price")
    avg = _finite(o.avgPrice, "avgPrice")
    return OrderState(
        venue=BINANCE_USDM,
        symbol=o.symbol,
        venue_order_id=o.orderId,
        client_order_id=o.clientOrderId or None,
        side="buy" if o.side == "BUY" else "sell",
        status=binance_status(o.status),
        price=price if price > 0 else None,  # "0" for a market order
        quantity=_finite(o.origQty, "origQty"),
        filled_quantity=_finite(o.executedQty, "executedQty"),
        average_price=avg if avg > 0 else None,
        reduce_only=o.reduceOnly,
        time_in_force=o.timeInForce,
        created_ms=o.time,
        updated_ms=o.updateTime,
    )


def binance_orders(doc: Any) -> list[OrderState]:
    if not isinstance(doc, list):
        raise ResponseError("Binance open orders: expected an array")
    return [binance_order(o) for o in doc]


class _BinanceTrade(msgspec.Struct):
    """One element of GET /fapi/v1/userTrades."""

    symbol: str
    id: int
    orderId: int
    side: Literal["BUY", "SELL"]
    price: Decimal
    qty: Decimal
    commission: Decimal
    commissionAsset: str
    maker: bool
    realizedPnl: Decimal
    time: int


def binance_fills(doc: Any) -> list[Fill]:
    trades: list[_BinanceTrade] = _convert(doc, list[_BinanceTrade], "Binance userTrades")
    return [
        Fill(
            venue=BINANCE_USDM,
            symbol=t.symbol,
            trade_id=str(t.id),
            venue_order_id=t.orderId,
            client_order_id=None,  # userTrades does not carry it
            side="buy" if t.side == "BUY" else "sell",
            price=_finite(t.price, "price"),
            quantity=_finite(t.qty, "qty"),
            fee=_finite(t.commission, "commission"),
            fee_asset=t.commissionAsset,
            maker=t.maker,
            realized_pnl=_finite(t.realizedPnl, "realizedPnl"),
            time_ms=t.time,
        )
        for t in trades
    ]


class _BinancePositionRisk(msgspec.Struct):
    """One element of GET /fapi/v2/positionRisk."""

    symbol: str
    positionAmt: Decimal
    entryPrice: Decimal
    unRealizedProfit: Decimal
    markPrice: Decimal | None = None
    leverage: str | None = None


def _leverage(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def binance_positions(doc: Any) -> list[Position]:
    """GET /fapi/v2/positionRisk: the positions whose quantity is not zero."""
    rows: list[_BinancePositionRisk] = _convert(doc, list[_BinancePositionRisk], "Binance positionRisk")
    return [
        Position(
            venue=BINANCE_USDM,
            symbol=r.symbol,
            quantity=_finite(r.positionAmt, "positionAmt"),
            entry_price=_finite(r.entryPrice, "entryPrice"),
            unrealized_pnl=_finite(r.unRealizedProfit, "unRealizedProfit"),
            mark_price=r.markPrice,
            leverage=_leverage(r.leverage),
        )
        for r in rows
        if r.positionAmt != 0
    ]


class _BinanceAccountPosition(msgspec.Struct):
    symbol: str
    positionAmt: Decimal
    entryPrice: Decimal
    unrealizedProfit: Decimal
    leverage: str | None = None


class _BinanceAccount(msgspec.Struct):
    """GET /fapi/v2/account (the fields used)."""

    totalWalletBalance: Decimal
    totalUnrealizedProfit: Decimal
    totalMarginBalance: Decimal
    totalInitialMargin: Decimal
    availableBalance: Decimal
    positions: list[_BinanceAccountPosition] = []


def binance_account(doc: Any) -> AccountState:
    a: _BinanceAccount = _convert(doc, _BinanceAccount, "Binance account")
    return AccountState(
        venue=BINANCE_USDM,
        equity=_finite(a.totalMarginBalance, "totalMarginBalance"),
        wallet_balance=_finite(a.totalWalletBalance, "totalWalletBalance"),
        available=_finite(a.availableBalance, "availableBalance"),
        margin_used=_finite(a.totalInitialMargin, "totalInitialMargin"),
        unrealized_pnl=_finite(a.totalUnrealizedProfit, "totalUnrealizedProfit"),
        positions=tuple(
            Position(
                venue=BINANCE_USDM,
                symbol=p.symbol,
                quantity=_finite(p.positionAmt, "positionAmt"),
                entry_price=_finite(p.entryPrice, "entryPrice"),
                unrealized_pnl=_finite(p.unrealizedProfit, "unrealizedProfit"),
                leverage=_leverage(p.leverage),
            )
            for p in a.positions
            if p.positionAmt != 0
        ),
    )


# -- Hyperliquid --------------------------------------------------------------------------------


def hyperliquid_status(status: str, *, filled: bool, remaining: bool) -> Status:
    """An orderStatus status. filled: some of it filled; remaining: some of it still rests."""
    if status in ("open", "triggered"):
        return "partially_filled" if filled and remaining else "open"
    if status == "filled":
        return "filled"
    if status == "iocCancelRejected":
        return "expired"
    if status == "canceled" or status.endswith("Canceled"):
        return "canceled"
    if status == "rejected" or status.endswith("Rejected"):
        return "rejected"
    raise ResponseError(f"unknown Hyperliquid order status {status[:40]!r}")


class _HlOrder(msgspec.Struct):
    """The order of an orderStatus answer (and of an orderUpdates element)."""

    coin: str
    side: Literal["A", "B"]
    limitPx: Decimal
    sz: Decimal  # what still rests
    oid: int
    timestamp: int
    origSz: Decimal
    cloid: str | None = None
    reduceOnly: bool | None = None
    tif: str | None = None


class _HlOrderState(msgspec.Struct):
    order: _HlOrder
    status: str
    statusTimestamp: int


class _HlOrderStatus(msgspec.Struct):
    status: str
    order: _HlOrderState | None = None


def hyperliquid_order_status(doc: Any) -> OrderState | None:
    """POST /info orderStatus: the order, or None for {"status": "unknownOid"}. The average fill
    price is not in this answer (it is in the fills)."""
    answer: _HlOrderStatus = _convert(doc, _HlOrderStatus, "Hyperliquid orderStatus")
    if answer.status == "unknownOid":
        return None
    if answer.status != "order" or answer.order is None:
        raise ResponseError(f"Hyperliquid orderStatus: unexpected status {answer.status[:40]!r}")
    o, status = answer.order.order, answer.order.status
    remaining = _finite(o.sz, "sz")
    quantity = _finite(o.origSz, "origSz")
    if status == "filled":
        filled = quantity
    elif status in ("open", "triggered") or remaining > 0:
        filled = quantity - remaining
    else:
        filled = Decimal(0)  # closed and sz 0: the answer does not say what filled first (the fills do)
    return OrderState(
        venue=HYPERLIQUID,
        symbol=o.coin,
        venue_order_id=o.oid,
        client_order_id=o.cloid,
        side="buy" if o.side == "B" else "sell",
        status=hyperliquid_status(status, filled=filled > 0, remaining=remaining > 0),
        price=_finite(o.limitPx, "limitPx"),
        quantity=quantity,
        filled_quantity=filled,
        reduce_only=o.reduceOnly,
        time_in_force=o.tif,
        created_ms=o.timestamp,
        updated_ms=answer.order.statusTimestamp,
    )


class _HlOpenOrder(msgspec.Struct):
    coin: str
    side: Literal["A", "B"]
    limitPx: Decimal
    sz: Decimal
    oid: int
    timestamp: int
    origSz: Decimal | None = None  # frontendOpenOrders has it, openOrders does not
    cloid: str | None = None
    reduceOnly: bool | None = None


def hyperliquid_open_orders(doc: Any) -> list[OrderState]:
    """POST /info openOrders (or frontendOpenOrders)."""
    rows: list[_HlOpenOrder] = _convert(doc, list[_HlOpenOrder], "Hyperliquid openOrders")
    out = []
    for o in rows:
        remaining = _finite(o.sz, "sz")
        quantity = _finite(o.origSz, "origSz") if o.origSz is not None else remaining
        filled = quantity - remaining
        out.append(
            OrderState(
                venue=HYPERLIQUID,
                symbol=o.coin,
                venue_order_id=o.oid,
                client_order_id=o.cloid,
                side="buy" if o.side == "B" else "sell",
                status="partially_filled" if filled > 0 else "open",
                price=_finite(o.limitPx, "limitPx"),
                quantity=quantity,
                filled_quantity=filled,
                reduce_only=o.reduceOnly,
                created_ms=o.timestamp,
            )
        )
    return out


class _HlFill(msgspec.Struct):
    """One element of userFills / userFillsByTime (and of the userFills channel)."""

    coin: str
    px: Decimal
    sz: Decimal
    side: Literal["A", "B"]
    time: int
    oid: int
    tid: int
    crossed: bool
    fee: Decimal
    closedPnl: Decimal
    feeToken: str = "USDC"
    cloid: str | None = None


def hyperliquid_fills(doc: Any) -> list[Fill]:
    rows: list[_HlFill] = _convert(doc, list[_HlFill], "Hyperliquid userFills")
    return [
        Fill(
            venue=HYPERLIQUID,
            symbol=f.coin,
            trade_id=str(f.tid),
            venue_order_id=f.oid,
            client_order_id=f.cloid,
            side="buy" if f.side == "B" else "sell",
            price=_finite(f.px, "px"),
            quantity=_finite(f.sz, "sz"),
            fee=_finite(f.fee, "fee"),
            fee_asset=f.feeToken,
            maker=not f.crossed,
            realized_pnl=_finite(f.closedPnl, "closedPnl"),
            time_ms=f.time,
        )
        for f in rows
    ]


class _HlLeverage(msgspec.Struct):
    type: str
    value: int


class _HlPosition(msgspec.Struct):
    coin: str
    szi: Decimal
    entryPx: Decimal | None
    unrealizedPnl: Decimal
    leverage: _HlLeverage | None = None
    positionValue: Decimal | None = None


class _HlAssetPosition(msgspec.Struct):
    position: _HlPosition


class _HlMarginSummary(msgspec.Struct):
    accountValue: Decimal
    totalMarginUsed: Decimal


class _HlClearinghouse(msgspec.Struct):
    assetPositions: list[_HlAssetPosition]
    marginSummary: _HlMarginSummary
    withdrawable: Decimal
    time: int | None = None


def hyperliquid_account(doc: Any) -> AccountState:
    """POST /info clearinghouseState."""
    c: _HlClearinghouse = _convert(doc, _HlClearinghouse, "Hyperliquid clearinghouseState")
    positions = []
    for item in c.assetPositions:
        p = item.position
        size = _finite(p.szi, "szi")
        if size == 0:
            continue
        mark = abs(p.positionValue / size) if p.positionValue is not None else None
        positions.append(
            Position(
                venue=HYPERLIQUID,
                symbol=p.coin,
                quantity=size,
                entry_price=_finite(p.entryPx if p.entryPx is not None else Decimal(0), "entryPx"),
                unrealized_pnl=_finite(p.unrealizedPnl, "unrealizedPnl"),
                mark_price=mark,
                leverage=p.leverage.value if p.leverage is not None else None,
            )
        )
    upnl = sum((p.unrealized_pnl for p in positions), Decimal(0))
    equity = _finite(c.marginSummary.accountValue, "accountValue")
    return AccountState(
        venue=HYPERLIQUID,
        equity=equity,
        wallet_balance=equity - upnl,
        available=_finite(c.withdrawable, "withdrawable"),
        margin_used=_finite(c.marginSummary.totalMarginUsed, "totalMarginUsed"),
        unrealized_pnl=upnl,
        positions=tuple(positions),
        time_ms=c.time,
    )


def hyperliquid_order_statuses(doc: Any, expected: int) -> Sequence[Any]:
    """The `statuses` of an ok /exchange order or cancel answer (one per request of the batch)."""
    if not isinstance(doc, dict) or doc.get("status") != "ok":
        raise ResponseError("Hyperliquid /exchange: not an ok answer")
    response = doc.get("response")
    data = response.get("data") if isinstance(response, dict) else None
    statuses = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(statuses, list) or len(statuses) != expected:
        raise ResponseError(f"Hyperliquid /exchange: expected {expected} statuses")
    return statuses
