"""`ticktape up --cluster 3`: three embedded nats-servers on loopback, every stream replicated on
each (R3). Mid-session, while bars flow from the venue simulator, the node leading the events
stream is SIGKILLed: the pipeline goes on (new fills, seen by an outside subscriber connected to
the surviving nodes only), the stream holds every event once, the stack stops cleanly, and after
the three nodes are restarted from their stores `ticktape replay <session> --verify` passes."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import nats.errors
import pytest

from tests.support.recorded import OCTOBOT_BTC, OCTOBOT_ETH, convert_octobot
from ticktape import events as ev
from ticktape import registry, subjects
from ticktape.bus import creds
from ticktape.bus.connect import connect, has_jetstream
from ticktape.bus.permissions import ADMIN, OBSERVER
from ticktape.bus.reader import read_range
from ticktape.events.codec import decode
from ticktape.infra.nats_server import NatsServer, start_nats_server
from ticktape.replay.catalog import connect as connect_once
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
symbol_registry: {top_n: 3}
telemetry: {log_level: info}
"""
T = TypeVar("T")
CORES = tuple(info.name for info in registry.of_kind("core"))
DURABLES = tuple(d for info in registry.services() for d in info.durables)


def served_urls(home: Path) -> list[str] | None:
    """The nodes' client URLs, as `ticktape up` writes them into every credentials file."""
    try:
        url = json.loads(creds.path_for(home / "creds", ADMIN).read_text())["url"]
    except (OSError, ValueError, KeyError):
        return None
    return url.split(",") if url.count(",") == 2 else None


def read(url: str, admin: Path, filters: list[str]) -> list[ev.Event]:
    """The events stream's events on filters, read through the servers of url only."""

    async def go() -> list[ev.Event]:
        nc = await connect_once(url, admin)
        try:
            return [decode(m.data) async for m in read_range(nc.jetstream(), subjects.EVENTS_STREAM, filters)]
        except Exception as exc:  # the stream is created by the first process that starts
            if "not found" in str(exc).lower():
                return []
            raise
        finally:
            await nc.close()

    return asyncio.run(go())


def stream_leader(url: str, admin: Path) -> str | None:
    """The node leading the events stream (None while there is none, e.g. during an election)."""

    async def go() -> str | None:
        nc = await connect_once(url, admin)
        try:
            info = await nc.jetstream(timeout=2).stream_info(subjects.EVENTS_STREAM)
            return info.cluster.leader if info.cluster else None
        finally:
            await nc.close()

    return asyncio.run(go())


def tolerant(read_fn: Callable[..., T], *args: Any) -> T | None:
    """read_fn(*args), or None when the cluster does not answer in time (e.g. during an election)."""
    try:
        return read_fn(*args)
    except (OSError, nats.errors.Error):
        return None


def csv_bar_minutes(bars_dir: Path) -> dict[str, list[int]]:
    """Per symbol, the gaps in ns between consecutive recorded 1m bars (the simulator may shift
    a recording in time; the gaps, a missing minute included, stay)."""
    out = {}
    for f in sorted(bars_dir.glob("*-1m-*.csv")):
        times = sorted(int(line.split(",", 1)[0]) * 1_000_000 for line in f.read_text().splitlines() if line.strip())
        out[f.name.split("-", 1)[0]] = [b - a for a, b in zip(times, times[1:], strict=False)]
    return out


def recorded_minutes(items: list[ev.Event]) -> dict[str, list[int]]:
    """The same for the 1m bars on the bus (a repeated bar shows as a gap of 0)."""
    times = collections.defaultdict(list)
    for e in items:
        if isinstance(e, ev.BarClosed) and e.timeframe == "1m":
            times[e.symbol].append(e.open_time)
    return {s: [b - a for a, b in zip(sorted(t), sorted(t)[1:], strict=False)] for s, t in sorted(times.items())}


def unacknowledged(url: str, admin: Path) -> int:
    """How many inputs the durable consumers have been delivered and not acknowledged yet."""

    async def go() -> int:
        nc = await connect_once(url, admin)
        try:
            js = nc.jetstream(timeout=2)
            return sum([(await js.consumer_info(subjects.EVENTS_STREAM, d)).num_ack_pending for d in DURABLES])
        finally:
            await nc.close()

    return asyncio.run(go())


def node_pid(home: Path, node: str) -> int:
    (ports,) = (home / "nats-cluster" / node / "ports").glob("nats-server_*.ports")
    return int(ports.stem.rsplit("_", 1)[1])


def servers_doc(home: Path) -> dict | None:
    """run/servers.json: the embedded servers `ticktape up` supervises, pid and restarts each."""
    try:
        return json.loads((home / "run" / "servers.json").read_text())
    except (OSError, ValueError):
        return None


def node_restarts(home: Path, node: str) -> int | None:
    doc = servers_doc(home)
    return doc.get(f"nats-server {node}", {}).get("restarts") if doc else None


def node_pid_now(home: Path, node: str) -> int:
    doc = servers_doc(home)
    assert doc is not None
    return int(doc[f"nats-server {node}"]["pid"])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Observer(threading.Thread):
    """An outside client (the observer role) on the surviving nodes, recording every order and
    fill event the bus delivers to a plain subscription."""

    def __init__(self, url: str, creds_file: Path) -> None:
        super().__init__(daemon=True)
        self.url, self.creds_file = url, creds_file
        self.seen: list[ev.Event] = []
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop, self.done = asyncio.get_running_loop(), asyncio.Event()
        nc = await connect(self.url, "e2e-observer", creds=self.creds_file)

        async def on_msg(msg) -> None:
            self.seen.append(decode(msg.data))

        for subject in (subjects.ALL_ORDERS, subjects.ALL_FILLS):
            await nc.subscribe(subject, cb=on_msg)
        await nc.flush()
        self.ready.set()
        await self.done.wait()
        await nc.close()

    def stop(self) -> None:
        if self.loop is not None and self.done is not None:
            self.loop.call_soon_threadsafe(self.done.set)
        self.join(10)


def restart_nodes(home: Path, urls: list[str]) -> list[NatsServer]:
    """Start the stopped nodes again from their stores and configuration, on the same ports."""
    servers = []
    for i, url in enumerate(urls, 1):
        store = home / "nats-cluster" / f"n{i}"
        config = (store / "nats-server.conf").read_text()
        servers.append(start_nats_server(store, port=int(url.rsplit(":", 1)[1]), config=[config]))
    return servers


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=120)


def test_cluster_loses_the_stream_leader_mid_session_and_nothing_is_lost_or_duplicated(tmp_path, e2e_dsn):
    home = tmp_path / "home"
    admin, observer = creds.path_for(home / "creds", ADMIN), creds.path_for(home / "creds", OBSERVER)
    bars_dir = convert_octobot(tmp_path / "bars", OCTOBOT_BTC, OCTOBOT_ETH)  # two symbols: a shorter test
    csv_minutes = csv_bar_minutes(bars_dir)
    sim = VenueSim(bars_dir, tmp_path, speed=900)
    restarted: list[NatsServer] = []
    watcher: Observer | None = None
    try:
        stack = Stack(
            home,
            nats_url="nats://127.0.0.1:0",
            pg_dsn=e2e_dsn,
            venue_sim=sim.url,
            config_yaml=CONFIG,
            args=["--cluster", "3"],
        )
        try:
            urls = wait_for(lambda: served_urls(home), timeout=30, what="the cluster's URLs")
            everyone = ",".join(urls)
            pids = [node_pid(home, f"n{i}") for i in range(1, 4)]
            wait_for(lambda: tolerant(read, everyone, admin, [subjects.ALL_FILLS]), timeout=90, what="a first fill")
            leader = wait_for(lambda: tolerant(stream_leader, everyone, admin), timeout=10, what="the stream's leader")
            victim = int(leader.removeprefix("n")) - 1
            survivors = ",".join(u for i, u in enumerate(urls) if i != victim)
            watcher = Observer(survivors, observer)
            watcher.start()
            assert watcher.ready.wait(10), "the observer did not subscribe"

            os.kill(pids[victim], signal.SIGKILL)
            wait_for(lambda: not alive(pids[victim]), timeout=10, what=f"{leader} dead")
            # `up` restarts the dead node (same name, ports and store): it rejoins and catches up
            wait_for(lambda: node_restarts(home, leader) == 1, timeout=60, what=f"{leader} restarted by `ticktape up`")
            wait_for(lambda: tolerant(stream_leader, survivors, admin), timeout=30, what="a stream leader again")
            fills = wait_for(
                lambda: tolerant(read, survivors, admin, [subjects.ALL_FILLS]), timeout=30, what="fills readable"
            )
            after_kill = {e.event_id for e in fills}
            wait_for(
                lambda: len(tolerant(read, survivors, admin, [subjects.ALL_FILLS]) or ()) >= len(after_kill) + 2,
                timeout=60,
                what="new fills after the kill",
            )
            wait_for(
                lambda: any(isinstance(e, ev.OrderFilled) and e.event_id not in after_kill for e in watcher.seen),
                timeout=30,
                what="the observer on the survivors sees a new fill",
            )
            assert stack.process.poll() is None, stack.logs()  # `up` runs on with two of three nodes
            # the recording plays out and the consumers settle before the stop: stopped a few
            # seconds after the failover, the drain timed out in 2 runs of 3 (inputs still
            # unacknowledged; likely those delivered just before it, due again after ack_wait, 30 s)
            wait_for(
                lambda: recorded_minutes(tolerant(read, survivors, admin, [subjects.ALL_BARS]) or []) == csv_minutes,
                timeout=120,
                what="every recorded bar on the bus",
            )
            wait_for(
                lambda: tolerant(unacknowledged, survivors, admin) == 0, timeout=60, what="no input unacknowledged"
            )
        finally:
            assert stack.stop() == 0, stack.logs()
            if watcher is not None:
                watcher.stop()
    finally:
        sim.stop()

    restarted_pid = node_pid_now(home, leader)
    assert not [pid for pid in [*pids, restarted_pid] if alive(pid)], "a node outlived `ticktape up`"
    restarted = restart_nodes(home, urls)
    try:
        wait_for(lambda: asyncio.run(has_jetstream(everyone, creds=admin)), timeout=30, what="the cluster back")
        items = wait_for(lambda: tolerant(read, everyone, admin, [">"]), timeout=30, what="the events stream")
        ids = collections.Counter(e.event_id for e in items)
        assert max(ids.values()) == 1, "an event was stored twice"
        fills_per_order = collections.Counter(e.order_id for e in items if isinstance(e, ev.OrderFilled))
        assert len(fills_per_order) > len(after_kill) and max(fills_per_order.values()) == 1
        assert all(e.causation_id in ids for e in items if isinstance(e, ev.OrderFilled | ev.OrderSubmitted))
        # market data: every recorded 1m bar once, none missing or repeated
        bars = collections.Counter((e.symbol, e.timeframe, e.open_time) for e in items if isinstance(e, ev.BarClosed))
        assert max(bars.values()) == 1 and recorded_minutes(items) == csv_minutes
        # everything the outside subscriber was delivered is in the log (a retried publish may be
        # delivered twice to a plain subscriber; the stream keeps it once)
        assert watcher is not None and {e.event_id for e in watcher.seen} <= set(ids)

        done = ticktape("sessions", "--nats", everyone, "--creds", str(admin), "--json")
        assert done.returncode == 0, done.stderr
        (session,) = [json.loads(line) for line in done.stdout.splitlines()]
        assert session["status"] == "stopped", session  # drained with one node down
        done = ticktape(
            "replay", session["session_id"], "--verify", "--json", "--nats", everyone, "--creds", str(admin)
        )
        result = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}
        assert done.returncode == 0 and result["ok"], result
        counts = {f["family"]: f["recorded"] for f in result["families"]}
        assert counts["fills"] == len(read(everyone, admin, [subjects.ALL_FILLS])), counts
        assert result["cores"] == list(CORES) and not result["unconfirmed"]
        # the audit chain of the session is intact, its signed checkpoints verified with the key
        key = home / "keys" / "audit-ed25519.pub"
        done = ticktape("audit", "verify", session["session_id"], "--dsn", e2e_dsn, "--public-key", str(key))
        assert done.returncode == 0, done.stdout + done.stderr
        # the routes' password is in the nodes' 0600 configuration files and nowhere else
        conf = (home / "nats-cluster" / "n1" / "nats-server.conf").read_text()
        (route_password,) = set(re.findall(r"nats-route://route:([^@]+)@", conf))
        files = [p for p in home.rglob("*") if p.is_file() and p.name != "nats-server.conf"]
        assert files and not [p for p in files if route_password.encode() in p.read_bytes()]
    finally:
        for server in restarted:
            server.stop()
