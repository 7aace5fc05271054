"""`ticktape status --json` on the whole stack (`ticktape up` over the venue simulator with real
recorded bars, every service with its own credential): every service alive, every durable there,
the universe, the last bar, an account with equity, dead letters after a poison input, halted
after `ticktape stop` and not after `ticktape resume`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.recorded import convert_octobot
from ticktape import registry
from ticktape.bus.permissions import OPERATOR
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
symbol_registry: {top_n: 3}
market_data: {status_interval_s: 1}
"""


def ticktape(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    return subprocess.run(
        [sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=60, env=env, cwd=home
    )


def status(home: Path, auth) -> dict[str, Any]:
    done = ticktape(home, "status", "--json", "--home", str(home), "--nats", auth.url, "--creds", auth.creds("admin"))
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_status_of_a_running_stack(tmp_path, nats_auth, e2e_dsn):
    sim = VenueSim(convert_octobot(tmp_path / "bars"), tmp_path, speed=1500)
    home = tmp_path / "home"
    stack = Stack(
        home,
        nats_url=nats_auth.url,
        pg_dsn=e2e_dsn,
        venue_sim=sim.url,
        config_yaml=CONFIG,
        extra_env={"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)},
    )
    try:

        def trading() -> dict[str, Any] | None:
            doc = status(home, nats_auth)
            ready = (
                doc["stack_state"] == "running"
                and doc["accounts"]
                and doc["venues"]
                and doc["venues"][0]["last_bar_close_ns"]
                and doc["venues"][0]["universe_size"]
                and doc["venues"][0]["shards"]
            )
            return doc if ready else None

        doc = wait_for(trading, timeout=120, what="a running stack with a universe, shards, bars and an account")
        assert {p["name"]: p["alive"] for p in doc["services"]} == dict.fromkeys(registry.names(), True)
        durables = {c["durable"]: c for c in doc["consumers"] if c["stream"] == doc["stream"]}
        assert set(durables) == {d for s in registry.services() for d in s.durables}
        assert all(c["present"] for c in durables.values()), durables
        (venue,) = doc["venues"]
        assert venue["universe_size"] == 3
        assert venue["shards"] and all(s["connected"] for s in venue["shards"])
        assert venue["last_bar_age_s"] >= 0  # recorded bars: their close times are years old
        assert doc["accounts"][0]["equity"] is not None
        assert doc["session"] is not None and doc["session"]["stopped"] is False
        assert doc["halted"] is False

        screen = ticktape(
            home, "status", "--home", str(home), "--nats", nats_auth.url, "--creds", nats_auth.creds("admin")
        )
        assert screen.returncode == 0 and screen.stdout.startswith("ticktape status  ")
        bar_subject = venue["last_bar_subject"]

        async def poison() -> None:
            nc = await nats_auth.connect("market_data")
            try:
                await nc.jetstream().publish(bar_subject, b"\x00not an event")
            finally:
                await nc.close()

        asyncio.run(poison())
        seen: list[dict[str, Any]] = []

        def dead_lettered() -> dict[str, Any] | None:
            seen.append(status(home, nats_auth))
            return seen[-1] if seen[-1]["dead_letters"] else None

        try:
            doc = wait_for(dead_lettered, timeout=30, what="a dead letter of the poison input")
        except AssertionError:
            raise AssertionError(f"no dead letter; last status: {seen[-1]}\n{stack.logs()}") from None
        assert "dead letter(s)" in " ".join(doc["health"]["reasons"])

        operator = ["--nats", nats_auth.url, "--creds", nats_auth.creds(OPERATOR)]
        assert ticktape(home, "stop", *operator).returncode == 0
        doc = status(home, nats_auth)
        assert doc["halted"] is True and all(a["halted"] for a in doc["accounts"])
        assert ticktape(home, "resume", *operator).returncode == 0
        doc = status(home, nats_auth)
        assert doc["halted"] is False and not any(a["halted"] for a in doc["accounts"])
        assert stack.stop() == 0
    finally:
        stack.stop()
        sim.stop()
