"""`ticktape status --json` against a real nats-server with ticktape's authorization: the execution
service runs in-process on its durable, the other roles publish what their services would (a
universe, shard status, bars, an approval, a poison input), the operator stops and resumes; status
reports each of them with the admin credential it finds in <home>/creds by itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from services.execution.config import ExecutionConfig
from services.execution.service import serve as serve_execution
from tests.support import bars
from tests.support.bars import wave_bars
from ticktape import registry, subjects
from ticktape.bus.permissions import ADMIN, OBSERVER
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.cli.status import CLEAR
from ticktape.clock import MINUTE_NS
from ticktape.config import CommonSettings, NatsSettings
from ticktape.events import MarketDataStatus, OrderApproved, ShardStatus, UniverseMember, UniverseUpdated
from ticktape.testing import eventually
from ticktape.testing.services import running_service

pytestmark = pytest.mark.timeout(90)

VENUE = "binance_usdm"
NOW = time.time_ns()
# three recent 1m bars, the last one closed a minute ago at most
BARS = wave_bars(n=3, start=NOW - NOW % MINUTE_NS - 3 * MINUTE_NS)


def approval(name: str) -> OrderApproved:
    return bars.approval(BARS[0], name)


UNIVERSE = UniverseUpdated(
    event_id="universe-1",
    ts_event=NOW,
    ts_init=NOW,
    venue=VENUE,
    quote_asset="USDT",
    top_n=3,
    as_of=NOW,
    symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    members=tuple(
        UniverseMember(symbol=s, rank=i + 1, quote_volume=1e9) for i, s in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    ),
)
SHARDS = MarketDataStatus(
    event_id="status-1",
    ts_event=NOW,
    ts_init=NOW,
    venue=VENUE,
    shards=(
        ShardStatus(shard=0, connected=True, symbols=2, last_frame_age_ms=30, reconnects=0, frames_per_s=5.0),
        ShardStatus(shard=1, connected=False, symbols=1, last_frame_age_ms=None, reconnects=3, frames_per_s=0.0),
    ),
)


async def ticktape(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ticktape <args>` in its own process (the event loop keeps serving execution meanwhile)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env["TICKTAPE_HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticktape",
        *args,
        env=env,
        cwd=home,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def status(home: Path, url: str) -> dict[str, Any]:
    done = await ticktape(home, "status", "--json", "--nats", url)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


async def publish(nats_auth, role: str, events) -> None:
    nc = await nats_auth.connect(role)
    try:
        await publish_batch(nc.jetstream(), [(e, {}) for e in events])
    finally:
        await nc.close()


async def test_status_reports_durables_venues_accounts_halts_and_dead_letters(nats_auth, tmp_path):
    assert nats_auth.creds_dir == tmp_path / "creds"  # the home's default credentials directory
    admin = await nats_auth.connect(ADMIN)
    await ensure_streams(admin.jetstream(), NatsSettings())
    await admin.close()
    run = tmp_path / "run"
    run.mkdir()
    (run / "state").write_text("running")
    (run / "execution.pid").write_text(str(os.getpid()))  # execution runs in this process
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run / "signal.pid").write_text(str(gone.pid))

    common = CommonSettings(nats=nats_auth.settings("execution"))
    async with running_service("execution", serve_execution, ExecutionConfig(), common):
        await publish(nats_auth, "symbol_registry", [UNIVERSE])
        await publish(nats_auth, "market_data", [SHARDS])
        await publish(nats_auth, "risk", [approval("one")])
        await publish(nats_auth, "market_data", BARS)
        market_data = await nats_auth.connect("market_data")
        try:  # a poison input: not JSON, on a subject execution reads
            await market_data.jetstream().publish(subjects.for_event(BARS[-1]), b"\x00not an event")
        finally:
            await market_data.close()

        async def settled() -> dict[str, Any] | None:
            doc = await status(tmp_path, nats_auth.url)
            accounts = doc["accounts"]
            done = accounts and accounts[0]["open_positions"] and doc["dead_letters"].get("execution")
            (execution,) = [c for c in doc["consumers"] if c["durable"] == "execution"]
            return doc if done and execution["num_pending"] == 0 and execution["num_ack_pending"] == 0 else None

        doc = await eventually(settled, timeout=40, interval=0.2, what="a fill, its position and the dead letter")

    by_durable = {c["durable"]: c for c in doc["consumers"] if c["stream"] == doc["stream"]}
    assert set(by_durable) == {d for s in registry.services() for d in s.durables}
    assert by_durable["execution"]["present"] and by_durable["execution"]["service"] == "execution"
    assert by_durable["execution"]["last_active_ns"] is not None
    assert sorted(d for d, c in by_durable.items() if not c["present"]) == sorted(set(by_durable) - {"execution"})
    (venue,) = doc["venues"]
    assert venue["venue"] == VENUE and venue["universe_size"] == 3
    assert [(s["shard"], s["connected"]) for s in venue["shards"]] == [(0, True), (1, False)]
    assert venue["last_bar_close_ns"] == BARS[-1].close_time
    assert 0 <= venue["last_bar_age_s"] <= (doc["ts_ns"] - BARS[-1].close_time) / 1e9 + 1
    assert venue["last_bar_subject"] == subjects.for_event(BARS[-1])
    (account,) = doc["accounts"]
    assert account["account"] == "paper-main" and account["equity"] is not None
    assert [(p["symbol"], p["quantity"]) for p in account["open_positions"]] == [("BTCUSDT", 0.01)]
    assert doc["dead_letters"] == {"execution": 1}
    assert doc["halted"] is False and doc["halted_accounts"] == []
    assert doc["stack_state"] == "running"
    assert {p["name"]: p["alive"] for p in doc["services"] if p["pid"] is not None} == {
        "execution": True,
        "signal": False,
    }
    reasons = doc["health"]["reasons"]
    assert doc["health"]["status"] == "DEGRADED"
    assert "1 dead letter(s)" in reasons and "service signal not running" in reasons
    assert f"{VENUE} shard(s) 1 disconnected" in reasons

    # execution is stopped now: a new approval waits on its durable
    await publish(nats_auth, "risk", [approval("two")])
    doc = await status(tmp_path, nats_auth.url)
    (execution,) = [c for c in doc["consumers"] if c["durable"] == "execution"]
    assert execution["num_pending"] + execution["num_ack_pending"] == 1
    lagging = await ticktape(tmp_path, "status", "--json", "--nats", nats_auth.url, "--max-lag", "0")
    assert "durable execution lags 1 > 0" in json.loads(lagging.stdout)["health"]["reasons"]

    assert (await ticktape(tmp_path, "stop", "--nats", nats_auth.url)).returncode == 0
    doc = await status(tmp_path, nats_auth.url)
    assert doc["halted"] is True and doc["halted_accounts"] == ["*"] and doc["accounts"][0]["halted"] is True
    assert "trading halted (*)" in doc["health"]["reasons"]
    assert (await ticktape(tmp_path, "resume", "--nats", nats_auth.url)).returncode == 0
    doc = await status(tmp_path, nats_auth.url)
    assert doc["halted"] is False and doc["accounts"][0]["halted"] is False

    screen = await ticktape(tmp_path, "status", "--nats", nats_auth.url)
    assert screen.returncode == 0 and screen.stdout.startswith("ticktape status  DEGRADED: ")


async def test_watch_refreshes_until_interrupted_and_observer_is_refused(nats_auth, tmp_path):
    doc = await status(tmp_path, nats_auth.url)  # reachable, but no stack has provisioned it yet
    assert doc["stream_present"] is False and doc["health"]["reasons"][0] == "no stream TICKTAPE"
    admin = await nats_auth.connect(ADMIN)
    await ensure_streams(admin.jetstream(), NatsSettings())
    await admin.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env["TICKTAPE_HOME"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticktape",
        "status",
        "--watch",
        "--interval",
        "0.1",
        "--nats",
        nats_auth.url,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    seen = b""
    try:
        while seen.count(CLEAR.encode()) < 3:  # three screens: it refreshes
            seen += await asyncio.wait_for(proc.stdout.read(4096), timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    screens = [s for s in seen.decode().split(CLEAR) if s]
    assert screens[0].startswith("ticktape status  DEGRADED: ")  # no service durable there

    refused = await ticktape(tmp_path, "status", "--nats", nats_auth.url, "--creds", nats_auth.creds(OBSERVER))
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1


async def test_status_exits_1_with_one_redacted_line_when_nats_is_unreachable(tmp_path):
    with socket_closed() as port:
        done = await ticktape(tmp_path, "status", "--nats", f"nats://admin:hunter2-secret@127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "hunter2-secret" not in done.stderr


class socket_closed:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        return None
