"""The venue's answers as events (ticktape.events.venue): what the execution clients return for a
placement, and what the user streams push (Binance's ORDER_TRADE_UPDATE, Hyperliquid's
orderUpdates and userFills), turned into VenueOrderAccepted / Rejected / Unknown, VenueFill and
VenueOrderCanceled. Pure: times are parameters (the venue's, and `received_ns`, when the gateway
got it), ids derive from the venue's keys (ticktape.events.venue), no I/O.

A frame that is not what the venue documents raises ReportError (the gateway logs and skips it);
a frame of another kind (Binance's ACCOUNT_UPDATE, a NEW order update: the placement's own answer
says that) gives no event."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

import msgspec

from exchanges.trading import model
from ticktape.events import (
    OrderSubmitted,
    VenueFill,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderRejected,
    VenueOrderUnknown,
)
from ticktape.events import venue as ids
from ticktape.venues import BINANCE_USDM, HYPERLIQUID

MESSAGE_CHARS = 300
NOT_SENT = "not_sent"  # an order too old to send that the venue does not have


class ReportError(ValueError):
    """A user-stream frame that does not have the documented shape (the text says what)."""


def _ns(ms: int | None, fallback_ns: int) -> int:
    return ms * 1_000_000 if ms is not None and ms > 0 else fallback_ns


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS]


def _client_id(order: OrderSubmitted) -> str:
    return order.client_order_id if isinstance(order.client_order_id, str) else ""


def _chain(order: OrderSubmitted) -> dict[str, Any]:
    return {"causation_id": order.event_id, "correlation_id": order.correlation_id or order.event_id}


# -- placement answers ---------------------------------------------------------------------------


def accepted(order: OrderSubmitted, ack: model.OrderAck, *, venue_ms: int, received_ns: int) -> VenueOrderAccepted:
    cid = ack.client_order_id or _client_id(order)
    return VenueOrderAccepted(
        event_id=ids.accepted_id(order.venue, order.account, cid),
        ts_event=_ns(venue_ms, received_ns),
        ts_init=received_ns,
        **_chain(order),
        order_id=order.order_id,
        account=order.account,
        venue=order.venue,
        symbol=order.symbol,
        client_order_id=cid,
        venue_order_id="" if ack.venue_order_id is None else str(ack.venue_order_id),
        status=ack.status,
        filled_quantity=float(ack.filled_quantity),
        average_price=float(ack.average_price) if ack.average_price is not None else 0.0,
        recovered=ack.recovered,
    )


def rejected(
    order: OrderSubmitted,
    reason: str,
    message: str,
    *,
    venue_ms: int,
    received_ns: int,
    http_status: int = 0,
    code: int | None = None,
) -> VenueOrderRejected:
    cid = _client_id(order)
    return VenueOrderRejected(
        event_id=ids.rejected_id(order.venue, order.account, cid),
        ts_event=_ns(venue_ms, received_ns),
        ts_init=received_ns,
        **_chain(order),
        order_id=order.order_id,
        account=order.account,
        venue=order.venue,
        symbol=order.symbol,
        client_order_id=cid,
        reason=reason,
        message=_cut(message),
        http_status=http_status,
        code=code,
    )


def refused(order: OrderSubmitted, r: model.OrderRejected, *, venue_ms: int, received_ns: int) -> VenueOrderRejected:
    return rejected(
        order, r.reason, r.message, venue_ms=venue_ms, received_ns=received_ns, http_status=r.http_status, code=r.code
    )


def unknown(
    order: OrderSubmitted, u: model.OutcomeUnknown, attempt: int, *, venue_ms: int, received_ns: int
) -> VenueOrderUnknown:
    cid = _client_id(order)
    return VenueOrderUnknown(
        event_id=ids.unknown_id(order.venue, order.account, cid, attempt),
        ts_event=_ns(venue_ms, received_ns),
        ts_init=received_ns,
        **_chain(order),
        order_id=order.order_id,
        account=order.account,
        venue=order.venue,
        symbol=order.symbol,
        client_order_id=cid,
        reason=u.reason,
        message=_cut(u.message),
        attempts=u.attempts,
    )


def ended(
    order: OrderSubmitted,
    venue_order_id: str,
    status: model.Status,
    filled: Decimal,
    *,
    venue_ms: int,
    received_ns: int,
) -> VenueOrderCanceled | None:
    """A placement answer (or a look-up) that says the order is over without filling in full
    (an expired IOC or market order, a canceled one): its VenueOrderCanceled, else None."""
    reason = {"expired": "expired", "canceled": "canceled"}.get(status)
    if reason is None or not venue_order_id:
        return None
    return canceled(
        order.account, order.venue, order.symbol, venue_order_id, _client_id(order), reason, filled,
        venue_ms=venue_ms, received_ns=received_ns,
    )  # fmt: skip


# -- fills and order ends ------------------------------------------------------------------------


def fill(account: str, f: model.Fill, *, received_ns: int, client_order_id: str | None = None) -> VenueFill:
    """A fill of the account (from a user stream or a REST query: the same id either way)."""
    return VenueFill(
        event_id=ids.fill_id(f.venue, account, f.symbol, f.trade_id),
        ts_event=_ns(f.time_ms, received_ns),
        ts_init=received_ns,
        account=account,
        venue=f.venue,
        symbol=f.symbol,
        fill_id=f.trade_id,
        venue_order_id=str(f.venue_order_id),
        client_order_id=client_order_id or f.client_order_id or "",
        side=f.side,
        quantity=float(f.quantity),
        price=float(f.price),
        fee=float(f.fee),
        fee_asset=f.fee_asset,
        liquidity="maker" if f.maker else "taker",
        realized_pnl=float(f.realized_pnl),
    )


def canceled(
    account: str,
    venue: str,
    symbol: str,
    venue_order_id: str,
    client_order_id: str,
    reason: str,
    filled: Decimal,
    *,
    venue_ms: int,
    received_ns: int,
) -> VenueOrderCanceled:
    return VenueOrderCanceled(
        event_id=ids.canceled_id(venue, account, venue_order_id),
        ts_event=_ns(venue_ms, received_ns),
        ts_init=received_ns,
        account=account,
        venue=venue,
        symbol=symbol,
        venue_order_id=venue_order_id,
        client_order_id=client_order_id,
        reason=reason,
        filled_quantity=float(filled),
    )


# -- Binance USDT-M user data stream -------------------------------------------------------------


class _BinanceUpdate(msgspec.Struct):
    """The `o` of an ORDER_TRADE_UPDATE (the fields used)."""

    s: str  # symbol
    c: str  # client order id
    S: Literal["BUY", "SELL"]
    x: str  # execution type: NEW, TRADE, CANCELED, EXPIRED, CALCULATED, AMENDMENT
    X: str  # order status
    i: int  # order id
    z: Decimal  # cumulative filled quantity
    T: int  # transaction time
    l: Decimal = Decimal(0)  # noqa: E741 - Binance's name: the last filled quantity
    L: Decimal = Decimal(0)  # last filled price
    n: Decimal = Decimal(0)  # commission of this trade
    N: str | None = None  # commission asset
    t: int = 0  # trade id
    m: bool = False  # maker
    rp: Decimal = Decimal(0)  # realized profit of this trade


class _BinanceEvent(msgspec.Struct):
    e: str
    o: _BinanceUpdate | None = None


_binance_event = msgspec.json.Decoder(_BinanceEvent)


def binance_user_frame(account: str, frame: bytes | str, *, received_ns: int) -> list[VenueFill | VenueOrderCanceled]:
    """One frame of Binance's user data stream: a TRADE gives its VenueFill, a CANCELED or
    EXPIRED (EXPIRED_IN_MATCH too) its VenueOrderCanceled; anything else nothing."""
    try:
        event = _binance_event.decode(frame)
    except msgspec.DecodeError as exc:
        raise ReportError(f"Binance user stream frame: {exc}") from None
    if event.e != "ORDER_TRADE_UPDATE":
        return []
    o = event.o
    if o is None:
        raise ReportError("ORDER_TRADE_UPDATE without its order")
    side: model.Side = "buy" if o.S == "BUY" else "sell"
    if o.x == "TRADE":
        if not (o.l > 0 and o.L > 0 and o.l.is_finite() and o.L.is_finite() and o.n.is_finite()):
            raise ReportError(f"ORDER_TRADE_UPDATE trade {o.t} with quantity {o.l} at {o.L}")
        trade = model.Fill(
            venue=BINANCE_USDM, symbol=o.s, trade_id=str(o.t), venue_order_id=o.i, client_order_id=o.c or None,
            side=side, price=o.L, quantity=o.l, fee=o.n, fee_asset=o.N or "", maker=o.m, realized_pnl=o.rp,
            time_ms=o.T,
        )  # fmt: skip
        return [fill(account, trade, received_ns=received_ns)]
    if o.x in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH") and o.X in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"):
        reason = "canceled" if o.X == "CANCELED" else "expired"
        return [canceled(account, BINANCE_USDM, o.s, str(o.i), o.c, reason, o.z, venue_ms=o.T, received_ns=received_ns)]
    return []


# -- Hyperliquid user channels -------------------------------------------------------------------


class _HlBasicOrder(msgspec.Struct):
    coin: str
    oid: int
    cloid: str | None = None


class _HlOrderUpdate(msgspec.Struct):
    order: _HlBasicOrder
    status: str
    statusTimestamp: int


class _HlFrame(msgspec.Struct):
    channel: str
    data: Any = None


_hl_frame = msgspec.json.Decoder(_HlFrame)


def hyperliquid_end_reason(status: str) -> str | None:
    """The VenueOrderCanceled reason of an orderUpdates status that ends an order unfilled in
    part or whole; None for open, triggered and filled (its fills say what filled)."""
    if status in ("open", "triggered", "filled"):
        return None
    if status == "iocCancelRejected":
        return "expired"
    if status == "canceled" or status.endswith("Canceled"):
        return "canceled"
    if status == "rejected" or status.endswith("Rejected"):
        return "rejected"
    return None


class HyperliquidUserFrame(msgspec.Struct, frozen=True):
    """What one Hyperliquid WebSocket frame says: fills (snapshot: the userFills snapshot a
    subscription starts with), order ends, and the cloid of each order id it names."""

    fills: tuple[model.Fill, ...] = ()
    snapshot: bool = False
    ends: tuple[tuple[str, str, str, str, int], ...] = ()  # (coin, oid, cloid, reason, time ms)
    cloids: tuple[tuple[str, str], ...] = ()  # (oid, cloid)


def hyperliquid_user_frame(frame: bytes | str) -> HyperliquidUserFrame:
    """Parse one frame of Hyperliquid's WebSocket (other channels: an empty result)."""
    try:
        parsed = _hl_frame.decode(frame)
    except msgspec.DecodeError as exc:
        raise ReportError(f"Hyperliquid frame: {exc}") from None
    try:
        if parsed.channel == "userFills":
            data = parsed.data if isinstance(parsed.data, dict) else {}
            fills = model.hyperliquid_fills(data.get("fills", []))
            return HyperliquidUserFrame(fills=tuple(fills), snapshot=data.get("isSnapshot") is True)
        if parsed.channel == "orderUpdates":
            updates = msgspec.convert(parsed.data, list[_HlOrderUpdate])
            ends, cloids = [], []
            for u in updates:
                oid = str(u.order.oid)
                if u.order.cloid:
                    cloids.append((oid, u.order.cloid))
                reason = hyperliquid_end_reason(u.status)
                if reason is not None:
                    ends.append((u.order.coin, oid, u.order.cloid or "", reason, u.statusTimestamp))
            return HyperliquidUserFrame(ends=tuple(ends), cloids=tuple(cloids))
    except (model.ResponseError, msgspec.ValidationError) as exc:
        raise ReportError(f"Hyperliquid {parsed.channel} frame: {exc}") from None
    return HyperliquidUserFrame()


def hyperliquid_ends(account: str, frame: HyperliquidUserFrame, *, received_ns: int) -> list[VenueOrderCanceled]:
    return [
        canceled(account, HYPERLIQUID, coin, oid, cloid, reason, Decimal(0), venue_ms=ms, received_ns=received_ns)
        for coin, oid, cloid, reason, ms in frame.ends
    ]


def fills_of(account: str, fills: Iterable[model.Fill], cloids: dict[str, str], *, received_ns: int) -> list[VenueFill]:
    """VenueFill of each fill, its client order id from `cloids` (venue order id -> client id)
    when the fill itself does not carry one; oldest first (Hyperliquid lists newest first)."""
    ordered = sorted(fills, key=lambda f: (f.time_ms, int(f.trade_id) if f.trade_id.isdigit() else -1, f.trade_id))
    return [
        fill(account, f, received_ns=received_ns, client_order_id=cloids.get(str(f.venue_order_id))) for f in ordered
    ]
