"""What the HTTP API answers: frozen msgspec Structs, so that every response has stable keys and
its JSON Schema (in the OpenAPI document, proto/openapi.json) comes from the same code.

Times are integer nanoseconds since the epoch, as on the bus; amounts are in the quote asset."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ticktape.events import SignalGenerated, Vote


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An error, as RFC 9457 application/problem+json: `type` a URI naming the kind of problem,
    `title` its short summary, `status` the HTTP status, `detail` what was wrong with this
    request, `instance` the request path; `errors` names each bad parameter and why."""

    type: str
    title: str
    status: int
    detail: str
    instance: str = ""
    errors: tuple[ParamError, ...] = ()


class ParamError(msgspec.Struct, frozen=True, kw_only=True):
    parameter: str
    detail: str


# --- health ---------------------------------------------------------------------------------


Status = Literal["ok", "degraded", "down", "not_applicable"]


class HealthComponent(msgspec.Struct, frozen=True, kw_only=True):
    """One part of the score: `score` of `weight` points, `status` ok / degraded / down /
    not_applicable, `detail` why."""

    name: str
    weight: int
    score: float
    status: Status
    detail: str


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """0-100, the sum of the components' scores; `healthy` when at or above `threshold` (HTTP 200,
    else 503)."""

    score: float
    threshold: float
    healthy: bool
    components: tuple[HealthComponent, ...]
    as_of_ns: int


# --- symbols --------------------------------------------------------------------------------


class Member(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    rank: int
    quote_volume: float
    tick_size: float
    lot_size: float
    min_notional: float


class Universe(msgspec.Struct, frozen=True, kw_only=True):
    """One venue's tradable universe: the top_n by 24h quote volume at as_of (the registry's
    UniverseUpdated event that made it, `event_id`)."""

    venue: str
    quote_asset: str
    top_n: int
    as_of: int
    event_id: str
    members: tuple[Member, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


class Symbols(msgspec.Struct, frozen=True, kw_only=True):
    universes: tuple[Universe, ...]


# --- signals --------------------------------------------------------------------------------


class Signal(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="signal.generated"):
    """A signal as the signal service published it, in today's shape whatever its version: the
    side, the signed `target` weight, the price, and the strategy's `diagnostics`. For the EMA
    kinds (and every version-1 signal, upcast) k, n, agree and votes are also given at the top
    level, as this endpoint always showed them; absent for other strategies."""

    event_id: str
    ts_event: int
    ts_init: int
    causation_id: str | None
    correlation_id: str | None
    version: int
    strategy: str
    venue: str
    symbol: str
    timeframe: str
    side: Literal["long", "short", "flat"]
    previous_side: Literal["long", "short", "flat"]
    price: float
    bar_open_time: int
    target: float
    diagnostics: dict[str, Any]
    k: int | UnsetType = UNSET
    n: int | UnsetType = UNSET
    agree: int | UnsetType = UNSET
    votes: tuple[Vote, ...] | UnsetType = UNSET

    @classmethod
    def of(cls, event: SignalGenerated) -> Signal:
        d = event.diagnostics
        ema: dict[str, Any] = {}
        if {"k", "n", "agree", "votes"} <= d.keys():
            try:
                fields = msgspec.convert({k: d[k] for k in ("k", "n", "agree", "votes")}, _EmaFields)
                ema = {"k": fields.k, "n": fields.n, "agree": fields.agree, "votes": fields.votes}
            except msgspec.ValidationError:  # a plug-in's own keys of those names: diagnostics only
                pass
        return cls(
            event_id=event.event_id,
            ts_event=event.ts_event,
            ts_init=event.ts_init,
            causation_id=event.causation_id,
            correlation_id=event.correlation_id,
            version=event.version,
            strategy=event.strategy,
            venue=event.venue,
            symbol=event.symbol,
            timeframe=event.timeframe,
            side=event.side,
            previous_side=event.previous_side,
            price=event.price,
            bar_open_time=event.bar_open_time,
            target=event.target,
            diagnostics=d,
            **ema,
        )


class _EmaFields(msgspec.Struct, frozen=True, kw_only=True):
    k: int
    n: int
    agree: int
    votes: tuple[Vote, ...]


class Signals(msgspec.Struct, frozen=True, kw_only=True):
    """The latest signal of each strategy (and venue) for one symbol, with the strategy's
    diagnostics (for the EMA kinds: every head's vote and its inputs), as the signal service
    published them."""

    symbol: str
    signals: tuple[Signal, ...]


# --- trading --------------------------------------------------------------------------------


class Position(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    venue: str
    symbol: str
    quantity: float
    avg_price: float
    mark_price: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    updated_ns: int


class Positions(msgspec.Struct, frozen=True, kw_only=True):
    positions: tuple[Position, ...]


class Account(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    initial_equity: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    gross_exposure: float
    net_exposure: float
    halted: bool
    open_positions: int
    updated_ns: int


class Accounts(msgspec.Struct, frozen=True, kw_only=True):
    accounts: tuple[Account, ...]


OrderStatus = Literal["submitted", "filled", "canceled"]


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """An order and what became of it: `reason` is the cancel reason, `strategy` the strategy
    whose signal risk approved (empty when the approval is not in the log)."""

    order_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    status: OrderStatus
    mode: Literal["paper", "live"]
    submitted_ns: int
    updated_ns: int
    filled_quantity: float
    avg_fill_price: float | None
    reason: str


class Orders(msgspec.Struct, frozen=True, kw_only=True):
    """One page, newest first: `total` orders match the filters; `next_offset` is None on the
    last page."""

    items: tuple[Order, ...]
    total: int
    offset: int
    next_offset: int | None


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    fill_id: str
    order_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    fee: float
    liquidity: Literal["taker", "maker"]
    mode: Literal["paper", "live"]
    ts_event: int


class Fills(msgspec.Struct, frozen=True, kw_only=True):
    items: tuple[Fill, ...]
    total: int
    offset: int
    next_offset: int | None


# --- performance ----------------------------------------------------------------------------


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Performance over a span of the event log: `pnl` is the change of equity (account) or of
    realized + unrealized - fees (strategy) over the span; `fees` and `funding` paid in the span;
    `trades` closing fills, `win_rate` the share of them that closed at a profit (None without
    any); `max_drawdown` the largest fall from a running peak, in quote and as a fraction of that
    peak (of the account's equity; a strategy's is measured on initial equity + its P&L);
    `sharpe` the mean over the standard deviation of the step returns between marks, annualised
    by the median step (None with fewer than three marks or no variation)."""

    from_ns: int | None
    to_ns: int | None
    pnl: float
    fees: float
    funding: float
    trades: int
    wins: int
    win_rate: float | None
    max_drawdown: float
    max_drawdown_fraction: float
    sharpe: float | None
    marks: int


class AccountPerformance(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    equity: float
    session: Stats
    window: Stats


class StrategyPerformance(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    strategy: str
    realized_pnl: float
    unrealized_pnl: float
    session: Stats
    window: Stats


class Performance(msgspec.Struct, frozen=True, kw_only=True):
    """`session` is everything in the log since the current session started (the whole log when
    no session is recorded); `window` its last `window_s` seconds of event time. Funding is what
    paper accounts paid at the perpetual funding settlements (FundingRate) in the span, from their
    AccountUpdated.funding; strategies' funding is not attributed (0)."""

    window_s: float
    accounts: tuple[AccountPerformance, ...]
    strategies: tuple[StrategyPerformance, ...]


# --- market data and the scheduler -----------------------------------------------------------


class Shard(msgspec.Struct, frozen=True, kw_only=True):
    shard: int
    connected: bool
    symbols: int
    last_frame_age_ms: int | None
    reconnects: int
    frames_per_s: float


class VenueFeed(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's WebSocket shards as market data last reported them (`reported_ns`: when that
    report was stored on the event log, None: never) and its bars: how many, the newest one's
    close time (exchange time), when the newest was stored, and how long ago that was."""

    venue: str
    reported_ns: int | None
    report_age_s: float | None
    shards: tuple[Shard, ...]
    shards_connected: int
    bars: int
    last_bar_close_ns: int | None
    last_bar_stored_ns: int | None
    last_bar_age_s: float | None


class Worker(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process of a strategy-running service and its durable consumer: `process` its
    name (pid file; the service's own for one worker, `<service>-p<index>` for several, each
    reading its partition of the symbols through the durable of the same name), `pending` not yet
    delivered, `ack_pending` delivered and not yet acknowledged, `rate_per_s` inputs acknowledged
    per second since the previous look (None on the first), `alive` None without a run directory."""

    service: str
    durable: str
    present: bool
    pending: int
    ack_pending: int
    rate_per_s: float | None
    alive: bool | None
    process: str = ""
    index: int = 0
    workers: int = 1


class WebsocketStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The venues' feeds, and the signal workers that read their bars (one per partition of the
    symbols with signal.workers > 1), with each one's lag."""

    venues: tuple[VenueFeed, ...]
    signal_workers: tuple[Worker, ...] = ()


class StrategyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """`quarantined`: why the signal service stopped running the strategy (its StrategyQuarantined
    event's reason and error), None while it runs. A managed strategy (`ticktape strategies`) also
    has its `status` (live, paused, retired), the `account` that trades it ("": the accounts whose
    `strategies` list it) and its `revision`, from its latest StrategyChanged; a configured one has None."""

    name: str
    kind: str
    signals: int
    last_signal_ns: int | None
    quarantined: str | None = None
    status: Literal["live", "paused", "retired"] | None = None
    account: str | None = None
    revision: int | None = None


class SchedulerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The signal workers (one per partition with signal.workers > 1), the strategies they run
    (from the session's config, the managed strategies' changes and the signals in the log),
    signals per second of event time over the last minute, and their lag (the workers' sum)."""

    workers: tuple[Worker, ...]
    strategies: tuple[StrategyInfo, ...]
    signals_per_min: int
    lag: int


# --- sessions and metrics -------------------------------------------------------------------


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    started_ns: int
    stopped_ns: int | None
    reason: str | None
    config_hash: str
    code_version: str
    services: tuple[str, ...]


class Sessions(msgspec.Struct, frozen=True, kw_only=True):
    sessions: tuple[SessionInfo, ...]


class MetricsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The read model's counters: events seen per type, its position in the event log (the last
    sequence it has read, `applied_seq`) against the stream's last sequence now (`behind` = not yet
    read), messages on the log it could not decode (skipped: their consumers dead-letter them),
    dead letters per service."""

    events: dict[str, int]
    applied_seq: int
    stream_last_seq: int
    behind: int
    undecodable: int
    orders: int
    fills: int
    signals: int
    bars: dict[str, int]
    dead_letters: dict[str, int]
    health_score: float


class ControlAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The control event published (its id and subject) and its sequence on the event log."""

    command: Literal["stop", "resume"]
    event_id: str
    subject: str
    stream_seq: int
    account: str
    reason: str
    flatten: bool = False


class ControlRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`account` '*' (every sub-account) or one account's name; `reason` is recorded in the event."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "operator"
    account: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^(\*|[A-Za-z0-9_-]+)$")] = "*"


class StopRequest(ControlRequest, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A stop: `flatten` true also closes every position of the account(s) with reduce-only
    orders (as `ticktape stop --flatten`; paper: filled at once at the mark)."""

    flatten: bool = False
