"""The /health score, pure: each component from a read model and a probe at a given time."""

from __future__ import annotations

from services.api.config import HealthConfig
from services.api.health import WEIGHTS, ConsumerProbe, Probe, score
from services.api.readmodel import ReadModel
from tests.support.bars import wave_bars
from ticktape.events import (
    AccountUpdated,
    DeadLettered,
    EmergencyStop,
    MarketDataStatus,
    ShardStatus,
)

S = 1_000_000_000
NOW = 1_800_000_000 * S
LIMITS = HealthConfig()
SERVICES = {"market_data": True, "signal": True, "risk": True, "execution": True}
CONSUMERS = (ConsumerProbe("signal", "signal", True, 3, 1), ConsumerProbe("risk", "risk", True))


def status(stored_at: int, connected: tuple[bool, ...] = (True, True)) -> tuple[MarketDataStatus, int]:
    shards = tuple(
        ShardStatus(shard=i, connected=c, symbols=5, last_frame_age_ms=1, reconnects=0, frames_per_s=1.0)
        for i, c in enumerate(connected)
    )
    return MarketDataStatus(event_id="st", ts_event=0, ts_init=0, venue="binance_spot", shards=shards), stored_at


def healthy_model() -> ReadModel:
    model = ReadModel()
    for i, bar in enumerate(wave_bars(venue="binance_spot", n=3), 1):
        model.apply(bar, i, NOW - 30 * S)
    event, stored = status(NOW - 10 * S)
    model.apply(event, 10, stored)
    account = AccountUpdated(
        event_id="a",
        ts_event=1,
        ts_init=1,
        account="paper-main",
        initial_equity=1e4,
        equity=1e4,
        realized_pnl=0,
        unrealized_pnl=0,
        fees_paid=0,
        gross_exposure=0,
        net_exposure=0,
    )
    model.apply(account, 11, NOW)
    return model


def by_name(health: object) -> dict[str, object]:
    return {c.name: c for c in health.components}  # type: ignore[attr-defined]


def test_all_well_is_100_and_the_weights_add_up() -> None:
    assert sum(WEIGHTS.values()) == 100
    health = score(healthy_model(), Probe(NOW, SERVICES, CONSUMERS), LIMITS)
    assert health.score == 100 and health.healthy
    assert all(c.status in ("ok", "not_applicable") for c in health.components)


def test_market_data_stopped_drops_below_the_threshold_and_recovers() -> None:
    model = healthy_model()
    later = NOW + 600 * S  # ten minutes without a bar or a shard report
    health = score(model, Probe(later, SERVICES, CONSUMERS), LIMITS)
    comps = by_name(health)
    assert comps["bars"].status == "down" and comps["shards"].status == "down"  # type: ignore[attr-defined]
    assert health.score == 100 - WEIGHTS["bars"] - WEIGHTS["shards"] and not health.healthy
    for i, bar in enumerate(wave_bars(venue="binance_spot", n=1, start=wave_bars(n=5)[-1].open_time), 100):
        model.apply(bar, i, later - S)
    event, stored = status(later - S)
    model.apply(event, 200, stored)
    assert score(model, Probe(later, SERVICES, CONSUMERS), LIMITS).score == 100


def test_each_problem_costs_its_share() -> None:
    model = healthy_model()
    dead = {**SERVICES, "risk": False}
    lagging = (ConsumerProbe("signal", "signal", True, 5000, 0), ConsumerProbe("risk", "risk", False))
    health = score(model, Probe(NOW, dead, lagging), LIMITS)
    comps = by_name(health)
    assert comps["services"].score == WEIGHTS["services"] * 3 / 4  # type: ignore[attr-defined]
    assert comps["consumers"].score == 0 and comps["consumers"].status == "down"  # type: ignore[attr-defined]
    event, stored = status(NOW, (True, False))
    model.apply(event, 20, stored)
    assert by_name(score(model, Probe(NOW, SERVICES, CONSUMERS), LIMITS))["shards"].score == WEIGHTS["shards"] / 2  # type: ignore[attr-defined]
    model.apply(EmergencyStop(event_id="x", ts_event=1, ts_init=1, reason="drill"), 21, NOW)
    assert by_name(score(model, Probe(NOW, SERVICES, CONSUMERS), LIMITS))["halted"].score == 0  # type: ignore[attr-defined]
    letter = DeadLettered(event_id="dl", ts_event=1, ts_init=1, service="signal", source="s", error="e", payload_b64="")
    model.apply(letter, 1, NOW - 60 * S)
    dl = by_name(score(model, Probe(NOW, SERVICES, CONSUMERS), LIMITS))["dead_letters"]
    assert dl.score == 0 and dl.status == "degraded"  # type: ignore[attr-defined]
    past = by_name(score(model, Probe(NOW + 3600 * S, SERVICES, CONSUMERS), LIMITS))["dead_letters"]
    assert past.score == WEIGHTS["dead_letters"]  # type: ignore[attr-defined]
    assert model.applied_seq == 21  # a dead letter's sequence is its own stream's


def test_without_market_data_its_components_do_not_apply() -> None:
    health = score(ReadModel(), Probe(NOW, {"signal": True}, ()), LIMITS)
    comps = by_name(health)
    assert comps["bars"].status == comps["shards"].status == "not_applicable"  # type: ignore[attr-defined]
    assert health.score == 100
    # market data expected but nothing yet: down
    started = score(ReadModel(), Probe(NOW, {"market_data": True}, ()), LIMITS)
    assert by_name(started)["bars"].status == "not_applicable"  # type: ignore[attr-defined]
