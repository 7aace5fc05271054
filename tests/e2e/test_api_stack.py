"""The API under `ticktape up` (every service with its own credential, the venue simulator serving
real recorded bars): up prints its URL; with market data paused (SIGSTOP) and the pipeline quiet,
every endpoint answers what an independent reader of the event log finds (fills, orders,
positions, accounts, signals, universe, sessions); /health falls below its threshold while market
data is stopped and recovers when it returns (SIGCONT); control with the bearer token goes out
with the operator's credential and halts and resumes trading."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.recorded import convert_octobot
from ticktape import subjects
from ticktape.events import (
    AccountUpdated,
    Event,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    SessionStarted,
    SignalGenerated,
    UniverseUpdated,
)
from ticktape.testing.bus import stream_events
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TOKEN = "e2e-api-token-abcdefghijklmnop"
CONFIG = """
symbol_registry: {top_n: 3}
market_data: {status_interval_s: 1}
api:
  poll_s: 0.5
  health: {bar_stale_s: 4, status_stale_s: 4}
"""


def call(url: str, path: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def api_url(stack: Stack) -> str | None:
    found = re.search(r"^ticktape up: API (http://\S+)$", (stack.home / "up.out").read_text(), re.M)
    return found.group(1) if found else None


def test_the_api_of_a_running_stack(tmp_path: Path, nats_auth, e2e_dsn) -> None:
    sim = VenueSim(convert_octobot(tmp_path / "bars"), tmp_path, speed=1500)
    home = tmp_path / "home"
    stack = Stack(
        home,
        nats_url=nats_auth.url,
        pg_dsn=e2e_dsn,
        venue_sim=sim.url,
        config_yaml=CONFIG,
        extra_env={"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir), "TICKTAPE_API_TOKEN": TOKEN},
    )
    md_pid: int | None = None
    try:
        url = wait_for(lambda: api_url(stack), timeout=60, what="`ticktape up: API http://...`")

        def trading() -> bool:
            try:
                fills = call(url, "/api/v1/fills")[1]
                health = call(url, "/health")[1]
            except OSError:
                return False
            return fills["total"] > 0 and health["healthy"]

        try:
            wait_for(trading, timeout=150, what="fills, and a healthy stack")
        except AssertionError:
            raise AssertionError(f"{call(url, '/health')}\n{stack.logs()}") from None

        # market data stops: no bar, no shard report; the pipeline drains and goes quiet
        md_pid = stack.pid("market_data")
        assert md_pid is not None
        os.kill(md_pid, signal.SIGSTOP)

        def quiet() -> dict[str, Any] | None:
            first = call(url, "/api/v1/metrics")[1]
            if first["behind"]:
                return None
            again = call(url, "/api/v1/metrics")[1]
            consumers = call(url, "/health")[1]["components"][1]
            settled = again["applied_seq"] == first["applied_seq"] and consumers["status"] == "ok"
            return again if settled and not again["behind"] else None

        wait_for(quiet, timeout=60, what="the pipeline quiet and the read model caught up", interval=1.0)
        answers = {
            path: call(url, path)[1]
            for path in (
                "/api/v1/fills?limit=100000",
                "/api/v1/orders?limit=100000",
                "/api/v1/positions",
                "/api/v1/accounts",
                "/api/v1/symbols",
                "/api/v1/sessions",
                "/api/v1/metrics",
            )
        }

        async def read_log() -> list[Event]:
            nc = await nats_auth.connect("admin")
            try:
                return await stream_events(nc.jetstream(), "TICKTAPE")
            finally:
                await nc.close()

        log = asyncio.run(read_log())
        assert answers["/api/v1/metrics"]["applied_seq"] == answers["/api/v1/metrics"]["stream_last_seq"]
        fills = [e for e in log if isinstance(e, OrderFilled)]
        assert [f["fill_id"] for f in answers["/api/v1/fills?limit=100000"]["items"]] == [
            f.event_id for f in reversed(fills)
        ]
        orders = [e for e in log if isinstance(e, OrderSubmitted)]
        assert {o["order_id"] for o in answers["/api/v1/orders?limit=100000"]["items"]} == {o.order_id for o in orders}
        positions: dict[tuple[str, str, str], PositionUpdated] = {}
        for p in (e for e in log if isinstance(e, PositionUpdated)):
            positions[(p.account, p.venue, p.symbol)] = p
        assert {
            (p["account"], p["venue"], p["symbol"]): p["quantity"] for p in answers["/api/v1/positions"]["positions"]
        } == {k: p.quantity for k, p in positions.items()}
        accounts: dict[str, AccountUpdated] = {}
        for a in (e for e in log if isinstance(e, AccountUpdated)):
            accounts[a.account] = a
        assert {a["account"]: a["equity"] for a in answers["/api/v1/accounts"]["accounts"]} == {
            k: a.equity for k, a in accounts.items()
        }
        universes: dict[str, UniverseUpdated] = {}
        for u in (e for e in log if isinstance(e, UniverseUpdated)):
            universes[u.venue] = u
        assert {u["venue"]: [m["symbol"] for m in u["members"]] for u in answers["/api/v1/symbols"]["universes"]} == {
            v: [m.symbol for m in sorted(u.members, key=lambda m: m.rank)] for v, u in universes.items()
        }
        (session,) = [e for e in log if isinstance(e, SessionStarted)]
        assert [s["session_id"] for s in answers["/api/v1/sessions"]["sessions"]] == [session.session_id]
        signals = [e for e in log if isinstance(e, SignalGenerated)]
        assert signals
        symbol = signals[-1].symbol
        latest = {s.strategy: s.event_id for s in signals if s.symbol == symbol}
        status, body = call(url, f"/api/v1/signals/{symbol}")
        assert status == 200 and {s["strategy"]: s["event_id"] for s in body["signals"]} == latest

        # ... and /health falls below the threshold: bars and shard reports are stale
        def unhealthy() -> dict[str, Any] | None:
            status, health = call(url, "/health")
            return health if status == 503 and not health["healthy"] else None

        health = wait_for(unhealthy, timeout=30, what="/health 503 while market data is stopped")
        by = {c["name"]: c for c in health["components"]}
        assert by["bars"]["status"] == "down" and by["shards"]["status"] == "down"
        assert health["score"] < health["threshold"]

        os.kill(md_pid, signal.SIGCONT)
        md_pid = None
        wait_for(lambda: call(url, "/health")[0] == 200, timeout=90, what="/health 200 after market data returns")

        # control goes out as the operator (the API's own credential may not publish control.>)
        status, problem = call(url, "/api/v1/control/stop", "POST")
        assert status == 401 and problem["status"] == 401
        status, accepted = call(url, "/api/v1/control/stop", "POST", token=TOKEN)
        assert status == 202 and accepted["subject"] == subjects.CONTROL_EMERGENCY_STOP, accepted
        wait_for(
            lambda: all(a["halted"] for a in call(url, "/api/v1/accounts")[1]["accounts"]),
            timeout=15,
            what="halted",
        )
        assert call(url, "/health")[1]["components"][4]["status"] == "down"  # halted
        assert call(url, "/api/v1/control/resume", "POST", token=TOKEN)[0] == 202
        wait_for(
            lambda: not any(a["halted"] for a in call(url, "/api/v1/accounts")[1]["accounts"]),
            timeout=15,
            what="resumed",
        )
        assert stack.stop() == 0
    finally:
        if md_pid is not None:
            os.kill(md_pid, signal.SIGCONT)
        stack.stop()
        sim.stop()
