"""The Binance USDT-M futures execution client: place, cancel and query orders, open orders,
fills, positions, the account, and the user data stream's listenKey, over aiohttp, with the
requests of exchanges.trading.binance_orders (HMAC-signed, every parameter in the query string).

Idempotent placement. The newClientOrderId is derived from the order event's id
(client_ids.binance_client_order_id), so every attempt of one order carries the same id. An
attempt whose outcome is unknown (no answer, a 5xx, -1000/-1006/-1007, a malformed answer, and
-4116 "duplicated" which means an earlier attempt got through) is never simply sent again: the
client first waits until that attempt can no longer be accepted (its `timestamp` + recvWindow +
Binance's 1000 ms allowance for a client clock ahead of the server's: the venue refuses it after
that, `-1021`), then asks GET /fapi/v1/order by origClientOrderId. An order the venue has is
acknowledged from that answer (`recovered`); only "Order does not exist" (-2013) leads to a new
attempt. Waiting out the recvWindow first matters: Binance's client id is unique only among open
orders, so an IOC or market order that arrived late and filled would not stop a second one.
`place(..., query_first=True)` asks before the first attempt too (after a restart).

Rate limits (exchanges.trading.ratelimit): the request weight is taken from a Pacer shared by
every client of this IP; each order also takes one from this account's 10 s and 1 minute order
windows. A 429 or 418 closes the Pacer's gate for Retry-After seconds (else an exponential
backoff), for every client; the refused request is tried again once the gate opens, within
`max_wait_s`. Every refusal becomes a reason code (exchanges.trading.errors).

Credentials: the BinanceCredentials object (from environment variables,
exchanges.trading.clients.credentials) adds the X-MBX-APIKEY header; nothing here logs, and no
error carries the URL (it holds the signature) or a header."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from exchanges.trading import binance_orders as requests
from exchanges.trading._numbers import OrderRuleError
from exchanges.trading.binance_orders import BinanceRequest, BinanceRules
from exchanges.trading.binance_sign import DEFAULT_RECV_WINDOW_MS, BinanceCredentials
from exchanges.trading.client_ids import binance_client_order_id
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
from exchanges.trading.clients.pacing import (
    Pacer,
    RateLimitWait,
    Sleep,
    Window,
    binance_order_windows,
    binance_pacer,
    retry_after_seconds,
)
from exchanges.trading.errors import VenueError, binance_error
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
    binance_account,
    binance_fills,
    binance_order,
    binance_orders,
    binance_positions,
)
from exchanges.trading.ratelimit import binance_request_cost
from ticktape.venues import BINANCE_USDM

__all__ = ["MAINNET_URL", "TESTNET_URL", "BinanceUsdmClient"]

MAINNET_URL = "https://fapi.binance.com"  # general-info: "The base endpoint is"
TESTNET_URL = "https://testnet.binancefuture.com"  # general-info, testnet: "The REST baseurl"
SERVER_AHEAD_ALLOWANCE_MS = 1000  # accepted while timestamp < serverTime + 1000
_TIF: dict[str, requests.TimeInForce] = {"gtc": "GTC", "ioc": "IOC", "post_only": "GTX"}
_NO_SUCH_ORDER = -2013  # "Order does not exist."
_UNKNOWN_ORDER = -2011  # "Unknown order sent." (cancel)
_DUPLICATE_CLIENT_ID = -4116  # the venue has an open order with this client id: no need to wait
_EXCHANGE_INFO = BinanceRequest(method="GET", path="/fapi/v1/exchangeInfo")


class BinanceUsdmClient:
    """One Binance USDT-M account's execution client. base_url: MAINNET_URL, TESTNET_URL or the
    venue simulator's (its root or /binance_usdm). rules: each symbol's trading rules
    (load_rules() fetches them from exchangeInfo). pacer: this IP's request weight, shared by
    every client (default: a Pacer of its own at the full documented limit). clock_ms: the
    venue's clock for timestamps; clock_pace: its ms per wall-clock ms (1 at a real venue; a
    simulator's --speed), for recvWindow, which bounds a request's delay in wall-clock time."""

    venue = BINANCE_USDM

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: BinanceCredentials,
        *,
        base_url: str,
        pacer: Pacer | None = None,
        order_windows: tuple[Window, Window] | None = None,
        rules: dict[str, BinanceRules] | None = None,
        recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
        server_ahead_ms: int = SERVER_AHEAD_ALLOWANCE_MS,
        timeout_s: float = 10.0,
        max_attempts: int = 6,
        max_wait_s: float = 60.0,
        clock_ms: Callable[[], int] = wall_ms,
        clock_pace: Callable[[], float] = lambda: 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not isinstance(credentials, BinanceCredentials):
            raise TypeError("credentials must be BinanceCredentials")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.session = session
        self._credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.pacer = pacer or binance_pacer()
        self.order_windows = order_windows or binance_order_windows()
        self.rules: dict[str, BinanceRules] = dict(rules or {})
        self.recv_window_ms = recv_window_ms
        self.server_ahead_ms = server_ahead_ms
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.clock_ms = clock_ms
        self.clock_pace = clock_pace
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"BinanceUsdmClient(base_url={self.base_url!r}, credentials=***)"

    # -- transport --------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return self.pacer.clock() + self.max_wait_s

    async def _send(
        self, build: Callable[[int], BinanceRequest], deadline: float, *, public: bool = False
    ) -> tuple[int, _http.Answer]:
        """Pace, then build the request with the timestamp of that moment (a wait for the rate
        limits must not age it towards the recvWindow), send it, and close the gate on a 429/418.
        Returns (the timestamp sent, the answer); raises NotSent, NoAnswer, RateLimitWait.
        public: an endpoint without security (exchangeInfo): the API key is not sent."""
        weight, orders = binance_request_cost(build(self.clock_ms()))
        costs = [(self.pacer.weight, weight)] + [(w, orders) for w in self.order_windows]
        await self.pacer.acquire(costs, deadline=deadline)
        sent_ms = self.clock_ms()
        request = build(sent_ms)
        try:
            answer = await _http.exchange(
                self.session,
                request.method,
                request.url(self.base_url),
                headers=None if public else self._credentials.headers(),
                timeout_s=self.timeout_s,
            )
        except _http.NoAnswer as exc:
            exc.sent_ms = sent_ms
            raise
        if answer.status in (429, 418):
            self.pacer.refused(
                retry_after_seconds(answer.retry_after), "ip_banned" if answer.status == 418 else "rate_limited"
            )
        elif answer.status < 500:
            self.pacer.succeeded()
        return sent_ms, answer

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

    async def _call(self, build: Callable[[int], BinanceRequest], *, public: bool = False) -> Any:
        """A request that changes nothing (a query, a listenKey call), tried again on transient
        failures and rate limits; its answer's JSON. VenueCallFailed when it cannot be had."""
        deadline = self._deadline()
        last = not_sent(self.venue, "no attempt")
        for attempt in range(1, self.max_attempts + 1):
            try:
                _, answer = await self._send(build, deadline, public=public)
            except RateLimitWait as exc:
                raise VenueCallFailed(over_deadline(self.venue, last, exc)) from None
            except (_http.NotSent, _http.NoAnswer) as exc:
                last = transport_error(self.venue, exc)
                if not await self._pause(attempt, deadline, made=attempt):
                    break
                continue
            if answer.status == 200:
                try:
                    return decode(answer.body)
                except ResponseError as exc:
                    raise VenueCallFailed(bad_response(self.venue, answer.status, str(exc))) from None
            last = binance_error(answer.status, answer.body, retry_after=answer.retry_after)
            if last.retry == "no":
                raise VenueCallFailed(last)
            if answer.status not in (429, 418) and not await self._pause(attempt, deadline, made=attempt):
                break
        raise VenueCallFailed(last)

    # -- trading rules ----------------------------------------------------------------------------

    async def load_rules(self) -> dict[str, BinanceRules]:
        """GET /fapi/v1/exchangeInfo (weight 1): every symbol's price, lot and notional rules;
        kept for place() and returned. A symbol whose filters cannot be read is left out."""
        doc = await self._call(lambda ts: _EXCHANGE_INFO, public=True)
        symbols = doc.get("symbols") if isinstance(doc, dict) else None
        if not isinstance(symbols, list):
            raise VenueCallFailed(bad_response(self.venue, 200, "exchangeInfo without symbols"))
        for info in symbols:
            try:
                rules = BinanceRules.from_exchange_info(info)
            except (ValueError, KeyError, TypeError):
                continue
            self.rules[rules.symbol] = rules
        return dict(self.rules)

    # -- orders -----------------------------------------------------------------------------------

    def _builder(self, order: OrderIntent, client_order_id: str) -> Callable[[int], BinanceRequest]:
        """The order's request for a timestamp; OrderRuleError if it breaks a rule (checked now)."""
        rules = self.rules.get(order.symbol)
        if rules is None:
            raise OrderRuleError("unknown_symbol", f"no trading rules for {order.symbol!r} (load_rules first)")
        side: requests.Side = "BUY" if order.side == "buy" else "SELL"
        if order.order_type == "limit":
            if order.price is None:
                raise OrderRuleError("invalid_price", "a limit order needs a price")
            tif = _TIF.get(order.time_in_force)
            if tif is None:
                raise OrderRuleError("invalid_order_type", f"time in force {order.time_in_force!r}")
            price = order.price

            def build(ts: int) -> BinanceRequest:
                return requests.limit_order(
                    self._credentials, rules, side=side, quantity=order.quantity, price=price,
                    client_order_id=client_order_id, timestamp_ms=ts, time_in_force=tif,
                    reduce_only=order.reduce_only, recv_window_ms=self.recv_window_ms,
                )  # fmt: skip

        else:
            if order.reference_price is None:
                raise OrderRuleError("invalid_price", "a market order needs a reference price")
            reference = order.reference_price

            def build(ts: int) -> BinanceRequest:
                return requests.market_order(
                    self._credentials, rules, side=side, quantity=order.quantity, reference_price=reference,
                    client_order_id=client_order_id, timestamp_ms=ts, reduce_only=order.reduce_only,
                    recv_window_ms=self.recv_window_ms,
                )  # fmt: skip

        build(self.clock_ms())  # raises OrderRuleError before anything is sent
        return build

    async def _outlive(self, sent_ms: int, deadline: float) -> bool:
        """Wait until a request stamped sent_ms can no longer be accepted by the venue; False if
        that is past the deadline."""
        pace = self.clock_pace()
        remaining_s = (sent_ms + self._acceptable_ms(pace) - self.clock_ms()) / pace / 1000
        if remaining_s <= 0:
            return True
        if self.pacer.clock() + remaining_s > deadline:
            return False
        await self.sleep(remaining_s)
        return True

    def _acceptable_ms(self, pace: float) -> float:
        """How long after its timestamp, in the venue's ms, the venue may still execute a request."""
        return (self.recv_window_ms + self.server_ahead_ms) * pace

    async def place(self, order: OrderIntent, *, query_first: bool = False) -> PlaceResult:
        """Place `order` once, whatever happens on the way (see the module doc). query_first: ask
        the venue by client order id before the first attempt (it may have been sent before)."""
        cid = binance_client_order_id(order.event_id)
        try:
            build = self._builder(order, cid)
        except OrderRuleError as exc:
            return OrderRejected(venue=self.venue, symbol=order.symbol, client_order_id=cid, reason=exc.reason,
                                 message=exc.detail)  # fmt: skip
        deadline = self._deadline()
        uncertain_ms = int(self.clock_ms() - self._acceptable_ms(self.clock_pace())) if query_first else None
        last: VenueError = not_sent(self.venue, "no attempt")
        calls = transport_failures = 0
        while calls < self.max_attempts:
            if uncertain_ms is not None:
                if not await self._outlive(uncertain_ms, deadline):
                    break
                calls += 1
                try:
                    state = await self._lookup(order.symbol, cid, deadline)
                except VenueCallFailed as exc:
                    last = exc.error
                    if exc.error.reason in RATE_LIMITED or not await self._pause(calls, deadline, made=calls):
                        break
                    continue
                if state is not None:
                    return _ack(state, cid, recovered=True, attempts=calls)
                uncertain_ms = None
                continue
            calls += 1
            try:
                sent_ms, answer = await self._send(build, deadline)
            except RateLimitWait as exc:
                last = over_deadline(self.venue, last, exc)
                break
            except _http.NotSent as exc:
                last, transport_failures = not_sent(self.venue, str(exc)), transport_failures + 1
                if not await self._pause(transport_failures, deadline, made=calls):
                    break
                continue
            except _http.NoAnswer as exc:
                last, uncertain_ms = no_answer(self.venue, str(exc)), exc.sent_ms or self.clock_ms()
                continue
            if answer.status == 200:
                try:
                    return _ack(binance_order(decode(answer.body)), cid, recovered=False, attempts=calls)
                except ResponseError as exc:
                    last, uncertain_ms = bad_response(self.venue, 200, str(exc)), sent_ms
                    continue
            last = binance_error(answer.status, answer.body, retry_after=answer.retry_after)
            if last.retry == "no":
                return _rejected(order.symbol, cid, last, calls)
            if last.retry == "query_first":
                # -4116: the venue has it open now, ask at once; else wait the attempt out first
                uncertain_ms = sent_ms if last.code != _DUPLICATE_CLIENT_ID else 0
            elif answer.status not in (429, 418) and not await self._pause(calls, deadline, made=calls):
                break
        if uncertain_ms is not None:
            return OutcomeUnknown(venue=self.venue, symbol=order.symbol, client_order_id=cid, reason=last.reason,
                                  message=last.message, attempts=calls)  # fmt: skip
        return _rejected(order.symbol, cid, last, calls)

    async def _lookup(
        self, symbol: str, client_order_id: str | None, deadline: float, order_id: int | None = None
    ) -> OrderState | None:
        """GET /fapi/v1/order once (paced): the order, None for -2013, else VenueCallFailed."""

        def build(ts: int) -> BinanceRequest:
            return requests.query_order(
                self._credentials,
                symbol,
                timestamp_ms=ts,
                order_id=order_id,
                client_order_id=client_order_id,
                recv_window_ms=self.recv_window_ms,
            )

        try:
            _, answer = await self._send(build, deadline)
        except RateLimitWait as exc:
            raise VenueCallFailed(over_deadline(self.venue, not_sent(self.venue, "waited"), exc)) from None
        except _http.NotSent as exc:
            raise VenueCallFailed(not_sent(self.venue, str(exc))) from None
        except _http.NoAnswer as exc:
            raise VenueCallFailed(no_answer(self.venue, str(exc))) from None
        if answer.status == 200:
            try:
                return binance_order(decode(answer.body))
            except ResponseError as exc:
                raise VenueCallFailed(bad_response(self.venue, 200, str(exc))) from None
        error = binance_error(answer.status, answer.body, retry_after=answer.retry_after)
        if error.code == _NO_SUCH_ORDER:
            return None
        raise VenueCallFailed(error)

    async def cancel(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> CancelAck | OrderRejected | OutcomeUnknown:
        """DELETE /fapi/v1/order by orderId or origClientOrderId. A cancel is sent again after an
        unknown outcome (canceling twice is harmless); "Unknown order sent." is then looked up,
        and an order that is no longer open (canceled, or filled first) is acknowledged with the
        state the venue reports."""
        deadline = self._deadline()
        uncertain = False
        last: VenueError = not_sent(self.venue, "no attempt")
        calls = 0

        def build(ts: int) -> BinanceRequest:
            return requests.cancel_order(
                self._credentials,
                symbol,
                timestamp_ms=ts,
                order_id=order_id,
                client_order_id=client_order_id,
                recv_window_ms=self.recv_window_ms,
            )

        while calls < self.max_attempts:
            calls += 1
            try:
                _, answer = await self._send(build, deadline)
            except RateLimitWait as exc:
                last = over_deadline(self.venue, last, exc)
                break
            except (_http.NotSent, _http.NoAnswer) as exc:
                if isinstance(exc, _http.NoAnswer):
                    uncertain, last = True, no_answer(self.venue, str(exc))
                else:
                    last = not_sent(self.venue, str(exc))
                if not await self._pause(calls, deadline, made=calls):
                    break
                continue
            if answer.status == 200:
                try:
                    state = binance_order(decode(answer.body))
                except ResponseError as exc:
                    uncertain, last = True, bad_response(self.venue, 200, str(exc))
                    continue
                return CancelAck(venue=self.venue, symbol=symbol, client_order_id=state.client_order_id,
                                 venue_order_id=state.venue_order_id, status=state.status)  # fmt: skip
            last = binance_error(answer.status, answer.body, retry_after=answer.retry_after)
            if last.code == _UNKNOWN_ORDER:
                try:  # canceled already, or filled first? say which, when the venue knows the order
                    found = await self._lookup(symbol, client_order_id, deadline, order_id)
                except VenueCallFailed:
                    found = None
                if found is not None and found.status not in ("open", "partially_filled"):
                    return CancelAck(venue=self.venue, symbol=symbol, client_order_id=found.client_order_id,
                                     venue_order_id=found.venue_order_id, status=found.status,
                                     recovered=True)  # fmt: skip
                return _rejected(symbol, client_order_id, last, calls)
            if last.retry == "no":
                return _rejected(symbol, client_order_id, last, calls)
            if last.retry == "query_first":
                uncertain = True
            elif answer.status not in (429, 418) and not await self._pause(calls, deadline, made=calls):
                break
        if uncertain:
            return OutcomeUnknown(venue=self.venue, symbol=symbol, client_order_id=client_order_id,
                                  venue_order_id=order_id, reason=last.reason, message=last.message,
                                  attempts=calls)  # fmt: skip
        return _rejected(symbol, client_order_id, last, calls)

    # -- queries ----------------------------------------------------------------------------------

    async def order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> OrderState | None:
        """GET /fapi/v1/order by orderId or origClientOrderId; None when the venue does not know
        it (-2013 "Order does not exist.")."""
        try:
            doc = await self._call(
                lambda ts: requests.query_order(
                    self._credentials,
                    symbol,
                    timestamp_ms=ts,
                    order_id=order_id,
                    client_order_id=client_order_id,
                    recv_window_ms=self.recv_window_ms,
                )
            )
        except VenueCallFailed as exc:
            if exc.error.code == _NO_SUCH_ORDER:
                return None
            raise
        return _parsed(binance_order, doc)

    async def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """GET /fapi/v1/openOrders (weight 1 with a symbol, 40 without)."""
        doc = await self._call(lambda ts: requests.open_orders(self._credentials, timestamp_ms=ts, symbol=symbol,
                                                               recv_window_ms=self.recv_window_ms))  # fmt: skip
        return _parsed(binance_orders, doc)

    async def fills(
        self, symbol: str, *, start_time_ms: int | None = None, from_id: int | None = None, limit: int | None = None
    ) -> list[Fill]:
        """GET /fapi/v1/userTrades (weight 5)."""
        doc = await self._call(
            lambda ts: requests.user_trades(
                self._credentials, symbol, timestamp_ms=ts, start_time_ms=start_time_ms, from_id=from_id,
                limit=limit, recv_window_ms=self.recv_window_ms,
            )
        )  # fmt: skip
        return _parsed(binance_fills, doc)

    async def income(
        self, income_type: str = "FUNDING_FEE", *, start_time_ms: int | None = None, limit: int = 1000
    ) -> list[Any]:
        """GET /fapi/v1/income (weight 30): the account's income records (a JSON array, as sent;
        services.execution.venue_funding reads the FUNDING_FEE ones)."""
        doc = await self._call(
            lambda ts: requests.income(
                self._credentials, timestamp_ms=ts, income_type=income_type, start_time_ms=start_time_ms,
                limit=limit, recv_window_ms=self.recv_window_ms,
            )
        )  # fmt: skip
        if not isinstance(doc, list):
            raise VenueCallFailed(bad_response(self.venue, 200, "income is not a list"))
        return doc

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """GET /fapi/v2/positionRisk (weight 5): the positions that are not flat."""
        doc = await self._call(lambda ts: requests.position_risk(self._credentials, timestamp_ms=ts, symbol=symbol,
                                                                 recv_window_ms=self.recv_window_ms))  # fmt: skip
        return _parsed(binance_positions, doc)

    async def account(self) -> AccountState:
        """GET /fapi/v2/account (weight 5)."""
        doc = await self._call(lambda ts: requests.account(self._credentials, timestamp_ms=ts,
                                                           recv_window_ms=self.recv_window_ms))  # fmt: skip
        return _parsed(binance_account, doc)

    # -- the user data stream ---------------------------------------------------------------------

    async def listen_key_create(self) -> str:
        """POST /fapi/v1/listenKey: the user data stream's key (the active one if there is one)."""
        doc = await self._call(lambda ts: requests.listen_key_create())
        key = doc.get("listenKey") if isinstance(doc, dict) else None
        if not isinstance(key, str) or not key:
            raise VenueCallFailed(bad_response(self.venue, 200, "no listenKey in the answer"))
        return key

    async def listen_key_keepalive(self) -> None:
        """PUT /fapi/v1/listenKey: keep the stream open another 60 minutes."""
        await self._call(lambda ts: requests.listen_key_keepalive())

    async def listen_key_close(self) -> None:
        """DELETE /fapi/v1/listenKey."""
        await self._call(lambda ts: requests.listen_key_close())


def _parsed(parse: Callable[[Any], Any], doc: Any) -> Any:
    try:
        return parse(doc)
    except ResponseError as exc:
        raise VenueCallFailed(bad_response(BINANCE_USDM, 200, str(exc))) from None


def _ack(state: OrderState, client_order_id: str, *, recovered: bool, attempts: int) -> OrderAck:
    return OrderAck(
        venue=BINANCE_USDM,
        symbol=state.symbol,
        client_order_id=state.client_order_id or client_order_id,
        venue_order_id=state.venue_order_id,
        status=state.status,
        filled_quantity=state.filled_quantity,
        average_price=state.average_price,
        recovered=recovered,
        attempts=attempts,
    )


def _rejected(symbol: str, client_order_id: str | None, error: VenueError, attempts: int) -> OrderRejected:
    return OrderRejected(
        venue=BINANCE_USDM,
        symbol=symbol,
        client_order_id=client_order_id,
        reason=error.reason,
        message=error.message,
        http_status=error.http_status,
        code=error.code,
        attempts=attempts,
    )
