"""The Hyperliquid perps execution client: place, cancel, cancel by cloid and modify orders on
POST /exchange (L1 actions signed by exchanges.trading.hyperliquid_sign), and read the account on
POST /info (clearinghouseState, openOrders, orderStatus, userFills), over aiohttp.

Idempotent actions. The cloid is derived from the order event's id (client_ids.hyperliquid_cloid).
An action is signed once, with one nonce, and every attempt sends those same bytes: Hyperliquid
takes a nonce once per signer, so a copy that arrives after the original ("Invalid nonce:
duplicate nonce") can never act twice. After an attempt whose outcome is unknown (no answer, a
5xx, an unreadable answer, a nonce refusal of a copy, "Duplicate cloid"), the client asks
orderStatus by cloid (by oid for a cancel) before anything else: an order the venue has is
acknowledged from that answer (`recovered`); one it does not know is sent again, as the same bytes
unless the venue has already used the nonce, in which case the action is signed anew with a fresh
one (its first copy was processed and made no order). `place(..., query_first=True)` asks before
the first attempt too (after a restart).

Nonces are per signer, strictly increasing (hyperliquid_sign.next_nonce over this process's
clock): clients that share a signing key (an API wallet trading several sub-accounts) must share
one Nonces, which by default they do.

Rate limits (exchanges.trading.ratelimit): the Pacer holds the IP's 1200 weight a minute for every
client; an exchange action weighs 1 + floor(batch / 40), an info request 2, 20 or 60 by type, and
userFills one more per 20 fills returned (charged after the answer). A 429 closes the gate for
Retry-After when given (Hyperliquid documents none), else an exponential backoff.

"Market" orders are IOC limits bounded by the slippage (hyperliquid_orders.market_order)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from exchanges.trading import hyperliquid_orders as actions
from exchanges.trading._numbers import OrderRuleError
from exchanges.trading.client_ids import hyperliquid_cloid
from exchanges.trading.clients import _http
from exchanges.trading.clients._common import (
    RATE_LIMITED,
    VenueCallFailed,
    bad_response,
    decode,
    no_answer,
    not_sent,
    over_deadline,
    transport_error,
    transport_pause_s,
    wall_ms,
)
from exchanges.trading.clients.pacing import Pacer, RateLimitWait, Sleep, hyperliquid_pacer, retry_after_seconds
from exchanges.trading.errors import VenueError, hyperliquid_error
from exchanges.trading.hyperliquid_orders import Asset
from exchanges.trading.hyperliquid_sign import MAINNET_API_URL, TESTNET_API_URL, HyperliquidSigner, next_nonce
from exchanges.trading.model import (
    AccountState,
    CancelAck,
    Fill,
    OrderAck,
    OrderIntent,
    OrderRejected,
    OrderState,
    OutcomeUnknown,
    PlaceResult,
    Position,
    ResponseError,
    Status,
    hyperliquid_account,
    hyperliquid_fills,
    hyperliquid_open_orders,
    hyperliquid_order_status,
    hyperliquid_order_statuses,
)
from exchanges.trading.ratelimit import (
    hyperliquid_exchange_weight,
    hyperliquid_info_extra_weight,
    hyperliquid_info_weight,
)
from ticktape.venues import HYPERLIQUID

__all__ = ["MAINNET_URL", "TESTNET_URL", "HyperliquidClient", "Nonces"]

MAINNET_URL = MAINNET_API_URL  # the official SDK's constants
TESTNET_URL = TESTNET_API_URL
DEFAULT_SLIPPAGE = Decimal("0.05")  # the SDK's market_open default
_TIF: dict[str, actions.Tif] = {"gtc": "Gtc", "ioc": "Ioc", "post_only": "Alo"}
_JSON = {"Content-Type": "application/json"}


class Nonces:
    """The last nonce of each signer, so that each action's nonce is larger than the last."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, signer: str, now_ms: int) -> int:
        nonce = next_nonce(self._last.get(signer), now_ms)
        self._last[signer] = nonce
        return nonce


SHARED_NONCES = Nonces()  # one per process: every client signing with one key must draw from one


class _Signed:
    """One signed action: its bytes (sent as they are on every attempt) and whether the venue may
    have used its nonce already."""

    def __init__(self, body: bytes, weight: int) -> None:
        self.body, self.weight = body, weight
        self.sends = 0


class HyperliquidClient:
    """One Hyperliquid account's execution client. signer: the key and the account or vault it
    trades (hyperliquid_sign.HyperliquidSigner, from an environment variable). base_url:
    MAINNET_URL, TESTNET_URL or the venue simulator's /hyperliquid. is_mainnet: which chain the
    L1 signature is for (default: as the SDK decides, mainnet only for MAINNET_URL). assets: each
    coin's asset id and szDecimals (load_assets() fetches them from meta)."""

    venue = HYPERLIQUID

    def __init__(
        self,
        session: aiohttp.ClientSession,
        signer: HyperliquidSigner,
        *,
        base_url: str,
        is_mainnet: bool | None = None,
        pacer: Pacer | None = None,
        assets: dict[str, Asset] | None = None,
        nonces: Nonces | None = None,
        slippage: Decimal = DEFAULT_SLIPPAGE,
        timeout_s: float = 10.0,
        max_attempts: int = 6,
        max_wait_s: float = 60.0,
        clock_ms: Callable[[], int] = wall_ms,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not isinstance(signer, HyperliquidSigner):
            raise TypeError("signer must be a HyperliquidSigner")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.session = session
        self._signer = signer
        self.base_url = base_url.rstrip("/")
        self.is_mainnet = self.base_url == MAINNET_URL if is_mainnet is None else is_mainnet
        self.pacer = pacer or hyperliquid_pacer()
        self.assets: dict[str, Asset] = dict(assets or {})
        self.nonces = nonces or SHARED_NONCES
        self.slippage = slippage
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.clock_ms = clock_ms
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"HyperliquidClient(base_url={self.base_url!r}, signer={self._signer!r})"

    @property
    def user(self) -> str:
        """The address /info queries name: the vault or sub-account, else the account."""
        return self._signer.user

    # -- transport --------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return self.pacer.clock() + self.max_wait_s

    async def _post(self, path: str, body: bytes, weight: int, deadline: float) -> _http.Answer:
        await self.pacer.acquire([(self.pacer.weight, weight)], deadline=deadline)
        answer = await _http.exchange(
            self.session, "POST", self.base_url + path, body=body, headers=_JSON, timeout_s=self.timeout_s
        )
        if answer.status in (429, 418):
            self.pacer.refused(
                retry_after_seconds(answer.retry_after), "ip_banned" if answer.status == 418 else "rate_limited"
            )
        elif answer.status < 500:
            self.pacer.succeeded()
        return answer

    async def _pause(self, failures: int, deadline: float, *, made: int) -> bool:
        """Wait before trying again after a transient failure; False (at once) when no attempt is
        left after the `made` ones, or the wait would pass the deadline."""
        if made >= self.max_attempts:
            return False
        wait = transport_pause_s(failures)
        if self.pacer.clock() + wait > deadline:
            return False
        await self.sleep(wait)
        return True

    async def _info(self, body: dict[str, Any]) -> Any:
        """POST /info, tried again on transient failures and rate limits; the answer's JSON.
        VenueCallFailed when it cannot be had."""
        deadline = self._deadline()
        data = actions.encode(body)
        weight = hyperliquid_info_weight(body)
        last = not_sent(self.venue, "no attempt")
        for attempt in range(1, self.max_attempts + 1):
            try:
                answer = await self._post("/info", data, weight, deadline)
            except RateLimitWait as exc:
                raise VenueCallFailed(over_deadline(self.venue, last, exc)) from None
            except (_http.NotSent, _http.NoAnswer) as exc:
                last = transport_error(self.venue, exc)
                if not await self._pause(attempt, deadline, made=attempt):
                    break
                continue
            if answer.status == 200:
                try:
                    doc = decode(answer.body)
                except ResponseError as exc:
                    raise VenueCallFailed(bad_response(self.venue, 200, str(exc))) from None
                if isinstance(doc, list):
                    self.pacer.charge(hyperliquid_info_extra_weight(str(body.get("type")), len(doc)))
                return doc
            last = hyperliquid_error(answer.body.decode(errors="replace"), http_status=answer.status)
            if last.retry == "no":
                raise VenueCallFailed(last)
            if answer.status not in (429, 418) and not await self._pause(attempt, deadline, made=attempt):
                break
        raise VenueCallFailed(last)

    def _sign(self, action: dict[str, Any]) -> _Signed:
        nonce = self.nonces.next(self._signer.signer_address, self.clock_ms())
        body = self._signer.exchange_body(action, nonce, is_mainnet=self.is_mainnet)
        return _Signed(actions.encode(body), hyperliquid_exchange_weight(action))

    async def _act(
        self,
        action: dict[str, Any],
        settle: Callable[[Any], _Outcome],
        lookup: Callable[[float], Awaitable[_Outcome | None]],
        *,
        ask_first: bool = False,
    ) -> tuple[_Outcome | None, VenueError, int]:
        """Send one action until it is settled: (the outcome, or None when attempts ran out while
        the outcome was unknown; the last error; the calls made). settle turns an ok answer into
        an outcome; lookup asks the venue whether the action took effect (None: it did not)."""
        deadline = self._deadline()
        signed = self._sign(action)
        uncertain, nonce_used = ask_first, False
        last = not_sent(self.venue, "no attempt")
        calls = 0
        while calls < self.max_attempts:
            calls += 1
            if uncertain:
                try:
                    found = await lookup(deadline)
                except VenueCallFailed as exc:
                    last = exc.error
                    if exc.error.reason in RATE_LIMITED or not await self._pause(calls, deadline, made=calls):
                        break
                    continue
                if found is not None:
                    return found.recovered(calls), last, calls
                uncertain = False
                if nonce_used:  # the first copy was processed and made nothing: sign anew
                    signed, nonce_used = self._sign(action), False
                continue
            signed.sends += 1
            try:
                answer = await self._post("/exchange", signed.body, signed.weight, deadline)
            except RateLimitWait as exc:
                last = over_deadline(self.venue, last, exc)
                break
            except _http.NotSent as exc:
                last = not_sent(self.venue, str(exc))
                if not await self._pause(calls, deadline, made=calls):
                    break
                continue
            except _http.NoAnswer as exc:
                last, uncertain = no_answer(self.venue, str(exc)), True
                continue
            if answer.status != 200:
                last = hyperliquid_error(answer.body.decode(errors="replace"), http_status=answer.status)
                if last.retry == "query_first":
                    uncertain = True
                elif last.retry == "no":
                    return _Outcome.refused(last), last, calls
                elif answer.status not in (429, 418) and not await self._pause(calls, deadline, made=calls):
                    break
                continue
            try:
                doc = decode(answer.body)
            except ResponseError as exc:
                last, uncertain = bad_response(self.venue, 200, str(exc)), True
                continue
            if isinstance(doc, dict) and doc.get("status") == "err":
                text = doc.get("response")
                last = hyperliquid_error(text if isinstance(text, str) else repr(text))
                if signed.sends > 1 and last.message.lower().startswith("invalid nonce"):
                    uncertain = nonce_used = True  # an earlier copy used the nonce: did it act?
                    continue
                return _Outcome.refused(last), last, calls
            try:
                outcome = settle(doc)
            except ResponseError as exc:
                last, uncertain = bad_response(self.venue, 200, str(exc)), True
                continue
            if outcome.duplicate:  # the venue has an order with this cloid: an earlier attempt
                last, uncertain = outcome.error or last, True
                continue
            return outcome, last, calls
        # out of attempts (or of time): unknown if the last attempt may have acted, else refused
        return (None if uncertain else _Outcome.refused(last)), last, calls

    # -- metadata ---------------------------------------------------------------------------------

    async def load_assets(self) -> dict[str, Asset]:
        """POST /info meta (weight 20): each perp's asset id (its index) and szDecimals; kept for
        place() and returned."""
        doc = await self._info({"type": "meta"})
        universe = doc.get("universe") if isinstance(doc, dict) else None
        if not isinstance(universe, list):
            raise VenueCallFailed(bad_response(self.venue, 200, "meta without universe"))
        for index, item in enumerate(universe):
            if not isinstance(item, dict):
                continue
            name, decimals = item.get("name"), item.get("szDecimals")
            if not isinstance(name, str) or type(decimals) is not int:
                continue
            try:
                self.assets[name] = Asset(coin=name, asset=index, sz_decimals=decimals)
            except ValueError:
                continue
        return dict(self.assets)

    # -- orders -----------------------------------------------------------------------------------

    def _wire(self, order: OrderIntent, cloid: str) -> dict[str, Any]:
        """The order wire (OrderRuleError if it breaks a rule)."""
        asset = self.assets.get(order.symbol)
        if asset is None:
            raise OrderRuleError("unknown_symbol", f"no asset {order.symbol!r} (load_assets first)")
        is_buy = order.side == "buy"
        if order.order_type == "limit":
            if order.price is None:
                raise OrderRuleError("invalid_price", "a limit order needs a price")
            tif = _TIF.get(order.time_in_force)
            if tif is None:
                raise OrderRuleError("invalid_order_type", f"time in force {order.time_in_force!r}")
            return actions.limit_order(
                asset, is_buy=is_buy, price=order.price, size=order.quantity, tif=tif,
                reduce_only=order.reduce_only, cloid=cloid,
            )  # fmt: skip
        if order.reference_price is None:
            raise OrderRuleError("invalid_price", "a market order needs a reference price")
        return actions.market_order(
            asset, is_buy=is_buy, size=order.quantity, reference_price=order.reference_price,
            slippage=order.slippage if order.slippage is not None else self.slippage,
            reduce_only=order.reduce_only, cloid=cloid,
        )  # fmt: skip

    def _placed(self, order: OrderIntent, cloid: str, wire: dict[str, Any]) -> Callable[[Any], _Outcome]:
        size = Decimal(wire["s"])
        ioc = wire["t"]["limit"]["tif"] == "Ioc"

        def settle(doc: Any) -> _Outcome:
            status = hyperliquid_order_statuses(doc, 1)[0]
            if not isinstance(status, dict):
                raise ResponseError("Hyperliquid order status: expected an object")
            if "error" in status:
                error = hyperliquid_error(str(status["error"]))
                return _Outcome.refused(error, duplicate="duplicate cloid" in error.message.lower())
            if "resting" in status:
                oid = _oid(status["resting"])
                return _Outcome.ack(_order_ack(order.symbol, cloid, oid, "open"))
            if "filled" in status:
                filled = status["filled"]
                total, avg = _decimal(filled, "totalSz"), _decimal(filled, "avgPx")
                state: Status = "filled" if total >= size else "expired" if ioc else "partially_filled"
                return _Outcome.ack(_order_ack(order.symbol, cloid, _oid(filled), state, total, avg))
            raise ResponseError("Hyperliquid order status: neither resting, filled nor error")

        return settle

    def _found_order(self, symbol: str, cloid: str) -> Callable[[float], Awaitable[_Outcome | None]]:
        async def lookup(deadline: float) -> _Outcome | None:
            state = await self._status_once(cloid, deadline)
            if state is None:
                return None
            return _Outcome.ack(
                _order_ack(symbol, cloid, state.venue_order_id, state.status, state.filled_quantity, None)
            )

        return lookup

    async def place(self, order: OrderIntent, *, query_first: bool = False) -> PlaceResult:
        """Place `order` once, whatever happens on the way (see the module doc). query_first: ask
        by cloid before the first attempt (it may have been sent before)."""
        cloid = hyperliquid_cloid(order.event_id)
        try:
            wire = self._wire(order, cloid)
        except OrderRuleError as exc:
            return OrderRejected(venue=self.venue, symbol=order.symbol, client_order_id=cloid, reason=exc.reason,
                                 message=exc.detail)  # fmt: skip
        outcome, last, calls = await self._act(
            actions.order_action(wire),
            self._placed(order, cloid, wire),
            self._found_order(order.symbol, cloid),
            ask_first=query_first,
        )
        return _place_result(outcome, last, calls, order.symbol, cloid)

    async def modify(self, target: int | str, order: OrderIntent) -> PlaceResult:
        """Replace the resting order `target` (its oid, or its cloid) with `order`, whose cloid
        derives from order.event_id (the modify event's). The venue answers a modify without the
        new order's id: it is read back by cloid (orderStatus, weight 2)."""
        cloid = hyperliquid_cloid(order.event_id)
        try:
            wire = self._wire(order, cloid)
            action = actions.modify_action(target, wire)
        except OrderRuleError as exc:
            return OrderRejected(venue=self.venue, symbol=order.symbol, client_order_id=cloid, reason=exc.reason,
                                 message=exc.detail)  # fmt: skip
        lookup = self._found_order(order.symbol, cloid)

        def settle(doc: Any) -> _Outcome:
            if not isinstance(doc, dict) or doc.get("status") != "ok":
                raise ResponseError("Hyperliquid modify: not an ok answer")
            return _Outcome(None, None, read_back=True)

        outcome, last, calls = await self._act(action, settle, lookup)
        if outcome is not None and outcome.read_back:
            try:
                found = await lookup(self._deadline())
            except VenueCallFailed:
                found = None
            outcome = found or _Outcome.ack(_order_ack(order.symbol, cloid, None, "open"))
        return _place_result(outcome, last, calls, order.symbol, cloid)

    async def _cancel(
        self, coin: str, action: dict[str, Any], ref: int | str
    ) -> CancelAck | OrderRejected | OutcomeUnknown:
        cloid = ref if isinstance(ref, str) else None
        oid = ref if isinstance(ref, int) else None

        async def closed(deadline: float) -> _Outcome | None:
            """The order's state when it is no longer open; None while it still rests (or unknown)."""
            state = await self._status_once(ref, deadline)
            if state is None or state.status in ("open", "partially_filled"):
                return None
            return _Outcome(None, None, cancel=_cancel_ack(coin, state.client_order_id or cloid,
                                                          state.venue_order_id, state.status))  # fmt: skip

        def settle(doc: Any) -> _Outcome:
            status = hyperliquid_order_statuses(doc, 1)[0]
            if status == "success":
                return _Outcome(None, None, cancel=_cancel_ack(coin, cloid, oid, "canceled"))
            if isinstance(status, dict) and "error" in status:
                return _Outcome.refused(hyperliquid_error(str(status["error"])))
            raise ResponseError("Hyperliquid cancel status: neither success nor error")

        outcome, last, calls = await self._act(action, settle, closed)
        if outcome is not None and outcome.error is not None and outcome.error.reason == "unknown_order":
            # never placed, already canceled, or filled: say which, when the venue knows it
            try:
                found = await closed(self._deadline())
            except VenueCallFailed:
                found = None
            if found is not None:
                outcome = found.recovered(calls + 1)
        if outcome is None:
            return OutcomeUnknown(venue=self.venue, symbol=coin, client_order_id=cloid, venue_order_id=oid,
                                  reason=last.reason, message=last.message, attempts=calls)  # fmt: skip
        if outcome.cancel is not None:
            return outcome.cancel
        error = outcome.error or last
        return OrderRejected(venue=self.venue, symbol=coin, client_order_id=cloid, reason=error.reason,
                             message=error.message, http_status=error.http_status, attempts=calls)  # fmt: skip

    async def cancel(self, coin: str, oid: int) -> CancelAck | OrderRejected | OutcomeUnknown:
        """Cancel by oid: {"type":"cancel"} (weight 1)."""
        asset = self._asset(coin)
        if isinstance(asset, OrderRejected):
            return asset
        return await self._cancel(coin, actions.cancel_action(asset, oid), oid)

    async def cancel_by_cloid(self, coin: str, cloid: str) -> CancelAck | OrderRejected | OutcomeUnknown:
        """Cancel by cloid (an order event's: client_ids.hyperliquid_cloid): {"type":"cancelByCloid"}."""
        asset = self._asset(coin)
        if isinstance(asset, OrderRejected):
            return asset
        return await self._cancel(coin, actions.cancel_by_cloid_action(asset, cloid), cloid)

    def _asset(self, coin: str) -> Asset | OrderRejected:
        asset = self.assets.get(coin)
        if asset is None:
            return OrderRejected(venue=self.venue, symbol=coin, client_order_id=None, reason="unknown_symbol",
                                 message=f"no asset {coin!r} (load_assets first)")  # fmt: skip
        return asset

    # -- queries ----------------------------------------------------------------------------------

    async def _status_once(self, ref: int | str, deadline: float) -> OrderState | None:
        """One orderStatus (paced, no retry): the order, None when unknown; VenueCallFailed."""
        try:
            answer = await self._post("/info", actions.encode(actions.order_status(self.user, ref)), 2, deadline)
        except RateLimitWait as exc:
            raise VenueCallFailed(over_deadline(self.venue, not_sent(self.venue, "waited"), exc)) from None
        except _http.NotSent as exc:
            raise VenueCallFailed(not_sent(self.venue, str(exc))) from None
        except _http.NoAnswer as exc:
            raise VenueCallFailed(no_answer(self.venue, str(exc))) from None
        if answer.status != 200:
            raise VenueCallFailed(hyperliquid_error(answer.body.decode(errors="replace"), http_status=answer.status))
        try:
            return hyperliquid_order_status(decode(answer.body))
        except ResponseError as exc:
            raise VenueCallFailed(bad_response(self.venue, 200, str(exc))) from None

    async def order_status(self, oid_or_cloid: int | str) -> OrderState | None:
        """orderStatus (weight 2) by oid or cloid; None when the venue does not know the order."""
        doc = await self._info(actions.order_status(self.user, oid_or_cloid))
        return _parsed(hyperliquid_order_status, doc)

    async def open_orders(self) -> list[OrderState]:
        """openOrders (weight 20) of the account (or the vault / sub-account traded)."""
        return _parsed(hyperliquid_open_orders, await self._info(actions.open_orders(self.user)))

    async def account(self) -> AccountState:
        """clearinghouseState (weight 2): margin summary, withdrawable and positions."""
        return _parsed(hyperliquid_account, await self._info(actions.clearinghouse_state(self.user)))

    async def positions(self) -> list[Position]:
        return list((await self.account()).positions)

    async def fills(self, *, start_ms: int | None = None, end_ms: int | None = None) -> list[Fill]:
        """userFills (the latest, at most 2000), or userFillsByTime from start_ms; weight 20 and one
        more per 20 fills."""
        if start_ms is None:
            body = actions.user_fills(self.user)
        else:
            body = actions.user_fills_by_time(self.user, start_ms, end_ms)
        return _parsed(hyperliquid_fills, await self._info(body))


class _Outcome:
    """How an action settled: an order ack, a cancel ack, or a refusal (error); duplicate: the
    refusal says an earlier attempt got through; read_back: ok, the new order is to be read."""

    def __init__(
        self,
        ack: OrderAck | None,
        error: VenueError | None,
        *,
        cancel: CancelAck | None = None,
        duplicate: bool = False,
        read_back: bool = False,
    ) -> None:
        self.order_ack, self.error, self.cancel = ack, error, cancel
        self.duplicate, self.read_back = duplicate, read_back

    @classmethod
    def ack(cls, ack: OrderAck) -> _Outcome:
        return cls(ack, None)

    @classmethod
    def refused(cls, error: VenueError, *, duplicate: bool = False) -> _Outcome:
        return cls(None, error, duplicate=duplicate)

    def recovered(self, attempts: int) -> _Outcome:
        """The same outcome, learnt by asking the venue."""
        ack = self.order_ack
        if ack is not None:
            ack = msgspec.structs.replace(ack, recovered=True, attempts=attempts)
        cancel = self.cancel
        if cancel is not None:
            cancel = msgspec.structs.replace(cancel, recovered=True)
        return _Outcome(ack, self.error, cancel=cancel)


def _place_result(outcome: _Outcome | None, last: VenueError, calls: int, symbol: str, cloid: str) -> PlaceResult:
    if outcome is None:
        return OutcomeUnknown(venue=HYPERLIQUID, symbol=symbol, client_order_id=cloid, reason=last.reason,
                              message=last.message, attempts=calls)  # fmt: skip
    if outcome.order_ack is not None:
        return msgspec.structs.replace(outcome.order_ack, attempts=calls)
    error = outcome.error or last
    return OrderRejected(venue=HYPERLIQUID, symbol=symbol, client_order_id=cloid, reason=error.reason,
                         message=error.message, http_status=error.http_status, attempts=calls)  # fmt: skip


def _order_ack(
    symbol: str,
    cloid: str,
    oid: int | None,
    status: Status,
    filled: Decimal = Decimal(0),
    average: Decimal | None = None,
) -> OrderAck:
    return OrderAck(venue=HYPERLIQUID, symbol=symbol, client_order_id=cloid, venue_order_id=oid, status=status,
                    filled_quantity=filled, average_price=average)  # fmt: skip


def _cancel_ack(coin: str, cloid: str | None, oid: int | None, status: Status) -> CancelAck:
    return CancelAck(venue=HYPERLIQUID, symbol=coin, client_order_id=cloid, venue_order_id=oid, status=status)


def _oid(doc: Any) -> int:
    oid = doc.get("oid") if isinstance(doc, dict) else None
    if type(oid) is not int or oid < 0:
        raise ResponseError("Hyperliquid order status without an oid")
    return oid


def _decimal(doc: dict[str, Any], key: str) -> Decimal:
    value = doc.get(key)
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        raise ResponseError(f"Hyperliquid filled status: {key} is not a decimal string")
    return number


def _parsed(parse: Callable[[Any], Any], doc: Any) -> Any:
    try:
        return parse(doc)
    except ResponseError as exc:
        raise VenueCallFailed(bad_response(HYPERLIQUID, 200, str(exc))) from None
