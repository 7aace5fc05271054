"""Hyperliquid perps requests: the L1 actions (order, cancel, cancelByCloid, modify), the POST
/exchange body that carries a signed action, the POST /info bodies execution reads
(clearinghouseState, openOrders, orderStatus, userFills, userFillsByTime), and the price and
size rules an order must meet.

Wire formats (hyperliquid-docs for-developers/api/exchange-endpoint and info-endpoint; key order
as the official SDK builds them, which matters: the signature hashes the msgpack of the action):
  order:         {"type":"order","orders":[{"a":asset,"b":is_buy,"p":"px","s":"sz","r":reduce_only,
                  "t":{"limit":{"tif":"Gtc"|"Ioc"|"Alo"}},"c":"0x<cloid>"}],"grouping":"na"}
  cancel:        {"type":"cancel","cancels":[{"a":asset,"o":oid}]}
  cancelByCloid: {"type":"cancelByCloid","cancels":[{"asset":asset,"cloid":"0x<cloid>"}]}
  modify:        {"type":"modify","oid":oid | "0x<cloid>","order":{<an order as above>}}
  /exchange:     {"action":...,"nonce":ms,"signature":{"r","s","v"},"vaultAddress":addr|null,
                  "expiresAfter":ms|null}  (the SDK's _post_action sends both keys, null when unset)
  /info:         {"type":"clearinghouseState","user":addr}, {"type":"openOrders","user":addr},
                 {"type":"orderStatus","user":addr,"oid":oid | "0x<cloid>"},
                 {"type":"userFills","user":addr},
                 {"type":"userFillsByTime","user":addr,"startTime":ms[,"endTime":ms]}
Order wires are made by the SDK's order_request_to_order_wire (its float_to_wire prints p and s
without trailing zeros, as signing requires) from prices and sizes rounded here with Decimal;
each wire is checked to say exactly the Decimal it was made from.

Price and size rules (for-developers/api/tick-and-lot-size), perps: a price has at most 5
significant figures and at most 6 - szDecimals decimals, and an integer price is always valid; a
size has at most szDecimals decimals; an order is worth at least $10 (error-responses:
"Order must have minimum value of $10."). Rounding never makes an order more aggressive or larger
than asked: a buy's price rounds down, a sell's up, a size down. Hyperliquid has no market order:
market_order is an IOC limit at the reference price moved by the slippage, rounded toward the
reference so the bound always holds (buy <= ref x (1 + slippage), sell >= ref x (1 - slippage))."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

import msgspec
from hyperliquid.utils import signing as sdk  # type: ignore[import-untyped]
from hyperliquid.utils.types import Cloid  # type: ignore[import-untyped]

from exchanges.hyperliquid import MIN_ORDER_VALUE
from exchanges.trading._numbers import (
    Number,
    OrderRuleError,
    multiply,
    plain,
    positive,
    quantize,
    to_decimal,
)
from exchanges.trading.client_ids import is_cloid

__all__ = [
    "MIN_ORDER_VALUE_USD",
    "Asset",
    "OrderRuleError",
    "Tif",
    "cancel_action",
    "cancel_by_cloid_action",
    "clearinghouse_state",
    "encode",
    "exchange_body",
    "limit_order",
    "market_order",
    "modify_action",
    "open_orders",
    "order_action",
    "order_status",
    "round_price",
    "round_size",
    "slippage_price",
    "user_fills",
    "user_fills_by_time",
]

Tif = Literal["Gtc", "Ioc", "Alo"]
TIFS: tuple[str, ...] = ("Gtc", "Ioc", "Alo")
PERP_MAX_DECIMALS = 6
MAX_SIGNIFICANT_FIGURES = 5
MIN_ORDER_VALUE_USD = Decimal(repr(MIN_ORDER_VALUE))

_encoder = msgspec.json.Encoder()
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class Asset(msgspec.Struct, frozen=True, kw_only=True):
    """A perp as its meta lists it: coin name, asset id (its index in meta's universe) and
    szDecimals. min_order_value is the venue's minimum order value in USDC."""

    coin: str
    asset: int
    sz_decimals: int
    min_order_value: Decimal = MIN_ORDER_VALUE_USD

    def __post_init__(self) -> None:
        if isinstance(self.asset, bool) or self.asset < 0:
            raise ValueError(f"asset id of {self.coin} must be >= 0, got {self.asset}")
        if not 0 <= self.sz_decimals <= PERP_MAX_DECIMALS:
            raise ValueError(f"szDecimals of {self.coin} must be in [0, {PERP_MAX_DECIMALS}], got {self.sz_decimals}")


# -- the price and size rules ------------------------------------------------------------------


def round_price(price: Number, sz_decimals: int, *, is_buy: bool) -> Decimal:
    """A perp price Hyperliquid accepts, rounded toward the passive side (buy down, sell up):
    at most 5 significant figures and 6 - szDecimals decimals; integers always allowed.
    OrderRuleError("invalid_price") for a price that is not > 0 or rounds to 0."""
    px = positive(price, "price", "invalid_price")
    figures = MAX_SIGNIFICANT_FIGURES - 1 - px.adjusted()  # decimals that keep 5 significant figures
    decimals = max(0, min(PERP_MAX_DECIMALS - sz_decimals, figures))
    rounded = quantize(px, decimals, ROUND_FLOOR if is_buy else ROUND_CEILING)
    if rounded <= 0:
        raise OrderRuleError("invalid_price", f"price {plain(px)} rounds to 0 at {decimals} decimals")
    return rounded


def round_size(size: Number, sz_decimals: int) -> Decimal:
    """A size rounded down to szDecimals; OrderRuleError("invalid_quantity") if not > 0,
    ("invalid_lot") if less than one lot (10**-szDecimals)."""
    sz = positive(size, "size", "invalid_quantity")
    rounded = quantize(sz, sz_decimals, ROUND_FLOOR)
    if rounded <= 0:
        raise OrderRuleError("invalid_lot", f"size {plain(sz)} is less than one lot (szDecimals {sz_decimals})")
    return rounded


def slippage_price(reference_price: Number, slippage: Number, sz_decimals: int, *, is_buy: bool) -> Decimal:
    """The aggressive limit price of a "market" order: reference x (1 + slippage) for a buy,
    x (1 - slippage) for a sell, rounded toward the reference (so within the bound)."""
    ref = positive(reference_price, "reference price", "invalid_price")
    slip = positive(slippage, "slippage", "invalid_slippage")
    if slip >= 1:
        raise OrderRuleError("invalid_slippage", f"slippage must be < 1 (a fraction), got {plain(slip)}")
    raw = multiply(ref, 1 + slip) if is_buy else multiply(ref, 1 - slip)
    return round_price(raw, sz_decimals, is_buy=is_buy)


def _check_value(asset: Asset, price: Decimal, size: Decimal, reduce_only: bool) -> None:
    # Reduce-only orders are left to the venue: they close what is left of a position, however
    # small, and a local refusal could strand it (the venue's own answer is mapped by errors).
    value = multiply(price, size)
    if not reduce_only and value < asset.min_order_value:
        raise OrderRuleError(
            "below_min_notional",
            f"{asset.coin} order worth {plain(value)} is below the minimum {plain(asset.min_order_value)}",
        )


# -- actions -----------------------------------------------------------------------------------


def _wire(
    asset: Asset, *, is_buy: bool, price: Decimal, size: Decimal, tif: str, reduce_only: bool, cloid: str | None
) -> dict[str, Any]:
    if tif not in TIFS:
        raise OrderRuleError("invalid_order_type", f"tif must be one of {', '.join(TIFS)}, got {tif!r}")
    if cloid is not None and not is_cloid(cloid):
        raise OrderRuleError("invalid_client_order_id", "cloid must be 0x + 32 lowercase hex digits")
    request = {
        "coin": asset.coin,
        "is_buy": bool(is_buy),
        "sz": float(size),
        "limit_px": float(price),
        "order_type": {"limit": {"tif": tif}},
        "reduce_only": bool(reduce_only),
        "cloid": None if cloid is None else Cloid.from_str(cloid),
    }
    try:
        wire: dict[str, Any] = sdk.order_request_to_order_wire(request, asset.asset)
    except ValueError:  # float_to_wire: the number needs more than 8 decimals
        raise OrderRuleError("invalid_price", f"{plain(price)} x {plain(size)} cannot be written exactly") from None
    if Decimal(wire["p"]) != price or Decimal(wire["s"]) != size:
        raise OrderRuleError(
            "invalid_price", f"wire {wire['p']} x {wire['s']} differs from {plain(price)} x {plain(size)}"
        )
    return wire


def limit_order(
    asset: Asset,
    *,
    is_buy: bool,
    price: Number,
    size: Number,
    tif: Tif = "Gtc",
    reduce_only: bool = False,
    cloid: str | None = None,
) -> dict[str, Any]:
    """One order wire {a, b, p, s, r, t, c?}: price and size rounded to the asset's rules
    (passive side), checked against the minimum order value (not for reduce-only orders)."""
    px = round_price(price, asset.sz_decimals, is_buy=is_buy)
    sz = round_size(size, asset.sz_decimals)
    _check_value(asset, px, sz, reduce_only)
    return _wire(asset, is_buy=is_buy, price=px, size=sz, tif=tif, reduce_only=reduce_only, cloid=cloid)


def market_order(
    asset: Asset,
    *,
    is_buy: bool,
    size: Number,
    reference_price: Number,
    slippage: Number,
    reduce_only: bool = False,
    cloid: str | None = None,
) -> dict[str, Any]:
    """A "market" order: IOC at slippage_price. Its value is checked at the lower of the limit
    and the reference price, so neither reading of the minimum refuses it at the venue."""
    px = slippage_price(reference_price, slippage, asset.sz_decimals, is_buy=is_buy)
    sz = round_size(size, asset.sz_decimals)
    _check_value(asset, min(px, to_decimal(reference_price, "reference price")), sz, reduce_only)
    return _wire(asset, is_buy=is_buy, price=px, size=sz, tif="Ioc", reduce_only=reduce_only, cloid=cloid)


def order_action(*orders: dict[str, Any]) -> dict[str, Any]:
    """{"type":"order","orders":[...],"grouping":"na"} (the SDK's order_wires_to_order_action)."""
    if not orders:
        raise ValueError("an order action needs at least one order")
    action: dict[str, Any] = sdk.order_wires_to_order_action(list(orders))
    return action


def _oid(oid: object) -> int:
    if isinstance(oid, bool) or not isinstance(oid, int) or oid < 0:
        raise ValueError(f"oid must be a non-negative int, got {oid!r}")
    return oid


def _cloid(cloid: object) -> str:
    if not isinstance(cloid, str) or not is_cloid(cloid):
        raise ValueError("cloid must be 0x + 32 lowercase hex digits")
    return cloid


def cancel_action(asset: Asset | int, oid: int) -> dict[str, Any]:
    """{"type":"cancel","cancels":[{"a":asset,"o":oid}]}"""
    return {"type": "cancel", "cancels": [{"a": _asset_id(asset), "o": _oid(oid)}]}


def cancel_by_cloid_action(asset: Asset | int, cloid: str) -> dict[str, Any]:
    """{"type":"cancelByCloid","cancels":[{"asset":asset,"cloid":cloid}]}"""
    return {"type": "cancelByCloid", "cancels": [{"asset": _asset_id(asset), "cloid": _cloid(cloid)}]}


def modify_action(oid_or_cloid: int | str, order: dict[str, Any]) -> dict[str, Any]:
    """{"type":"modify","oid":oid | cloid,"order":<order wire>}: replaces the resting order
    named by its oid or its cloid with `order` (a wire from limit_order)."""
    target: int | str = _cloid(oid_or_cloid) if isinstance(oid_or_cloid, str) else _oid(oid_or_cloid)
    return {"type": "modify", "oid": target, "order": order}


def _asset_id(asset: Asset | int) -> int:
    return asset.asset if isinstance(asset, Asset) else _oid(asset)


def exchange_body(
    action: dict[str, Any],
    nonce: int,
    signature: Any,
    *,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> dict[str, Any]:
    """The POST /exchange body, keys in the SDK's order; vaultAddress and expiresAfter are always
    present (null when unset), as the SDK sends them. vault_address must be the one signed."""
    return {
        "action": action,
        "nonce": nonce,
        "signature": {"r": signature["r"], "s": signature["s"], "v": signature["v"]},
        "vaultAddress": vault_address,
        "expiresAfter": expires_after,
    }


# -- /info -------------------------------------------------------------------------------------


def _user(user: object) -> str:
    if not isinstance(user, str) or not _ADDRESS.match(user):
        raise ValueError("user must be the account's 0x address (never an API wallet's)")
    return user.lower()


def clearinghouse_state(user: str) -> dict[str, Any]:
    """Positions, margin summary and withdrawable of a perps account."""
    return {"type": "clearinghouseState", "user": _user(user)}


def open_orders(user: str) -> dict[str, Any]:
    return {"type": "openOrders", "user": _user(user)}


def order_status(user: str, oid_or_cloid: int | str) -> dict[str, Any]:
    """One order's status by oid or by cloid (how a restart asks whether an order it may have sent
    exists)."""
    target: int | str = _cloid(oid_or_cloid) if isinstance(oid_or_cloid, str) else _oid(oid_or_cloid)
    return {"type": "orderStatus", "user": _user(user), "oid": target}


def user_fills(user: str) -> dict[str, Any]:
    """The account's most recent fills (Hyperliquid returns at most 2000)."""
    return {"type": "userFills", "user": _user(user)}


def user_fills_by_time(user: str, start_ms: int, end_ms: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "userFillsByTime", "user": _user(user), "startTime": _oid(start_ms)}
    if end_ms is not None:
        body["endTime"] = _oid(end_ms)
    return body


def encode(body: dict[str, Any]) -> bytes:
    """The JSON bytes to POST (compact, keys in the order built)."""
    return _encoder.encode(body)
