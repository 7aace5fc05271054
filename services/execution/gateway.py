"""The venue gateway of execution's live accounts: the only code that sends an order to a venue.

It reads the live accounts' orders from the event log (orders.<account>.*: OrderSubmitted with
mode live, published by the execution core), sends each with the account's execution client
(exchanges.trading.clients: signed, paced, placed at most once by client order id), and publishes
the venue's answer as an event (venue.orders.<account>.*: VenueOrderAccepted, VenueOrderRejected,
VenueOrderUnknown); it listens to the account's user stream (Binance's listenKey stream,
Hyperliquid's orderUpdates, userFills and userFundings) and publishes what it reports
(venue.fills.<account>.* VenueFill, VenueOrderCanceled; venue.funding.<account>.* VenueFunding:
services.execution.venue_funding). The execution core consumes those events like any input, so no
core ever talks to the network and a replay re-runs the core over the recorded answers.

Crash safety: the gateway keeps no state but the log (services.execution.outbox). At start it
folds the live accounts' orders and answers from the log; an order without an answer is asked
about by client order id before anything is sent (query_first), and one stored longer ago than
live.max_order_age_s is never sent any more (looked up only; "not_sent" when the venue does not
have it). An unknown outcome is asked about again with a growing pause. An accepted order whose
fills have not all been reported within live.fill_wait_s (a user stream that dropped) has its
fills asked for by REST; fill ids are the venue's, so a fill reported twice is stored once.

Signing, and the venue times on the events it makes, use the venue's clock as measured here
(VenueClock: Binance's serverTime; a simulator's time and pace, GET /_sim/clock), so a host clock
that is off, or a simulator whose clock runs from its recorded bars at any --speed, does not put
Binance's timestamps outside its recvWindow. Its own rhythms (reconciliation, funding and clock
polls, listenKey keepalives, waits for a request to outlive recvWindow) are wall-clock time: they
pace requests and bound network delays, which do not speed up with a simulation.

Paper accounts never reach this module: the gateway is started only for accounts whose mode is
live, reads only their subjects, and sends only OrderSubmitted events whose mode is live.
Credentials come from the environment variables the account names (never argv, never logged);
log lines name accounts, orders and reason codes, never URLs (a listenKey is in one) or keys."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from exchanges.trading.clients import credentials
from exchanges.trading.clients._common import VenueCallFailed, wall_ms
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from exchanges.trading.clients.hyperliquid import HyperliquidClient
from exchanges.trading.model import (
    CancelAck,
    Fill,
    OrderAck,
    OrderIntent,
    OrderRejected,
    OrderState,
    OutcomeUnknown,
)
from services.execution import reconcile, reports, venue_funding
from services.execution.config import AccountConfig, ExecutionConfig
from services.execution.outbox import CancelEntry, Entry, Outbox
from ticktape import accounts as accts
from ticktape import config as cfg
from ticktape import live as live_gate
from ticktape import subjects
from ticktape.bus.publisher import publish_batch
from ticktape.bus.reader import follow, read_range
from ticktape.events import AccountReconciled, Event, VenueOpenOrder, VenuePosition, VenueSnapshot
from ticktape.events import venue as venue_ids
from ticktape.events.codec import DecodeError
from ticktape.runtime import Runtime
from ticktape.venues import BINANCE_USDM, HYPERLIQUID

Client = BinanceUsdmClient | HyperliquidClient
ClockMs = Callable[[], int]

WS_URLS = {  # the user streams of the real venues (a simulator's are beside its REST URLs)
    (BINANCE_USDM, "mainnet"): "wss://fstream.binance.com",
    (BINANCE_USDM, "testnet"): "wss://fstream.binancefuture.com",
    (HYPERLIQUID, "mainnet"): "wss://api.hyperliquid.xyz/ws",
    (HYPERLIQUID, "testnet"): "wss://api.hyperliquid-testnet.xyz/ws",
}
LISTEN_KEY_KEEPALIVE_S = 30 * 60.0  # Binance closes a stream 60 minutes after the last keepalive
HYPERLIQUID_PING_S = 30.0  # Hyperliquid closes a connection that sent nothing for 60 s
STREAM_BACKOFF_S, STREAM_BACKOFF_MAX_S = 0.5, 30.0
CLOCK_SYNC_S = 300.0  # how often a venue's clock is measured again
UNKNOWN_RETRY_S, UNKNOWN_RETRY_MAX_S = 5.0, 300.0
STREAM_READY_WAIT_S = 10.0  # at start, how long orders wait for the user streams to connect
STOP_GRACE_S = 5.0  # at a stop, how long the orders already read may take to go out (within runtime's 10 s)
NOT_RECONCILED = "not_reconciled"
SETTLE_POLL_S = 0.2  # how often reconciliation looks whether the account's orders have settled
START_SETTLE_WAIT_S = 60.0  # at start, how long the first snapshot waits for the log's open orders to settle


def ws_url(endpoint: live_gate.Endpoint) -> str:
    """The user stream's WebSocket: Binance's base (the stream is <base>/ws/<listenKey>),
    Hyperliquid's /ws; a simulator's beside its REST URL."""
    if endpoint.simulated:
        base = "ws" + endpoint.url.removeprefix("http") if endpoint.url.startswith("http") else endpoint.url
        return base + "/ws" if endpoint.venue == HYPERLIQUID else base
    return WS_URLS[(endpoint.venue, endpoint.network)]


def account_filters(names: list[str]) -> list[str]:
    """The log subjects the gateway reads for these accounts: their orders, the venue's answers and
    the core's reconciliation (AccountReconciled opens the account to new orders)."""
    out = []
    for name in names:
        t = subjects.token(name)
        out += [f"orders.{t}.*", f"venue.orders.{t}.*", f"venue.fills.{t}.*", subjects.reconciliation(name)]
    return out


class VenueClock:
    """A venue's clock as seen from here: venue ms = the venue's time at the last measurement plus
    the wall time since, times its pace. A real venue's clock runs at the wall clock's pace (1): it
    is measured as real clients do (Binance's GET /fapi/v1/time; Hyperliquid, whose nonce window is
    days wide, keeps the wall clock), so a host clock that is off does not put Binance's
    timestamps outside recvWindow. A simulator's runs from its recorded bars at its --speed: it
    says its time and pace (GET /_sim/clock; 0 while frozen, before its first subscription), so
    signatures, nonces and the times put on its events keep its time at any speed.
    source: a clock to use as it is instead (tests)."""

    def __init__(self, source: ClockMs | None = None) -> None:
        self.source = source
        self.wall_at_ms: int | None = None  # the wall clock at the last measurement
        self.venue_at_ms = 0  # the venue's clock then
        self.rate = 1.0  # venue ms per wall ms

    def set(self, wall_ms_: int, venue_ms: int, rate: float = 1.0) -> None:
        self.wall_at_ms, self.venue_at_ms, self.rate = wall_ms_, venue_ms, rate

    @property
    def offset_ms(self) -> int:
        """The venue's clock minus the wall clock at the last measurement."""
        return 0 if self.wall_at_ms is None else self.venue_at_ms - self.wall_at_ms

    @property
    def pace(self) -> float:
        """Venue ms per wall ms for converting a span of wall time (a frozen clock counts as 1)."""
        return self.rate if self.rate > 0 else 1.0

    def at_ms(self, wall: int) -> int:
        """The venue's time at the wall clock's `wall` ms."""
        if self.wall_at_ms is None:
            return wall
        return self.venue_at_ms + round((wall - self.wall_at_ms) * self.rate)

    def now_ms(self) -> int:
        return self.source() if self.source is not None else self.at_ms(wall_ms())


class Link:
    """One live account: its client, its endpoint, the venue ids -> client ids its streams taught."""

    def __init__(self, account: AccountConfig, client: Client, endpoint: live_gate.Endpoint, clock: VenueClock) -> None:
        self.account = account
        self.client = client
        self.endpoint = endpoint
        self.clock = clock
        self.queue: asyncio.Queue[tuple[Entry | CancelEntry, bool]] = asyncio.Queue()
        self.cloids: dict[str, str] = {}  # venue order id -> client order id (Hyperliquid's fills lack it)
        self.stream_up = asyncio.Event()
        self.snapshots: set[str] = set()  # ids of the VenueSnapshots this process published
        self.reconciled = asyncio.Event()  # the core reconciled one of them: new orders may go out
        self.since_ms: int | None = None  # funding history from here is ours (Gateway._since_ms)
        self.last_report = ""  # the id of the account's last venue report read back from the log

    @property
    def name(self) -> str:
        return self.account.name


def preflight(config: ExecutionConfig, common: cfg.CommonSettings, environ: Mapping[str, str] | None = None) -> None:
    """Check before anything starts that every live account resolves an endpoint and finds its
    credentials in the environment; ConfigError naming the key or the variable (never a value)."""
    for index, account in enumerate(config.accounts):
        if account.mode != "live":
            continue
        try:
            _endpoint(account, common, index)  # a ConfigError naming the key when it has none
            if account.venue == BINANCE_USDM:
                credentials.binance_credentials(
                    account.api_key_env or "", account.api_secret_env or "", environ=environ
                )
            else:
                credentials.hyperliquid_signer(
                    account.wallet_key_env or "",
                    account_address=account.account_address,
                    vault_address=account.vault_address,
                    environ=environ,
                )
        except credentials.CredentialsMissing as exc:
            raise cfg.ConfigError(f"live account {account.name!r}: {exc}") from None


def _endpoint(account: AccountConfig, common: cfg.CommonSettings, index: int) -> live_gate.Endpoint:
    """Where the live account trades: the endpoint `ticktape up --live` shows (ticktape.live)."""
    shaped = accts.Account(name=account.name, venue=account.venue, mode="live", network=account.network)
    return live_gate.endpoint(shaped, common, index)


class Gateway:
    """Runs until rt.stop: see the module doc. venue_clock_ms: the venues' clock for signing
    (Binance's timestamp, Hyperliquid's nonce); default the wall clock. environ: where the
    credentials are read (default os.environ)."""

    def __init__(
        self,
        rt: Runtime,
        config: ExecutionConfig,
        *,
        venue_clock_ms: ClockMs | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.rt = rt
        self.config = config
        self.settings = config.live
        self.accounts = config.live_accounts()
        self.venue_clock_ms = venue_clock_ms
        self.environ = environ
        self.outbox = Outbox(a.name for a in self.accounts)
        self.links: dict[str, Link] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_seq = 1
        self._started = time.monotonic()
        self.ready = asyncio.Event()  # set once recovery has dispatched what the log left open

    # -- set-up ----------------------------------------------------------------------------------

    def _client(
        self, http: aiohttp.ClientSession, account: AccountConfig, endpoint: live_gate.Endpoint, clock: VenueClock
    ) -> Client:
        if account.venue == BINANCE_USDM:
            creds = credentials.binance_credentials(
                account.api_key_env or "", account.api_secret_env or "", environ=self.environ
            )
            return BinanceUsdmClient(
                http,
                creds,
                base_url=endpoint.url,
                recv_window_ms=self.settings.recv_window_ms,
                clock_ms=clock.now_ms,
                clock_pace=lambda: clock.pace,
                timeout_s=self.settings.request_timeout_s,
            )
        signer = credentials.hyperliquid_signer(
            account.wallet_key_env or "",
            account_address=account.account_address,
            vault_address=account.vault_address,
            environ=self.environ,
        )
        return HyperliquidClient(
            http,
            signer,
            base_url=endpoint.url,
            is_mainnet=endpoint.mainnet,
            slippage=Decimal(str(self.settings.slippage_bps)) / 10_000,
            clock_ms=clock.now_ms,
            timeout_s=self.settings.request_timeout_s,
        )

    async def _sync_clock(self, http: aiohttp.ClientSession, link: Link) -> None:
        """Measure the venue's clock (see VenueClock): Binance's GET /fapi/v1/time (a simulated
        Binance's too, its pace from GET /_sim/clock); a simulated Hyperliquid's GET /_sim/clock.
        A failure keeps what was measured before."""
        if link.clock.source is not None:
            return
        endpoint = link.endpoint
        sim = endpoint.url.removesuffix("/" + endpoint.venue) if endpoint.simulated else None

        async def ask(url: str) -> tuple[int, Any, int]:
            before = wall_ms()
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                doc = await resp.json(content_type=None)
            return before, doc, wall_ms()

        try:
            rate, venue_ms = 1.0, None
            if sim is not None:
                before, doc, after = await ask(f"{sim}/_sim/clock")
                rate = float(doc["speed"]) if doc["started"] else 0.0
                venue_ms = int(doc["now_ms"])
            if endpoint.venue == BINANCE_USDM:
                before, doc, after = await ask(f"{endpoint.url}/fapi/v1/time")
                venue_ms = int(doc["serverTime"])
            if venue_ms is None:
                return  # a real Hyperliquid: the wall clock
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            self.rt.log.warning("venue clock not measured", account=link.name, error=type(exc).__name__)
            return
        # the answer was made about halfway through the round trip (at a pace of `rate`)
        link.clock.set(after, venue_ms + round((after - before) / 2 * rate), rate)
        self.rt.log.info("venue clock measured", account=link.name, offset_ms=link.clock.offset_ms, rate=rate)

    async def _keep_clock(self, http: aiohttp.ClientSession, link: Link) -> None:
        while True:
            await asyncio.sleep(CLOCK_SYNC_S)
            await self._sync_clock(http, link)

    async def _load_rules(self, link: Link) -> None:
        """The venue's trading rules (exchangeInfo, meta), asked until they come (or stop)."""
        pause = STREAM_BACKOFF_S
        while not self.rt.stop.is_set():
            try:
                if isinstance(link.client, BinanceUsdmClient):
                    await link.client.load_rules()
                else:
                    await link.client.load_assets()
                return
            except VenueCallFailed as exc:
                self.rt.log.warning("venue rules not loaded yet; retrying", account=link.name, reason=exc.error.reason)
            await self._pause(pause)
            pause = min(pause * 2, STREAM_BACKOFF_MAX_S)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.rt.stop.wait(), timeout=seconds)

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> None:
        if not self.accounts:
            return
        self._started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            for index, account in enumerate(self.config.accounts):
                if account.mode != "live":
                    continue
                try:
                    endpoint = _endpoint(account, self.rt.common, index)
                    clock = VenueClock(self.venue_clock_ms)
                    client = self._client(http, account, endpoint, clock)
                except (cfg.ConfigError, credentials.CredentialsMissing) as exc:
                    self.rt.log.error("live account cannot trade", account=account.name, error=str(exc))
                    raise SystemExit(cfg.EXIT_CONFIG) from None
                self.links[account.name] = Link(account, client, endpoint, clock)
                self.rt.log.info(
                    "live account", account=account.name, venue=endpoint.venue, endpoint=endpoint.describe()
                )
            try:
                await asyncio.gather(*(self._sync_clock(http, link) for link in self.links.values()))
                await asyncio.gather(*(self._load_rules(link) for link in self.links.values()))
                if self.rt.stop.is_set():  # stopped before the venues answered
                    return
                await self._read_log()
                for link in self.links.values():
                    self._spawn(self._user_stream(http, link))
                    self._spawn(self._worker(link))
                    self._spawn(self._keep_clock(http, link))
                await self._streams_up()  # fills of what is sent now come on the streams
                if self.rt.stop.is_set():
                    return
                # again: a simulator's clock starts with the first subscription, a user stream's
                await asyncio.gather(*(self._sync_clock(http, link) for link in self.links.values()))
                for entry in self.outbox.unanswered():
                    self._dispatch(entry, recovering=True)
                for entry in self.outbox.fills_missing():
                    self._spawn(self._recover_fills(self.links[entry.order.account], entry, wait=False))
                for cancel in self.outbox.unanswered_cancels():
                    self._dispatch(cancel, recovering=True)
                for link in self.links.values():  # no account trades before its first snapshot reconciles it
                    self._spawn(self._reconcile(link))
                self.ready.set()
                await self._follow()
                with contextlib.suppress(TimeoutError):  # a stop: let the orders read so far go out
                    await asyncio.wait_for(
                        asyncio.gather(*(link.queue.join() for link in self.links.values())), timeout=STOP_GRACE_S
                    )
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _streams_up(self) -> None:
        """Wait (at most STREAM_READY_WAIT_S, or until a stop) for every user stream to connect."""

        async def connected() -> None:
            for link in self.links.values():
                await link.stream_up.wait()

        waits = [asyncio.create_task(connected()), asyncio.create_task(self.rt.stop.wait())]
        await asyncio.wait(waits, timeout=STREAM_READY_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _dispatch(self, entry: Entry | CancelEntry, *, recovering: bool) -> None:
        account = entry.request.account if isinstance(entry, CancelEntry) else entry.order.account
        link = self.links.get(account)
        if link is not None:
            link.queue.put_nowait((entry, recovering))

    # -- the log ---------------------------------------------------------------------------------

    def _apply(self, msg: Any) -> Entry | CancelEntry | None:
        try:
            event = subjects.decode_on(msg.subject, msg.data)
        except DecodeError:
            return None
        stored = msg.metadata.timestamp
        stored_ns = int(stored.timestamp() * 1e9) if stored is not None else time.time_ns()
        if isinstance(event, AccountReconciled):
            link = self.links.get(event.account)
            if link is not None and event.snapshot_id in link.snapshots:
                link.reconciled.set()
            return None
        if isinstance(event, reconcile.REPORTS) and event.account in self.links:
            self.links[event.account].last_report = event.event_id  # a snapshot asked from now reflects it
        return self.outbox.apply(event, stored_ns)

    async def _read_log(self) -> None:
        """Fold the live accounts' orders and answers recorded so far (the outbox)."""
        filters = account_filters(list(self.links))
        stream = self.rt.common.nats.stream
        last = (await self.rt.js.stream_info(stream)).state.last_seq
        async for msg in read_range(self.rt.js, stream, filters, stop_seq=last):
            self._apply(msg)
        self._next_seq = last + 1

    async def _follow(self) -> None:
        """Every new order and answer of the live accounts, in log order, for as long as it runs
        (ticktape.bus.reader.follow: a consumer lost with a server restart is made again)."""
        async for msg in follow(
            self.rt.js,
            self.rt.common.nats.stream,
            account_filters(list(self.links)),
            start_seq=self._next_seq,
            stop=self.rt.stop,
            log=self.rt.log,
            what="the live orders",
            name_prefix="execution_gateway",
        ):
            self._next_seq = msg.metadata.sequence.stream + 1
            entry = self._apply(msg)
            if entry is not None:
                self._dispatch(entry, recovering=False)

    async def _publish(self, events: list[Event]) -> None:
        if events:
            await publish_batch(self.rt.js, [(e, {}) for e in events], timeout=10.0)

    # -- orders ----------------------------------------------------------------------------------

    async def _worker(self, link: Link) -> None:
        """The account's orders, one at a time, in log order."""
        while True:
            entry, recovering = await link.queue.get()
            try:
                if isinstance(entry, CancelEntry):
                    await self._cancel(link, entry)
                    continue
                await self._settle(link, entry, recovering=recovering)
            except Exception as exc:  # noqa: BLE001 - one order's failure must not stop the account
                if isinstance(entry, CancelEntry):
                    self.rt.log.error("venue cancel failed; sent again later", account=link.name, error=repr(exc))
                else:
                    self.rt.log.error(
                        "live order failed; asked again later", account=link.name, order_id=entry.order.order_id,
                        error=repr(exc),
                    )  # fmt: skip
                self._retry_later(link, entry)
            finally:
                link.queue.task_done()

    def _retry_later(self, link: Link, entry: Entry | CancelEntry) -> None:
        unknowns = entry.unknowns if isinstance(entry, Entry) else 0
        delay = min(UNKNOWN_RETRY_MAX_S, UNKNOWN_RETRY_S * 2 ** min(unknowns, 6))

        async def later() -> None:
            await self._pause(delay)
            if not self.rt.stop.is_set() and not entry.answered:
                link.queue.put_nowait((entry, True))

        self._spawn(later())

    def _intent(self, entry: Entry) -> OrderIntent:
        o = entry.order
        ref = o.reference_price if isinstance(o.reference_price, float) else None
        return OrderIntent(
            event_id=o.order_id,
            symbol=o.symbol,
            side=o.side,
            quantity=Decimal(repr(o.quantity)),
            order_type="market",
            reduce_only=o.reduce_only is True,
            reference_price=Decimal(repr(ref)) if ref is not None else None,
        )

    async def _settle(self, link: Link, entry: Entry, *, recovering: bool) -> None:
        """Send the order (or, when it may have been sent before, ask about it first) and publish
        the venue's answer; an order too old to send is only looked up."""
        if entry.answered:
            return
        order = entry.order
        now_ns = time.time_ns()
        if order.mode != "live" or order.account != link.name:  # never: the outbox holds live orders only
            return
        if (now_ns - entry.stored_ns) / 1e9 > self.settings.max_order_age_s:
            await self._look_up(link, entry)
            return
        if not recovering and entry.unknowns == 0 and not link.reconciled.is_set():
            # submitted after this process started and before its start snapshot reconciled the
            # account (the core still held the previous start's reconciliation): never sent
            message = "not sent: the account has not reconciled with the venue since execution started"
            rejected = reports.rejected(order, NOT_RECONCILED, message, venue_ms=link.clock.now_ms(),
                                        received_ns=time.time_ns())  # fmt: skip
            await self._publish([rejected])
            entry.answered = True
            self.rt.log.warning("live order refused before reconciliation", account=link.name,
                                order_id=order.order_id)  # fmt: skip
            return
        query_first = recovering or entry.unknowns > 0
        if recovering and isinstance(link.client, BinanceUsdmClient):
            # A request the previous process sent just before it died is stamped before this process
            # started, and Binance refuses it recvWindow + 1 s after its stamp: ask only after that,
            # so a late one cannot arrive after the look-up said "no such order" (client ids are
            # unique only among open orders: a market order that filled would not stop a second).
            outlived_s = (link.client.recv_window_ms + link.client.server_ahead_ms) / 1000
            await self._pause(self._started + outlived_s - time.monotonic())
        result = await link.client.place(self._intent(entry), query_first=query_first)
        received = time.time_ns()
        venue_ms = link.clock.now_ms()
        events: list[Event] = []
        match result:
            case OrderAck():
                events.append(reports.accepted(order, result, venue_ms=venue_ms, received_ns=received))
                vid = "" if result.venue_order_id is None else str(result.venue_order_id)
                end = reports.ended(order, vid, result.status, result.filled_quantity, venue_ms=venue_ms,
                                    received_ns=received)  # fmt: skip
                if end is not None:
                    events.append(end)
            case OrderRejected():
                events.append(reports.refused(order, result, venue_ms=venue_ms, received_ns=received))
            case OutcomeUnknown():
                events.append(reports.unknown(order, result, entry.unknowns, venue_ms=venue_ms, received_ns=received))
        await self._publish(events)
        self.rt.log.info(
            "live order answered",
            account=link.name,
            order_id=order.order_id,
            client_order_id=entry.client_order_id,
            answer=type(result).__name__,
            status=getattr(result, "status", None),
            reason=getattr(result, "reason", None),
            recovered=getattr(result, "recovered", False),
        )
        if isinstance(result, OutcomeUnknown):
            entry.unknowns += 1
            self._retry_later(link, entry)
        else:
            entry.answered = True  # the follower will say so too; no second dispatch meanwhile
        if isinstance(result, OrderAck) and result.filled_quantity > 0:
            entry.venue_order_id = entry.venue_order_id or str(result.venue_order_id or "")
            entry.ack_filled = max(entry.ack_filled, float(result.filled_quantity))
            if result.venue_order_id is not None and result.client_order_id:
                link.cloids[str(result.venue_order_id)] = result.client_order_id
            self._spawn(self._recover_fills(link, entry, wait=True))

    async def _look_up(self, link: Link, entry: Entry) -> None:
        """An order too old to send: accepted (recovered) if the venue has it, else refused "not_sent"."""
        order = entry.order
        try:
            if isinstance(link.client, BinanceUsdmClient):
                state = await link.client.order(order.symbol, client_order_id=entry.client_order_id)
            else:
                state = await link.client.order_status(entry.client_order_id)
        except VenueCallFailed as exc:
            self.rt.log.warning("cannot ask the venue about an old order yet", account=link.name,
                                order_id=order.order_id, reason=exc.error.reason)  # fmt: skip
            self._retry_later(link, entry)
            return
        received, venue_ms = time.time_ns(), link.clock.now_ms()
        events: list[Event]
        if state is None:
            age = (received - entry.stored_ns) / 1e9
            message = f"not sent: stored {age:.0f}s ago, older than live.max_order_age_s, and not at the venue"
            events = [reports.rejected(order, reports.NOT_SENT, message, venue_ms=venue_ms, received_ns=received)]
        else:
            events = self._found(entry, state, venue_ms, received)
        await self._publish(events)
        entry.answered = True
        self.rt.log.info("old live order looked up", account=link.name, order_id=order.order_id,
                         found=state is not None)  # fmt: skip
        if state is not None and state.filled_quantity > 0:
            entry.venue_order_id = str(state.venue_order_id)
            entry.ack_filled = float(state.filled_quantity)
            self._spawn(self._recover_fills(link, entry, wait=False))

    def _found(self, entry: Entry, state: OrderState, venue_ms: int, received: int) -> list[Event]:
        ack = OrderAck(
            venue=state.venue, symbol=state.symbol, client_order_id=entry.client_order_id,
            venue_order_id=state.venue_order_id, status=state.status, filled_quantity=state.filled_quantity,
            average_price=state.average_price, recovered=True,
        )  # fmt: skip
        events: list[Event] = [reports.accepted(entry.order, ack, venue_ms=venue_ms, received_ns=received)]
        end = reports.ended(entry.order, str(state.venue_order_id), state.status, state.filled_quantity,
                            venue_ms=venue_ms, received_ns=received)  # fmt: skip
        if end is not None:
            events.append(end)
        return events

    async def _recover_fills(self, link: Link, entry: Entry, *, wait: bool) -> None:
        """After fill_wait_s (wait), if the fills of an accepted order reported so far fall short of
        what the venue said filled, ask the venue for them and publish the missing ones."""
        if wait:
            await self._pause(self.settings.fill_wait_s)
        if self.rt.stop.is_set() or not entry.fills_missing():
            return
        order = entry.order
        try:
            if isinstance(link.client, BinanceUsdmClient):
                fills = await link.client.fills(order.symbol, limit=1000)  # the latest: userTrades by time
            else:
                fills = await link.client.fills()
        except VenueCallFailed as exc:
            self.rt.log.warning("cannot ask the venue for an order's fills", account=link.name,
                                order_id=order.order_id, reason=exc.error.reason)  # fmt: skip
            return
        mine: list[Fill] = [f for f in fills if str(f.venue_order_id) == entry.venue_order_id]
        events = reports.fills_of(link.name, mine, {entry.venue_order_id: entry.client_order_id},
                                  received_ns=time.time_ns())  # fmt: skip
        await self._publish(list(events))
        self.rt.log.info("fills asked for by REST", account=link.name, order_id=order.order_id, fills=len(events))

    # -- reconciliation ----------------------------------------------------------------------------

    async def _cancel(self, link: Link, entry: CancelEntry) -> None:
        """Send a cancel the core's reconciliation decided; the venue's VenueOrderCanceled is published
        (its id is the user stream's report of the same cancel: stored once)."""
        if entry.answered:
            return
        r = entry.request
        result: CancelAck | OrderRejected | OutcomeUnknown
        if isinstance(link.client, BinanceUsdmClient):
            result = await link.client.cancel(r.symbol, order_id=int(r.venue_order_id))
        else:
            result = await link.client.cancel(r.symbol, int(r.venue_order_id))
        self.rt.log.info("venue cancel answered", account=link.name, venue_order_id=r.venue_order_id,
                         reason=r.reason, answer=type(result).__name__)  # fmt: skip
        if isinstance(result, OutcomeUnknown):
            self._retry_later(link, entry)
            return
        entry.answered = True
        if isinstance(result, CancelAck):
            end = "canceled" if result.status == "canceled" else "expired" if result.status == "expired" else None
            if end is not None:
                now_ms, now_ns = link.clock.now_ms(), time.time_ns()
                event = reports.canceled(link.name, r.venue, r.symbol, r.venue_order_id, r.client_order_id, end,
                                         Decimal(0), venue_ms=now_ms, received_ns=now_ns)  # fmt: skip
                await self._publish([event])

    async def _snapshot(self, link: Link, reason: str) -> VenueSnapshot:
        """What the venue holds for the account now (VenueCallFailed when it cannot say), with the
        last venue report read back from the log before asking (what the answers surely reflect)."""
        marker = link.last_report
        client = link.client
        if isinstance(client, BinanceUsdmClient):
            orders = await client.open_orders()
            positions = await client.positions()
            account = await client.account()
        else:
            orders = await client.open_orders()
            account = await client.account()
            positions = list(account.positions)
        received, venue_ms = time.time_ns(), link.clock.now_ms()
        open_orders = tuple(
            VenueOpenOrder(
                symbol=o.symbol,
                venue_order_id=str(o.venue_order_id),
                client_order_id=o.client_order_id or "",
                side=o.side,
                quantity=float(o.quantity),
                filled_quantity=float(o.filled_quantity),
                price=float(o.price) if o.price is not None else 0.0,
                reduce_only=o.reduce_only is True,
            )  # fmt: skip
            for o in sorted(orders, key=lambda o: (o.symbol, o.venue_order_id))
        )
        held = tuple(
            VenuePosition(symbol=p.symbol, quantity=float(p.quantity), entry_price=float(p.entry_price))
            for p in sorted(positions, key=lambda p: p.symbol)
            if p.quantity != 0
        )
        return VenueSnapshot(
            event_id=venue_ids.snapshot_id(link.endpoint.venue, link.name, venue_ms, reason),
            ts_event=venue_ms * 1_000_000,
            ts_init=received,
            account=link.name,
            venue=link.endpoint.venue,
            reason="start" if reason == "start" else "periodic",
            open_orders=open_orders,
            positions=held,
            wallet_balance=float(account.wallet_balance),
            equity=float(account.equity),
            last_report_id=marker,
        )

    async def _settled(self, link: Link, timeout: float | None) -> bool:
        """Wait until none of the account's orders or cancels is in flight in the log (at most
        timeout seconds; None: check once)."""
        deadline = time.monotonic() + (timeout or 0.0)
        while not self.rt.stop.is_set():
            busy = self.outbox.in_flight(link.name) or any(
                c.request.account == link.name for c in self.outbox.unanswered_cancels()
            )
            if not busy and link.queue.empty():
                return True
            if time.monotonic() >= deadline:
                return False
            await self._pause(SETTLE_POLL_S)
        return False

    async def _reconcile(self, link: Link) -> None:
        """At start (once the orders the log left open have settled, or after START_SETTLE_WAIT_S)
        and then every live.reconcile_every_s (once nothing is in flight, or after another period):
        publish a VenueSnapshot, which the execution core reconciles (the account trades only after
        its AccountReconciled). A quiet moment only spares comparisons: what races the snapshot
        is left by the core to the next one (services.execution.reconcile)."""
        reason = "start"
        while not self.rt.stop.is_set():
            wait_s = START_SETTLE_WAIT_S if reason == "start" else self.settings.reconcile_every_s
            if not await self._settled(link, wait_s) and not self.rt.stop.is_set():
                self.rt.log.warning("live orders still in flight; reconciling anyway", account=link.name)
            if self.rt.stop.is_set():
                return
            try:
                snapshot = await self._snapshot(link, reason)
            except VenueCallFailed as exc:
                self.rt.log.warning("venue snapshot failed; asked again", account=link.name, reason=exc.error.reason)
                await self._pause(STREAM_BACKOFF_S if reason == "start" else self.settings.reconcile_every_s)
                continue
            link.snapshots.add(snapshot.event_id)
            await self._publish([snapshot])
            self.rt.log.info("venue snapshot", account=link.name, reason=reason, open_orders=len(snapshot.open_orders),
                             positions=len(snapshot.positions))  # fmt: skip
            reason = "periodic"
            await self._pause(self.settings.reconcile_every_s)

    # -- user streams ----------------------------------------------------------------------------

    async def _user_stream(self, http: aiohttp.ClientSession, link: Link) -> None:
        pause = STREAM_BACKOFF_S
        while not self.rt.stop.is_set():
            try:
                if isinstance(link.client, BinanceUsdmClient):
                    await self._binance_stream(http, link, link.client)
                else:
                    await self._hyperliquid_stream(http, link, link.client)
                pause = STREAM_BACKOFF_S
            except VenueCallFailed as exc:
                self.rt.log.warning("user stream: venue refused; reconnecting", account=link.name,
                                    reason=exc.error.reason)  # fmt: skip
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.rt.log.warning("user stream lost; reconnecting", account=link.name, error=type(exc).__name__)
            finally:
                link.stream_up.clear()
            await self._pause(pause)
            pause = min(pause * 2, STREAM_BACKOFF_MAX_S)

    async def _on_stream_connected(self, link: Link) -> None:
        link.stream_up.set()
        self.rt.log.info("user stream connected", account=link.name)
        if self.ready.is_set():  # after a reconnect: what the stream may have missed
            for entry in self.outbox.fills_missing():
                if entry.order.account == link.name:
                    self._spawn(self._recover_fills(link, entry, wait=False))

    async def _binance_stream(self, http: aiohttp.ClientSession, link: Link, client: BinanceUsdmClient) -> None:
        key = await client.listen_key_create()
        url = f"{ws_url(link.endpoint)}/ws/{key}"

        async def keepalive() -> None:
            while True:
                await asyncio.sleep(LISTEN_KEY_KEEPALIVE_S)
                with contextlib.suppress(VenueCallFailed):
                    await client.listen_key_keepalive()

        async with http.ws_connect(url, heartbeat=60.0, max_msg_size=4 * 1024 * 1024) as ws:
            alive = asyncio.create_task(keepalive())
            try:
                await self._on_stream_connected(link)
                self._spawn(self._binance_fundings(link, client))  # what a gap may have missed
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    if venue_funding.binance_funding_fee(msg.data):  # the frame names no symbol: ask
                        self._spawn(self._binance_fundings(link, client))
                        continue
                    try:
                        events = reports.binance_user_frame(link.name, msg.data, received_ns=time.time_ns())
                    except reports.ReportError as exc:
                        self.rt.log.warning("user stream frame skipped", account=link.name, error=str(exc)[:200])
                        continue
                    await self._publish(list(events))
            finally:
                alive.cancel()

    async def _binance_fundings(self, link: Link, client: BinanceUsdmClient) -> None:
        """The account's FUNDING_FEE income since _since_ms, published as VenueFunding (ids from the
        account, symbol and time: what was published before is stored once)."""
        since = self._since_ms(link)
        try:
            records = await client.income("FUNDING_FEE", start_time_ms=since)
            events = venue_funding.binance_fundings(link.name, records, since_ms=since, received_ns=time.time_ns())
        except VenueCallFailed as exc:
            self.rt.log.warning("cannot ask the venue for funding", account=link.name, reason=exc.error.reason)
            return
        except venue_funding.FundingReportError as exc:
            self.rt.log.warning("funding records skipped", account=link.name, error=str(exc)[:200])
            return
        await self._publish(list(events))

    async def _hyperliquid_stream(self, http: aiohttp.ClientSession, link: Link, client: HyperliquidClient) -> None:
        async with http.ws_connect(ws_url(link.endpoint), heartbeat=60.0, max_msg_size=16 * 1024 * 1024) as ws:
            for kind in ("orderUpdates", "userFills", "userFundings"):
                subscribe = {"method": "subscribe", "subscription": {"type": kind, "user": client.user}}
                await ws.send_str(msgspec.json.encode(subscribe).decode())

            async def ping() -> None:
                while True:
                    await asyncio.sleep(HYPERLIQUID_PING_S)
                    await ws.send_str('{"method":"ping"}')

            pinger = asyncio.create_task(ping())
            try:
                await self._on_stream_connected(link)
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    try:
                        frame = reports.hyperliquid_user_frame(msg.data)
                        fundings = venue_funding.hyperliquid_fundings(
                            link.name, msg.data, since_ms=self._since_ms(link), received_ns=time.time_ns()
                        )
                    except (reports.ReportError, venue_funding.FundingReportError) as exc:
                        self.rt.log.warning("user stream frame skipped", account=link.name, error=str(exc)[:200])
                        continue
                    await self._publish(self._hyperliquid_events(link, frame) + list(fundings))
            finally:
                pinger.cancel()

    def _since_ms(self, link: Link) -> int:
        """From when the venue's funding history is the account's in the log: its first live order
        (before it the positions were not ours), else when this gateway started."""
        stored = [e.stored_ns for e in self.outbox.entries.values() if e.order.account == link.name]
        if stored:
            return link.clock.at_ms(min(stored) // 1_000_000)
        if link.since_ms is None:
            link.since_ms = link.clock.now_ms()
        return link.since_ms

    def _hyperliquid_events(self, link: Link, frame: reports.HyperliquidUserFrame) -> list[Event]:
        link.cloids.update(frame.cloids)
        known = {**self.outbox.client_ids(link.name), **link.cloids}
        fills = list(frame.fills)
        if frame.snapshot:  # the account's history: only what belongs to the orders of the log
            fills = [f for f in fills if str(f.venue_order_id) in known or (f.client_order_id or "") in known.values()]
        now = time.time_ns()
        events: list[Event] = list(reports.hyperliquid_ends(link.name, frame, received_ns=now))
        events[:0] = reports.fills_of(link.name, fills, known, received_ns=now)  # fills before the ends
        return events


async def run(rt: Runtime, config: ExecutionConfig, *, venue_clock_ms: ClockMs | None = None) -> None:
    """The gateway of the config's live accounts (nothing without one), until rt.stop."""
    await Gateway(rt, config, venue_clock_ms=venue_clock_ms).run()
