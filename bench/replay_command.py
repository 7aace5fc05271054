"""Replay as users run it: `ticktape replay FILE --verify`, `ticktape replay SESSION --verify`
(from a JetStream stream) and a what-if `ticktape replay FILE --config OTHER.yaml`, each timed as a
whole process from exec to exit, against NautilusTrader's BacktestEngine with its EMACross on the
same bars, side by side in one run.

Data: --symbols windows of --bars 1m bars each (default 3 x 15,000 = 45,000 bars, about a month of
minutes) cut from the tape of real bar shapes that bench/replay_vs_nautilus.py builds from
../shared/data (see its docstring: freqtrade, Lean and OctoBot captures stitched, each symbol a
rescaled window). The session is recorded without a stack (ticktape.replay.simulate: the cores on
the in-memory bus, framed by SessionStarted/SessionStopped, numbered like a stream) with EMA cross
10/20 and one paper account, and written with the same writer `ticktape export` uses.

Timed, each from a fresh process (interpreter start, imports, reading and checking the file or
the stream, re-running every core, comparing every output):
- file: `python -m ticktape replay FILE --verify --json`
- stream: the file imported with `ticktape import` into a nats-server started from the wheel
  (not timed), then `python -m ticktape replay SESSION --verify --stream ... --nats ...`
- what-if: `python -m ticktape replay FILE --config whatif.yaml --out DIR` with EMA 12/26
Nautilus: engine.run() only (building its bar objects is not timed), as in replay_vs_nautilus.
The exit status of each command is checked (a replay that does not verify is a failed benchmark).

Run: .venv-bench/bin/python bench/replay_command.py [--symbols 3] [--bars 15000] [--skip-nautilus]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import replay_vs_nautilus as rvn  # noqa: E402  (the tape, bar building and the Nautilus run)
from common import machine  # noqa: E402

from ticktape.infra.nats_server import start_nats_server  # noqa: E402
from ticktape.replay.fileformat import write_session_file  # noqa: E402
from ticktape.replay.simulate import simulate_session  # noqa: E402

SESSION_ID = "bench-replay-command"


def record(bars: list, path: Path) -> int:
    meta, records = simulate_session(bars, rvn.TICKTAPE_CONFIG, SESSION_ID)
    write_session_file(path, meta, records)
    return len(records)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds, done


def figure(command: str, seconds: float, bars: int, **extra: object) -> dict:
    return {
        "command": command,
        "seconds": round(seconds, 3),
        "bars": bars,
        "bars_per_s": round(bars / seconds),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--symbols", type=int, default=3)
    p.add_argument("--bars", type=int, default=15_000, help="bars per symbol")
    p.add_argument("--out", type=Path, default=HERE / "results" / "replay_command.json")
    p.add_argument("--skip-nautilus", action="store_true")
    args = p.parse_args(argv)

    tape, sources = rvn.load_tape()
    symbols = rvn.build_symbols(tape, args.symbols, args.bars)
    bars = rvn.ticktape_bars(symbols)
    n = len(bars)
    print(f"{args.symbols} symbols x {args.bars} bars = {n:,} bars", file=sys.stderr)
    py = sys.executable
    results: dict = {
        "benchmark": "replay_command",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine("nautilus_trader"),
        "data": {"symbols": args.symbols, "bars_per_symbol": args.bars, "total_bars": n, "sources": sources},
        "strategy": f"ema_cross {rvn.FAST}/{rvn.SLOW}, one paper account",
    }
    with tempfile.TemporaryDirectory(prefix="ticktape-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
        env["TICKTAPE_HOME"] = str(tmp / "home")
        session_file = tmp / "session.jsonl"
        messages = record(bars, session_file)
        results["session"] = {"messages": messages, "file_bytes": session_file.stat().st_size}
        del bars

        print("ticktape replay FILE --verify ...", file=sys.stderr)
        seconds, done = timed([py, "-m", "ticktape", "replay", str(session_file), "--verify", "--json"], env, tmp)
        verified = json.loads(done.stdout)
        results["file_verify"] = figure(
            "ticktape replay FILE --verify",
            seconds,
            n,
            verified=verified.get("ok"),
            messages=verified.get("messages"),
        )

        whatif = tmp / "whatif.yaml"
        whatif.write_text(
            json.dumps(
                {"signal": {"strategies": [{"kind": "ema_cross", "name": "ema_cross_12_26", "fast": 12, "slow": 26}]}}
            )
        )
        print("ticktape replay FILE --config whatif.yaml ...", file=sys.stderr)
        seconds, _ = timed(
            [py, "-m", "ticktape", "replay", str(session_file), "--config", str(whatif), "--out", str(tmp / "out")],
            env,
            tmp,
        )
        results["what_if"] = figure("ticktape replay FILE --config OTHER.yaml", seconds, n)

        server = start_nats_server(tmp / "nats")
        try:
            stream = "BENCH_REPLAY"
            imp = [py, "-m", "ticktape", "import", str(session_file), "--nats", server.url, "--stream", stream]
            subprocess.run(imp, env=env, cwd=tmp, check=True, capture_output=True)
            print("ticktape replay SESSION --verify (stream) ...", file=sys.stderr)
            cmd = [
                py,
                "-m",
                "ticktape",
                "replay",
                SESSION_ID,
                "--verify",
                "--json",
                "--nats",
                server.url,
                "--stream",
                stream,
            ]
            seconds, done = timed(cmd, env, tmp)
            verified = json.loads(done.stdout)
            results["stream_verify"] = figure(
                "ticktape replay SESSION --verify",
                seconds,
                n,
                verified=verified.get("ok"),
                messages=verified.get("messages"),
            )
        finally:
            server.stop()

    if not args.skip_nautilus:
        print("nautilus: BacktestEngine + EMACross ...", file=sys.stderr)
        results["nautilus"] = rvn.run_nautilus(symbols)
        nb = results["nautilus"]["bars_per_s"]
        results["ratio_over_nautilus"] = {
            key: round(results[key]["bars_per_s"] / nb, 2) for key in ("file_verify", "stream_verify", "what_if")
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    return 0


def summary(r: dict) -> str:
    parts = [f"{r[k]['command']}: {r[k]['bars_per_s']:,} bars/s" for k in ("file_verify", "stream_verify", "what_if")]
    if "nautilus" in r:
        parts.append(f"Nautilus: {r['nautilus']['bars_per_s']:,} bars/s")
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
