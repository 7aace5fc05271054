"""The whole stack as separate processes: real nats-server (with ticktape's authorization: every
service connects with its own credential), real PostgreSQL, the venue simulator on real recorded
1m bars from ../shared/data (OctoBot's Binance BTC/ETH/ADA captures)."""

from __future__ import annotations

import asyncio
import collections
import json
from pathlib import Path

import pytest

from tests.support.recorded import convert_octobot
from tests.support.replay import replay_mismatches
from ticktape import events as ev
from ticktape import registry, subjects
from ticktape.bus import creds
from ticktape.bus.permissions import ADMIN, OBSERVER, roles
from ticktape.events.codec import decode
from ticktape.telemetry import trace_id_of
from ticktape.testing.bus import stream_messages
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
symbol_registry: {top_n: 3}
telemetry: {log_level: info}
"""
SERVICES = registry.names()  # `ticktape up` runs every registered service
# the services whose output on the events stream the SIGKILL test checks (sinks only archive it)
PUBLISHERS = tuple(info.name for info in registry.services() if info.kind != "sink")


@pytest.fixture
def bars_dir(tmp_path: Path) -> Path:
    return convert_octobot(tmp_path / "bars")


def csv_bar_count(bars_dir: Path) -> int:
    return sum(1 for f in bars_dir.glob("*-1m*.csv") for line in f.read_text().splitlines() if line.strip())


async def recorded(auth) -> list[tuple[str, ev.Event, dict[str, str]]]:
    nc = await auth.connect(ADMIN)
    try:
        msgs = await stream_messages(nc.jetstream(), subjects.EVENTS_STREAM)
        return [(m.subject, decode(m.data), dict(m.headers or {})) for m in msgs]
    finally:
        await nc.close()


def counts(items) -> collections.Counter[str]:
    return collections.Counter(type(e).__name__ for _, e, _ in items)


def snapshot(auth) -> list[tuple[str, ev.Event, dict[str, str]]]:
    return asyncio.run(recorded(auth))


@pytest.fixture
def stack_env(tmp_path, nats_auth, pg_server, bars_dir):
    """(start(speed) -> (sim, stack), the authorized server); everything is stopped at the end.
    `ticktape up` finds the server running and takes each process's credentials from its
    credentials directory (nats.creds_dir), as for any server it does not run itself."""
    import psycopg

    started = []

    def start(speed: float):
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE e2e")
        sim = VenueSim(bars_dir, tmp_path, speed=speed)
        stack = Stack(
            tmp_path / "home",
            nats_url=nats_auth.url,
            pg_dsn=pg_server.dsn_for("e2e"),
            venue_sim=sim.url,
            config_yaml=CONFIG,
            extra_env={"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)},
        )
        started.append((sim, stack))
        return sim, stack

    yield start, nats_auth
    for sim, stack in started:
        stack.stop()
        sim.stop()
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS e2e WITH (FORCE)")


def test_stack_carries_bars_to_fills_causally_linked_in_one_trace(stack_env):
    start, bus = stack_env
    sim, stack = start(speed=1500)
    needed = [
        "UniverseUpdated",
        "BarClosed",
        "SignalGenerated",
        "OrderApproved",
        "OrderSubmitted",
        "OrderFilled",
        "PositionUpdated",
        "AccountUpdated",
    ]
    items = wait_for(
        lambda: (lambda it: it if all(counts(it)[n] for n in needed) else None)(snapshot(bus)),
        timeout=90,
        what="universe, bars, signals, approvals, orders, fills and positions",
    )
    by_id = {e.event_id: (e, h) for _, e, h in items}
    fill, fill_headers = next((e, h) for _, e, h in items if isinstance(e, ev.OrderFilled))
    chain = [fill]
    while chain[-1].causation_id:
        chain.append(by_id[chain[-1].causation_id][0])
    kinds = [type(e).__name__ for e in chain]
    assert kinds == ["OrderFilled", "OrderSubmitted", "OrderApproved", "SignalGenerated", "BarClosed"], kinds
    bar = chain[-1]
    assert all(e.correlation_id == bar.event_id for e in chain[:-1])
    trace_ids = {trace_id_of(by_id[e.event_id][1]) for e in chain}
    assert len(trace_ids) == 1 and None not in trace_ids, trace_ids
    universe = next(e for _, e, _ in items if isinstance(e, ev.UniverseUpdated))
    assert sorted(universe.symbols) == ["ADAUSDT", "BTCUSDT", "ETHUSDT"]
    passwords = [creds.load(bus.creds(role)).password for role in roles()]
    for service in SERVICES:  # each has its own credential, by path: no password in argv or environment
        proc = Path(f"/proc/{stack.pid(service)}")
        seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        assert not [pw for pw in passwords if pw.encode() in seen], service
        assert f"TICKTAPE_NATS__CREDS={bus.creds(service)}".encode() in seen, service
    assert stack.stop() == 0
    for service in SERVICES:
        assert stack.pid(service) is None, f"{service} left a pid file after a clean stop"


def test_plain_nats_client_reads_signals_as_json(stack_env):
    """What a user sees with `nats --context <home>/creds/observer.json sub 'signals.>'`: plain
    JSON, no ticktape code needed; the observer's credential reads everything."""
    start, bus = stack_env
    start(speed=1500)

    async def read_signals():
        nc = await bus.connect(OBSERVER)
        try:
            sub = await nc.subscribe("signals.>")
            msg = await sub.next_msg(timeout=90)
            return msg.subject, json.loads(msg.data)
        finally:
            await nc.close()

    subject, body = asyncio.run(read_signals())
    assert subject == f"signals.{body['strategy']}.{body['venue']}.{body['symbol']}"
    assert body["type"] == "signal.generated" and body["side"] in ("long", "short", "flat")
    votes = body["diagnostics"]["votes"]  # the built-in EMA kinds record their votes there (signal version 2)
    assert body["version"] == 2 and votes and {"head", "fast", "slow", "fast_ema", "slow_ema", "vote"} <= set(votes[0])
    assert isinstance(body["ts_event"], int) and body["causation_id"]


def test_sigkill_each_service_mid_run_then_nothing_lost_or_duplicated(stack_env, bars_dir):
    start, bus = stack_env
    sim, stack = start(speed=900)
    total_bars = csv_bar_count(bars_dir)
    wait_for(lambda: counts(snapshot(bus))["OrderFilled"] >= 1, timeout=90, what="a first fill")
    for service in PUBLISHERS:
        old = stack.kill(service)
        wait_for(
            lambda service=service, old=old: (stack.pid(service) or old) != old and stack.alive(stack.pid(service)),
            timeout=30,
            what=f"{service} restarted",
        )
        wait_for(lambda: len(snapshot(bus)) > 0, timeout=5, what="stream readable")

    def settled():
        items = snapshot(bus)
        bars = [e for _, e, _ in items if isinstance(e, ev.BarClosed) and e.timeframe == "1m"]
        return items if len(bars) >= total_bars else None

    items = wait_for(settled, timeout=150, what=f"all {total_bars} recorded bars on the bus")
    # let the consumers drain what the last bars caused, then take the final log
    wait_for(lambda: snapshot(bus) == snapshot(bus) or None, timeout=30, what="quiet bus", interval=1.0)
    items = snapshot(bus)
    bars = [e for _, e, _ in items if isinstance(e, ev.BarClosed) and e.timeframe == "1m"]
    keys = collections.Counter((b.symbol, b.open_time) for b in bars)
    assert len(bars) == total_bars and max(keys.values()) == 1, "a bar was lost or published twice"
    aggregated = collections.Counter(
        (e.symbol, e.timeframe, e.open_time) for _, e, _ in items if isinstance(e, ev.BarClosed) and e.timeframe != "1m"
    )
    assert aggregated and max(aggregated.values()) == 1, "an aggregated bar was published twice"
    ids = collections.Counter(e.event_id for _, e, _ in items)
    assert max(ids.values()) == 1, "an event id appears twice"
    fills_per_order = collections.Counter(e.order_id for _, e, _ in items if isinstance(e, ev.OrderFilled))
    assert fills_per_order and max(fills_per_order.values()) == 1
    problems = replay_mismatches([(s, e) for s, e, _ in items])
    assert problems == {info.name: "" for info in registry.of_kind("core")}, problems
    assert stack.stop() == 0
