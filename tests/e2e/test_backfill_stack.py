"""No trading on history, end to end: market data, the symbol registry, signal, risk and execution
as processes on a real nats-server, against the venue simulator serving real Binance 1m bars from
../shared/data whose clock starts hours into the data, so every symbol is new and market data
backfills its history from REST before live bars flow. History must warm the strategies and make
no signal, order or fill; live bars trade; the session verifies; and a what-if of the same
recording with `signal.trade_backfilled: true` (the old behaviour) does trade on that history,
so the check is not vacuous."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.recorded import OCTOBOT_BTC, OCTOBOT_ETH, convert_octobot
from ticktape import events as ev
from ticktape import subjects
from ticktape.bus.permissions import ADMIN
from ticktape.clock import MINUTE_NS
from ticktape.events.codec import decode
from ticktape.replay.fileformat import SessionFile
from ticktape.testing.bus import stream_messages
from ticktape.testing.stack import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
symbol_registry: {top_n: 2}
telemetry: {log_level: info}
"""
SERVICES = ("market_data", "symbol_registry", "signal", "risk", "execution")
HISTORY_MINUTES = 300  # closed at the simulator's boot: what market data backfills for a new symbol
TRADING = (ev.SignalGenerated, ev.OrderApproved, ev.OrderRejected, ev.OrderSubmitted, ev.OrderFilled)


@pytest.fixture
def sim_url(tmp_path: Path) -> Iterator[str]:
    """The venue simulator (a process) on the BTC and ETH captures aligned to one start, its clock
    started at boot HISTORY_MINUTES after that start, at 120 sim seconds per second (two bars a
    second: most of the data is left for live trading after the stack has started)."""
    bars = convert_octobot(tmp_path / "bars", OCTOBOT_BTC, OCTOBOT_ETH)
    earliest = min(int(f.read_text().split(",", 1)[0]) for f in bars.glob("*-1m-*.csv"))
    start_ms = earliest + HISTORY_MINUTES * 60_000
    args = [sys.executable, "-m", "ticktape", "venue-sim", "--data", str(bars), "--port", "0", "--speed", "120"]
    args += ["--align", "--start", str(start_ms)]
    with open(tmp_path / "venue-sim.err", "wb") as err:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
        try:
            assert process.stdout is not None
            line = process.stdout.readline().decode()
            assert "listening on" in line, (line, (tmp_path / "venue-sim.err").read_text())
            yield line.strip().rsplit(" ", 1)[-1]
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


def events_on_stream(auth) -> list[ev.Event]:
    async def read() -> list[ev.Event]:
        nc = await auth.connect(ADMIN)
        try:
            return [decode(m.data) for m in await stream_messages(nc.jetstream(), subjects.EVENTS_STREAM)]
        except Exception as exc:  # the stream is created by the first process that starts
            if "not found" in str(exc).lower():
                return []
            raise
        finally:
            await nc.close()

    return asyncio.run(read())


def caused_by_history(events: list[ev.Event]) -> list[ev.Event]:
    """Signals, risk decisions, orders and fills whose causal chain starts at a backfilled bar."""
    by_id = {e.event_id: e for e in events}

    def root(e: ev.Event) -> ev.Event:
        seen = 0
        while e.causation_id in by_id and seen < 100:
            e, seen = by_id[e.causation_id], seen + 1
        return e

    return [e for e in events if isinstance(e, TRADING) and isinstance(r := root(e), ev.BarClosed) and r.backfilled]


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=120)


def test_a_new_symbols_history_warms_the_strategies_but_trades_nothing(tmp_path, nats_auth, e2e_dsn, sim_url):
    creds = {"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)}
    stack = Stack(
        tmp_path / "home",
        nats_url=nats_auth.url,
        pg_dsn=e2e_dsn,
        venue_sim=sim_url,
        config_yaml=CONFIG,
        extra_env=creds,
        services=SERVICES,
    )
    try:
        wait_for(
            lambda: sum(isinstance(e, ev.OrderFilled) for e in events_on_stream(nats_auth)) >= 2,
            timeout=120,
            what="fills from live bars",
        )
    finally:
        assert stack.stop() == 0, stack.logs()

    events = events_on_stream(nats_auth)
    bars = {e.event_id: e for e in events if isinstance(e, ev.BarClosed)}
    history = [b for b in bars.values() if b.backfilled and b.timeframe == "1m"]
    by_symbol = {s: sum(b.symbol == s for b in history) for s in {b.symbol for b in bars.values()}}
    assert len(by_symbol) == 2 and all(n >= HISTORY_MINUTES - 5 for n in by_symbol.values()), by_symbol
    first_live = min(b.open_time for b in bars.values() if not b.backfilled)
    assert min(b.open_time for b in history) <= first_live - (HISTORY_MINUTES - 5) * MINUTE_NS

    assert caused_by_history(events) == []
    signals = [e for e in events if isinstance(e, ev.SignalGenerated)]
    assert signals
    for s in signals:
        cause = bars[s.causation_id or ""]
        assert not cause.backfilled and s.price == cause.close and s.bar_open_time == cause.open_time
    assert sum(isinstance(e, ev.OrderFilled) for e in events) >= 2

    started = [e for e in events if isinstance(e, ev.SessionStarted)]
    assert len(started) == 1 and json.loads(started[0].config_json)["signal"]["trade_backfilled"] is False
    session = started[0].session_id
    bus = ["--nats", nats_auth.url, "--creds", nats_auth.creds(ADMIN)]
    done = ticktape("replay", session, "--verify", "--json", *bus)
    result = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}
    assert done.returncode == 0 and result["ok"], result

    # The same recording under the old behaviour trades on that history (what-if, a new session).
    legacy = tmp_path / "legacy.yaml"
    legacy.write_text("signal: {trade_backfilled: true}\n")
    done = ticktape("replay", session, "--config", str(legacy), "--out", str(tmp_path / "replays"), *bus)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = (tmp_path / "replays").glob("*.ttsession.gz")
    with SessionFile(path) as f:
        what_if = [subjects.decode_on(r.subject, r.data) for r in f.records()]
    old_way = caused_by_history(what_if)
    assert any(isinstance(e, ev.SignalGenerated) for e in old_way)
    assert any(isinstance(e, ev.OrderFilled) for e in old_way)
