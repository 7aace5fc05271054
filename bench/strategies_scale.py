"""1,000 strategies on 100 symbols (issue #10 item 6): strategy-by-symbol evaluations per second
in one process, and, live under `ticktape up` with N signal workers, the time from a minute's
last closed bar to its last signal as an outside NATS client sees it.

The strategies are bench/strategy_mix.py's: every kind of the built-in library, 1,000 entries
with parameters spread over their usual ranges, on real 1m bar shapes (bench/replay_vs_nautilus.py's
tape from ../shared/data) plus the 1h bars aggregated from them. An evaluation is one strategy on
one closed 1m bar of one symbol (1,000 per bar).

Measured, each in its own fresh process or run:
- core: the signal core (services/signal/core.py, loaded from the configuration as the service
  loads it) fed the bars in stream order, as every replay, what-if and the service itself runs it;
  timed over the bars only. Beside it, on a smaller slice, the same core with every entry on the
  per-strategy path (on_bar per entry: each kind subclassed, which batched.py leaves alone), and
  the two runs' outputs compared byte for byte.
- what-if: `python -m ticktape replay FILE --config mix.yaml --out DIR` timed from exec to exit
  (reading the file, the signal, risk and execution cores on the in-memory bus, writing the new
  session); the session file is recorded without a stack (ticktape.replay.simulate) with one
  ema_cross and one paper account trading every strategy's signals. Also the issue's baseline
  case: 100 ema_cross entries on one symbol.
- live: `python -m ticktape up --venue-sim URL` (every service its own process, signal.workers
  N, embedded nats-server and PostgreSQL) on `python -m ticktape venue-sim --data DIR --speed S
  --align --start T` serving the 100 symbols' bars as Binance USDT-M (the clock starts
  `--history` minutes into the data, so market data's REST backfill warms the strategies). An
  outside nats-py client with the observer role's credentials subscribes to md.bar.*.*.1m and
  signals.> and stamps each message on receipt; per minute: receive time of its last 1m bar
  (of the 100) to that of its last signal. Minutes before the stack has caught up with its
  backfill (`--settle` seconds) are not counted. The sim's speed compresses time: a minute of
  bars every 60/S seconds, so the stack has less time between minutes than live trading gives it.

No timing is asserted anywhere; results go to bench/results/strategies_scale.json.

Run: .venv/bin/python bench/strategies_scale.py [--only core,what_if,live] [--workers 2] ..."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import replay_vs_nautilus as rvn  # noqa: E402
import strategy_mix  # noqa: E402
from common import machine  # noqa: E402
from md_burst import stop  # noqa: E402  (SIGTERM, then kill after a timeout)

from ticktape.clock import MINUTE_NS  # noqa: E402
from ticktape.events import BarClosed  # noqa: E402

SESSION_ID = "bench-strategies-scale"
RECORDED = {  # the session the what-if re-runs: one strategy, one account trading every strategy
    **rvn.TICKTAPE_CONFIG,
    "signal": {"strategies": [{"kind": "ema_cross", "name": "ema_cross_10_20", "fast": 10, "slow": 20}]},
}


def signal_config(entries: list[dict[str, Any]]) -> Any:
    from services.signal.config import SignalConfig
    from ticktape import config as cfg

    return cfg.load_section("signal", SignalConfig, {"signal": {"strategies": entries}})


def run_core(core: Any, bars: list[BarClosed]) -> tuple[float, float, list[bytes]]:
    """(wall seconds, CPU seconds of this process, the outputs encoded) of the bars through core."""
    from ticktape.events.codec import encode

    out: list[Any] = []
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    for bar in bars:
        out.extend(core.handle(bar))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, [encode(e) for e in out]


def evaluations(bars: list[BarClosed], strategies: int) -> int:
    return strategies * sum(1 for b in bars if b.timeframe == "1m")


def bench_core(args: argparse.Namespace) -> dict[str, Any]:
    """The signal core alone: the mix over --symbols x --bars, then the per-strategy comparison."""
    from services.signal import loading
    from services.signal.core import SignalCore
    from services.signal.strategies import BUILTINS

    entries = strategy_mix.mix(args.strategies)
    config = signal_config(entries)
    bars = strategy_mix.bars(args.symbols, args.bars)
    n = evaluations(bars, len(entries))
    print(f"core: {len(entries)} strategies x {args.symbols} symbols x {args.bars} bars ...", file=sys.stderr)
    seconds, cpu, outputs = run_core(loading.core(config), bars)
    result: dict[str, Any] = {
        "method": "signal core in one process (loading.core), bars in stream order, only handle() timed",
        "symbols": args.symbols,
        "bars_per_symbol": args.bars,
        "evaluations": n,
        "seconds": round(seconds, 3),
        "evaluations_per_s": round(n / seconds),
        "cpu_seconds": round(cpu, 3),
        "evaluations_per_cpu_s": round(n / cpu),
        "signals": len(outputs),
    }
    del bars, outputs
    small = strategy_mix.bars(args.compare_symbols, args.compare_bars)
    m = evaluations(small, len(entries))
    print(f"core: batched vs per-strategy on {args.compare_symbols} x {args.compare_bars} ...", file=sys.stderr)
    fast_s, _, fast_out = run_core(loading.core(config), small)
    plain = {kind: type(cls.__name__, (cls,), {}) for kind, cls in BUILTINS.items()}  # not batchable
    slow_s, _, slow_out = run_core(SignalCore(config, kinds=plain), small)
    result["compare"] = {
        "symbols": args.compare_symbols,
        "bars_per_symbol": args.compare_bars,
        "evaluations": m,
        "batched_evaluations_per_s": round(m / fast_s),
        "per_strategy_evaluations_per_s": round(m / slow_s),
        "signals": len(fast_out),
        "outputs_identical": fast_out == slow_out,
    }
    if fast_out != slow_out:
        raise SystemExit("the batched core's outputs differ from the per-strategy path's")
    return result


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def what_if(bars: list[BarClosed], entries: list[dict[str, Any]], tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    from ticktape.replay.fileformat import write_session_file
    from ticktape.replay.simulate import simulate_session

    tmp.mkdir(parents=True)
    session = tmp / "session.jsonl"
    meta, records = simulate_session(bars, RECORDED, SESSION_ID)
    write_session_file(session, meta, records)
    mix = tmp / "mix.yaml"
    mix.write_text(json.dumps({"signal": {"strategies": entries}}))
    cmd = [sys.executable, "-m", "ticktape", "replay", str(session), "--config", str(mix), "--out", str(tmp / "out")]
    seconds = timed(cmd, env, tmp)
    n = evaluations(bars, len(entries))
    return {
        "command": "ticktape replay FILE --config mix.yaml --out DIR",
        "seconds": round(seconds, 3),
        "bars": len(bars),
        "evaluations": n,
        "evaluations_per_s": round(n / seconds),
        "session_messages": len(records),
    }


def bench_what_if(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    with tempfile.TemporaryDirectory(prefix="ticktape-scale-") as name:
        tmp = Path(name)
        env["TICKTAPE_HOME"] = str(tmp / "home")
        print(f"what-if: mix on {args.whatif_symbols} x {args.whatif_bars} ...", file=sys.stderr)
        bars = strategy_mix.bars(args.whatif_symbols, args.whatif_bars)
        out["mix"] = {"symbols": args.whatif_symbols, "bars_per_symbol": args.whatif_bars}
        out["mix"].update(what_if(bars, strategy_mix.mix(args.strategies), tmp / "mix", env))
        print(f"what-if: 100 ema_cross on 1 symbol x {args.baseline_bars} ...", file=sys.stderr)
        tape, _ = rvn.load_tape()
        one = rvn.ticktape_bars(rvn.build_symbols(tape, 1, args.baseline_bars))
        emas = [
            {"kind": "ema_cross", "name": f"ema_{f}_{s}", "params": {"fast": f, "slow": s}}
            for f in range(3, 13)
            for s in range(f + 4, f + 14)
        ]
        out["baseline_case"] = {"symbols": 1, "bars_per_symbol": args.baseline_bars, "strategies": "100 ema_cross"}
        out["baseline_case"].update(what_if(one, emas, tmp / "base", env))
    return out


# --- live, under ticktape up ---------------------------------------------------------------------


def write_bars(directory: Path, n_symbols: int, n_bars: int) -> list[str]:
    """The symbols' 1m bars as Binance kline CSVs (data.binance.vision layout) for the simulator."""
    tape, _ = rvn.load_tape()
    symbols = rvn.build_symbols(tape, n_symbols, n_bars)
    directory.mkdir(parents=True)
    for sym, rows in symbols.items():
        lines = []
        for i, (o, h, lo, c, v) in enumerate(rows):
            t = (rvn.T0_NS + i * MINUTE_NS) // 1_000_000
            quote = f"{float(v) * (float(o) + float(c)) / 2:.4f}"
            lines.append(f"{t},{o},{h},{lo},{c},{v},{t + 59_999},{quote},100,{v},{quote},0\n")
        (directory / f"{sym}-1m-2024-01-01.csv").write_text("".join(lines))
    return sorted(symbols)


def live_config(
    entries: list[dict[str, Any]], n_symbols: int, workers: int, history: int, traded: str, sync_interval: str
) -> dict[str, Any]:
    """`traded` all: one paper account trades every strategy's signals; one: only the first's (the
    other strategies signal, risk and execution see their signals but act on one strategy). The
    account is the replay benchmark's, its gross exposure within what `up` accepts at 10x leverage."""
    account = rvn.TICKTAPE_CONFIG["risk"]["accounts"][0]
    traded_names = ["*"] if traded == "all" else [entries[0]["name"]]
    return {
        # port 0: `up` starts its embedded, authorized nats-server on a free port (never a server
        # that happens to answer on the default 4222)
        "nats": {"url": "nats://127.0.0.1:0", "sync_interval": sync_interval},
        "supervisor": {"stop_timeout_s": 30.0, "shutdown_timeout_s": 5.0},
        "symbol_registry": {"top_n": n_symbols},
        "market_data": {"aggregate": ["1h"], "backfill_limit": history},
        "telemetry": {"log_level": "warning"},
        "signal": {"strategies": entries, "workers": workers},
        "risk": {"accounts": [{**account, "max_gross_exposure": 10_000_000.0, "strategies": traded_names}]},
        "execution": rvn.TICKTAPE_CONFIG["execution"],
    }


def start_up(home: Path, sim_url: str, config: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str, Path | None]:
    """`ticktape up` on this configuration, and the NATS URL and bus credentials directory it prints
    (None: the bus has no authorization)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "ticktape.yaml"
    path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    cmd = [sys.executable, "-m", "ticktape", "up", "--venue-sim", sim_url, "--home", str(home), "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(home / "up.err", "wb"), env=env)  # noqa: SIM115
    assert proc.stdout is not None
    url: str | None = None
    creds: Path | None = None
    while True:  # up prints these before it starts the services, the "watch signals" hint last
        line = proc.stdout.readline().decode()
        if not line:
            raise SystemExit(f"ticktape up exited early:\n{(home / 'up.err').read_text()[-3000:]}")
        if line.startswith("ticktape up: NATS "):
            url = line.split()[3]
        elif line.startswith("ticktape up: bus credentials"):
            creds = Path(line.strip().rsplit(" ", 1)[-1])
        elif line.startswith("ticktape up: watch signals"):
            break
    if url is None:
        raise SystemExit("ticktape up did not print its NATS URL")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # a full pipe must never block it
    return proc, url, creds


async def observe(url: str, creds: Path | None, seconds: float) -> list[tuple[int, bytes]]:
    import nats

    from ticktape.bus.creds import connect_options, path_for
    from ticktape.bus.permissions import OBSERVER

    seen: list[tuple[int, bytes]] = []

    async def on_msg(msg: Any) -> None:
        seen.append((time.monotonic_ns(), msg.data))

    options = connect_options(path_for(creds, OBSERVER)) if creds is not None else {}
    nc = await nats.connect(url, **options)
    for subject in ("md.bar.*.*.1m", "signals.>"):
        await nc.subscribe(subject, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
    await asyncio.sleep(seconds)
    await nc.drain()
    return seen


def minutes(seen: list[tuple[int, bytes]], settle_ns: int, symbols: int) -> dict[str, Any]:
    """Per minute with all its bars live: last 1m bar received -> last signal of it received."""
    from ticktape import events as ev
    from ticktape.events.codec import decode

    t0 = seen[0][0] if seen else 0
    last_bar: dict[int, int] = {}
    bar_count: dict[int, int] = {}
    backfilled: set[int] = set()
    last_signal: dict[int, int] = {}
    signals: dict[int, int] = {}
    for t, data in seen:
        e = decode(data)
        if isinstance(e, ev.BarClosed):
            if e.backfilled:
                backfilled.add(e.open_time)
                continue
            last_bar[e.open_time] = max(last_bar.get(e.open_time, 0), t)
            bar_count[e.open_time] = bar_count.get(e.open_time, 0) + 1
        elif isinstance(e, ev.SignalGenerated) and e.timeframe == "1m":
            last_signal[e.bar_open_time] = max(last_signal.get(e.bar_open_time, 0), t)
            signals[e.bar_open_time] = signals.get(e.bar_open_time, 0) + 1
    observed = {
        "bars_live": sum(bar_count.values()),
        "minutes_backfilled": len(backfilled),
        "signals": sum(signals.values()),
    }
    lat, counted = [], []
    for minute, t_bar in sorted(last_bar.items()):
        if minute in backfilled or bar_count[minute] < symbols or t_bar - t0 < settle_ns or minute not in last_signal:
            continue
        lat.append((last_signal[minute] - t_bar) / 1e6)
        counted.append(signals[minute])
    out: dict[str, Any] = {"minutes": len(lat), "minutes_seen": len(last_bar), "observed": observed}
    if lat:
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
        out.update(
            p50_ms=round(q[49], 1),
            p99_ms=round(q[98], 1),
            max_ms=round(max(lat), 1),
            within_250ms=sum(x <= 250 for x in lat),
            signals_per_minute_p50=statistics.median(counted),
        )
    return out


def bench_live(args: argparse.Namespace, workers: int, traded: str) -> dict[str, Any]:
    entries = strategy_mix.mix(args.strategies)
    with tempfile.TemporaryDirectory(prefix="ticktape-scale-live-") as name:
        tmp = Path(name)
        write_bars(tmp / "bars", args.live_symbols, args.live_bars)
        start_ms = (rvn.T0_NS + args.history * MINUTE_NS) // 1_000_000
        cmd = [sys.executable, "-m", "ticktape", "venue-sim", "--data", str(tmp / "bars"), "--port", "0"]
        cmd += ["--speed", str(args.speed), "--align", "--start", str(start_ms)]
        sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(tmp / "sim.err", "wb"))  # noqa: SIM115
        assert sim.stdout is not None
        line = sim.stdout.readline().decode()
        if "listening on" not in line:
            raise SystemExit(f"venue-sim did not start: {line!r} {(tmp / 'sim.err').read_text()[-2000:]}")
        sim_url = line.strip().rsplit(" ", 1)[-1]
        try:
            config = live_config(entries, args.live_symbols, workers, args.history, traded, args.sync_interval)
            print(f"live: ticktape up, signal.workers {workers} ...", file=sys.stderr)
            up, url, creds = start_up(tmp / "home", sim_url, config)
            try:
                load_before = os.getloadavg()
                seen = asyncio.run(observe(url, creds, args.seconds))
                load_after = os.getloadavg()
            finally:
                stop(up, 60)
                up_err = (tmp / "home" / "up.err").read_text()[-3000:]
        finally:
            stop(sim)
    latency = minutes(seen, int(args.settle * 1e9), args.live_symbols)
    if not latency["minutes"]:
        print(f"live: no minute measured; ticktape up's stderr ends:\n{up_err}", file=sys.stderr)
    return {
        "command": "python -m ticktape up --venue-sim URL (embedded nats-server and PostgreSQL)",
        "signal_workers": workers,
        "traded": traded,
        "nats_sync_interval": args.sync_interval,
        "symbols": args.live_symbols,
        "strategies": len(entries),
        "speed": args.speed,
        "seconds_per_minute_of_bars": round(60 / args.speed, 2),
        "observed_s": args.seconds,
        "settle_s": args.settle,
        "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "last_bar_to_last_signal": latency,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="core,what_if,live", help="which parts: core, what_if, live")
    p.add_argument("--strategies", type=int, default=1_000)
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--bars", type=int, default=600, help="1m bars per symbol for the core")
    p.add_argument("--compare-symbols", type=int, default=5)
    p.add_argument("--compare-bars", type=int, default=600)
    p.add_argument("--whatif-symbols", type=int, default=10)
    p.add_argument("--whatif-bars", type=int, default=600)
    p.add_argument("--baseline-bars", type=int, default=15_000)
    p.add_argument("--live-symbols", type=int, default=100)
    p.add_argument("--live-bars", type=int, default=1_500)
    p.add_argument("--history", type=int, default=300, help="minutes of bars before the sim's clock (backfill)")
    p.add_argument("--workers", default="2", help="signal.workers under ticktape up (comma list: one run each)")
    p.add_argument("--traded", default="all", help="all: the account trades every strategy; one: only the first")
    p.add_argument("--sync-interval", default="always", help="nats.sync_interval (JetStream fsync): always or e.g. 2m")
    p.add_argument("--speed", type=float, default=3.0, help="sim speed: a minute of bars every 60/speed s")
    p.add_argument("--seconds", type=float, default=420.0, help="how long the observer watches")
    p.add_argument("--settle", type=float, default=120.0, help="seconds of observation not counted (catch-up)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "strategies_scale.json")
    args = p.parse_args(argv)
    parts = {s.strip() for s in args.only.split(",") if s.strip()}
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update(
        benchmark="strategies_scale",
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=machine("numpy", "nats-py"),
        mix={"strategies": args.strategies, "kinds": strategy_mix.COUNTS},
        goal={"evaluations_per_s": 500_000, "last_bar_to_last_signal_ms": 250},
    )
    if "core" in parts:
        results["core"] = bench_core(args)
    if "what_if" in parts:
        results["what_if"] = bench_what_if(args)
    if "live" in parts:
        runs = [bench_live(args, int(w), args.traded) for w in args.workers.split(",")]
        key = lambda run: (run["signal_workers"], run.get("traded", "all"), run.get("nats_sync_interval", "always"))  # noqa: E731
        kept = [run for run in results.get("live", ()) if key(run) not in {key(r) for r in runs}]
        results["live"] = sorted([*kept, *runs], key=key)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    return 0


def summary(r: dict[str, Any]) -> str:
    parts = []
    if "core" in r:
        parts.append(f"signal core: {r['core']['evaluations_per_s']:,} evaluations/s")
    if "what_if" in r:
        parts.append(f"what-if: {r['what_if']['mix']['evaluations_per_s']:,} evaluations/s")
    for live in r.get("live", ()):
        lat = live["last_bar_to_last_signal"]
        parts.append(
            f"up, {live['signal_workers']} workers, traded {live.get('traded')}: "
            f"p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms"
        )
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
