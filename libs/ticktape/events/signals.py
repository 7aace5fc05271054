"""Strategy output (stream subjects signals.>).

`SignalGenerated` is versioned (Envelope.version). Version 2 (issue #10) is strategy-agnostic: the
side, a signed `target` weight and the price the strategy saw, plus a free `diagnostics` map for
whatever the strategy wants recorded (an EMA ensemble's k, n, agree and votes go there). Version 1
(every recording made before) carried EMA-shaped fields instead: k, n, agree and votes.

In memory there is only today's shape. Bytes of version 1 are upcast at decode (codec.decode ->
upcast_v1): target from the side, diagnostics {"k", "n", "agree", "votes"}; the event keeps
version=1. An event whose version is 1 encodes back to exactly the version-1 bytes (codec.encode ->
downcast_v1), which is how a replay of an old recording re-produces the old bytes: the signal core
emits version 1 when the recorded configuration says that code ran (signal.event_version)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ticktape.events.envelope import Envelope

Side = Literal["long", "short", "flat"]

SIGNAL_VERSION = 2  # the version SignalGenerated is written in today
SIDE_TARGET: dict[str, float] = {"long": 1.0, "short": -1.0, "flat": 0.0}


class Vote(msgspec.Struct, frozen=True, kw_only=True):
    """One EMA head's vote and the inputs that decided it: +1 fast EMA above slow, -1 below,
    0 not yet warmed up (the element of a version-1 signal's `votes`)."""

    head: str
    fast: int
    slow: int
    fast_ema: float
    slow_ema: float
    vote: int


class SignalGenerated(Envelope, frozen=True, kw_only=True, tag="signal.generated"):
    """A strategy's target for a symbol changed on the close of bar_open_time.

    `side`: long, short or flat; `target`: the signed weight the strategy wants, in [-1, 1]
    (+1 fully long, -1 fully short, 0 flat; a strategy may ask for less, sign matching the side);
    `price`: the close it decided on; `diagnostics`: the strategy's own record of why (JSON
    values; an EMA ensemble's k, n, agree and votes). Version 1 events are upcast at decode."""

    version: int = SIGNAL_VERSION
    strategy: str
    venue: str
    symbol: str
    timeframe: str
    side: Side
    previous_side: Side
    price: float
    bar_open_time: int
    target: float
    diagnostics: dict[str, Any] = {}


class StrategyQuarantined(Envelope, frozen=True, kw_only=True, tag="signal.strategy.quarantined"):
    """The signal service stopped running a strategy for good (every symbol): it raised, or
    returned something unusable, on the bar bar_open_time of venue/symbol/timeframe. `reason`
    is a stable code (raised, bad_output), `error` what went wrong. The other strategies keep
    running; the strategy's last signalled sides stay as they were."""

    strategy: str
    kind: str
    venue: str
    symbol: str
    timeframe: str
    bar_open_time: int
    reason: str
    error: str


class SignalGeneratedV1(Envelope, frozen=True, kw_only=True, tag="signal.generated"):
    """The wire shape of SignalGenerated version 1 (never in the event union: decoded only to be
    upcast, built only to write version-1 bytes)."""

    strategy: str
    venue: str
    symbol: str
    timeframe: str
    side: Side
    previous_side: Side
    price: float
    bar_open_time: int
    k: int
    n: int
    agree: int
    votes: tuple[Vote, ...]


def upcast_v1(old: SignalGeneratedV1) -> SignalGenerated:
    """Version-1 bytes as today's event (version stays 1, so it encodes back to the same bytes)."""
    return SignalGenerated(
        event_id=old.event_id,
        ts_event=old.ts_event,
        ts_init=old.ts_init,
        causation_id=old.causation_id,
        correlation_id=old.correlation_id,
        version=1,
        strategy=old.strategy,
        venue=old.venue,
        symbol=old.symbol,
        timeframe=old.timeframe,
        side=old.side,
        previous_side=old.previous_side,
        price=old.price,
        bar_open_time=old.bar_open_time,
        target=SIDE_TARGET[old.side],
        diagnostics=ensemble_diagnostics(old.k, old.n, old.agree, old.votes),
    )


def ensemble_diagnostics(k: int, n: int, agree: int, votes: tuple[Vote, ...]) -> dict[str, Any]:
    """The diagnostics of an EMA ensemble's decision: what version 1 carried as fields."""
    return {"k": k, "n": n, "agree": agree, "votes": [msgspec.structs.asdict(v) for v in votes]}


def downcast_v1(event: SignalGenerated) -> SignalGeneratedV1:
    """The version-1 wire shape of a version-1 event; ValueError when the event cannot be
    written as version 1 (no EMA diagnostics, or a target other than its side's)."""
    d = event.diagnostics
    if not {"k", "n", "agree", "votes"} <= d.keys():
        raise ValueError("a version-1 signal.generated needs diagnostics k, n, agree and votes")
    if event.target != SIDE_TARGET[event.side]:
        raise ValueError(f"a version-1 signal.generated has the target of its side (got {event.target!r})")
    return SignalGeneratedV1(
        event_id=event.event_id,
        ts_event=event.ts_event,
        ts_init=event.ts_init,
        causation_id=event.causation_id,
        correlation_id=event.correlation_id,
        version=1,
        strategy=event.strategy,
        venue=event.venue,
        symbol=event.symbol,
        timeframe=event.timeframe,
        side=event.side,
        previous_side=event.previous_side,
        price=event.price,
        bar_open_time=event.bar_open_time,
        k=d["k"],
        n=d["n"],
        agree=d["agree"],
        votes=msgspec.convert(d["votes"], tuple[Vote, ...]),
    )
