"""Hyperliquid trading state on the simulator: users, their API (agent) wallets, sub-accounts and
vaults, the nonces each signer has used, and what the user documents and channels show.

Who may act for whom (venuesim.trading_config): a user signs for itself; an agent approved for a
user signs for that user; either signs for a sub-account or vault of the user by naming it in
`vaultAddress`. Nonces are kept per signer as Hyperliquid does: the 100 highest; a nonce already
used, or below the lowest of a full set, is refused (the window check against the clock is in
venuesim.exchange_hyperliquid).

Channels (venuesim.ws_hyperliquid): `orderUpdates` (WsOrder[] per order change: a placement shows
the order's state after immediate matching), `userFills` (a snapshot, `isSnapshot: true`, on
subscribe, then each batch of fills) and `userEvents` (channel `user`, `{"fills": [...]}`).
A fill's `hash` is the hash of the action that made it (the L1 action hash) or, for a resting
order crossed by the feed, a keccak of the trade id (the simulator has no blocks).

Funding (with recorded rates, venuesim.funding): at every hourly settlement in sim time after the
venue's first step, each open position receives -size x mark x rate (the served price as mark)
into its balance, pushed on `userFundings` (a snapshot of the user's settlements on subscribe,
then each new one) and on `userEvents` as `{"funding": {...}}`. Deviation: the real venue settles
1/8 of an 8-hour rate every hour; the recorded rates are used as they are."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from eth_utils import keccak

from venuesim import hyperliquid_orders as wire
from venuesim.clock import SimClock
from venuesim.feed import Hub
from venuesim.funding import HYPERLIQUID_INTERVAL_MS, FundingRates, Settlements, next_due
from venuesim.market import Market
from venuesim.trading import Engine, Event, Fill, Instrument, Order
from venuesim.trading_config import HyperliquidAccount
from venuesim.trading_faults import TradingFaults
from venuesim.venues import HYPERLIQUID

MIN_ORDER_VALUE = Decimal(10)  # USDC, Hyperliquid's documented minimum order value
MAX_PRICE_DECIMALS = 6  # perps: a price has at most 6 - szDecimals decimals (and 5 significant figures)
NONCES_KEPT = 100
USER_FILLS_MAX = 2000
USER_CHANNELS = ("orderUpdates", "userFills", "userEvents", "userFundings")
_encode = msgspec.json.Encoder().encode


def _frame(channel: str, data: Any) -> str:
    return _encode({"channel": channel, "data": data}).decode()


def channel_key(kind: str, user: str) -> str:
    return f"{kind}:{user.lower()}"


def hyperliquid_instruments(market: Market) -> dict[str, Instrument]:
    """Each served coin's rules, in meta's universe order: szDecimals as meta states it
    (venuesim.hyperliquid), prices by Hyperliquid's perp rule, a $10 minimum order value."""
    out = {}
    for coin, series in market.series.items():
        sz_decimals = series.precision()[1]
        price_dp = max(0, MAX_PRICE_DECIMALS - sz_decimals)
        out[coin] = Instrument(
            coin, price_dp, sz_decimals, Decimal(1).scaleb(-price_dp), Decimal(1).scaleb(-sz_decimals),
            MIN_ORDER_VALUE, price_rule="sigfig5",
        )  # fmt: skip
    return out


class HyperliquidTrading:
    venue = HYPERLIQUID

    def __init__(
        self,
        engine: Engine,
        clock: SimClock,
        accounts: Sequence[HyperliquidAccount],
        hub: Hub,
        *,
        mainnet: bool = False,
        wake: Callable[[], None] = lambda: None,
        faults: TradingFaults | None = None,
        funding: FundingRates | None = None,
    ) -> None:
        self.engine = engine
        self.funding = funding
        self.settlements = Settlements(HYPERLIQUID_INTERVAL_MS)
        self.fundings: dict[str, list[dict[str, Any]]] = {}  # user -> its settlements, oldest first
        self.faults = faults if faults is not None else TradingFaults([engine])
        self.clock = clock
        self.hub = hub
        self.mainnet = mainnet
        self.wake = wake
        self.users = {a.address: a for a in accounts}
        self.agents: dict[str, str] = {agent: a.address for a in accounts for agent in a.agents}
        self.coins = list(engine.instruments)  # asset index = position in meta's universe
        self._nonces: dict[str, list[int]] = {}
        self._hashes: dict[int, str] = {}

    # who may act ----------------------------------------------------------------------------

    def user_of(self, signer: str) -> str | None:
        """The user a signer acts for: itself when it is a user (not a sub-account), else the user
        that approved it as an agent."""
        account = self.users.get(signer)
        if account is not None and account.master is None:
            return signer
        return self.agents.get(signer)

    def may_trade(self, user: str, vault: str) -> bool:
        account = self.users.get(vault)
        return account is not None and account.master == user

    def nonce_refusal(self, signer: str, nonce: int) -> str | None:
        used = self._nonces.get(signer, [])
        i = bisect.bisect_left(used, nonce)
        if i < len(used) and used[i] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(used) >= NONCES_KEPT and nonce < used[0]:
            return f"Invalid nonce: nonce too low {nonce} < {used[0]}"
        return None

    def use_nonce(self, signer: str, nonce: int) -> None:
        used = self._nonces.setdefault(signer, [])
        bisect.insort(used, nonce)
        del used[:-NONCES_KEPT]

    def approve_agent(self, user: str, agent: str) -> None:
        self.agents[agent.lower()] = user

    # the matcher and the channels -------------------------------------------------------------

    def advance(self) -> None:
        """Match up to now, booking each funding settlement passed on the way at its time."""
        now = self.clock.now_ms()
        for t in self._settlements(now):
            self.publish(self.engine.advance(t))
            self._settle(t)
        self.publish(self.engine.advance(now))

    def next_event_ms(self) -> int | None:
        """When the matcher must look next (venuesim.funding.next_due)."""
        settlements = self.settlements if self.funding is not None else None
        return next_due(self.engine.next_event_ms(), settlements, self.engine.holds_positions(), self.clock.now_ms())

    def _settlements(self, now: int) -> list[int]:
        return self.settlements.due(now) if self.funding is not None else []

    def _settle(self, t: int) -> None:
        """Book the settlement at t (venuesim.funding's rate for it, the served price as mark) and
        push it on the user channels: userFundings, and userEvents' `funding`."""
        assert self.funding is not None
        rate = self.funding.rate_at(t, HYPERLIQUID_INTERVAL_MS).rate
        frames: list[tuple[str, str, bool]] = []
        for coin in self.engine.instruments:
            mark = self.engine.price(coin, t)
            if mark is None:
                continue
            for user, size, amount in self.engine.settle_funding(coin, Decimal(rate), mark):
                doc = {"time": t, "coin": coin, "usdc": wire.usd(amount), "szi": wire.num(size), "fundingRate": rate}
                self.fundings.setdefault(user, []).append(doc)
                frames.append(
                    (
                        channel_key("userFundings", user),
                        _frame("userFundings", {"user": user, "fundings": [doc]}),
                        False,
                    )
                )
                frames.append((channel_key("userEvents", user), _frame("user", {"funding": doc}), False))
        self.faults.send(self.hub, frames)

    def publish(self, events: list[Event], tx_hash: str | None = None) -> None:
        """Push the events to the accounts' channels; remember each fill's hash."""
        last_event = {e.order.oid: i for i, e in enumerate(events)}
        updates: dict[str, list[dict[str, Any]]] = {}
        fills: dict[str, list[dict[str, Any]]] = {}
        for i, event in enumerate(events):
            user = event.order.account
            if event.fill is not None:
                self._hashes[event.fill.tid] = tx_hash or "0x" + keccak(b"venuesim:fill:%d" % event.fill.tid).hex()
                fills.setdefault(user, []).append(self.fill_doc(event.fill))
            if last_event[event.order.oid] == i:  # one update per order per batch: its latest state
                updates.setdefault(user, []).append(wire.ws_order(event.order, event.time_ms))
        if self.funding is not None and fills:
            self.wake()  # a position moved: the matcher's next settlement may be due now
        frames: list[tuple[str, str, bool]] = []  # (channel key, frame, a fill's) in venue order
        for user, data in updates.items():
            frames.append((channel_key("orderUpdates", user), _frame("orderUpdates", data), False))
        for user, data in fills.items():
            frames.append((channel_key("userFills", user), _frame("userFills", {"user": user, "fills": data}), True))
            frames.append((channel_key("userEvents", user), _frame("user", {"fills": data}), True))
        self.faults.send(self.hub, frames)

    def snapshot(self, subscription: dict[str, Any]) -> list[str]:
        """Frames a new subscription gets after its subscriptionResponse (userFills: its snapshot),
        then the fills a fault replays (venuesim.trading_faults)."""
        kind, user = subscription.get("type"), str(subscription.get("user", "")).lower()
        replayed = self.faults.replay(channel_key(str(kind), user)) if kind in USER_CHANNELS else []
        if kind == "userFundings":
            data = {"isSnapshot": True, "user": user, "fundings": self.fundings.get(user, [])}
            return [_frame("userFundings", data), *replayed]
        if kind != "userFills":
            return replayed
        data = {"isSnapshot": True, "user": user, "fills": self.user_fills(user)}
        return [_frame("userFills", data), *replayed]

    # /info documents --------------------------------------------------------------------------

    def fill_doc(self, fill: Fill) -> dict[str, Any]:
        return wire.fill_doc(fill, self._hashes.get(fill.tid, "0x" + "00" * 32))

    def user_fills(self, user: str) -> list[dict[str, Any]]:
        """Most recent first, at most 2000."""
        fills = self.engine.fills.get(user, [])[-USER_FILLS_MAX:]
        return [self.fill_doc(f) for f in reversed(fills)]

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        now = self.clock.now_ms()
        return wire.clearinghouse_state(self.engine.accounts.get(user), self.engine.marks(now), now)

    def open_orders(self, user: str, frontend: bool = False) -> list[dict[str, Any]]:
        orders = sorted(self.engine.open_orders(user), key=lambda o: -o.oid)
        return [wire.frontend_open_order(o) if frontend else wire.open_order(o) for o in orders]

    def order_status(self, user: str, oid: int | str) -> dict[str, Any]:
        order: Order | None
        if isinstance(oid, int):
            order = self.engine.find(user, oid=oid)
        else:
            order = self.engine.find(user, client_id=oid.lower())
        return wire.order_status(order)

    def all_mids(self) -> dict[str, str]:
        return {coin: wire.num(px) for coin, px in self.engine.marks(self.clock.now_ms()).items()}
