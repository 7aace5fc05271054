"""The API (/api/v1/scheduler/status, /api/v1/websocket/status, /health) and `ticktape status`
on a real nats-server whose session runs the signal service as 3 workers: each worker is shown
with its process and its own durable's lag (signal-p0 up and caught up, signal-p1's process gone
and its durable behind, signal-p2 never started), not the single `signal` process and durable;
and the managed strategies (id, kind, status, account, revision) are listed from the log."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from tests.integration.test_api_service import ROOT, Api, call, start_api, stop_api
from tests.support.bars import wave_bars
from tests.support.managed import strategy_change
from ticktape.bus.durable import recreate_durable
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import Event, SessionStarted, WorkersChosen
from ticktape.infra.nats_server import NatsServer, start_nats_server
from ticktape.testing import eventually

pytestmark = pytest.mark.timeout(180)

STREAM = NatsSettings().stream
T0 = 1_700_000_000_000_000_000


def log() -> list[Event]:
    config = {"signal": {"workers": 3, "strategies": [{"kind": "ensemble", "name": "ensemble9"}]}}
    session = SessionStarted(
        event_id="session-workers",
        ts_event=T0,
        ts_init=T0,
        session_id="s-workers",
        config_hash="h",
        config_json=json.dumps(config),
        code_version="test",
        services=("signal",),
    )
    chosen = WorkersChosen(
        event_id="workers-s-workers",
        ts_event=T0,
        ts_init=T0,
        session_id="s-workers",
        service="signal",
        workers=3,
        requested="3",
    )
    changes = [
        strategy_change("mom", 1, account="paper-b", ts=T0 + 1),
        strategy_change("mom", 2, "paused", account="paper-b", ts=T0 + 2),
        strategy_change("rev", 1, kind="rsi_reversion", params={}, ts=T0 + 3),
    ]
    return [session, chosen, *changes, *wave_bars("BTCUSDT", n=6)]


@dataclass
class Stack:
    nats: NatsServer
    home: Path
    api: Api
    messages: int  # on the stream: what signal-p1, reading from the first, has pending


async def _prepare(url: str) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, NatsSettings())
        await publish_batch(js, [(e, {}) for e in log()])
        last = (await js.stream_info(STREAM)).state.last_seq
        # signal-p0 caught up, signal-p1 read nothing yet, signal-p2 never created
        await recreate_durable(js, STREAM, "signal-p0", last + 1, ack_wait=30.0, max_ack_pending=64)
        await recreate_durable(js, STREAM, "signal-p1", 1, ack_wait=30.0, max_ack_pending=64)
        return last
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("workers-status")
    server = start_nats_server(base / "nats")
    try:
        messages = asyncio.run(_prepare(server.url))
        home = base / "home"
        run = home / "run"
        run.mkdir(parents=True)
        (run / "signal-p0.pid").write_text(str(os.getpid()))  # alive: this process
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        (run / "signal-p1.pid").write_text(str(gone.pid))  # a worker that died
        api = start_api(server.url, home)
        try:
            yield Stack(server, home, api, messages)
        finally:
            stop_api(api)
    finally:
        server.stop()


def _by_durable(workers: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        w["durable"]: (w["process"], w["index"], w["workers"], w["present"], w["pending"], w["alive"]) for w in workers
    }


def test_the_api_shows_each_worker_with_its_durables_lag(stack: Stack) -> None:
    want = {
        "signal-p0": ("signal-p0", 0, 3, True, 0, True),
        "signal-p1": ("signal-p1", 1, 3, True, stack.messages, False),
        "signal-p2": ("signal-p2", 2, 3, False, 0, False),
    }

    def shown() -> dict[str, Any] | None:
        _, _, sched = call(stack.api, "/api/v1/scheduler/status")
        return sched if _by_durable(sched["workers"]) == want else None

    sched = asyncio.run(eventually(shown, timeout=30, interval=0.2, what="the three workers probed"))
    assert sched["lag"] == stack.messages
    _, _, ws = call(stack.api, "/api/v1/websocket/status")
    assert _by_durable(ws["signal_workers"]) == want

    _, _, health = call(stack.api, "/health")
    by = {c["name"]: c for c in health["components"]}
    assert by["services"]["status"] != "ok" and "signal-p1" in by["services"]["detail"]
    assert "signal-p2" in by["consumers"]["detail"] and "(signal) missing" in by["consumers"]["detail"]


def test_the_api_lists_the_managed_strategies(stack: Stack) -> None:
    def listed() -> dict[str, Any] | None:
        _, _, sched = call(stack.api, "/api/v1/scheduler/status")
        by = {s["name"]: s for s in sched["strategies"]}
        return by if {"mom", "rev"} <= by.keys() else None

    by = asyncio.run(eventually(listed, timeout=30, interval=0.2, what="the managed strategies"))
    assert {k: by["mom"][k] for k in ("kind", "status", "account", "revision")} == {
        "kind": "ema_cross",
        "status": "paused",
        "account": "paper-b",
        "revision": 2,
    }
    assert (by["rev"]["status"], by["rev"]["account"], by["rev"]["revision"]) == ("live", "", 1)
    assert (by["ensemble9"]["kind"], by["ensemble9"]["status"]) == ("ensemble", None)  # configured


def test_ticktape_status_shows_the_workers_and_the_managed_strategies(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update(TICKTAPE_HOME=str(stack.home), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "ticktape", "status", "--json", "--nats", stack.nats.url],
        env=env,
        cwd=stack.home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    got = {w["durable"]: (w["process"], w["present"], w["num_pending"], w["alive"], w["pid"]) for w in doc["workers"]}
    assert got == {
        "signal-p0": ("signal-p0", True, 0, True, os.getpid()),
        "signal-p1": ("signal-p1", True, stack.messages, False, got["signal-p1"][4]),
        "signal-p2": ("signal-p2", False, 0, False, None),
    }
    assert got["signal-p1"][4] is not None
    assert [(s["id"], s["kind"], s["status"], s["account"], s["revision"]) for s in doc["strategies"]] == [
        ("mom", "ema_cross", "paused", "paper-b", 2),
        ("rev", "rsi_reversion", "live", "", 1),
    ]
    assert "durable signal-p2 of worker signal-p2 missing on TICKTAPE" in doc["health"]["reasons"]
    assert "service signal-p1 not running" in doc["health"]["reasons"]
    assert not any(c["durable"] == "signal" for c in doc["consumers"])  # the single-process durable is not expected
