"""Client order ids derived from the order event's id, so that a retry or a restart sends the same
id and the venue can be asked, before re-sending, whether it already has the order.

- Hyperliquid `cloid`: a 128-bit hex string, "0x" + 32 lowercase hex digits (the SDK's Cloid
  rule; /exchange and /info orderStatus take it as is).
- Binance USDT-M `newClientOrderId`: must match ^[\\.A-Z\\:/a-z0-9_-]{1,36}$ (POST /fapi/v1/order);
  ours is "tt-" + 32 hex digits (35 characters), the prefix marking orders ticktape placed, so
  reconciliation can tell them from orders someone placed by hand.

Both are ticktape.ids.derive (blake2b-128) of the event id under a per-venue label: the same
event id always gives the same id, two events never share one in practice, and the two venues'
ids for one event are unrelated."""

from __future__ import annotations

import re

from ticktape import ids

BINANCE_PREFIX = "tt-"
BINANCE_CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
CLOID = re.compile(r"^0x[0-9a-f]{32}$")


def _event_id(event_id: object) -> str:
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("a client order id needs the order event's id (a non-empty string)")
    return event_id


def hyperliquid_cloid(event_id: str) -> str:
    """The cloid for the order made from event `event_id`: "0x" + 32 hex digits."""
    return "0x" + ids.derive("hyperliquid.cloid", _event_id(event_id))


def binance_client_order_id(event_id: str) -> str:
    """The newClientOrderId for the order made from event `event_id`: "tt-" + 32 hex digits."""
    return BINANCE_PREFIX + ids.derive("binance_usdm.newClientOrderId", _event_id(event_id))


def is_cloid(value: str) -> bool:
    """Whether value is a cloid Hyperliquid accepts (lowercase hex, as ours are)."""
    return bool(CLOID.match(value))


def is_binance_client_order_id(value: str) -> bool:
    """Whether value is a newClientOrderId Binance USDT-M accepts."""
    return bool(BINANCE_CLIENT_ORDER_ID.match(value))


def placed_by_ticktape(client_order_id: str) -> bool:
    """Whether a Binance order's clientOrderId has the shape ticktape gives its own ids."""
    return client_order_id.startswith(BINANCE_PREFIX) and bool(re.fullmatch(r"tt-[0-9a-f]{32}", client_order_id))
