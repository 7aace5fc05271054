"""The simulated venue's matching engine: orders against the market the simulator is serving.

Pure and deterministic: time is passed in (the sim clock's ms), order and trade ids come from
counters, money is Decimal (venuesim.accounts). The venue adapters (venuesim.binance_trading,
venuesim.hyperliquid_trading) turn requests into `place`/`cancel`, call `advance(now)` before
each request and from the matcher task, and render the returned events on their wire.

The market price at sim time t is what the feed has served by t: the open of the bar in progress
(its opening frame went out at its open), or the close of the last bar once it has closed and no
later bar has opened (a gap, or the end of the data). No price before a symbol's first bar.

Matching:
- a marketable order (MARKET, or a LIMIT buy at or above the price / sell at or below it) fills
  in full at the market price as a taker; IOC that is not marketable expires unfilled; ALO that is
  marketable is rejected;
- a resting LIMIT fills in full at its own price as a maker when the feed crosses it: at a bar's
  open when the open is at or through the limit (orders placed before that open), and at a bar's
  close when its low (buy) or high (sell) reached the limit (orders resting since that bar opened;
  an order placed mid-bar is not matched against the part of the bar it may have missed). Events
  at one instant: a bar's close before the next bar's open, symbols in name order.
- reduce-only fills at most the position it reduces; with nothing left to reduce it is canceled.
No partial fills against bar volume (a fault can make taker fills partial: venuesim.trading_faults),
no queue position, no self-trade rules, no trigger orders.

Checks at placement, in order: unknown account/symbol, size (> 0, lot), price (venue rule),
duplicate client id, reduce-only direction, post-only crossing, a market price to trade at, min
notional (reduce-only exempt), initial margin: notional / leverage of the part that increases the
position, against equity - position margin - open-order margin."""

from __future__ import annotations

import dataclasses
import enum
from bisect import bisect_right
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Literal

from venuesim.accounts import ZERO, Account
from venuesim.bars import MINUTE_MS
from venuesim.market import Market, Series

Side = Literal["BUY", "SELL"]
OrderType = Literal["LIMIT", "MARKET"]
Tif = Literal["GTC", "IOC", "ALO"]
Status = Literal["NEW", "FILLED", "CANCELED", "EXPIRED"]
EventKind = Literal["new", "fill", "canceled", "expired"]
_OPEN, _CLOSE = 1, 0  # phase order at one instant: closes first


class Reject(enum.Enum):
    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_SYMBOL = "unknown_symbol"
    ZERO_SIZE = "zero_size"
    SIZE_PRECISION = "size_precision"  # more decimals than the lot allows
    SIZE_STEP = "size_step"  # not a multiple of the lot
    PRICE_PRECISION = "price_precision"
    PRICE_TICK = "price_tick"
    MISSING_PRICE = "missing_price"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    REDUCE_ONLY = "reduce_only"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    NO_MARKET_PRICE = "no_market_price"
    MIN_NOTIONAL = "min_notional"
    INSUFFICIENT_MARGIN = "insufficient_margin"


class Rejected(Exception):
    """An order the venue refuses before it exists; `price` is the market price when relevant."""

    def __init__(self, reason: Reject, price: Decimal | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.price = price


class NotFound(Exception):
    """No open order with that id for the account."""


@dataclasses.dataclass(frozen=True)
class Instrument:
    """A symbol's trading rules. price_rule: "tick" (a multiple of `tick`, at most `price_dp`
    decimals: Binance's PRICE_FILTER) or "sigfig5" (at most 5 significant figures and `price_dp`
    decimals, integers always: Hyperliquid perps, price_dp = 6 - szDecimals)."""

    symbol: str
    price_dp: int
    size_dp: int
    tick: Decimal
    lot: Decimal
    min_notional: Decimal
    price_rule: Literal["tick", "sigfig5"] = "tick"


@dataclasses.dataclass(frozen=True)
class Fees:
    maker: Decimal
    taker: Decimal


@dataclasses.dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    price: Decimal | None = None
    tif: Tif = "GTC"
    reduce_only: bool = False
    client_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Order:
    """An order as the venue knows it; a new value on every change (events carry snapshots).
    cancel_reason: "user", "reduce_only" (nothing left to reduce) or "modified"."""

    oid: int
    account: str
    symbol: str
    side: Side
    type: OrderType
    tif: Tif
    qty: Decimal
    price: Decimal | None
    reduce_only: bool
    client_id: str | None
    created_ms: int
    updated_ms: int
    status: Status = "NEW"
    filled: Decimal = ZERO
    quote: Decimal = ZERO  # sum of price x qty over fills
    cancel_reason: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def avg_price(self) -> Decimal:
        return self.quote / self.filled if self.filled else ZERO

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"

    @property
    def signed(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclasses.dataclass(frozen=True)
class Fill:
    tid: int
    oid: int
    account: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal  # paid, in the quote asset
    realized: Decimal  # P&L realized by this fill, before the fee
    maker: bool
    time_ms: int
    start_size: Decimal  # the account's position before the fill (signed)
    client_id: str | None


@dataclasses.dataclass(frozen=True)
class Event:
    """Something the venue tells the account about: an order rested, filled, was canceled or
    expired. time_ms: when it happened (a fill against the feed: the bar event that crossed it)."""

    kind: EventKind
    order: Order
    time_ms: int
    fill: Fill | None = None


# -- the served price -------------------------------------------------------------------------


def price_at(series: Series, now_ms: int) -> Decimal | None:
    """The market price the feed has served by now_ms (see the module doc)."""
    i = bisect_right(series.open_times, now_ms) - 1
    if i < 0:
        return None
    fields = series.bars.fields(i)
    return Decimal(fields[4] if now_ms >= series.open_times[i] + MINUTE_MS else fields[1])


def bar_events(series: Series, after_ms: int, until_ms: int) -> list[tuple[int, int, int]]:
    """(time, phase, bar index) of the opens and closes in (after_ms, until_ms]."""
    ot = series.open_times
    opens = range(bisect_right(ot, after_ms), bisect_right(ot, until_ms))
    closes = range(bisect_right(ot, after_ms - MINUTE_MS), bisect_right(ot, until_ms - MINUTE_MS))
    out = [(ot[i], _OPEN, i) for i in opens] + [(ot[i] + MINUTE_MS, _CLOSE, i) for i in closes]
    out.sort()
    return out


def next_bar_event(series: Series, after_ms: int) -> int | None:
    ot = series.open_times
    candidates = []
    i = bisect_right(ot, after_ms)
    if i < len(ot):
        candidates.append(ot[i])
    j = bisect_right(ot, after_ms - MINUTE_MS)
    if j < len(ot):
        candidates.append(ot[j] + MINUTE_MS)
    return min(candidates) if candidates else None


def decimals(x: Decimal) -> int:
    exp = x.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def significant_figures(x: Decimal) -> int:
    return len(x.normalize().as_tuple().digits)


# -- the engine -------------------------------------------------------------------------------


class Engine:
    """One venue's accounts, orders and fills. client_ids: "open" (a client id must be unique
    among the account's open orders: Binance) or "all" (among all its orders: Hyperliquid cloids)."""

    def __init__(
        self,
        market: Market,
        instruments: Mapping[str, Instrument],
        fees: Fees,
        *,
        accounts: Mapping[str, Decimal] | None = None,
        leverage: int = 20,
        client_ids: Literal["open", "all"] = "open",
        first_oid: int = 1,
    ) -> None:
        self.market = market
        self.instruments = dict(instruments)
        self.fees = fees
        self.leverage = leverage
        self.client_ids = client_ids
        balances = dict(accounts or {})
        self.accounts = {name: Account(name, balance, leverage) for name, balance in balances.items()}
        self.orders: dict[int, Order] = {}
        self.fills: dict[str, list[Fill]] = {name: [] for name in balances}
        self._open: dict[str, dict[int, None]] = {}  # symbol -> open oids, in placement order
        self._seen_ms: dict[str, int] = {}  # symbol -> feed time matched up to
        self._by_client: dict[tuple[str, str], int] = {}  # (account, client id) -> latest oid
        self._next_oid = first_oid
        self._next_tid = 1
        # a fault (venuesim.trading_faults): a taker fill takes only this fraction of the order
        self.partial_fill: Decimal | None = None

    # queries ----------------------------------------------------------------------------------

    def price(self, symbol: str, now_ms: int) -> Decimal | None:
        series = self.market.get(symbol)
        return price_at(series, now_ms) if series is not None else None

    def marks(self, now_ms: int) -> dict[str, Decimal]:
        out = {}
        for symbol in self.instruments:
            px = self.price(symbol, now_ms)
            if px is not None:
                out[symbol] = px
        return out

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol is not None else sorted(self._open)
        return [
            self.orders[oid] for s in symbols for oid in self._open.get(s, {}) if self.orders[oid].account == account
        ]

    def find(self, account: str, *, oid: int | None = None, client_id: str | None = None) -> Order | None:
        """An order of the account by venue id, or the latest one with that client id."""
        if oid is None and client_id is not None:
            oid = self._by_client.get((account, client_id))
        order = self.orders.get(oid) if oid is not None else None
        return order if order is not None and order.account == account else None

    def peek_oid(self) -> int:
        """The id the next accepted order will get."""
        return self._next_oid

    def open_order_margin(self, account: str, marks: Mapping[str, Decimal]) -> Decimal:
        total = ZERO
        for order in self.open_orders(account):
            if not order.reduce_only:
                px = order.price if order.price is not None else marks.get(order.symbol, ZERO)
                total += order.remaining * px
        return total / self.leverage

    def available(self, account: str, marks: Mapping[str, Decimal]) -> Decimal:
        acct = self.accounts[account]
        return acct.equity(marks) - acct.position_margin(marks) - self.open_order_margin(account, marks)

    # commands ---------------------------------------------------------------------------------

    def place(
        self, account: str, req: OrderRequest, now_ms: int, *, replacing: Order | None = None
    ) -> tuple[Order, list[Event]]:
        """Place an order; Rejected when the venue refuses it. Returns the order as it stands
        after any immediate fill and the events it produced. replacing: the order a modify just
        canceled, whose client id the new order may keep."""
        acct = self.accounts.get(account)
        if acct is None:
            raise Rejected(Reject.UNKNOWN_ACCOUNT)
        inst = self.instruments.get(req.symbol)
        if inst is None:
            raise Rejected(Reject.UNKNOWN_SYMBOL)
        self._check_size(inst, req.qty)
        if req.type == "LIMIT":
            if req.price is None:
                raise Rejected(Reject.MISSING_PRICE)
            self._check_price(inst, req.price)
        reused = replacing is not None and replacing.client_id == req.client_id
        if req.client_id is not None and not reused and self._client_id_taken(account, req.client_id):
            raise Rejected(Reject.DUPLICATE_CLIENT_ID)
        side = 1 if req.side == "BUY" else -1
        position = acct.size(req.symbol)
        if req.reduce_only and (not position or (position > 0) == (side > 0)):
            raise Rejected(Reject.REDUCE_ONLY)
        market = self.price(req.symbol, now_ms)
        marketable = market is not None and (
            req.type == "MARKET" or (req.price is not None and (req.price - market) * side >= 0)
        )
        if req.tif == "ALO" and marketable:
            raise Rejected(Reject.POST_ONLY_WOULD_CROSS, market)
        if market is None and (req.type == "MARKET" or req.tif == "IOC"):
            raise Rejected(Reject.NO_MARKET_PRICE)
        ref_price = req.price if req.type == "LIMIT" and req.price is not None else market
        assert ref_price is not None
        if not req.reduce_only and req.qty * ref_price < inst.min_notional:
            raise Rejected(Reject.MIN_NOTIONAL, ref_price)
        marks = self.marks(now_ms)
        reducible = abs(position) if position and (position > 0) != (side > 0) else ZERO
        increase = max(ZERO, req.qty - reducible)
        fill_price = market if marketable else ref_price
        assert fill_price is not None
        if increase and increase * fill_price / self.leverage > self.available(account, marks):
            raise Rejected(Reject.INSUFFICIENT_MARGIN, market)

        order = Order(
            oid=self._next_oid, account=account, symbol=req.symbol, side=req.side, type=req.type,
            tif=req.tif, qty=req.qty, price=req.price, reduce_only=req.reduce_only,
            client_id=req.client_id, created_ms=now_ms, updated_ms=now_ms,
        )  # fmt: skip
        self._next_oid += 1
        self.orders[order.oid] = order
        if req.client_id is not None:
            self._by_client[(account, req.client_id)] = order.oid
        events = [Event("new", order, now_ms)]
        if marketable:
            assert market is not None
            order, fill_events = self._fill(order, market, maker=False, time_ms=now_ms)
            events += fill_events
        if order.is_open and (req.tif == "IOC" or req.type == "MARKET"):
            order = self._update(order, status="EXPIRED", updated_ms=now_ms)
            events.append(Event("expired", order, now_ms))
        if order.is_open:
            if not self._open.get(req.symbol):
                self._seen_ms[req.symbol] = now_ms
            self._open.setdefault(req.symbol, {})[order.oid] = None
        return order, events

    def cancel(self, account: str, oid: int, now_ms: int, reason: str = "user") -> tuple[Order, list[Event]]:
        """Cancel an open order of the account; NotFound when there is none with that id."""
        order = self.find(account, oid=oid)
        if order is None or not order.is_open:
            raise NotFound(oid)
        order = self._close(order, "CANCELED", now_ms, reason)
        return order, [Event("canceled", order, now_ms)]

    def advance(self, now_ms: int) -> list[Event]:
        """Match the resting orders against the feed up to now_ms."""
        due: list[tuple[int, int, int, str, int]] = []
        for sidx, symbol in enumerate(sorted(self._open)):
            if not self._open[symbol]:
                continue
            series = self.market.get(symbol)
            after = self._seen_ms.get(symbol, now_ms)
            if series is not None and after < now_ms:
                due += [(t, phase, sidx, symbol, i) for t, phase, i in bar_events(series, after, now_ms)]
            self._seen_ms[symbol] = max(after, now_ms)
        due.sort()
        events: list[Event] = []
        for t, phase, _, symbol, i in due:
            events += self._cross(symbol, i, phase, t)
        return events

    def next_event_ms(self) -> int | None:
        """When the feed next moves for a symbol with resting orders (None: nothing rests)."""
        times = []
        for symbol, oids in self._open.items():
            series = self.market.get(symbol)
            if oids and series is not None:
                t = next_bar_event(series, self._seen_ms.get(symbol, 0))
                if t is not None:
                    times.append(t)
        return min(times) if times else None

    def settle_funding(self, symbol: str, rate: Decimal, mark: Decimal) -> list[tuple[str, Decimal, Decimal]]:
        """A funding settlement of `symbol` at `rate` with the perpetual marked at `mark`: every
        account holding it receives -size x mark x rate (a long pays a positive rate) into its
        balance. Returns (account, size, amount) per account paid, in account order."""
        out = []
        for name, acct in self.accounts.items():
            size = acct.size(symbol)
            if size:
                amount = -size * mark * rate
                acct.balance += amount
                out.append((name, size, amount))
        return out

    def holds_positions(self) -> bool:
        return any(p.size for acct in self.accounts.values() for p in acct.positions.values())

    # internals --------------------------------------------------------------------------------

    def _check_size(self, inst: Instrument, qty: Decimal) -> None:
        if qty <= 0:
            raise Rejected(Reject.ZERO_SIZE)
        if decimals(qty) > inst.size_dp:
            raise Rejected(Reject.SIZE_PRECISION)
        if qty % inst.lot:
            raise Rejected(Reject.SIZE_STEP)

    def _check_price(self, inst: Instrument, price: Decimal) -> None:
        if price <= 0:
            raise Rejected(Reject.PRICE_TICK)
        if inst.price_rule == "sigfig5":
            if price != price.to_integral_value() and (
                significant_figures(price) > 5 or decimals(price) > inst.price_dp
            ):
                raise Rejected(Reject.PRICE_TICK)
            return
        if decimals(price) > inst.price_dp:
            raise Rejected(Reject.PRICE_PRECISION)
        if price % inst.tick:
            raise Rejected(Reject.PRICE_TICK)

    def _client_id_taken(self, account: str, client_id: str) -> bool:
        existing = self.find(account, client_id=client_id)
        return existing is not None and (self.client_ids == "all" or existing.is_open)

    def _update(self, order: Order, **changes: object) -> Order:
        order = dataclasses.replace(order, **changes)  # type: ignore[arg-type]
        self.orders[order.oid] = order
        return order

    def _close(self, order: Order, status: Status, now_ms: int, reason: str | None) -> Order:
        self._open.get(order.symbol, {}).pop(order.oid, None)
        return self._update(order, status=status, updated_ms=now_ms, cancel_reason=reason)

    def _fill(self, order: Order, price: Decimal, *, maker: bool, time_ms: int) -> tuple[Order, list[Event]]:
        acct = self.accounts[order.account]
        start = acct.size(order.symbol)
        qty = order.remaining
        if not maker and self.partial_fill is not None:
            lot = self.instruments[order.symbol].lot
            qty = min(qty, max(lot, (order.qty * self.partial_fill) // lot * lot))
        if order.reduce_only:
            reducible = abs(start) if start and (start > 0) != (order.signed > 0) else ZERO
            qty = min(qty, reducible)
            if not qty:
                order = self._close(order, "CANCELED", time_ms, "reduce_only")
                return order, [Event("canceled", order, time_ms)]
        fee = price * qty * (self.fees.maker if maker else self.fees.taker)
        realized = acct.apply_fill(order.symbol, qty * order.signed, price, fee, time_ms)
        fill = Fill(
            tid=self._next_tid, oid=order.oid, account=order.account, symbol=order.symbol, side=order.side,
            price=price, qty=qty, fee=fee, realized=realized, maker=maker, time_ms=time_ms, start_size=start,
            client_id=order.client_id,
        )  # fmt: skip
        self._next_tid += 1
        self.fills.setdefault(order.account, []).append(fill)
        order = self._update(order, filled=order.filled + qty, quote=order.quote + price * qty, updated_ms=time_ms)
        if not order.remaining:
            order = self._close(order, "FILLED", time_ms, None)
        events = [Event("fill", order, time_ms, fill)]
        resting = order.type == "LIMIT" and order.tif != "IOC"  # a market or IOC remainder expires instead
        if order.is_open and resting and order.reduce_only and not acct.size(order.symbol):
            order = self._close(order, "CANCELED", time_ms, "reduce_only")
            events.append(Event("canceled", order, time_ms))
        return order, events

    def _cross(self, symbol: str, i: int, phase: int, t: int) -> list[Event]:
        series = self.market.get(symbol)
        assert series is not None
        fields = series.bars.fields(i)
        bar_open = series.open_times[i]
        if phase == _OPEN:
            low = high = Decimal(fields[1])
            eligible: Callable[[Order], bool] = lambda o: o.created_ms < t  # noqa: E731
        else:
            low, high = Decimal(fields[3]), Decimal(fields[2])
            eligible = lambda o: o.created_ms <= bar_open  # noqa: E731
        events: list[Event] = []
        for oid in list(self._open.get(symbol, {})):
            order = self.orders[oid]
            if not order.is_open or order.price is None or not eligible(order):
                continue
            crossed = low <= order.price if order.side == "BUY" else high >= order.price
            if crossed:
                events += self._fill(order, order.price, maker=True, time_ms=t)[1]
        return events
