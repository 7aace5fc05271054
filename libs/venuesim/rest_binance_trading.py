"""Binance USDT-M trading on the simulator: signed order, account and position endpoints, listen
keys, and the user data stream, mounted beside the market data (root and /binance_usdm).

    POST/DELETE/GET /fapi/v1/order     (GET/DELETE by orderId or origClientOrderId)
    GET /fapi/v1/openOrders            GET /fapi/v2/account      GET /fapi/v2/positionRisk
    GET /fapi/v1/income                (FUNDING_FEE records of the funding it books)
    POST/PUT/DELETE /fapi/v1/listenKey (USER_STREAM: API key only)

Authentication as Binance does it: the `X-MBX-APIKEY` header names a configured key (missing:
-2014, unknown: -2015, both HTTP 401); SIGNED endpoints need `timestamp` (ms) within `recvWindow`
(default 5000, at most 60000) of the simulator's clock and not 1000 ms or more ahead of it (-1021;
both windows in wall-clock ms: at --speed X, X times as many simulated ms),
and `signature` = hex HMAC-SHA256 with the key's secret of the total params, the query string
concatenated with the form body, as sent, without the signature itself (-1022). Errors are
`{"code":..,"msg":..}` with HTTP 400 unless stated.

Orders: LIMIT (timeInForce GTC, IOC, or GTX = post only) and MARKET, reduceOnly, newClientOrderId
(unique among the account's open orders, -4116), newOrderRespType ACK (default: the order as
acknowledged, status NEW) or RESULT (as it stands after immediate matching); matching in
venuesim.trading. Deviations: STOP/TAKE_PROFIT/TRAILING types are answered -1116 and FOK/GTD
-1115; positionSide must be BOTH (hedge mode is not simulated, -4061); no priceMatch, no STP.

User data stream: `/ws/<listenKey>` (or `/stream?streams=<listenKey>`) on the same port gets the
account's ORDER_TRADE_UPDATE for each new, traded, canceled or expired order, and an
ACCOUNT_UPDATE (reason ORDER) after each trade. A POST while a key is active returns the same key.
Trading faults (timeouts after accept, replayed fills, reordered frames, 429s): venuesim.trading_faults.
Funding (with recorded rates, venuesim.funding): at every 8-hourly settlement in sim time after
the venue's first step, each open position receives -size x mark x rate into the balance, as a
FUNDING_FEE income record and an ACCOUNT_UPDATE (reason FUNDING_FEE) on the user stream.
Deviation: keys do not expire after 60 minutes, and no listenKeyExpired is sent."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from venuesim import binance_orders as wire
from venuesim.binance_usdm import err_illegal_chars, err_invalid_value, err_mandatory
from venuesim.clock import SimClock
from venuesim.exchange_info import MIN_NOTIONAL
from venuesim.feed import Hub
from venuesim.funding import BINANCE_INTERVAL_MS, FundingRates, Settlements, next_due
from venuesim.market import Market
from venuesim.rest import json_response
from venuesim.trading import Engine, Event, Instrument, NotFound, OrderRequest, Rejected
from venuesim.trading_config import BinanceAccount
from venuesim.trading_faults import WAITED_MS, TradingFaults
from venuesim.venues import BINANCE_USDM

DEFAULT_RECV_WINDOW, MAX_RECV_WINDOW, MAX_AHEAD_MS = 5000, 60000, 1000
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_encode = msgspec.json.Encoder().encode


def binance_instruments(market: Market) -> dict[str, Instrument]:
    """The trading rules exchangeInfo states for each served symbol (venuesim.exchange_info)."""
    out = {}
    for symbol, series in market.series.items():
        price_dp, size_dp, _ = series.precision()
        out[symbol] = Instrument(
            symbol, price_dp, size_dp, Decimal(1).scaleb(-price_dp), Decimal(1).scaleb(-size_dp), Decimal(MIN_NOTIONAL)
        )
    return out


class _Refused(Exception):
    def __init__(self, body: dict[str, Any], status: int = 400) -> None:
        self.body, self.status = body, status


class BinanceTrading:
    """The trading endpoints of one Binance USDT-M venue; `wake` tells the matcher an order rests."""

    PATH = "/fapi"
    venue = BINANCE_USDM

    def __init__(
        self,
        engine: Engine,
        clock: SimClock,
        accounts: Sequence[BinanceAccount],
        hub: Hub,
        wake: Callable[[], None] = lambda: None,
        faults: TradingFaults | None = None,
        funding: FundingRates | None = None,
    ) -> None:
        self.engine = engine
        self.funding = funding
        self.settlements = Settlements(BINANCE_INTERVAL_MS)
        self.income: dict[str, list[dict[str, Any]]] = {}  # account -> its FUNDING_FEE records
        self._tran_id = 0
        self.faults = faults if faults is not None else TradingFaults([engine])
        self.clock = clock
        self.keys = {a.api_key: a for a in accounts}
        self.hub = hub
        self.wake = wake
        self.listen_keys: dict[str, str] = {}  # account -> active listen key
        self._listen_count = 0

    def routes(self, prefix: str = "") -> list[web.RouteDef]:
        base = prefix + self.PATH
        return [
            web.post(f"{base}/v1/order", self.new_order),
            web.delete(f"{base}/v1/order", self.cancel_order),
            web.get(f"{base}/v1/order", self.query_order),
            web.get(f"{base}/v1/openOrders", self.open_orders),
            web.get(f"{base}/v2/account", self.account),
            web.get(f"{base}/v2/positionRisk", self.position_risk),
            web.get(f"{base}/v1/income", self.income_history),
            web.post(f"{base}/v1/listenKey", self.listen_key_new),
            web.put(f"{base}/v1/listenKey", self.listen_key_keepalive),
            web.delete(f"{base}/v1/listenKey", self.listen_key_close),
        ]

    # the matcher -----------------------------------------------------------------------------

    def advance(self) -> None:
        """Match resting orders against the feed up to now and push what happened."""
        self._step(self.clock.now_ms())

    def _step(self, now: int) -> None:
        """Match up to now, booking each funding settlement passed on the way at its time."""
        for t in self.settlements.due(now) if self.funding is not None else []:
            self.publish(self.engine.advance(t), t)
            self._settle(t)
        self.publish(self.engine.advance(now), now)

    def next_event_ms(self) -> int | None:
        """When the matcher must look next (venuesim.funding.next_due)."""
        settlements = self.settlements if self.funding is not None else None
        return next_due(self.engine.next_event_ms(), settlements, self.engine.holds_positions(), self.clock.now_ms())

    def _settle(self, t: int) -> None:
        """Book the settlement at t (venuesim.funding's rate, the served price as mark): a
        FUNDING_FEE income record per position, and the ACCOUNT_UPDATE Binance pushes for it in
        cross margin (the balance only: `bc` the fee, no position, no symbol)."""
        assert self.funding is not None
        rate = Decimal(self.funding.rate_at(t, BINANCE_INTERVAL_MS).rate)
        frames: list[tuple[str, str, bool]] = []
        for symbol in self.engine.instruments:
            mark = self.engine.price(symbol, t)
            if mark is None:
                continue
            for name, _size, amount in self.engine.settle_funding(symbol, rate, mark):
                self._tran_id += 1
                records = self.income.setdefault(name, [])
                records.append(wire.funding_income(symbol, amount, t, self._tran_id))
                key = self.listen_keys.get(name)
                if key is not None:
                    update = wire.funding_update(self.engine.accounts[name], amount, t)
                    frames.append((key, _encode(update).decode(), False))
        self.faults.send(self.hub, frames)

    def publish(self, events: list[Event], now: int) -> None:
        if self.funding is not None and any(e.fill is not None for e in events):
            self.wake()  # a position moved: the matcher's next settlement may be due now
        frames: list[tuple[str, str, bool]] = []  # (listen key, frame, a fill's) in venue order
        for event in events:
            order = event.order
            key = self.listen_keys.get(order.account)
            if key is None or not self.hub.wanted(key):
                continue
            inst = self.engine.instruments[order.symbol]
            bid = ask = Decimal(0)
            for o in self.engine.open_orders(order.account, order.symbol):
                px = o.price if o.price is not None else Decimal(0)
                if o.side == "BUY":
                    bid += o.remaining * px
                else:
                    ask += o.remaining * px
            fill = event.fill is not None
            frames.append((key, _encode(wire.order_trade_update(event, inst, now, bid, ask)).decode(), fill))
            if fill:
                acct = self.engine.accounts[order.account]
                mark = self.engine.price(order.symbol, now)
                update = wire.account_update(acct, order.symbol, mark, inst, event.time_ms, now)
                frames.append((key, _encode(update).decode(), False))
        self.faults.send(self.hub, frames)

    def user_stream_opened(self, streams: list[str]) -> list[str]:
        """Frames a (re)connected user stream gets first: the fills a fault replays."""
        return [frame for key in streams if key in self.listen_keys.values() for frame in self.faults.replay(key)]

    # handlers ---------------------------------------------------------------------------------

    async def new_order(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._new_order)

    async def cancel_order(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._cancel_order)

    async def query_order(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._query_order)

    async def open_orders(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._open_orders)

    async def account(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._account)

    async def position_risk(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._position_risk)

    async def income_history(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._income)

    async def _handle(
        self, request: web.Request, action: Callable[[BinanceAccount, dict[str, str], int], Any]
    ) -> web.Response:
        try:
            account, params = await self._signed(request)
            now = self.clock.now_ms()
            self._step(now)
            return json_response(action(account, params, now))
        except _Refused as exc:
            return json_response(exc.body, exc.status)

    def _new_order(self, account: BinanceAccount, params: dict[str, str], now: int) -> dict[str, Any]:
        symbol = _required(params, "symbol")
        side = _required(params, "side")
        kind = _required(params, "type")
        if side not in ("BUY", "SELL"):
            raise _Refused(wire.ERR_SIDE)
        if kind not in ("LIMIT", "MARKET"):
            raise _Refused(wire.ERR_ORDER_TYPE)
        inst = self.engine.instruments.get(symbol)
        if inst is None:
            raise _Refused({"code": -1121, "msg": "Invalid symbol."})
        if params.get("positionSide", "BOTH") != "BOTH":
            raise _Refused({"code": -4061, "msg": "Order's position side does not match user's setting."})
        qty = _decimal(params, "quantity", required=True)
        assert qty is not None
        tif = "GTC"
        price = None
        if kind == "LIMIT":
            tif = _required(params, "timeInForce")
            if tif not in ("GTC", "IOC", "GTX"):
                raise _Refused(wire.ERR_TIF)
            price = _decimal(params, "price", required=True)
        elif "price" in params:
            raise _Refused({"code": -1106, "msg": "Parameter 'price' sent when not required."})
        reduce_only = params.get("reduceOnly", "false")
        if reduce_only not in ("true", "false"):
            raise _Refused(err_invalid_value("reduceOnly"))
        client_id = params.get("newClientOrderId")
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise _Refused({"code": -4015, "msg": "Client order id is not valid."})
        resp_type = params.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise _Refused({"code": -1136, "msg": "Invalid newOrderRespType."})
        req = OrderRequest(
            symbol=symbol, side=side, type=kind, qty=qty, price=price,  # type: ignore[arg-type]
            tif="ALO" if tif == "GTX" else tif,  # type: ignore[arg-type]
            reduce_only=reduce_only == "true",
            client_id=client_id if client_id is not None else f"venuesim-{self.engine.peek_oid()}",
        )  # fmt: skip
        try:
            order, events = self.engine.place(account.name, req, now)
        except Rejected as exc:
            raise _Refused(wire.reject_body(exc.reason, inst)) from None
        self.publish(events, now)
        if order.is_open:
            self.wake()
        return wire.order_answer(order, inst, shown=events[0].order if resp_type == "ACK" else None)

    def _find(self, account: BinanceAccount, params: dict[str, str]) -> Any:
        symbol = _required(params, "symbol")
        if symbol not in self.engine.instruments:
            raise _Refused({"code": -1121, "msg": "Invalid symbol."})
        oid_text, client_id = params.get("orderId"), params.get("origClientOrderId")
        if not oid_text and not client_id:
            raise _Refused(wire.ERR_ORDER_ID)
        if oid_text:
            if not (oid_text.isascii() and oid_text.isdigit()) or len(oid_text) > 20:
                raise _Refused(err_illegal_chars("orderId"))
            order = self.engine.find(account.name, oid=int(oid_text))
        else:
            order = self.engine.find(account.name, client_id=client_id)
        return order if order is not None and order.symbol == symbol else None

    def _cancel_order(self, account: BinanceAccount, params: dict[str, str], now: int) -> dict[str, Any]:
        order = self._find(account, params)
        if order is None or not order.is_open:
            raise _Refused(wire.ERR_UNKNOWN_ORDER)
        try:
            order, events = self.engine.cancel(account.name, order.oid, now)
        except NotFound:
            raise _Refused(wire.ERR_UNKNOWN_ORDER) from None
        self.publish(events, now)
        return wire.order_answer(order, self.engine.instruments[order.symbol])

    def _query_order(self, account: BinanceAccount, params: dict[str, str], now: int) -> dict[str, Any]:
        order = self._find(account, params)
        if order is None:
            raise _Refused(wire.ERR_NO_SUCH_ORDER)
        return wire.order_query(order, self.engine.instruments[order.symbol])

    def _open_orders(self, account: BinanceAccount, params: dict[str, str], now: int) -> list[dict[str, Any]]:
        symbol = params.get("symbol")
        if symbol is not None and symbol not in self.engine.instruments:
            raise _Refused({"code": -1121, "msg": "Invalid symbol."})
        orders = self.engine.open_orders(account.name, symbol)
        return [wire.order_query(o, self.engine.instruments[o.symbol]) for o in orders]

    def _account(self, account: BinanceAccount, params: dict[str, str], now: int) -> dict[str, Any]:
        acct = self.engine.accounts[account.name]
        marks = self.engine.marks(now)
        return wire.account_v2(acct, marks, self.engine.instruments, self.engine.open_orders(account.name), now)

    def _position_risk(self, account: BinanceAccount, params: dict[str, str], now: int) -> list[dict[str, Any]]:
        symbol = params.get("symbol")
        if symbol is not None and symbol not in self.engine.instruments:
            raise _Refused({"code": -1121, "msg": "Invalid symbol."})
        acct = self.engine.accounts[account.name]
        marks = self.engine.marks(now)
        symbols = [symbol] if symbol is not None else list(self.engine.instruments)
        return [
            wire.position_risk(s, acct.positions.get(s), marks.get(s), self.engine.instruments[s], acct.leverage)
            for s in symbols
        ]

    def _income(self, account: BinanceAccount, params: dict[str, str], now: int) -> list[dict[str, Any]]:
        """GET /fapi/v1/income: the account's FUNDING_FEE records (the only income type booked
        here besides fills, which userTrades lists), filtered by incomeType, symbol and
        startTime/endTime; the first `limit` (default 100, at most 1000) from startTime, else the
        latest, ascending."""
        kind, symbol = params.get("incomeType"), params.get("symbol")
        start, end = _ms(params, "startTime"), _ms(params, "endTime")
        limit = _ms(params, "limit") or 100
        if not 1 <= limit <= 1000:
            raise _Refused(err_invalid_value("limit"))
        rows = [
            r for r in self.income.get(account.name, [])
            if (kind is None or r["incomeType"] == kind) and (symbol is None or r["symbol"] == symbol)
            and (start is None or r["time"] >= start) and (end is None or r["time"] <= end)
        ]  # fmt: skip
        return rows[:limit] if start is not None else rows[-limit:]

    # listen keys (USER_STREAM: the API key, no signature) -------------------------------------

    async def listen_key_new(self, request: web.Request) -> web.Response:
        try:
            account = self._api_key(request)
        except _Refused as exc:
            return json_response(exc.body, exc.status)
        key = self.listen_keys.get(account.name)
        if key is None:
            self._listen_count += 1
            key = hashlib.sha256(f"venuesim:{account.name}:{self._listen_count}".encode()).hexdigest()
            self.listen_keys[account.name] = key
        return json_response({"listenKey": key})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        try:
            account = self._api_key(request)
            key = self._own_listen_key(account, _params(request.rel_url.raw_query_string, await _form(request)))
        except _Refused as exc:
            return json_response(exc.body, exc.status)
        return json_response({"listenKey": key})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        try:
            account = self._api_key(request)
            self._own_listen_key(account, _params(request.rel_url.raw_query_string, await _form(request)))
        except _Refused as exc:
            return json_response(exc.body, exc.status)
        del self.listen_keys[account.name]
        return json_response({})

    def _own_listen_key(self, account: BinanceAccount, params: dict[str, str]) -> str:
        key = self.listen_keys.get(account.name)
        sent = params.get("listenKey")
        if key is None or (sent is not None and sent != key):
            raise _Refused(wire.ERR_LISTEN_KEY)
        return key

    # authentication ---------------------------------------------------------------------------

    def _api_key(self, request: web.Request) -> BinanceAccount:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise _Refused(wire.ERR_BAD_API_KEY_FORMAT, 401)
        account = self.keys.get(key)
        if account is None:
            raise _Refused(wire.ERR_REJECTED_KEY, 401)
        return account

    async def _signed(self, request: web.Request) -> tuple[BinanceAccount, dict[str, str]]:
        account = self._api_key(request)
        query = request.rel_url.raw_query_string
        body = await _form(request)
        params = _params(query, body)
        stamp = _required(params, "timestamp")
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 20:
            raise _Refused(err_illegal_chars("timestamp"))
        window_text = params.get("recvWindow", str(DEFAULT_RECV_WINDOW))
        if not (window_text.isascii() and window_text.isdigit()) or len(window_text) > 20:
            raise _Refused(err_illegal_chars("recvWindow"))
        window = int(window_text)
        if window > MAX_RECV_WINDOW:
            raise _Refused(wire.ERR_BAD_RECV_WINDOW)
        # As of its arrival (latency_s held it that long). The windows bound a network's delay and
        # a host clock's error, which do not speed up with the simulation: at --speed X they are X
        # times as many simulated ms (a client keeping the simulator's time: GET /_sim/clock).
        speed = self.clock.speed
        now, ts = self.clock.now_ms() - int(request.get(WAITED_MS, 0) * speed), int(stamp)
        if ts >= now + MAX_AHEAD_MS * speed:
            raise _Refused(wire.ERR_AHEAD)
        if now - ts > window * speed:
            raise _Refused(wire.ERR_RECV_WINDOW)
        signature = _required(params, "signature")
        expected = hmac.new(account.secret.encode(), signed_payload(query, body).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise _Refused(wire.ERR_SIGNATURE)
        return account, params


def signed_payload(query: str, body: str) -> str:
    """Binance's totalParams: the query string then the body, as sent, without `signature=...`."""
    return _without_signature(query) + _without_signature(body)


def _without_signature(text: str) -> str:
    return "&".join(part for part in text.split("&") if not part.startswith("signature=")) if text else ""


async def _form(request: web.Request) -> str:
    if request.content_type != "application/x-www-form-urlencoded":
        return ""
    return (await request.read()).decode("utf-8", errors="replace")


def _params(query: str, body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in (query, body):
        for name, value in parse_qsl(text, keep_blank_values=True):
            if name in out:
                raise _Refused({"code": -1101, "msg": "Duplicate values for a parameter detected."})
            out[name] = value
    return out


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _Refused(err_mandatory(name))
    return value


def _ms(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise _Refused(err_illegal_chars(name))
    return int(text)


def _decimal(params: dict[str, str], name: str, *, required: bool) -> Decimal | None:
    text = params.get(name)
    if not text:
        if required:
            raise _Refused(err_mandatory(name))
        return None
    if not _DECIMAL.match(text):
        msg = f"Illegal characters found in parameter '{name}'; legal range is '{_DECIMAL_RANGE}'."
        raise _Refused({"code": -1100, "msg": msg})
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise _Refused(err_mandatory(name)) from None
