"""Hyperliquid's exchange endpoint, POST /hyperliquid/exchange: `order`, `cancel`, `cancelByCloid`,
`modify`, `batchModify` (L1 actions) and `approveAgent` (a user-signed action).

A request is checked as the venue does, in this order:
1. the body: not JSON 400, no JSON content type 415, a shape it cannot read (an unknown action
   type, a missing field, a malformed cloid or address) 422, all text/plain (venuesim.rest_hyperliquid);
2. `expiresAfter` already past: `Action already expired`;
3. the nonce against the simulator's clock T: within (T - 2 days, T + 1 day), else
   `Invalid nonce: nonce too low <n> < <T - 2d>` / `... nonce too high <n> > <T + 1d>`;
4. the signature: the signer is recovered from the EIP-712 typed data with the official SDK's
   action hashing (`hyperliquid.utils.signing`: msgpack of the action as sent, the nonce, the
   vault address, expiresAfter; the phantom agent of `chain`) and eth-account; a signature that
   recovers nothing is `Unable to recover signer.`; a signer that is neither a user nor an agent
   of one: `User or API Wallet <signer> does not exist.` (approveAgent: `Must deposit before
   performing actions. User: <signer>`);
5. the nonce against the signer's used nonces (venuesim.hyperliquid_trading);
6. `vaultAddress`: a sub-account or vault of the signing user, else `Vault <address> is not a
   sub-account or vault of <user>.` (the simulator's text; the venue's is not documented).
Those refusals are `{"status":"err","response":"<text>"}` with HTTP 200. Then the action runs and
answers in Hyperliquid's shape: `order`/`batchModify` one status per order (`resting`, `filled`,
or `error` with the documented text and ` asset=<n>`), `cancel`/`cancelByCloid` one status per
cancel (`"success"` or the missing-order error), `modify`/`approveAgent` `{"type":"default"}`.

Deviations: trigger (TP/SL) orders get a per-order error; an asset index the meta does not list
refuses the whole action (`Unknown asset <n>.`, the simulator's text); other action types are
answered 422 as unknown variants. Request weight: 1 + floor(orders / 40) on the per-IP budget
/info uses."""

from __future__ import annotations

import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from hyperliquid.utils.signing import (  # type: ignore[import-untyped]
    action_hash,
    recover_agent_or_user_from_l1_action,
    recover_user_from_user_signed_action,
)

from venuesim import hyperliquid as hl_wire
from venuesim import hyperliquid_orders as wire
from venuesim.hyperliquid_trading import HyperliquidTrading
from venuesim.iplimits import IpLimits
from venuesim.rest import json_response
from venuesim.rest_hyperliquid import _field, _read_json, _Rejected
from venuesim.trading import NotFound, Order, OrderRequest, Rejected

ACTIONS = ("order", "cancel", "cancelByCloid", "modify", "batchModify", "approveAgent")
DAY_MS = 86_400_000
NONCE_PAST_MS, NONCE_FUTURE_MS = 2 * DAY_MS, DAY_MS
ORDERS_PER_EXTRA_WEIGHT = 40
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
_TIFS = {"Gtc": "GTC", "Ioc": "IOC", "Alo": "ALO"}
APPROVE_AGENT_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]


def _err(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def _ok(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _bad(detail: str) -> _Rejected:
    return _Rejected(422, hl_wire.deserialize_error(detail))


class HyperliquidExchange:
    def __init__(self, trading: HyperliquidTrading, limits: IpLimits | None = None) -> None:
        self.trading = trading
        self.limits = limits if limits is not None else IpLimits()

    def routes(self, prefix: str = "/hyperliquid") -> list[web.RouteDef]:
        return [web.post(f"{prefix}/exchange", self.exchange)]

    async def exchange(self, request: web.Request) -> web.Response:
        ip = request.remote or ""
        if not self.limits.rest_allowed(ip):
            limit = self.limits.max_rest_weight_per_minute
            return web.Response(status=429, text=f"Too many requests: weight over {limit} a minute from this IP")
        weight = 1
        try:
            body = await _read_json(request)
            action = body.get("action") if isinstance(body, dict) else None
            orders = action.get("orders") if isinstance(action, dict) else None
            weight += len(orders) // ORDERS_PER_EXTRA_WEIGHT if isinstance(orders, list) else 0
            response = json_response(self.answer(body))
        except _Rejected as exc:
            response = web.Response(status=exc.status, text=exc.text)
        self.limits.rest_spent(ip, weight)
        return response

    def answer(self, body: Any) -> dict[str, Any]:
        """The answer to one request body (see the module doc); _Rejected for 4xx."""
        action = _field(body, "action", dict, "")
        kind = _field(action, "type", str, "action.")
        if kind not in ACTIONS:
            expected = ", ".join(f"`{a}`" for a in ACTIONS)
            raise _bad(f"action.type: unknown variant `{kind}`, expected one of {expected}")
        nonce = _field(body, "nonce", int, "")
        signature = _field(body, "signature", dict, "")
        for part, kind_of in (("r", str), ("s", str), ("v", int)):
            _field(signature, part, kind_of, "signature.")
        vault = body.get("vaultAddress")
        if vault is not None and not (isinstance(vault, str) and _ADDRESS.match(vault)):
            raise _bad("vaultAddress: expected a 42-character hex address")
        expires = body.get("expiresAfter")
        if expires is not None and (type(expires) is not int or expires < 0):
            raise _bad("expiresAfter: expected u64")
        parsed = _parse_action(kind, action)

        trading = self.trading
        trading.advance()
        now = trading.clock.now_ms()
        if expires is not None and expires < now:
            return _err("Action already expired")
        if nonce <= now - NONCE_PAST_MS:
            return _err(f"Invalid nonce: nonce too low {nonce} < {now - NONCE_PAST_MS}")
        if nonce >= now + NONCE_FUTURE_MS:
            return _err(f"Invalid nonce: nonce too high {nonce} > {now + NONCE_FUTURE_MS}")
        try:
            if kind == "approveAgent":
                signed = {**action, "agentName": action.get("agentName", "")}
                signer = recover_user_from_user_signed_action(
                    signed, signature, APPROVE_AGENT_TYPES, "HyperliquidTransaction:ApproveAgent", trading.mainnet
                )
            else:
                signer = recover_agent_or_user_from_l1_action(
                    copy.deepcopy(action), signature, vault, nonce, expires, trading.mainnet
                )
        except Exception:  # noqa: BLE001  # eth-keys and eth-utils raise several kinds for a bad signature
            return _err("Unable to recover signer.")
        signer = str(signer).lower()
        user = trading.user_of(signer)
        if kind == "approveAgent":
            if user != signer:  # only the user itself approves its agents
                return _err(f"Must deposit before performing actions. User: {signer}")
        elif user is None:
            return _err(f"User or API Wallet {signer} does not exist.")
        refusal = trading.nonce_refusal(signer, nonce)
        if refusal is not None:
            return _err(refusal)
        assert user is not None
        account = user
        if vault is not None:
            account = vault.lower()
            if not trading.may_trade(user, account):
                return _err(f"Vault {account} is not a sub-account or vault of {user}.")
        trading.use_nonce(signer, nonce)
        tx_hash = "0x" + action_hash(action, vault, nonce, expires).hex()
        if kind == "approveAgent":
            trading.approve_agent(user, parsed)
            return _ok("default")
        return _Run(trading, account, now, tx_hash).run(kind, parsed)


class _Run:
    """One L1 action for one account at one instant."""

    def __init__(self, trading: HyperliquidTrading, account: str, now: int, tx_hash: str) -> None:
        self.trading, self.engine = trading, trading.engine
        self.account, self.now, self.tx_hash = account, now, tx_hash

    def run(self, kind: str, parsed: Any) -> dict[str, Any]:
        for asset in _assets(kind, parsed):
            if not 0 <= asset < len(self.trading.coins):
                return _err(f"Unknown asset {asset}.")
        if kind == "order":
            return _ok("order", [self.place(wire_order) for wire_order in parsed])
        if kind in ("cancel", "cancelByCloid"):
            return _ok("cancel", [self.cancel(asset, ref) for asset, ref in parsed])
        if kind == "modify":
            oid, wire_order = parsed
            status = self.modify(oid, wire_order)
            if "error" in status:
                return _err(status["error"])
            return _ok("default")
        return _ok("order", [self.modify(oid, wire_order) for oid, wire_order in parsed])

    def _request(self, o: dict[str, Any]) -> OrderRequest:
        return OrderRequest(
            symbol=self.trading.coins[o["a"]], side="BUY" if o["b"] else "SELL", type="LIMIT", qty=o["s"],
            price=o["p"], tif=o["tif"], reduce_only=o["r"], client_id=o["c"],
        )  # fmt: skip

    def place(self, o: dict[str, Any], replacing: Order | None = None) -> dict[str, Any]:
        if o["tif"] is None:
            return {"error": f"Trigger orders are not supported by the simulator. asset={o['a']}"}
        try:
            order, events = self.engine.place(self.account, self._request(o), self.now, replacing=replacing)
        except Rejected as exc:
            return wire.order_error(exc.reason, o["a"], exc.price)
        self.trading.publish(events, self.tx_hash)
        if order.is_open:
            self.trading.wake()
        return wire.order_placed(order, o["a"])

    def cancel(self, asset: int, ref: int | str) -> Any:
        if isinstance(ref, int):
            order = self.engine.find(self.account, oid=ref)
        else:
            order = self.engine.find(self.account, client_id=ref)
        if order is not None and order.symbol == self.trading.coins[asset]:
            try:
                _, events = self.engine.cancel(self.account, order.oid, self.now)
            except NotFound:
                pass
            else:
                self.trading.publish(events, self.tx_hash)
                return "success"
        return {"error": f"{wire.MISSING_ORDER} asset={asset}"}

    def modify(self, ref: int | str, o: dict[str, Any]) -> dict[str, Any]:
        if isinstance(ref, int):
            order = self.engine.find(self.account, oid=ref)
        else:
            order = self.engine.find(self.account, client_id=ref)
        if order is None or not order.is_open or order.symbol != self.trading.coins[o["a"]]:
            return {"error": wire.CANNOT_MODIFY}
        old, events = self.engine.cancel(self.account, order.oid, self.now, reason="modified")
        self.trading.publish(events, self.tx_hash)
        return self.place(o, replacing=old)


def _assets(kind: str, parsed: Any) -> list[int]:
    if kind == "order":
        return [o["a"] for o in parsed]
    if kind in ("cancel", "cancelByCloid"):
        return [asset for asset, _ in parsed]
    if kind == "modify":
        return [parsed[1]["a"]]
    if kind == "batchModify":
        return [o["a"] for _, o in parsed]
    return []


# -- reading the action (422 on a shape the venue cannot deserialize) -----------------------------


def _parse_action(kind: str, action: dict[str, Any]) -> Any:
    if kind == "order":
        orders = _field(action, "orders", list, "action.")
        _field(action, "grouping", str, "action.")
        return [_order_wire(o, f"action.orders[{i}].") for i, o in enumerate(orders)]
    if kind == "cancel":
        cancels = _field(action, "cancels", list, "action.")
        return [
            (_uint(c, "a", f"action.cancels[{i}]."), _uint(c, "o", f"action.cancels[{i}]."))
            for i, c in enumerate(cancels)
        ]
    if kind == "cancelByCloid":
        cancels = _field(action, "cancels", list, "action.")
        return [
            (_uint(c, "asset", f"action.cancels[{i}]."), _cloid(_field(c, "cloid", str, f"action.cancels[{i}].")))
            for i, c in enumerate(cancels)
        ]
    if kind == "modify":
        return (_oid(action, "action."), _order_wire(_field(action, "order", dict, "action."), "action.order."))
    if kind == "batchModify":
        modifies = _field(action, "modifies", list, "action.")
        return [
            (_oid(m, f"action.modifies[{i}]."), _order_wire(_field(m, "order", dict, f"action.modifies[{i}]."),
                                                            f"action.modifies[{i}].order."))
            for i, m in enumerate(modifies)
        ]  # fmt: skip
    agent = _field(action, "agentAddress", str, "action.")
    for name in ("hyperliquidChain", "signatureChainId"):
        _field(action, name, str, "action.")
    _uint(action, "nonce", "action.")
    if not _ADDRESS.match(agent):
        raise _bad("action.agentAddress: expected a 42-character hex address")
    return agent.lower()


def _order_wire(o: Any, path: str) -> dict[str, Any]:
    out = {
        "a": _uint(o, "a", path), "b": _field(o, "b", bool, path), "p": _decimal(o, "p", path),
        "s": _decimal(o, "s", path), "r": _field(o, "r", bool, path),
    }  # fmt: skip
    t = _field(o, "t", dict, path)
    if "limit" in t:
        tif = _field(_field(t, "limit", dict, f"{path}t."), "tif", str, f"{path}t.limit.")
        if tif not in _TIFS:
            raise _bad(f"{path}t.limit.tif: unknown variant `{tif}`, expected one of `Alo`, `Ioc`, `Gtc`")
        out["tif"] = _TIFS[tif]
    elif "trigger" in t:
        out["tif"] = None
    else:
        raise _bad(f"{path}t: expected `limit` or `trigger`")
    c = o.get("c")
    out["c"] = None if c is None else _cloid(c if isinstance(c, str) else "", f"{path}c")
    return out


def _uint(obj: Any, name: str, path: str) -> int:
    value: int = _field(obj, name, int, path)
    if value < 0:
        raise _bad(f"{path}{name}: expected u64")
    return value


def _oid(obj: Any, path: str) -> int | str:
    if not isinstance(obj, dict) or "oid" not in obj:
        raise _bad(f"{path}missing field `oid`")
    value = obj["oid"]
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str):
        return _cloid(value, f"{path}oid")
    raise _bad(f"{path}oid: expected an order id or a cloid")


def _cloid(text: str, path: str = "cloid") -> str:
    if not _CLOID.match(text):
        raise _bad(f"{path}: expected a 16-byte hex string")
    return text.lower()


def _decimal(obj: Any, name: str, path: str) -> Decimal:
    text: str = _field(obj, name, str, path)
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0 or text.strip() != text:
        raise _bad(f"{path}{name}: expected a decimal string")
    return value
