"""The health score of GET /health: 0-100 points from seven components, each scored from the read
model and from what the shell saw outside the log (processes, durables, dead letters). Pure: the
time is a parameter."""

from __future__ import annotations

from dataclasses import dataclass

from services.api.config import HealthConfig
from services.api.readmodel import ReadModel
from services.api.views import Health, HealthComponent, Status

NS = 1_000_000_000
WEIGHTS = {
    "services": 25,
    "consumers": 20,
    "bars": 20,
    "shards": 15,
    "halted": 10,
    "dead_letters": 5,
    "reconciliation": 5,
}
MARKET_DATA = "market_data"


@dataclass(frozen=True, slots=True)
class ConsumerProbe:
    service: str
    durable: str
    present: bool
    pending: int = 0
    ack_pending: int = 0


@dataclass(frozen=True, slots=True)
class Probe:
    """What the shell saw outside the event log at `now_ns`: each expected service's process
    (True alive, False dead, None unknown: no run directory) and its durables."""

    now_ns: int
    services: dict[str, bool | None]
    consumers: tuple[ConsumerProbe, ...]


def _component(name: str, good: float, total: float, detail: str, *, none_ok: str = "") -> HealthComponent:
    weight = WEIGHTS[name]
    if total == 0:
        return HealthComponent(name=name, weight=weight, score=float(weight), status="not_applicable", detail=none_ok)
    fraction = good / total
    status: Status = "ok" if fraction >= 1 else "down" if fraction <= 0 else "degraded"
    return HealthComponent(name=name, weight=weight, score=round(weight * fraction, 2), status=status, detail=detail)


def _age_s(now_ns: int, then_ns: int | None) -> float | None:
    return None if then_ns is None else max(0.0, (now_ns - then_ns) / NS)


def score(model: ReadModel, probe: Probe, limits: HealthConfig) -> Health:
    comps: list[HealthComponent] = []

    alive = [n for n, up in sorted(probe.services.items()) if up is not False]
    dead = [n for n, up in sorted(probe.services.items()) if up is False]
    comps.append(
        _component(
            "services",
            len(alive),
            len(probe.services),
            f"not running: {', '.join(dead)}" if dead else f"{len(alive)} running",
            none_ok="no service expected",
        )
    )

    bad_consumers = []
    for c in probe.consumers:
        if not c.present:
            bad_consumers.append(f"{c.durable} ({c.service}) missing")
        elif c.pending + c.ack_pending > limits.max_lag:
            bad_consumers.append(f"{c.durable} ({c.service}) lags {c.pending + c.ack_pending} > {limits.max_lag}")
    comps.append(
        _component(
            "consumers",
            len(probe.consumers) - len(bad_consumers),
            len(probe.consumers),
            "; ".join(bad_consumers) or f"{len(probe.consumers)} consuming within {limits.max_lag}",
            none_ok="no durable expected",
        )
    )

    market_data = MARKET_DATA in probe.services
    venues = sorted(set(model.bar_feeds) | set(model.feeds) | (set(model.universes) if market_data else set()))
    stale = []
    for venue in venues:
        age = _age_s(probe.now_ns, model.bar_feeds[venue].last_stored_ns if venue in model.bar_feeds else None)
        if age is None:
            stale.append(f"{venue}: no bar yet")
        elif age > limits.bar_stale_s:
            stale.append(f"{venue}: last bar {age:.0f}s ago")
    comps.append(
        _component(
            "bars",
            len(venues) - len(stale),
            len(venues),
            "; ".join(stale) or f"fresh on {', '.join(venues)}",
            none_ok="no venue: market data not running",
        )
    )

    connected = total = 0
    notes = []
    for venue in venues:
        if venue not in model.feeds:
            total += 1
            notes.append(f"{venue}: no shard report")
            continue
        status, stored = model.feeds[venue]
        age = _age_s(probe.now_ns, stored) or 0.0
        total += len(status.shards) or 1
        if age > limits.status_stale_s:
            notes.append(f"{venue}: shard report {age:.0f}s old")
            continue
        up = sum(1 for s in status.shards if s.connected)
        connected += up
        if up < len(status.shards):
            notes.append(f"{venue}: {len(status.shards) - up} of {len(status.shards)} shards down")
    comps.append(
        _component(
            "shards",
            connected,
            total,
            "; ".join(notes) or f"{connected} connected",
            none_ok="no venue: market data not running",
        )
    )

    accounts = sorted(model.accounts)
    halted = [a for a in accounts if model.halted(a)]
    if not accounts and model.halted_all:
        comps.append(
            HealthComponent(
                name="halted", weight=WEIGHTS["halted"], score=0.0, status="down", detail="every account halted"
            )
        )
    else:
        comps.append(
            _component(
                "halted",
                len(accounts) - len(halted),
                len(accounts),
                f"halted: {', '.join(halted)}" if halted else "trading",
                none_ok="no account has traded yet",
            )
        )

    recent = model.recent_dead_letters(probe.now_ns - int(limits.dead_letter_window_s * NS))
    comps.append(
        HealthComponent(
            name="dead_letters",
            weight=WEIGHTS["dead_letters"],
            score=0.0 if recent else float(WEIGHTS["dead_letters"]),
            status="degraded" if recent else "ok",
            detail=f"{recent} in the last {limits.dead_letter_window_s:.0f}s" if recent else "none recently",
        )
    )

    comps.append(
        HealthComponent(
            name="reconciliation",
            weight=WEIGHTS["reconciliation"],
            score=float(WEIGHTS["reconciliation"]),
            status="not_applicable",
            detail="paper accounts only: positions are the event log's, nothing to reconcile with a venue",
        )
    )

    total_score = round(sum(c.score for c in comps), 2)
    return Health(
        score=total_score,
        threshold=limits.threshold,
        healthy=total_score >= limits.threshold,
        components=tuple(comps),
        as_of_ns=probe.now_ns,
    )
