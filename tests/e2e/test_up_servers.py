"""`ticktape up` supervises the servers it started as well as the services: SIGKILL its embedded
nats-server, or its embedded PostgreSQL's postmaster, mid-session on the venue simulator (real
recorded 1m bars) and it restarts it on the same port with the same data; bars and fills keep
flowing, and after a clean stop the stream holds every bar and every fill once, the session
replays byte for byte (`ticktape replay --verify`) and its audit chain verifies."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nats.errors
import pytest

from tests.support.recorded import convert_octobot
from ticktape import events as ev
from ticktape import registry, subjects
from ticktape.bus import creds
from ticktape.bus.permissions import ADMIN
from ticktape.events.codec import decode
from ticktape.infra.nats_server import start_nats_server
from ticktape.infra.postgres import start_postgres
from ticktape.sessions import wait_drained
from ticktape.testing.bus import stream_messages
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
symbol_registry: {top_n: 3}
supervisor: {service_grace_s: 10, stop_timeout_s: 60}
audit: {ack_wait_s: 10}
"""
# the cores' durables and the audit log's (the bar archive's, 60 s ack wait, is left to the stop's drain)
DURABLES = tuple(d for info in registry.services() if info.name != "archive" for d in info.durables)
SPEED = 120  # event seconds per wall second: two 1m bars a second per symbol


@pytest.fixture
def bars_dir(tmp_path: Path) -> Path:
    return convert_octobot(tmp_path / "bars")


class Bus:
    """Reads the events stream from outside the stack, with the admin's credential."""

    def __init__(self, url: Callable[[], str | None], creds_file: str) -> None:
        self.url, self.creds_file = url, creds_file

    def events(self, filters: tuple[str, ...] = (">",)) -> list[tuple[int, ev.Event]] | None:
        """(stream sequence, event) of what is on the stream; None while no server answers."""

        async def read(url: str) -> list[tuple[int, ev.Event]]:
            from ticktape.replay.catalog import connect

            nc = await connect(url, self.creds_file)
            try:
                msgs = await stream_messages(nc.jetstream(), subjects.EVENTS_STREAM, filters)
                return [(m.metadata.sequence.stream, decode(m.data)) for m in msgs]
            finally:
                await nc.close()

        url = self.url()
        if url is None:
            return None
        try:
            return asyncio.run(asyncio.wait_for(read(url), 20))
        except (OSError, TimeoutError, nats.errors.Error):
            return None

    def drained(self) -> bool:
        async def check(url: str) -> bool:
            from ticktape.replay.catalog import connect

            nc = await connect(url, self.creds_file)
            try:
                return await wait_drained(nc.jetstream(), subjects.EVENTS_STREAM, DURABLES, timeout=5)
            finally:
                await nc.close()

        url = self.url()
        try:
            return url is not None and asyncio.run(asyncio.wait_for(check(url), 20))
        except (OSError, TimeoutError, nats.errors.Error):
            return False

    def fills(self) -> int:
        return len([e for _, e in self.events((subjects.ALL_FILLS,)) or () if isinstance(e, ev.OrderFilled)])


def servers(stack: Stack) -> dict[str, dict[str, int]]:
    try:
        return json.loads((stack.run_dir / "servers.json").read_text())
    except (OSError, ValueError):
        return {}


def kill_server_mid_session(stack: Stack, bus: Bus, name: str) -> None:
    """SIGKILL the embedded server `name` once fills flow; then it is restarted (a new pid, one
    restart) and fills keep coming."""
    wait_for(lambda: stack.state() == "running" and bus.fills() >= 1, timeout=90, what="a first fill")
    before = servers(stack)[name]
    assert before["restarts"] == 0
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(
        lambda: (lambda s: s if s.get("restarts") == 1 else None)(servers(stack).get(name, {})),
        timeout=60,
        what=f"{name} restarted",
    )
    assert after["pid"] != before["pid"] and stack.alive(after["pid"])
    fills = wait_for(bus.fills, timeout=60, what="the stream readable again")
    wait_for(lambda: bus.fills() > fills, timeout=60, what="fills after the restart")
    assert stack.process.poll() is None, stack.logs()
    # inputs delivered just before the outage whose acks were lost come again after their ack
    # wait (30 s): let the consumers settle them, so that the stop drains as usual
    assert wait_for(bus.drained, timeout=90, what="every consumer drained")


def stop(stack: Stack) -> None:
    assert stack.stop(timeout=120) == 0, stack.logs()
    assert stack.state() == "stopped"


def check_stream(items: list[tuple[int, ev.Event]]) -> str:
    """Every fill once, every order filled once, and every symbol's 1m bars without a gap or a
    repeat from its first to its last; the session id of the (only) session."""
    events = [e for _, e in items]
    ids = collections.Counter(e.event_id for e in events)
    assert max(ids.values()) == 1, "an event id appears twice"
    fills = collections.Counter(e.order_id for e in events if isinstance(e, ev.OrderFilled))
    assert fills and max(fills.values()) == 1, "an order was filled twice"
    # an order fills on its symbol's next bar: every order submitted before the last bar is filled
    last_bar = {e.symbol: i for i, e in enumerate(events) if isinstance(e, ev.BarClosed)}
    submitted = [(i, e) for i, e in enumerate(events) if isinstance(e, ev.OrderSubmitted)]
    assert {e.order_id for i, e in submitted if i < last_bar[e.symbol]} <= set(fills), "an order lost its fill"
    assert set(fills) <= {e.order_id for _, e in submitted}, "a fill of no order"
    bars: dict[str, list[int]] = collections.defaultdict(list)
    for e in events:
        if isinstance(e, ev.BarClosed) and e.timeframe == "1m":
            bars[e.symbol].append(e.open_time)
    assert bars
    for symbol, times in bars.items():
        times.sort()
        steps = {b - a for a, b in zip(times, times[1:], strict=False)}
        assert steps == {60_000_000_000}, f"{symbol}: a 1m bar was lost or repeated (steps {sorted(steps)[:5]})"
    (session,) = [e.session_id for e in events if isinstance(e, ev.SessionStarted)]
    assert [e.session_id for e in events if isinstance(e, ev.SessionStopped)] == [session]
    return session


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=120)


def verify_session(session: str, url: str, creds_file: str, dsn: str, home: Path) -> None:
    done = ticktape("replay", session, "--verify", "--json", "--nats", url, "--creds", creds_file)
    result = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}
    assert done.returncode == 0 and result["ok"], result
    counts = {f["family"]: f["recorded"] for f in result["families"]}
    assert counts["fills"], counts
    key = home / "keys" / "audit-ed25519.pub"
    signatures = ["--public-key", str(key)] if key.exists() else []
    done = ticktape("audit", "verify", session, "--dsn", dsn, "--json", *signatures)
    assert done.returncode == 0, done.stdout + done.stderr


def test_nats_server_killed_mid_session_is_restarted_and_nothing_is_lost(tmp_path, e2e_dsn, bars_dir):
    home = tmp_path / "home"
    admin = str(creds.path_for(home / "creds", ADMIN))
    sim = VenueSim(bars_dir, tmp_path, speed=SPEED)
    stack = Stack(home, nats_url="nats://127.0.0.1:0", pg_dsn=e2e_dsn, venue_sim=sim.url, config_yaml=CONFIG)
    bus = Bus(lambda: served_url(home), admin)
    try:
        kill_server_mid_session(stack, bus, "nats-server")
        stop(stack)
    finally:
        stack.stop()
        sim.stop()
    # the stream, read back from the same store (the embedded server stopped with the stack)
    url = served_url(home)
    assert url is not None
    conf = (home / "nats" / "nats-server.conf").read_text()
    server = start_nats_server(home / "nats", port=int(url.rsplit(":", 1)[1]), config=[conf])
    try:
        items = wait_for(bus.events, timeout=30, what="the stream after the stop")
        session = check_stream(items)
        verify_session(session, url, admin, e2e_dsn, home)
    finally:
        server.stop()


def test_postmaster_killed_mid_session_is_restarted_and_nothing_is_lost(tmp_path, nats_auth, bars_dir):
    home = tmp_path / "home"
    sim = VenueSim(bars_dir, tmp_path, speed=SPEED)
    extra = {"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)}
    stack = Stack(home, nats_url=nats_auth.url, pg_dsn="", venue_sim=sim.url, config_yaml=CONFIG, extra_env=extra)
    bus = Bus(lambda: nats_auth.url, nats_auth.creds(ADMIN))
    try:
        kill_server_mid_session(stack, bus, "PostgreSQL")
        stop(stack)
    finally:
        stack.stop()
        sim.stop()
    session = check_stream(wait_for(bus.events, timeout=30, what="the stream"))
    # the audit log, read back from the same data directory (the embedded server stopped with the stack)
    server = start_postgres(home / "postgres", port=int((home / "postgres.port").read_text()))
    try:
        verify_session(session, nats_auth.url, nats_auth.creds(ADMIN), server.app_dsn, home)
    finally:
        server.stop()


def served_url(home: Path) -> str | None:
    """The embedded server's URL, as `ticktape up` writes it into every credentials file."""
    try:
        return json.loads(creds.path_for(home / "creds", ADMIN).read_text())["url"] or None
    except (OSError, ValueError, KeyError):
        return None
