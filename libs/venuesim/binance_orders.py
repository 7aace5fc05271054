"""Binance USDT-M trading wire shapes: order answers, account and position documents, user data
stream events (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE) and the error bodies, from engine values.

Pure functions (no I/O, no clock). Key order and field sets as Binance's USDS-M documentation prints
them (New Order, Query Order, Account Information V2, Position Information V2, Event: Order Update,
Event: Balance and Position Update). One-way mode (positionSide BOTH), cross margin, no stop or
trailing fields. Number text: prices with the symbol's price decimals, quantities with its
quantity decimals, zero quantities and quote amounts as "0" (as Binance writes them), averages and
entry prices with at least 5 decimals, balances and P&L with 8; the venue's own rounding of these
strings is not documented, their values are exact."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from venuesim.accounts import ZERO, Account, Position
from venuesim.binance_usdm import err_mandatory
from venuesim.trading import Event, Instrument, Order, Reject

QUOTE = "USDT"
MAX_NOTIONAL = "250000"

ERR_BAD_API_KEY_FORMAT = {"code": -2014, "msg": "API-key format invalid."}
ERR_REJECTED_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
ERR_SIGNATURE = {"code": -1022, "msg": "Signature for this request is not valid."}
ERR_RECV_WINDOW = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
ERR_AHEAD = {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."}
ERR_BAD_RECV_WINDOW = {"code": -1131, "msg": "recvWindow must be less than 60000"}
ERR_NO_SUCH_ORDER = {"code": -2013, "msg": "Order does not exist."}
ERR_UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}
ERR_LISTEN_KEY = {"code": -1125, "msg": "This listenKey does not exist."}
ERR_SIDE = {"code": -1117, "msg": "Invalid side."}
ERR_ORDER_TYPE = {"code": -1116, "msg": "Invalid orderType."}
ERR_TIF = {"code": -1115, "msg": "Invalid timeInForce."}
ERR_ORDER_ID = {"code": -1102, "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"}

_REJECTS = {
    Reject.UNKNOWN_SYMBOL: {"code": -1121, "msg": "Invalid symbol."},
    Reject.ZERO_SIZE: {"code": -4003, "msg": "Quantity less than or equal to zero."},
    Reject.SIZE_PRECISION: {"code": -1111, "msg": "Precision is over the maximum defined for this asset."},
    Reject.SIZE_STEP: {"code": -4023, "msg": "Qty not increased by step size."},
    Reject.PRICE_PRECISION: {"code": -1111, "msg": "Precision is over the maximum defined for this asset."},
    Reject.PRICE_TICK: {"code": -4014, "msg": "Price not increased by tick size."},
    Reject.MISSING_PRICE: err_mandatory("price"),
    Reject.DUPLICATE_CLIENT_ID: {"code": -4116, "msg": "ClientOrderId is duplicated."},
    Reject.REDUCE_ONLY: {"code": -2022, "msg": "ReduceOnly Order is rejected."},
    Reject.POST_ONLY_WOULD_CROSS: {
        "code": -5022,
        "msg": "Due to the order could not be executed as maker, the Post Only order will be rejected. "
        "The order will not be recorded in the order history",
    },
    Reject.NO_MARKET_PRICE: {"code": -2020, "msg": "Unable to fill."},
    Reject.INSUFFICIENT_MARGIN: {"code": -2019, "msg": "Margin is insufficient."},
}


def reject_body(reason: Reject, inst: Instrument | None) -> dict[str, Any]:
    if reason == Reject.MIN_NOTIONAL:
        floor = inst.min_notional if inst is not None else Decimal(5)
        msg = f"Order's notional must be no smaller than {floor} (unless you choose reduce only)."
        return {"code": -4164, "msg": msg}
    return dict(_REJECTS.get(reason, {"code": -1000, "msg": "An unknown error occured while processing the request."}))


def fmt(x: Decimal, dp: int) -> str:
    return f"{x.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_EVEN):f}"


def qty_text(x: Decimal, inst: Instrument) -> str:
    return fmt(x, inst.size_dp) if x else "0"


def price_text(x: Decimal | None, inst: Instrument) -> str:
    return fmt(x, inst.price_dp) if x else "0"


def avg_text(x: Decimal, inst: Instrument) -> str:
    return fmt(x, max(inst.price_dp, 5))


def money(x: Decimal) -> str:
    return fmt(x, 8)


def status(order: Order) -> str:
    if order.status == "NEW" and order.filled:
        return "PARTIALLY_FILLED"
    return order.status


def _tif(order: Order) -> str:
    return "GTX" if order.tif == "ALO" else order.tif


def order_answer(order: Order, inst: Instrument, shown: Order | None = None) -> dict[str, Any]:
    """POST/DELETE /fapi/v1/order. shown: the order as of the answer (the ACK state of an order
    that has since filled), default `order`."""
    o = shown or order
    return {
        "clientOrderId": o.client_id, "cumQty": qty_text(o.filled, inst), "cumQuote": _quote(o, inst),
        "executedQty": qty_text(o.filled, inst), "orderId": o.oid, "avgPrice": avg_text(o.avg_price, inst),
        "origQty": qty_text(o.qty, inst), "price": price_text(o.price, inst), "reduceOnly": o.reduce_only,
        "side": o.side, "positionSide": "BOTH", "status": status(o), "stopPrice": "0", "closePosition": False,
        "symbol": o.symbol, "timeInForce": _tif(o), "type": o.type, "origType": o.type,
        "updateTime": o.updated_ms, "workingType": "CONTRACT_PRICE", "priceProtect": False,
        "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
    }  # fmt: skip


def order_query(o: Order, inst: Instrument) -> dict[str, Any]:
    """GET /fapi/v1/order and each element of GET /fapi/v1/openOrders."""
    return {
        "avgPrice": avg_text(o.avg_price, inst), "clientOrderId": o.client_id, "cumQuote": _quote(o, inst),
        "executedQty": qty_text(o.filled, inst), "orderId": o.oid, "origQty": qty_text(o.qty, inst),
        "origType": o.type, "price": price_text(o.price, inst), "reduceOnly": o.reduce_only, "side": o.side,
        "positionSide": "BOTH", "status": status(o), "stopPrice": "0", "closePosition": False, "symbol": o.symbol,
        "time": o.created_ms, "timeInForce": _tif(o), "type": o.type, "updateTime": o.updated_ms,
        "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE", "goodTillDate": 0,
    }  # fmt: skip


def _quote(o: Order, inst: Instrument) -> str:
    return avg_text(o.quote, inst) if o.quote else "0"


def position_risk(
    symbol: str, pos: Position | None, mark: Decimal | None, inst: Instrument, leverage: int
) -> dict[str, Any]:
    """One element of GET /fapi/v2/positionRisk."""
    size = pos.size if pos is not None else ZERO
    entry = pos.entry if pos is not None else ZERO
    mark = mark if mark is not None else ZERO
    return {
        "symbol": symbol, "positionAmt": fmt(size, inst.size_dp), "entryPrice": avg_text(entry, inst),
        "breakEvenPrice": avg_text(entry, inst), "markPrice": money(mark),
        "unRealizedProfit": money(pos.unrealized(mark) if pos is not None else ZERO), "liquidationPrice": "0",
        "leverage": str(leverage), "maxNotionalValue": MAX_NOTIONAL, "marginType": "cross",
        "isolatedMargin": money(ZERO), "isAutoAddMargin": "false", "positionSide": "BOTH",
        "notional": money(size * mark), "isolatedWallet": "0", "updateTime": pos.updated_ms if pos else 0,
    }  # fmt: skip


def account_v2(
    acct: Account,
    marks: Mapping[str, Decimal],
    instruments: Mapping[str, Instrument],
    orders: list[Order],
    now_ms: int,
) -> dict[str, Any]:
    """GET /fapi/v2/account: every served symbol under positions (as V2 does)."""
    upnl = acct.unrealized(marks)
    pos_margin = acct.position_margin(marks)
    order_margin = {s: ZERO for s in instruments}
    bid = {s: ZERO for s in instruments}
    ask = {s: ZERO for s in instruments}
    for o in orders:
        px = o.price if o.price is not None else marks.get(o.symbol, ZERO)
        book = bid if o.side == "BUY" else ask
        book[o.symbol] += o.remaining * px
        if not o.reduce_only:
            order_margin[o.symbol] += o.remaining * px / acct.leverage
    total_order_margin = sum(order_margin.values(), ZERO)
    margin_balance = acct.balance + upnl
    available = max(ZERO, margin_balance - pos_margin - total_order_margin)
    maint = sum((acct.notional(s, marks) for s in acct.positions), ZERO) * Decimal("0.004")
    positions = []
    for symbol, inst in instruments.items():
        pos = acct.positions.get(symbol)
        pim = acct.notional(symbol, marks) / acct.leverage
        positions.append({
            "symbol": symbol, "initialMargin": money(pim + order_margin[symbol]),
            "maintMargin": money(acct.notional(symbol, marks) * Decimal("0.004")),
            "unrealizedProfit": money(pos.unrealized(marks.get(symbol)) if pos else ZERO),
            "positionInitialMargin": money(pim), "openOrderInitialMargin": money(order_margin[symbol]),
            "leverage": str(acct.leverage), "isolated": False,
            "entryPrice": avg_text(pos.entry if pos else ZERO, inst),
            "breakEvenPrice": avg_text(pos.entry if pos else ZERO, inst), "maxNotional": MAX_NOTIONAL,
            "bidNotional": money(bid[symbol]), "askNotional": money(ask[symbol]), "positionSide": "BOTH",
            "positionAmt": fmt(pos.size if pos else ZERO, inst.size_dp), "updateTime": pos.updated_ms if pos else 0,
        })  # fmt: skip
    asset = {
        "asset": QUOTE, "walletBalance": money(acct.balance), "unrealizedProfit": money(upnl),
        "marginBalance": money(margin_balance), "maintMargin": money(maint),
        "initialMargin": money(pos_margin + total_order_margin), "positionInitialMargin": money(pos_margin),
        "openOrderInitialMargin": money(total_order_margin), "crossWalletBalance": money(acct.balance),
        "crossUnPnl": money(upnl), "availableBalance": money(available), "maxWithdrawAmount": money(available),
        "marginAvailable": True, "updateTime": now_ms,
    }  # fmt: skip
    return {
        "feeTier": 0, "feeBurn": True, "canTrade": True, "canDeposit": True, "canWithdraw": True,
        "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1,
        "totalInitialMargin": money(pos_margin + total_order_margin), "totalMaintMargin": money(maint),
        "totalWalletBalance": money(acct.balance), "totalUnrealizedProfit": money(upnl),
        "totalMarginBalance": money(margin_balance), "totalPositionInitialMargin": money(pos_margin),
        "totalOpenOrderInitialMargin": money(total_order_margin), "totalCrossWalletBalance": money(acct.balance),
        "totalCrossUnPnl": money(upnl), "availableBalance": money(available), "maxWithdrawAmount": money(available),
        "assets": [asset], "positions": positions,
    }  # fmt: skip


def order_trade_update(
    event: Event, inst: Instrument, now_ms: int, bid_notional: Decimal, ask_notional: Decimal
) -> dict[str, Any]:
    """The ORDER_TRADE_UPDATE for one engine event (x: NEW, TRADE, CANCELED, EXPIRED)."""
    o, fill = event.order, event.fill
    execution = {"new": "NEW", "fill": "TRADE", "canceled": "CANCELED", "expired": "EXPIRED"}[event.kind]
    shown_status = "NEW" if event.kind == "new" else status(o)
    body: dict[str, Any] = {
        "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type, "f": _tif(o), "q": qty_text(o.qty, inst),
        "p": price_text(o.price, inst), "ap": avg_text(o.avg_price if event.kind != "new" else ZERO, inst),
        "sp": "0", "x": execution, "X": shown_status, "i": o.oid,
        "l": qty_text(fill.qty, inst) if fill else "0",
        "z": qty_text(o.filled if event.kind != "new" else ZERO, inst),
        "L": price_text(fill.price, inst) if fill else "0",
    }  # fmt: skip
    if fill is not None:  # "Commission Asset, will not push if no commission"
        body["N"] = QUOTE
        body["n"] = money(fill.fee)
    body.update({
        "T": event.time_ms, "t": fill.tid if fill else 0, "b": money(bid_notional), "a": money(ask_notional),
        "m": fill.maker if fill else False, "R": o.reduce_only, "wt": "CONTRACT_PRICE", "ot": o.type,
        "ps": "BOTH", "cp": False, "rp": money(fill.realized if fill else ZERO), "pP": False, "si": 0, "ss": 0,
        "V": "NONE", "pm": "NONE", "gtd": 0, "er": "0",
    })  # fmt: skip
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": event.time_ms, "o": body}


def account_update(
    acct: Account, symbol: str, mark: Decimal | None, inst: Instrument, time_ms: int, now_ms: int
) -> dict[str, Any]:
    """The ACCOUNT_UPDATE (reason ORDER) after a fill in `symbol`."""
    pos = acct.position(symbol)
    return {
        "e": "ACCOUNT_UPDATE", "E": now_ms, "T": time_ms,
        "a": {
            "m": "ORDER",
            "B": [{"a": QUOTE, "wb": money(acct.balance), "cw": money(acct.balance), "bc": "0"}],
            "P": [{
                "s": symbol, "pa": fmt(pos.size, inst.size_dp), "ep": avg_text(pos.entry, inst),
                "bep": avg_text(pos.entry, inst), "cr": money(pos.realized), "up": money(pos.unrealized(mark)),
                "mt": "cross", "iw": "0", "ps": "BOTH",
            }],
        },
    }  # fmt: skip


def funding_income(symbol: str, amount: Decimal, time_ms: int, tran_id: int) -> dict[str, Any]:
    """One GET /fapi/v1/income record of a funding fee (income: received, < 0 paid)."""
    return {
        "symbol": symbol, "incomeType": "FUNDING_FEE", "income": money(amount), "asset": QUOTE, "info": "",
        "time": time_ms, "tranId": tran_id, "tradeId": "",
    }  # fmt: skip


def funding_update(acct: Account, amount: Decimal, time_ms: int) -> dict[str, Any]:
    """The ACCOUNT_UPDATE (reason FUNDING_FEE) of a funding fee in cross margin: the balance only."""
    balance = [{"a": QUOTE, "wb": money(acct.balance), "cw": money(acct.balance), "bc": money(amount)}]
    return {"e": "ACCOUNT_UPDATE", "E": time_ms, "T": time_ms, "a": {"m": "FUNDING_FEE", "B": balance, "P": []}}
