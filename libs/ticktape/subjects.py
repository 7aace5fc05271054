"""Every NATS subject ticktape uses is built here and nowhere else.

Subjects go general to specific with keys last, so consumers filter with wildcards:
md.bar.<venue>.<symbol>.<tf>, signals.<strategy>.<venue>.<symbol>, orders.<account>.<symbol>.
CHANNELS lists every subject family with its stream and payload types; the AsyncAPI document in
proto/ is generated from it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ticktape import events as ev
from ticktape.events.codec import DecodeError, decode

# Streams. Domain events share one stream so that every consumer's input order is the stream
# order: a replay that reads the stream in sequence feeds each core exactly what it saw live.
EVENTS_STREAM = "TICKTAPE"
DLQ_STREAM = "TICKTAPE_DLQ"
# Public trades are orders of magnitude more numerous than bars: their own stream, own limits.
TRADES_STREAM = "TICKTAPE_TRADES"

_BAD = re.compile(r"[.*>\s]")


class SubjectError(ValueError):
    pass


def token(value: str) -> str:
    """One subject token: '.', '*', '>' and whitespace become '_'; empty is an error."""
    if not value:
        raise SubjectError("empty subject token")
    return _BAD.sub("_", value)


def bar(venue: str, symbol: str, timeframe: str) -> str:
    return f"md.bar.{token(venue)}.{token(symbol)}.{token(timeframe)}"


def bars(venue: str = "*", symbol: str = "*", timeframe: str = "*") -> str:
    """A filter over bars; '*' for any token."""
    return f"md.bar.{venue}.{symbol}.{timeframe}"


def bar_rejected(venue: str, symbol: str) -> str:
    """Where market data reports a venue bar it refused. Not under md.bar.: bar consumers'
    filters (md.bar.>, md.bar.*.*.<tf>) must never see anything but bars."""
    return f"md.rejected.{token(venue)}.{token(symbol)}"


def trade(venue: str, symbol: str) -> str:
    return f"md.trade.{token(venue)}.{token(symbol)}"


def funding(venue: str, symbol: str) -> str:
    """Where market data publishes a perpetual's settled funding rates (FundingRate)."""
    return f"md.funding.{token(venue)}.{token(symbol)}"


def status(venue: str) -> str:
    return f"md.status.{token(venue)}"


def session(session_id: str) -> str:
    return f"sessions.{token(session_id)}"


def universe(venue: str) -> str:
    return f"symbols.universe.{token(venue)}"


def universe_trimmed(service: str, venue: str) -> str:
    """Where a service reports a universe it cut to the venue's per-IP budget (exchanges.budget):
    market data on md.trimmed.<venue>, the symbol registry on symbols.trimmed.<venue>."""
    family = "symbols" if service == "symbol_registry" else "md"
    return f"{family}.trimmed.{token(venue)}"


def signal(strategy: str, venue: str, symbol: str) -> str:
    return f"signals.{token(strategy)}.{token(venue)}.{token(symbol)}"


def strategy_quarantined(strategy: str) -> str:
    """Where the signal service reports a strategy it stopped running (StrategyQuarantined): under
    signals.<strategy>., three tokens, so `signals.*.*.*` filters still see only signals."""
    return f"signals.{token(strategy)}.quarantined"


def strategy_changed(strategy: str) -> str:
    """Where `ticktape strategies` (the operator) publishes a change of a managed strategy."""
    return f"strategies.{token(strategy)}"


def risk_approved(account: str, symbol: str) -> str:
    return f"risk.approved.{token(account)}.{token(symbol)}"


def risk_rejected(account: str, symbol: str) -> str:
    return f"risk.rejected.{token(account)}.{token(symbol)}"


def risk_halted(account: str) -> str:
    """Where risk publishes its own emergency stop of an account (RiskHalted): under risk.,
    which only risk may publish and execution already reads."""
    return f"risk.halted.{token(account)}"


def order(account: str, symbol: str) -> str:
    return f"orders.{token(account)}.{token(symbol)}"


def fill(account: str, symbol: str) -> str:
    return f"fills.{token(account)}.{token(symbol)}"


def position(account: str, symbol: str) -> str:
    return f"positions.{token(account)}.{token(symbol)}"


def positions(account: str) -> str:
    """Every position of an account (a filter)."""
    return f"positions.{token(account)}.*"


def account(account_name: str) -> str:
    return f"accounts.{token(account_name)}"


def venue_order(account: str, symbol: str) -> str:
    """Where execution's venue gateway publishes the venue's answers about a live account's orders
    (VenueOrderAccepted, VenueOrderRejected, VenueOrderUnknown, VenueOrderCanceled)."""
    return f"venue.orders.{token(account)}.{token(symbol)}"


def venue_fill(account: str, symbol: str) -> str:
    """Where execution's venue gateway publishes a live account's fills as the venue reports them."""
    return f"venue.fills.{token(account)}.{token(symbol)}"


def venue_funding(account: str, symbol: str) -> str:
    """Where execution's venue gateway publishes the funding a live account's venue booked."""
    return f"venue.funding.{token(account)}.{token(symbol)}"


def venue_snapshot(account: str) -> str:
    """Where execution's venue gateway publishes what the venue holds for a live account (VenueSnapshot)."""
    return f"venue.snapshots.{token(account)}"


def reconciliation(account: str) -> str:
    """Where the execution core publishes a live account's reconciliation with its venue
    (ReconciliationDifference, AccountReconciled): under accounts., three tokens, so `accounts.*`
    filters still see only AccountUpdated."""
    return f"accounts.{token(account)}.reconciliation"


def workers_chosen(service: str) -> str:
    """Where `ticktape up` records how many worker processes it runs a service as (WorkersChosen)."""
    return f"ops.workers.{token(service)}"


def dead_letter(service: str) -> str:
    return f"dlq.{token(service)}"


def storage_alert(resource: str) -> str:
    """Where the storage check (ticktape.storage) reports a stream or disk near its limit."""
    return f"ops.storage.{token(resource)}"


CONTROL_EMERGENCY_STOP = "control.emergency_stop"
CONTROL_RESUME = "control.resume"
CONTROL_SHUTDOWN = "control.shutdown"

ALL_BARS = "md.bar.>"
ALL_REJECTED_BARS = "md.rejected.>"
ALL_TRADES = "md.trade.>"
ALL_STATUS = "md.status.>"
ALL_FUNDING = "md.funding.>"
ALL_MD_TRIMMED = "md.trimmed.>"
ALL_SESSIONS = "sessions.>"
ALL_UNIVERSES = "symbols.universe.>"
ALL_SIGNALS = "signals.>"
ALL_STRATEGIES = "strategies.>"
ALL_RISK = "risk.>"
ALL_ORDERS = "orders.>"
ALL_FILLS = "fills.>"
ALL_POSITIONS = "positions.>"
ALL_ACCOUNTS = "accounts.>"
ALL_CONTROL = "control.>"
ALL_RISK_HALTS = "risk.halted.>"
ALL_VENUE = "venue.>"
ALL_DLQ = "dlq.>"
ALL_OPS = "ops.>"


def for_event(event: ev.Event) -> str:
    """The subject an event is published on."""
    match event:
        case ev.VenueSnapshot():
            return venue_snapshot(event.account)
        case ev.ReconciliationDifference() | ev.AccountReconciled():
            return reconciliation(event.account)
        case ev.VenueCancelRequested():
            return order(event.account, event.symbol)
        case ev.BarClosed():
            return bar(event.venue, event.symbol, event.timeframe)
        case ev.BarRejected():
            return bar_rejected(event.venue, event.symbol)
        case ev.UniverseUpdated():
            return universe(event.venue)
        case ev.UniverseTrimmed():
            return universe_trimmed(event.service, event.venue)
        case ev.SignalGenerated():
            return signal(event.strategy, event.venue, event.symbol)
        case ev.StrategyQuarantined():
            return strategy_quarantined(event.strategy)
        case ev.StrategyChanged():
            return strategy_changed(event.strategy)
        case ev.OrderApproved():
            return risk_approved(event.account, event.symbol)
        case ev.OrderRejected():
            return risk_rejected(event.account, event.symbol)
        case ev.RiskHalted():
            return risk_halted(event.account)
        case ev.OrderSubmitted() | ev.OrderCanceled():
            return order(event.account, event.symbol)
        case ev.OrderFilled():
            return fill(event.account, event.symbol)
        case ev.PositionUpdated():
            return position(event.account, event.symbol)
        case ev.AccountUpdated():
            return account(event.account)
        case ev.VenueOrderAccepted() | ev.VenueOrderRejected() | ev.VenueOrderUnknown() | ev.VenueOrderCanceled():
            return venue_order(event.account, event.symbol)
        case ev.VenueFill():
            return venue_fill(event.account, event.symbol)
        case ev.VenueFunding():
            return venue_funding(event.account, event.symbol)
        case ev.EmergencyStop():
            return CONTROL_EMERGENCY_STOP
        case ev.ResumeTrading():
            return CONTROL_RESUME
        case ev.ShutdownRequested():
            return CONTROL_SHUTDOWN
        case ev.DeadLettered():
            return dead_letter(event.service)
        case ev.TradeTick():
            return trade(event.venue, event.symbol)
        case ev.MarketDataStatus():
            return status(event.venue)
        case ev.FundingRate():
            return funding(event.venue, event.symbol)
        case ev.SessionStarted() | ev.SessionStopped():
            return session(event.session_id)
        case ev.StorageAlert():
            return storage_alert(event.resource)
        case ev.WorkersChosen():
            return workers_chosen(event.service)
    raise SubjectError(f"no subject for {type(event).__name__}")


@dataclass(frozen=True)
class Channel:
    """A subject family: its template, the stream that stores it, and its payload types."""

    template: str
    stream: str
    payloads: tuple[type[ev.Envelope], ...]
    publisher: str
    description: str


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "md.bar.{venue}.{symbol}.{timeframe}",
        EVENTS_STREAM,
        (ev.BarClosed,),
        "market_data",
        "Closed OHLCV bars, published once per bar.",
    ),
    Channel(
        "md.rejected.{venue}.{symbol}",
        EVENTS_STREAM,
        (ev.BarRejected,),
        "market_data",
        "Closed venue bars refused by market data's checks, with a reason code; no bar is published for them.",
    ),
    Channel(
        "symbols.universe.{venue}",
        EVENTS_STREAM,
        (ev.UniverseUpdated,),
        "symbol_registry",
        "The tradable universe of a venue: top N symbols by 24h quote volume.",
    ),
    Channel(
        "symbols.trimmed.{venue}",
        EVENTS_STREAM,
        (ev.UniverseTrimmed,),
        "symbol_registry",
        "A top N cut by the registry to fit market data's share of the venue's per-IP budget.",
    ),
    Channel(
        "md.trimmed.{venue}",
        EVENTS_STREAM,
        (ev.UniverseTrimmed,),
        "market_data",
        "A universe cut by market data to fit its share of the venue's per-IP budget: kept, dropped, the limit.",
    ),
    Channel(
        "signals.{strategy}.{venue}.{symbol}",
        EVENTS_STREAM,
        (ev.SignalGenerated,),
        "signal",
        "A strategy's side and target weight changed on a closed bar, with the price it saw and its diagnostics.",
    ),
    Channel(
        "signals.{strategy}.quarantined",
        EVENTS_STREAM,
        (ev.StrategyQuarantined,),
        "signal",
        "A strategy the signal service stopped running (it raised or returned something unusable), with the reason.",
    ),
    Channel(
        "strategies.{strategy}",
        EVENTS_STREAM,
        (ev.StrategyChanged,),
        "operator",
        "A managed strategy added, paused, resumed or retired (`ticktape strategies`), with its whole entry and "
        "revision; the signal service applies it while running.",
    ),
    Channel(
        "risk.approved.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.OrderApproved,),
        "risk",
        "Sized orders approved for a sub-account.",
    ),
    Channel(
        "risk.rejected.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.OrderRejected,),
        "risk",
        "Signals refused for a sub-account, with a reason code.",
    ),
    Channel(
        "risk.halted.{account}",
        EVENTS_STREAM,
        (ev.RiskHalted,),
        "risk",
        "Risk's own emergency stop of a sub-account: a loss limit breached, with a reason code.",
    ),
    Channel(
        "orders.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.OrderSubmitted, ev.OrderCanceled, ev.VenueCancelRequested),
        "execution",
        "Orders submitted (paper or live) and canceled; cancels of a live account's venue orders its reconciliation "
        "decided (the gateway sends them).",
    ),
    Channel(
        "fills.{account}.{symbol}", EVENTS_STREAM, (ev.OrderFilled,), "execution", "Fills with price, quantity and fee."
    ),
    Channel(
        "positions.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.PositionUpdated,),
        "execution",
        "Positions with realized and unrealized P&L, after fills and marks.",
    ),
    Channel(
        "accounts.{account}", EVENTS_STREAM, (ev.AccountUpdated,), "execution", "Sub-account equity, P&L and exposure."
    ),
    Channel(
        "venue.orders.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.VenueOrderAccepted, ev.VenueOrderRejected, ev.VenueOrderUnknown, ev.VenueOrderCanceled),
        "execution",
        "A live account's orders as the venue answered: accepted, rejected (reason code), outcome unknown, "
        "canceled or expired. Inputs of the execution core.",
    ),
    Channel(
        "venue.fills.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.VenueFill,),
        "execution",
        "A live account's fills as the venue reported them (id from the venue's trade id). Inputs of the "
        "execution core.",
    ),
    Channel(
        "venue.funding.{account}.{symbol}",
        EVENTS_STREAM,
        (ev.VenueFunding,),
        "execution",
        "Funding settlements a live account's venue booked on its positions (id from the account, symbol and "
        "settlement time). Inputs of the execution core.",
    ),
    Channel(
        "venue.snapshots.{account}",
        EVENTS_STREAM,
        (ev.VenueSnapshot,),
        "execution",
        "What the venue holds for a live account (open orders, positions, wallet balance), queried at start and "
        "periodically. Inputs of the execution core's reconciliation.",
    ),
    Channel(
        "accounts.{account}.reconciliation",
        EVENTS_STREAM,
        (ev.ReconciliationDifference, ev.AccountReconciled),
        "execution",
        "A live account's reconciliation with its venue: each difference with the resolution its policy took, "
        "then AccountReconciled (until then the account does not trade).",
    ),
    Channel(
        CONTROL_EMERGENCY_STOP,
        EVENTS_STREAM,
        (ev.EmergencyStop,),
        "operator",
        "Emergency stop: halt all new orders and cancel pending ones.",
    ),
    Channel(CONTROL_RESUME, EVENTS_STREAM, (ev.ResumeTrading,), "operator", "Lift an emergency stop."),
    Channel(
        CONTROL_SHUTDOWN,
        EVENTS_STREAM,
        (ev.ShutdownRequested,),
        "operator",
        "An account's on_shutdown policy applied by `ticktape up`'s stop: cancel its orders or close its positions.",
    ),
    Channel(
        "md.trade.{venue}.{symbol}",
        TRADES_STREAM,
        (ev.TradeTick,),
        "market_data",
        "Public trades, normalized across venues.",
    ),
    Channel(
        "md.funding.{venue}.{symbol}",
        EVENTS_STREAM,
        (ev.FundingRate,),
        "market_data",
        "A perpetual's settled funding rates from the venue's funding history (rate, mark), once per settlement.",
    ),
    Channel(
        "md.status.{venue}",
        EVENTS_STREAM,
        (ev.MarketDataStatus,),
        "market_data",
        "Per-shard WebSocket health: connected, last frame age, reconnects, frames/s.",
    ),
    Channel(
        "sessions.{session_id}",
        EVENTS_STREAM,
        (ev.SessionStarted, ev.SessionStopped),
        "ticktape up",
        "Session lifecycle: effective config, its hash, code version, start and stop.",
    ),
    Channel(
        "dlq.{service}",
        DLQ_STREAM,
        (ev.DeadLettered,),
        "any service",
        "Input a service could not process, kept whole with the error.",
    ),
    Channel(
        "ops.storage.{resource}",
        EVENTS_STREAM,
        (ev.StorageAlert,),
        "archive",
        "A stream or disk above its storage alert threshold (bytes used, limit, fraction), before it is full.",
    ),
    Channel(
        "ops.workers.{service}",
        EVENTS_STREAM,
        (ev.WorkersChosen,),
        "ticktape up",
        "How many worker processes a service runs as in a session, each owning a partition of the symbols, and "
        "why (configured, or chosen from the strategies' measured evaluation time).",
    ),
)

EVENTS_STREAM_SUBJECTS: tuple[str, ...] = (
    ALL_BARS,
    ALL_REJECTED_BARS,
    ALL_STATUS,
    ALL_MD_TRIMMED,
    ALL_FUNDING,
    "symbols.>",
    "signals.>",
    ALL_STRATEGIES,
    "risk.>",
    "orders.>",
    "fills.>",
    "positions.>",
    "accounts.>",
    ALL_VENUE,
    "control.>",
    ALL_SESSIONS,
    ALL_OPS,
)
TRADES_STREAM_SUBJECTS: tuple[str, ...] = (ALL_TRADES,)
DLQ_STREAM_SUBJECTS: tuple[str, ...] = (ALL_DLQ,)


def matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: '*' is one token, '>' the rest (one or more tokens)."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


class SubjectMismatch(DecodeError):
    """An event that does not belong on the subject it arrived on. Defence in depth: the bus's
    permissions (ticktape.bus.permissions) already keep each subject family to its publisher, so
    this is a publisher misbehaving, e.g. an approval smuggled in on a subject bars travel on."""


_CHANNEL_PATTERNS = tuple((re.sub(r"\{[^}]+\}", "*", ch.template), ch.payloads) for ch in CHANNELS)


@functools.lru_cache(maxsize=65_536)
def _channel_payloads(subject: str) -> tuple[type[ev.Envelope], ...] | None:
    """The payload types of the first channel whose template matches `subject` (None: no channel)."""
    return next((p for pattern, p in _CHANNEL_PATTERNS if matches(pattern, subject)), None)


def expect(subject: str, event: ev.Event) -> ev.Event:
    """The event, if its type is a payload of the channel whose template matches `subject` and
    `subject` is the event's own subject (for_event); else SubjectMismatch saying why."""
    payloads = _channel_payloads(subject)
    tag = event.__struct_config__.tag
    if payloads is None:
        raise SubjectMismatch(f"a {tag} event on {subject}, which is no ticktape channel")
    if not isinstance(event, payloads):
        allowed = ", ".join(str(t.__struct_config__.tag) for t in payloads)
        raise SubjectMismatch(f"a {tag} event on {subject}, whose channel carries only {allowed}")
    own = for_event(event)
    if own != subject:
        raise SubjectMismatch(f"a {tag} event on {subject}, but its own subject is {own}")
    return event


def decode_on(subject: str, data: bytes) -> ev.Event:
    """Decode a message that arrived on `subject`: DecodeError (and its UnknownEventType) as
    codec.decode, SubjectMismatch when the event does not belong there (see expect)."""
    return expect(subject, decode(data))
