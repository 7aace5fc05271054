"""Restart time of each core service after a month-long session, without and with state snapshots
(ticktape.snapshots): from exec of `python -m services.<name>` (what `ticktape up` and its
supervisor run) until the service has consumed an input published after it was started.

Data: one symbol, --bars 1m bars (default 43,200 = 30 days) cut from the tape of real bar shapes
that bench/replay_vs_nautilus.py builds from ../shared/data (16,623 shapes, each a move relative
to the previous close: repeated end to end to make the month), through EMA cross 10/20 and one paper
account (CONFIG), recorded without a stack (ticktape.replay.simulate) and published
into the events stream of a nats-server started from the wheel, at the same sequences: the log a
month of `ticktape up` leaves. Each service's durable is created at the end of that log (its ack
floor: everything consumed), as the session left it.

Per mode and service, --restarts + 1 starts of the service process, one at a time, each stopped
with SIGTERM (a clean stop) before the next:
- full_rebuild: nats.snapshot_every_inputs and snapshot_every_s 0 (no snapshots: what every
  restart did before them): each start re-runs the core over all its input since the stream's
  first message;
- snapshot: the defaults. The first start has no snapshot yet (a full rebuild, reported apart as
  first_start_s); its clean stop writes one, which each later start restores.
Timed: exec to the moment the durable's ack floor passes a new input (a bar for signal and
execution, a ResumeTrading for risk) published right after exec; the process's start-up
(interpreter, imports, connect) included. Reported: each restart and the median.

Run: .venv/bin/python bench/restart.py [--bars 43200] [--restarts 3]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.errors import NotFoundError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import replay_vs_nautilus as rvn  # noqa: E402  (the tape of real bar shapes, the config)
from common import machine  # noqa: E402

from ticktape import ids, subjects  # noqa: E402
from ticktape.bus.durable import recreate_durable  # noqa: E402
from ticktape.bus.provision import ensure_streams  # noqa: E402
from ticktape.clock import MINUTE_NS  # noqa: E402
from ticktape.config import NatsSettings  # noqa: E402
from ticktape.corespec import load_specs  # noqa: E402
from ticktape.events import BarClosed, ResumeTrading  # noqa: E402
from ticktape.events.codec import encode  # noqa: E402
from ticktape.infra.nats_server import start_nats_server  # noqa: E402
from ticktape.replay.simulate import simulate_session  # noqa: E402

SESSION_ID = "bench-restart"
# replay_vs_nautilus's strategy and account, in the configuration format services start with
CONFIG = {
    "signal": rvn.TICKTAPE_CONFIG["signal"],
    "accounts": [{"name": "bench", "initial_equity": 1_000_000.0, "strategies": ["*"], "limits": {"fraction": 0.001}}],
}
SERVICES = ("signal", "risk", "execution")
STREAM = NatsSettings().stream


async def publish_log(js, records) -> int:
    await ensure_streams(js, NatsSettings())
    for start in range(0, len(records), 2000):
        chunk = records[start : start + 2000]
        acks = await asyncio.gather(*(js.publish(r.subject, r.data, headers=dict(r.headers)) for r in chunk))
        for rec, ack in zip(chunk, acks, strict=True):
            if ack.seq != rec.seq:
                raise SystemExit(f"record {rec.seq} stored at {ack.seq}: the stream was not empty")
    return records[-1].seq


async def create_durables(js, specs, last_seq: int) -> None:
    """Each service's durable as a session leaves it: everything up to last_seq consumed."""
    for spec in specs:
        await recreate_durable(
            js,
            STREAM,
            spec.name,
            last_seq + 1,
            ack_wait=30.0,
            max_ack_pending=256,
            filter_subjects=spec.filter_subjects,
        )


class NewInputs:
    """Inputs published after the log: the next bars of the symbol, and ResumeTrading commands."""

    def __init__(self, last_bar: BarClosed) -> None:
        self.bar = last_bar
        self.n = 0

    def next_for(self, service: str):
        self.n += 1
        if service == "risk":
            t = self.bar.ts_event + self.n
            return ResumeTrading(
                event_id=ids.child_id("bench-restart", "resume", self.n), ts_event=t, ts_init=t, reason="bench"
            )
        b = self.bar
        open_time = b.open_time + MINUTE_NS
        self.bar = BarClosed(
            event_id=ids.bar_id(b.venue, b.symbol, b.timeframe, open_time),
            ts_event=b.ts_event + MINUTE_NS,
            ts_init=b.ts_init + MINUTE_NS,
            venue=b.venue,
            symbol=b.symbol,
            timeframe=b.timeframe,
            open_time=open_time,
            close_time=b.close_time + MINUTE_NS,
            open=b.close,
            high=b.close * 1.001,
            low=b.close * 0.999,
            close=b.close,
            volume=1.0,
            quote_volume=b.close,
        )
        return self.bar


async def start_until_consumed(js, service: str, event, env: dict[str, str], cwd: Path) -> float:
    """Exec the service, publish `event`, return the seconds until its durable acked it; then
    stop the service cleanly (SIGTERM) and wait for it to exit."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=open(cwd / f"{service}.log", "ab"),  # noqa: SIM115 - the child keeps it
    )
    try:
        ack = await js.publish(subjects.for_event(event), encode(event), headers={"Nats-Msg-Id": event.event_id})
        while True:
            try:
                info = await js.consumer_info(STREAM, service)
            except NotFoundError:  # the service is re-creating it at its floor
                info = None
            if info is not None and info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= ack.seq:
                seconds = time.perf_counter() - started
                break
            if proc.poll() is not None:
                raise SystemExit(f"{service} exited {proc.returncode}; see {cwd / f'{service}.log'}")
            await asyncio.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    return seconds


async def run_mode(mode: str, records, last_bar: BarClosed, restarts: int, tmp: Path) -> dict:
    home = tmp / mode
    home.mkdir()
    server = start_nats_server(home / "nats")
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        last_seq = await publish_log(js, records)
        specs = load_specs(CONFIG, names=list(SERVICES))
        inputs = {
            s.name: sum(1 for r in records if any(subjects.matches(f, r.subject) for f in s.filter_subjects))
            for s in specs
        }
        await create_durables(js, specs, last_seq)
        config = home / "ticktape.yaml"
        config.write_text(json.dumps(CONFIG))  # JSON is YAML
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
        env.update(TICKTAPE_HOME=str(home / "home"), TICKTAPE_CONFIG=str(config), TICKTAPE_NATS_URL=server.url)
        if mode == "full_rebuild":
            env.update(TICKTAPE_NATS__SNAPSHOT_EVERY_INPUTS="0", TICKTAPE_NATS__SNAPSHOT_EVERY_S="0")
        new = NewInputs(last_bar)
        out: dict = {}
        for service in SERVICES:
            times = []
            for _ in range(restarts + 1):
                times.append(await start_until_consumed(js, service, new.next_for(service), env, home))
                print(f"{mode} {service}: {times[-1]:.2f} s", file=sys.stderr)
            first, rest = times[0], times[1:]
            out[service] = {
                "inputs_in_log": inputs[service],
                "first_start_s": round(first, 3),
                "restarts_s": [round(t, 3) for t in rest],
                "median_restart_s": round(statistics.median(rest), 3),
            }
        await nc.close()
        return out
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bars", type=int, default=43_200, help="1m bars of the one symbol (43,200: 30 days)")
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results" / "restart.json")
    args = p.parse_args(argv)

    tape, sources = rvn.load_tape()
    tape = tape * (args.bars // len(tape) + 2)  # the shapes are moves relative to the last close
    bars = rvn.ticktape_bars(rvn.build_symbols(tape, 1, args.bars))
    meta, records = simulate_session(bars, CONFIG, SESSION_ID)
    print(f"{len(bars):,} bars, {len(records):,} messages in the log", file=sys.stderr)
    results: dict = {
        "benchmark": "restart",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine("msgspec", "nats-py"),
        "command": "python -m services.<signal|risk|execution> (as `ticktape up` runs each), SIGTERM between starts",
        "data": {"symbols": 1, "bars": len(bars), "messages": len(records), "sources": sources},
        "strategy": f"ema_cross {rvn.FAST}/{rvn.SLOW}, one paper account",
        "measure": "exec until the service's durable acked an input published after exec",
    }
    with tempfile.TemporaryDirectory(prefix="ticktape-bench-restart-") as tmp_name:
        for mode in ("full_rebuild", "snapshot"):
            results[mode] = asyncio.run(run_mode(mode, records, bars[-1], args.restarts, Path(tmp_name)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    return 0


def summary(r: dict) -> str:
    parts = [
        f"{s} {r['full_rebuild'][s]['median_restart_s']:.2f} s -> {r['snapshot'][s]['median_restart_s']:.2f} s"
        for s in SERVICES
    ]
    return f"restart after {r['data']['bars']:,} bars ({r['data']['messages']:,} messages): " + ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
