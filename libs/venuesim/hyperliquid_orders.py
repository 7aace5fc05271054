"""Hyperliquid trading wire shapes: /exchange statuses, /info user documents (clearinghouseState,
openOrders, frontendOpenOrders, orderStatus, userFills) and the orderUpdates / userFills / user
WebSocket payloads, from engine values.

Pure functions (no I/O, no clock). Shapes as the Hyperliquid API docs print them (Exchange
endpoint, Info endpoint, Info endpoint / Perpetuals, Websocket / Subscriptions). Numbers are
decimal strings with at least one decimal ("0.0", "105056.0"); USD amounts have at most 6
decimals. Per-order error texts are the documented ones ("Error responses") followed by
` asset=<index>`, as the live venue writes them. Not recorded, so stated: positions are cross at
the account's leverage, liquidationPx is null (liquidation is not simulated), cumFunding is zero
(no funding), maintenance margin is half the initial margin at the coin's max leverage."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from venuesim.accounts import ZERO, Account
from venuesim.trading import Fill, Order, Reject

MAX_LEVERAGE = 50  # as venuesim.hyperliquid's meta says
FEE_TOKEN = "USDC"

_ERRORS = {
    Reject.ZERO_SIZE: "Order has zero size.",
    Reject.SIZE_PRECISION: "Order has invalid size.",
    Reject.SIZE_STEP: "Order has invalid size.",
    Reject.PRICE_PRECISION: "Price must be divisible by tick size.",
    Reject.PRICE_TICK: "Price must be divisible by tick size.",
    Reject.MIN_NOTIONAL: "Order must have minimum value of $10.",
    Reject.INSUFFICIENT_MARGIN: "Insufficient margin to place order.",
    Reject.REDUCE_ONLY: "Reduce only order would increase position.",
    Reject.NO_MARKET_PRICE: "No liquidity available for market order.",
    Reject.DUPLICATE_CLIENT_ID: "Duplicate cloid.",  # not documented; the simulator's text
}
IOC_CANCEL = "Order could not immediately match against any resting orders."
MISSING_ORDER = "Order was never placed, already canceled, or filled."
CANNOT_MODIFY = "Cannot modify canceled or filled order"


def num(x: Decimal) -> str:
    """A decimal as Hyperliquid writes it: plain, trailing zeros dropped, at least one decimal."""
    text = format(x.normalize(), "f") if x else "0"
    return text if "." in text else text + ".0"


def usd(x: Decimal) -> str:
    return num(x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))


def order_error(reason: Reject, asset: int, price: Decimal | None = None) -> dict[str, str]:
    """One `{"error": ...}` status for a refused order."""
    if reason == Reject.POST_ONLY_WOULD_CROSS:
        bbo = num(price) if price is not None else "0.0"
        text = f"Post only order would have immediately matched, bbo was {bbo}@{bbo}."
    else:
        text = _ERRORS.get(reason, "Order rejected.")
    return {"error": f"{text} asset={asset}"}


def order_placed(order: Order, asset: int) -> dict[str, Any]:
    """The status of an accepted order: resting, filled (in full or, IOC, in part), or the IOC
    cancel when nothing matched."""
    extra = {"cloid": order.client_id} if order.client_id is not None else {}
    if order.filled:
        return {"filled": {"totalSz": num(order.filled), "avgPx": num(order.avg_price), "oid": order.oid, **extra}}
    if order.status == "NEW":
        return {"resting": {"oid": order.oid, **extra}}
    if order.status == "CANCELED":  # reduce-only with nothing to reduce
        return order_error(Reject.REDUCE_ONLY, asset)
    return {"error": f"{IOC_CANCEL} asset={asset}"}


def status_name(order: Order) -> str:
    """The orderStatus / orderUpdates status of an order."""
    if order.status == "NEW":
        return "open"
    if order.status == "FILLED" or (order.status == "EXPIRED" and order.filled):
        return "filled"
    if order.status == "EXPIRED":
        return "iocCancelRejected"
    return "reduceOnlyCanceled" if order.cancel_reason == "reduce_only" else "canceled"


def _side(order: Order | Fill) -> str:
    return "B" if order.side == "BUY" else "A"


def _tif(order: Order) -> str:
    return {"GTC": "Gtc", "IOC": "Ioc", "ALO": "Alo"}[order.tif]


def _limit_px(order: Order) -> str:
    return num(order.price) if order.price is not None else "0.0"


def basic_order(order: Order) -> dict[str, Any]:
    """WsBasicOrder: sz is what remains open; cloid only when the order has one."""
    out: dict[str, Any] = {
        "coin": order.symbol, "side": _side(order), "limitPx": _limit_px(order),
        "sz": num(order.remaining if order.status == "NEW" else ZERO), "oid": order.oid,
        "timestamp": order.created_ms, "origSz": num(order.qty),
    }  # fmt: skip
    if order.client_id is not None:
        out["cloid"] = order.client_id
    return out


def ws_order(order: Order, time_ms: int) -> dict[str, Any]:
    return {"order": basic_order(order), "status": status_name(order), "statusTimestamp": time_ms}


def open_order(order: Order) -> dict[str, Any]:
    return {
        "coin": order.symbol, "limitPx": _limit_px(order), "oid": order.oid, "side": _side(order),
        "sz": num(order.remaining), "timestamp": order.created_ms,
    }  # fmt: skip


def frontend_open_order(order: Order) -> dict[str, Any]:
    """The keys of a recorded answer (the SDK's test cassette), which has `children` and `tif`
    beside the documented ones."""
    return {
        "children": [], "coin": order.symbol, "isPositionTpsl": False, "isTrigger": False,
        "limitPx": _limit_px(order), "oid": order.oid, "orderType": "Limit", "origSz": num(order.qty),
        "reduceOnly": order.reduce_only, "side": _side(order), "sz": num(order.remaining), "tif": _tif(order),
        "timestamp": order.created_ms, "triggerCondition": "N/A", "triggerPx": "0.0",
    }  # fmt: skip


def order_status(order: Order | None) -> dict[str, Any]:
    """POST /info {"type":"orderStatus"}."""
    if order is None:
        return {"status": "unknownOid"}
    doc = {
        "coin": order.symbol, "side": _side(order), "limitPx": _limit_px(order),
        "sz": num(order.remaining if order.status == "NEW" else ZERO), "oid": order.oid,
        "timestamp": order.created_ms, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0",
        "children": [], "isPositionTpsl": False, "reduceOnly": order.reduce_only, "orderType": "Limit",
        "origSz": num(order.qty), "tif": _tif(order), "cloid": order.client_id,
    }  # fmt: skip
    state = {"order": doc, "status": status_name(order), "statusTimestamp": order.updated_ms}
    return {"status": "order", "order": state}


def direction(fill: Fill) -> str:
    start, qty = fill.start_size, fill.qty
    if fill.side == "BUY":
        if start >= 0:
            return "Open Long"
        return "Close Short" if qty <= -start else "Short > Long"
    if start <= 0:
        return "Open Short"
    return "Close Long" if qty <= start else "Long > Short"


def fill_doc(fill: Fill, tx_hash: str) -> dict[str, Any]:
    """A fill as userFills and the user channels carry it (fee: paid, positive)."""
    return {
        "closedPnl": usd(fill.realized), "coin": fill.symbol, "crossed": not fill.maker, "dir": direction(fill),
        "hash": tx_hash, "oid": fill.oid, "px": num(fill.price), "side": _side(fill),
        "startPosition": num(fill.start_size), "sz": num(fill.qty), "time": fill.time_ms, "fee": usd(fill.fee),
        "feeToken": FEE_TOKEN, "tid": fill.tid,
    }  # fmt: skip


def clearinghouse_state(acct: Account | None, marks: Mapping[str, Decimal], now_ms: int) -> dict[str, Any]:
    """POST /info {"type":"clearinghouseState"} (an unknown user: an empty account)."""
    positions = []
    value = ntl = raw_minus = margin = maint = ZERO
    if acct is not None:
        value = acct.equity(marks)
        for coin, pos in sorted(acct.positions.items()):
            if not pos.size:
                continue
            mark = marks.get(coin, pos.entry)
            position_value = abs(pos.size) * mark
            used = position_value / acct.leverage
            upnl = pos.unrealized(mark)
            cost = abs(pos.size) * pos.entry / acct.leverage
            positions.append({
                "position": {
                    "coin": coin, "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"},
                    "entryPx": num(pos.entry), "leverage": {"type": "cross", "value": acct.leverage},
                    "liquidationPx": None, "marginUsed": usd(used), "maxLeverage": MAX_LEVERAGE,
                    "positionValue": usd(position_value),
                    "returnOnEquity": num((upnl / cost).quantize(Decimal("0.00000001"))) if cost else "0.0",
                    "szi": num(pos.size), "unrealizedPnl": usd(upnl),
                },
                "type": "oneWay",
            })  # fmt: skip
            ntl += position_value
            raw_minus += pos.size * mark
            margin += used
            maint += position_value / (2 * MAX_LEVERAGE)
    summary = {
        "accountValue": usd(value), "totalMarginUsed": usd(margin), "totalNtlPos": usd(ntl),
        "totalRawUsd": usd(value - raw_minus),
    }  # fmt: skip
    return {
        "assetPositions": positions, "crossMaintenanceMarginUsed": usd(maint), "crossMarginSummary": summary,
        "marginSummary": dict(summary), "time": now_ms, "withdrawable": usd(max(ZERO, value - margin)),
    }  # fmt: skip


SPOT_META = {
    "universe": [],
    "tokens": [
        {
            "name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
            "fullName": None,
        }
    ],
}  # fmt: skip
