"""Benchmark (c): 1,000 symbols over 10 shards through minute-boundary bursts: how long after the
venue simulator sends a bar's final kline frame is the bar acked by JetStream?

Bars (deterministic, recorded values): the real 1m series in ../shared/data converted with
venuesim.convert: OctoBot BTC/USDT (2018-04-28), ETH/USDT (2018-07-16), ADA/USDT (2020-04-24) and
Lean's BTCBUSD day (2022-12-13). Symbol k (S0001USDT ... S1000USDT) is source k mod 4, a window of
`warmup + minutes` consecutive recorded bars starting at the (k div 4)-th of 250 evenly spaced
gap-free offsets in that source; the CSV lines are copied verbatim (prices, volumes as recorded;
quote volume derived by venuesim.convert), only the symbol name is synthetic. The simulator
(`--align`) shifts every symbol onto one timeline, so all 1,000 bars of a minute close together.

Processes (as in production, each its own interpreter; all share the machine's cores):
  nats-server -js     started here on a free port, temp file store; streams from ensure_streams
  venue simulator     `python -m ticktape venue-sim --data DIR --port 0 --speed S --align`
  market data         `python -m services.market_data` (TICKTAPE_CONFIG: binance_usdm,
                      streams_per_connection=100 -> 10 shards; aggregation as configured;
                      backfill_limit 99, see start_market_data)
The benchmark publishes a UniverseUpdated for binance_usdm with the 1,000 symbols before the
service starts, then only polls the simulator's /_sim/stats twice a second until the last burst
has been sent; it reads the stream after the run, so it adds no load while bars flow.

Send time (simulator hook, libs/venuesim/stats.py): per bar minute, the wall time (time.time())
at which the first and the last final kline frame (`"x":true`) of that minute finished being
written to a WebSocket (`bursts` in GET /_sim/stats). Ack time: the timestamp JetStream stored
with each bar (read back with a plain nats-py ordered consumer on md.bar.binance_usdm.*.1m): the
server stamps a message when it stores it and acks right then, so it is the moment the bar was
acked by JetStream (the publisher sees the ack a little later). Both clocks are the same host's
CLOCK_REALTIME. Latency of a bar = stored timestamp - burst_started_wall of its minute: an upper
bound, since the bar's own frame was written at or after the first frame of its burst (the
burst's own send span is reported next to it). The first `warmup` minutes (shards connecting and
backfilling from REST) are reported separately; every measured bar must be live (not backfilled),
and every minute must hold exactly one bar per symbol.

Two runs by default, fresh processes each: aggregation on (the service's default: 5m, 15m, 1h, 4h,
1d bars built from the 1m bars) and off. Diagnosis: `burst_costs_without_client_or_server` feeds
the same frames to VenueFeed.on_frame in-process with immediate acks; `--variant proposed-fix`
runs the service with the proposed change (bar spans not recorded) patched in, bench-only
(results in their own file).

Usage: python bench/md_burst.py [--speed 20] [--warmup 2] [--minutes 10] [--aggregate on|off|both]
[--variant production|proposed-fix] [--sync-interval always|2m|...] [--no-atomic-batches]
[--out FILE]; writes bench/results/md_burst.json. The server runs JetStream with ticktape's default
sync_interval (`always`: fsync before every ack) unless --sync-interval says otherwise; market
data publishes bars as atomic batches (its default) unless --no-atomic-batches.

This is market data alone; bench/md_burst_stack.py measures the same bursts under `ticktape up`
with every service running."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nats
import nats.errors
from common import machine  # bench/ is on sys.path when run as a script
from nats.js.api import DeliverPolicy

from ticktape import ids
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, UniverseMember, UniverseUpdated
from ticktape.events.codec import decode
from ticktape.infra.nats_server import jetstream_block, nats_server_binary, start_nats_server
from ticktape.testing.data import shared_data_dir
from venuesim.bars import MINUTE_MS, load_dir
from venuesim.convert import convert_path

ROOT = Path(__file__).resolve().parents[1]

VENUE = "binance_usdm"
TARGET_MS = 250.0
SOURCES = (
    "octobot/AbstractExchangeHistoryCollector_1581774962.1269426.data",  # BTC/USDT 2018-04-28
    "octobot/AbstractExchangeHistoryCollector_1581776676.5721796.data",  # ETH/USDT 2018-07-16
    "octobot/ExchangeHistoryDataCollector_1587769859.9278197.data",  # ADA/USDT 2020-04-24
    "lean/crypto_binance_minute_btcbusd_20221213_trade.zip",  # BTCBUSD 2022-12-13
)


# -- input -----------------------------------------------------------------------------------


def build_bars(data: Path, work: Path, n_symbols: int, length: int) -> dict[str, Any]:
    """Write S0001USDT-1m-*.csv ... into work/bars; returns a description of what was built."""
    series = []
    for i, rel in enumerate(SOURCES):
        out = work / "src" / str(i)
        convert_path(data / rel, out)
        for symbol, bars in load_dir(out).items():
            series.append((rel, symbol, bars))
    bars_dir = work / "bars"
    bars_dir.mkdir(parents=True)
    per_source = -(-n_symbols // len(series))
    used: dict[str, int] = {}
    for k in range(n_symbols):
        rel, source_symbol, bars = series[k % len(series)]
        t = bars.open_times
        starts = [i for i in range(len(t) - length + 1) if t[i + length - 1] - t[i] == (length - 1) * MINUTE_MS]
        start = starts[(k // len(series)) * len(starts) // per_source]
        name = f"S{k + 1:04d}USDT"
        day = dt.datetime.fromtimestamp(t[start] / 1000, dt.UTC).strftime("%Y-%m-%d")
        (bars_dir / f"{name}-1m-{day}.csv").write_text(
            "".join(line + "\n" for line in bars.lines[start : start + length])
        )
        used[f"{rel} ({source_symbol}, {len(bars)} bars)"] = (
            used.get(f"{rel} ({source_symbol}, {len(bars)} bars)", 0) + 1
        )
    return {"dir": bars_dir, "symbols": [f"S{k + 1:04d}USDT" for k in range(n_symbols)], "sources": used}


def universe(symbols: list[str]) -> UniverseUpdated:
    return UniverseUpdated(
        event_id=ids.derive("md-burst-universe", VENUE),
        ts_event=1,
        ts_init=1,
        venue=VENUE,
        quote_asset="USDT",
        top_n=len(symbols),
        as_of=1,
        symbols=tuple(symbols),
        members=tuple(UniverseMember(symbol=s, rank=i + 1, quote_volume=1.0) for i, s in enumerate(symbols)),
    )


async def prepare_bus(url: str, symbols: list[str]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, NatsSettings(url=url))
        await publish_batch(js, [(universe(symbols), {})])
    finally:
        await nc.close()


async def read_bars(url: str) -> list[tuple[BarClosed, float]]:
    """Every bar of the venue (1m and aggregated) in the stream with the time JetStream stored it
    (epoch s)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            f"md.bar.{VENUE}.*.*", stream=NatsSettings().stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        out = []
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:  # nothing more within 2 s: all read
                break
            event = decode(msg.data)
            if isinstance(event, BarClosed):
                out.append((event, msg.metadata.timestamp.timestamp()))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def stream_messages(url: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(NatsSettings().stream)).state.messages
    finally:
        await nc.close()


# -- processes -------------------------------------------------------------------------------


def start_sim(
    bars_dir: Path, speed: float, log: Path, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [
        sys.executable,
        "-m",
        "ticktape",
        "venue-sim",
        "--data",
        str(bars_dir),
        "--port",
        "0",
        "--speed",
        str(speed),
        "--align",
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("wb"), cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline().decode()
            if "listening on " in line:
                return proc, line.strip().rpartition("listening on ")[2]
            if not line:
                break
        if proc.poll() is not None:
            break
    stop(proc)
    raise SystemExit(f"venue-sim did not start: {log.read_text()[-2000:]}")


def serve_market_data_with_fix() -> None:
    """`python -m services.market_data` with the proposed change patched in (bench-only): bar spans
    not recorded when no exporter is configured (tracer provider with sampler ALWAYS_OFF, as
    ticktape.telemetry.setup would install it): each bar still gets a trace id and span id and
    its `traceparent` header (flags 00), but no span object, attributes or end-time bookkeeping."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    import services.market_data.service as service
    from ticktape import telemetry

    telemetry._provider = TracerProvider(
        resource=Resource.create({"service.name": "ticktape-market_data"}), sampler=ALWAYS_OFF
    )
    trace.set_tracer_provider(telemetry._provider)
    service.main()


def start_market_data(
    work: Path,
    nats_url: str,
    sim_url: str,
    aggregate: bool,
    log: Path,
    with_fix: bool = False,
    atomic_batches: bool = True,
) -> subprocess.Popen[bytes]:
    config = work / "ticktape.yaml"
    # backfill_limit 99: each symbol's start-up REST backfill (empty here: the sim's clock starts at
    # the first subscription) costs weight 1, not 5, so 1,000 symbols fit market data's share of the
    # venue's REST weight per minute at once instead of over 2.6 minutes of warm-up
    config.write_text(
        "market_data:\n"
        f"  venues: [{{venue: {VENUE}, streams_per_connection: 100}}]\n"
        "  backfill_limit: 99\n"
        + ("" if aggregate else "  aggregate: []\n")
        + ("" if atomic_batches else "  atomic_batches: false\n")
    )
    env = {
        **os.environ,
        "TICKTAPE_CONFIG": str(config),
        "TICKTAPE_NATS_URL": nats_url,
        "TICKTAPE_VENUE_SIM": sim_url,
        "TICKTAPE_HOME": str(work / "home"),
    }
    with log.open("wb") as out:
        cmd = (
            [sys.executable, str(Path(__file__).resolve()), "--serve-market-data-with-fix"]
            if with_fix
            else [sys.executable, "-m", "services.market_data"]
        )
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sim_stats(sim_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim_url}/_sim/stats", timeout=10) as resp:
        return json.loads(resp.read())


# -- analysis --------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(lat_ms: list[float]) -> dict[str, Any]:
    return {
        "bars": len(lat_ms),
        "p50_ms": round(pct(lat_ms, 0.50), 1),
        "p90_ms": round(pct(lat_ms, 0.90), 1),
        "p99_ms": round(pct(lat_ms, 0.99), 1),
        "max_ms": round(max(lat_ms), 1),
        "share_within_250ms": round(sum(1 for x in lat_ms if x <= TARGET_MS) / len(lat_ms), 4),
    }


def minute_of(bar: BarClosed) -> int:
    """Open time (ms) of the 1m bar whose final frame made this bar (aggregates close with it)."""
    return (bar.close_time // 1_000_000) + 1 - MINUTE_MS


def analyse(
    bars: list[tuple[BarClosed, float]], bursts: list[dict[str, Any]], symbols: list[str], warmup: int, minutes: int
) -> dict[str, Any]:
    by_minute: dict[int, list[tuple[BarClosed, float]]] = {}
    for bar, stored in bars:
        by_minute.setdefault(minute_of(bar), []).append((bar, stored))
    burst_of = {b["open_time"]: b for b in bursts}
    order = sorted(burst_of)
    if len(order) < warmup + minutes:
        raise SystemExit(f"the simulator sent {len(order)} minute bursts, expected {warmup + minutes}")
    per_minute = []
    lat_1m: list[float] = []
    lat_agg: dict[str, list[float]] = {}
    warm: list[float] = []
    for i, minute in enumerate(order[: warmup + minutes]):
        burst = burst_of[minute]
        got = by_minute.get(minute, [])
        one = [(b, t) for b, t in got if b.timeframe == "1m"]
        names = sorted(b.symbol for b, _ in one)
        if names != symbols:
            raise SystemExit(
                f"minute {minute}: {len(one)} 1m bars in the stream for {len(set(names))} symbols, "
                f"expected one per symbol ({len(symbols)}); burst {burst}"
            )
        start = burst["burst_started_wall"]
        live = [(b, (t - start) * 1000) for b, t in got if not b.backfilled]
        lat = [ms for b, ms in live if b.timeframe == "1m"]
        aggregates: dict[str, int] = {}
        for b, _ in got:
            if b.timeframe != "1m":
                aggregates[b.timeframe] = aggregates.get(b.timeframe, 0) + 1
        row: dict[str, Any] = {
            "minute": i + 1,
            "open_time_ms": minute,
            "warmup": i < warmup,
            "frames_sent": burst["frames"],
            "bars_1m": len(one),
            "live_1m": len(lat),
            "aggregated_bars": aggregates,
            "burst_send_span_ms": round((burst["burst_finished_wall"] - start) * 1000, 1),
            "last_ack_after_burst_finished_ms": round(
                (max(t for _, t in got) - burst["burst_finished_wall"]) * 1000, 1
            ),
        }
        if lat:
            row["1m"] = {k: v for k, v in summary(lat).items() if k != "bars"}
        agg_lat = [ms for b, ms in live if b.timeframe != "1m"]
        if agg_lat:
            row["aggregated"] = {k: v for k, v in summary(agg_lat).items() if k != "bars"}
        per_minute.append(row)
        if i < warmup:
            warm.extend(lat)
            continue
        if len(lat) != len(symbols) or burst["frames"] != len(symbols):
            raise SystemExit(
                f"measured minute {i + 1}: {len(lat)} live 1m bars, {burst['frames']} frames sent; "
                f"expected {len(symbols)} each"
            )
        lat_1m.extend(lat)
        for b, ms in live:
            if b.timeframe != "1m":
                lat_agg.setdefault(b.timeframe, []).append(ms)
    spans = [r["burst_send_span_ms"] for r in per_minute if not r["warmup"]]
    every = lat_1m + [x for v in lat_agg.values() for x in v]
    return {
        "latency_1m_bars": summary(lat_1m),
        "latency_aggregated_bars": {tf: summary(v) for tf, v in sorted(lat_agg.items())} or None,
        "latency_every_bar": summary(every),
        "burst_send_span_ms": {"p50": round(statistics.median(spans), 1), "max": round(max(spans), 1)},
        "warmup_minutes_1m": summary(warm) if warm else None,
        "per_minute": per_minute,
    }


# -- harness ---------------------------------------------------------------------------------


def nats_server_version() -> str:
    out = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip()


def run_once(built: dict[str, Any], work: Path, args: argparse.Namespace, aggregate: bool) -> dict[str, Any]:
    """One full run on fresh processes: nats-server, simulator, market data."""
    symbols = built["symbols"]
    length = args.warmup + args.minutes
    label = "aggregation_on" if aggregate else "aggregation_off"
    server = start_nats_server(work / f"nats_{label}", config=[jetstream_block(args.sync_interval)])
    procs: list[subprocess.Popen[bytes]] = []
    sim_log, md_log = work / f"sim_{label}.log", work / f"market_data_{label}.log"
    try:
        asyncio.run(prepare_bus(server.url, symbols))
        sim, sim_url = start_sim(built["dir"], args.speed, sim_log)
        procs.append(sim)
        md = start_market_data(
            work, server.url, sim_url, aggregate, md_log, args.variant == "proposed-fix", args.atomic_batches
        )
        procs.append(md)
        pids = {"market_data": md.pid, "venue_sim": sim.pid, "nats_server": server.process.pid}
        marks: dict[str, dict[str, float]] = {}
        deadline = time.monotonic() + 60 + length * 60.0 / args.speed
        while True:
            if md.poll() is not None:
                raise SystemExit(f"market data exited: {md_log.read_text()[-3000:]}")
            done = [b for b in sim_stats(sim_url).get("bursts", {}).get(VENUE, []) if b["frames"]]
            if len(done) >= args.warmup and "measured" not in marks:
                marks["measured"] = {**{k: cpu_seconds(p) for k, p in pids.items()}, "wall": time.monotonic()}
            if len(done) >= length and done[length - 1]["frames"] >= len(symbols):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the simulator sent {len(done)} of {length} bursts in time")
            time.sleep(0.5)
        # settle: wait until the stream stops growing (every bar of the last burst stored)
        count, still = asyncio.run(stream_messages(server.url)), 0
        while still < 2:
            time.sleep(0.5)
            now = asyncio.run(stream_messages(server.url))
            still, count = (still + 1, count) if now == count else (0, now)
        marks["end"] = {**{k: cpu_seconds(p) for k, p in pids.items()}, "wall": time.monotonic()}
        stats = sim_stats(sim_url)
        for proc in reversed(procs):
            stop(proc)
        bars = asyncio.run(read_bars(server.url))
    finally:
        for proc in reversed(procs):
            stop(proc)
        server.stop()
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for log in (sim_log, md_log):
                if log.exists():
                    (args.keep / log.name).write_bytes(log.read_bytes())
    res = analyse(bars, stats["bursts"][VENUE], symbols, args.warmup, args.minutes)
    wall = marks["end"]["wall"] - marks["measured"]["wall"]
    res["cpu_cores_used_from_first_measured_minute_to_end"] = {
        k: round((marks["end"][k] - marks["measured"][k]) / wall, 3) for k in pids
    }
    lat = res["latency_1m_bars"]
    res["meets_target_1m"] = lat["p99_ms"] <= TARGET_MS
    res["meets_target_every_bar"] = res["latency_every_bar"]["p99_ms"] <= TARGET_MS
    return {"aggregation": "on" if aggregate else "off", **res}


# -- diagnosis: the market-data side of one burst, in-process, without client or server ------


async def burst_costs(bars_dir: Path, warmup: int, length: int) -> dict[str, Any]:
    """Feed the service's VenueFeed.on_frame the simulator's final kline frames minute by minute
    (the same bytes the simulator sends: venuesim's KlineFrames in the combined-stream wrapper),
    with a stand-in JetStream whose acks are immediate, and time each minute's frames + flush().
    Production, then with bar spans not recorded (sampler ALWAYS_OFF: the traceparent is still
    made and sent)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from md_publish import AckedJS
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from services.market_data.config import MarketDataConfig, VenueFeedConfig
    from services.market_data.feed import VenueFeed
    from ticktape import log as logmod
    from ticktape import telemetry
    from ticktape.bus.pipeline import PipelinedPublisher
    from ticktape.config import CommonSettings
    from ticktape.metrics import ServiceMetrics
    from ticktape.runtime import Runtime
    from venuesim.market import Market
    from venuesim.pump import KlineFrames
    from venuesim.venues import load_venues

    market = Market(load_venues(bars_dir, aligned=True)[VENUE])
    kf = KlineFrames()
    minutes = []
    for i in range(length):
        batch = []
        for series in market.series.values():
            data = kf.frame(series, i, series.open_times[i] + MINUTE_MS, True)
            batch.append(('{"stream":"' + kf.stream(series) + '","data":' + data + "}").encode())
        minutes.append(batch)
    telemetry.setup("market_data")
    logmod.configure("market_data", "warning")
    rt = Runtime(
        name="market_data",
        common=CommonSettings(),
        raw={},
        nc=None,
        js=AckedJS(),  # type: ignore[arg-type]
        metrics=ServiceMetrics("market_data"),
        log=logmod.get(),
    )
    config = MarketDataConfig(venues=(VenueFeedConfig(venue=VENUE, streams_per_connection=100),))
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("ticktape.market_data")

    async def run(spans: bool) -> list[tuple[float, int]]:
        publisher = PipelinedPublisher(rt.js, window=config.publish_window)
        feed = VenueFeed(rt, config, config.venues[0], None, publisher)  # type: ignore[arg-type]
        if not spans:
            feed.tracer = unsampled
        out = []
        for batch in minutes:
            before = publisher.published
            t0 = time.perf_counter()
            for raw in batch:
                await feed.on_frame(0, raw)
            await publisher.flush()
            out.append((time.perf_counter() - t0, publisher.published - before))
        return out

    variants = {"production": True, "bar_spans_not_recorded": False}
    runs: dict[str, list[list[tuple[float, int]]]] = {k: [] for k in variants}
    for rep in range(4):
        for name, spans in variants.items():
            result = await run(spans)
            if rep:
                runs[name].append(result)
    measured = range(warmup, length)
    first = runs["production"][0]
    heaviest = max(measured, key=lambda i: first[i][1])
    plain = min(measured, key=lambda i: first[i][1])
    out: dict[str, Any] = {}
    for name, reps in runs.items():
        row = {}
        for label, i in (("plain_minute", plain), ("heaviest_minute", heaviest)):
            secs = statistics.median(r[i][0] for r in reps)
            n = reps[0][i][1]
            row[label] = {
                "minute": i + 1,
                "messages": n,
                "ms": round(secs * 1000, 1),
                "us_per_message": round(secs / n * 1e6, 2),
            }
        out[name] = row
    return out


def code_version() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "services_or_libs_modified": bool(git("status", "--porcelain", "--", "services", "libs")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=20.0, help="sim speed (20: a sim minute every 3 wall s)")
    parser.add_argument("--warmup", type=int, default=2, help="first minutes left out (connect + backfill)")
    parser.add_argument("--minutes", type=int, default=10, help="measured minute bursts")
    parser.add_argument(
        "--aggregate",
        choices=("on", "off", "both"),
        default="both",
        help="the service's higher-timeframe aggregation (production default: on); both = a run with each",
    )
    parser.add_argument(
        "--sync-interval",
        default=NatsSettings().sync_interval,
        help="the server's JetStream sync_interval (default: ticktape's, %(default)s; nats-server's own is 2m)",
    )
    parser.add_argument(
        "--no-atomic-batches",
        dest="atomic_batches",
        action="store_false",
        help="market_data.atomic_batches: false (one publish per bar, pipelined), for comparison",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "md_burst.json")
    parser.add_argument("--keep", type=Path, help="copy the process logs here")
    parser.add_argument(
        "--variant",
        choices=("production", "proposed-fix"),
        default="production",
        help="proposed-fix: run the service with the proposed change patched in (see serve_market_data_with_fix)",
    )
    parser.add_argument("--serve-market-data-with-fix", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_market_data_with_fix:
        serve_market_data_with_fix()
        return
    started = time.perf_counter()
    load_before = os.getloadavg()
    version_at_start = code_version()
    length = args.warmup + args.minutes

    with tempfile.TemporaryDirectory(prefix="md_burst_") as tmp:
        work = Path(tmp)
        built = build_bars(shared_data_dir(), work, args.symbols, length)
        runs = [
            run_once(built, work, args, aggregate)
            for aggregate in {"on": (True,), "off": (False,), "both": (True, False)}[args.aggregate]
        ]
        costs = asyncio.run(burst_costs(built["dir"], args.warmup, length))

    result = {
        "benchmark": "md_burst",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine("nats-py", "aiohttp", "msgspec", nats_server=nats_server_version()),
            "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
            "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "code_version": version_at_start,
        "setup": {
            "symbols": args.symbols,
            "shards": -(-args.symbols // 100),
            "streams_per_connection": 100,
            "venue": VENUE,
            "market_data_variant": args.variant,
            "nats_sync_interval": args.sync_interval,
            "market_data_atomic_batches": args.atomic_batches,
            "speed": args.speed,
            "wall_seconds_per_sim_minute": 60.0 / args.speed,
            "warmup_minutes": args.warmup,
            "measured_minutes": args.minutes,
            "bars_per_symbol": length,
            "data": "real recorded 1m bars from ../shared/data, converted with venuesim.convert and replicated under "
            "synthetic symbol names S0001USDT..: symbol k = source k mod 4, a gap-free window of "
            f"{length} consecutive recorded bars at the (k div 4)-th of evenly spaced offsets; values as "
            "recorded (quote volume derived by venuesim.convert; trades and taker columns 0). Aligned "
            "(--align) onto the BTC/USDT capture's timeline, 2018-04-28 01:52 UTC onwards, so the measured "
            "minutes close 01:55 ... 02:04 UTC: 02:00 closes 5m, 15m and 1h windows too, 01:55 a 5m one",
            "sources": built["sources"],
        },
        "method": {
            "processes": "nats-server -js (temp file store, free port, JetStream sync_interval as in setup: ticktape's "
            "default `always` unless --sync-interval; streams via ensure_streams); venue simulator "
            "`python -m ticktape venue-sim --data DIR --port 0 --speed S --align`; market data "
            "`python -m services.market_data` with TICKTAPE_CONFIG (binance_usdm, "
            "streams_per_connection 100 -> 10 shards, backfill_limit 99 (start-up REST weight), production "
            "defaults otherwise, aggregation on or off) and TICKTAPE_VENUE_SIM; a UniverseUpdated with the "
            "symbols is published before it starts. Fresh processes per run. The benchmark only polls "
            "GET /_sim/stats every 0.5 s while bars flow and reads the stream afterwards",
            "send_time": "simulator hook: per bar minute, the wall time (time.time()) at which the first "
            "(burst_started_wall) and last (burst_finished_wall) final kline frame of the minute "
            "finished being written to a WebSocket (GET /_sim/stats `bursts`)",
            "ack_time": "the timestamp JetStream stored with each bar, read back after the run with a plain "
            "nats-py ordered consumer on md.bar.binance_usdm.*.*; the server stamps a message as it "
            "stores it and acks it then",
            "latency": "stored timestamp - burst_started_wall of the bar's minute (aggregated bars: of the minute "
            "whose frame closed their window): an upper bound on each bar's frame-sent -> acked time, "
            "since its frame went out at or after the burst's first frame (burst_send_span_ms says how "
            "much later at most); same host clock on both sides",
            "checks": "every minute holds exactly one 1m bar per symbol (no gap, no duplicate); in measured minutes "
            "every 1m bar is live (not backfilled) and the simulator sent one final frame per symbol",
            "percentiles": "nearest rank over all bars of the measured minutes",
            "variant": "production: `python -m services.market_data` unchanged; proposed-fix: the same service "
            "started through this script with the proposed change patched in (bench-only): bar spans not "
            "recorded when no exporter is configured (sampler ALWAYS_OFF; trace ids and the traceparent "
            "header still go out); see serve_market_data_with_fix",
            "burst_costs": "diagnosis, in-process: the same final kline frames fed to VenueFeed.on_frame with a "
            "stand-in JetStream that acks at once (no client, no server), per minute, median of 3: "
            "ticktape's own cost of a burst, production and with the bar span not recorded",
        },
        "runs": runs,
        "burst_costs_without_client_or_server": costs,
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    parts = []
    for r in runs:
        one, every = r["latency_1m_bars"], r["latency_every_bar"]
        part = (
            f"aggregation {r['aggregation']}: 1m bars p50 {one['p50_ms']} / p99 {one['p99_ms']} / max "
            f"{one['max_ms']} ms, {one['share_within_250ms']:.2%} within 250 ms"
        )
        if r["aggregation"] == "on":
            part += f"; every bar incl. 5m/15m/1h p99 {every['p99_ms']} ms ({every['share_within_250ms']:.2%})"
        parts.append(part)
    print(
        f"md_burst: {args.symbols:,} symbols / {result['setup']['shards']} shards, {args.minutes} minute bursts, "
        f"sync_interval {args.sync_interval}, atomic batches {args.atomic_batches}, frame sent -> JetStream ack "
        "(upper bound) -- " + " | ".join(parts) + f"; target p99 <= 250 ms; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
