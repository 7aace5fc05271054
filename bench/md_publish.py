"""Benchmark (b): Binance frames decoded, normalized and published to JetStream with acks, per second,
one process.

Corpus: the real Binance kline / aggTrade / trade frames bench/md_decode.py loads from
../shared/data (cryptofeed BINANCE / BINANCE_FUTURES ws captures, hftbacktest spot and USDT-M
btcusdt days): 10,893 frames -> 10,824 TradeTicks + 4 BarClosed per pass, every id distinct.

ticktape (timed): the market-data shell's own per-frame path, `VenueFeed.on_frame(shard, frame)`
of services/market_data/feed.py on two feeds (binance_spot, binance_usdm) built on a real Runtime
(`open_runtime`: real nats-py connection, streams provisioned with `ensure_streams`, metrics and
the OpenTelemetry SDK tracer as in the service) and one `PipelinedPublisher(js, window=2000)`
(the service's default publish_window). Per frame that is metrics.received(),
`MarketDataCore.on_frame(frame, time.time_ns())`, and `VenueFeed.publish`: each BarClosed inside a
producer span with its `traceparent` header, each TradeTick without, `PipelinedPublisher.publish`
(encode, subject, Nats-Msg-Id header, `js.publish_async`, settling half the window when 2,000
acks are outstanding). The clock stops after `publisher.flush()` returns, i.e. when JetStream has
acked every message. Fresh feeds (fresh cores) every repetition.

Ceiling (timed): the nats-py client alone on the same connection settings, the same server and a
fresh stream: `js.publish_async(subject, payload, headers=headers)` for exactly the messages one
ticktape pass publishes (same subjects, same encoded payloads, same Nats-Msg-Id / traceparent
headers, built beforehand), then `await js.publish_async_completed()` (every ack received).

Duplicate window: every repetition deletes and re-creates the streams (`ensure_streams`), untimed,
so the same ids are new to JetStream each time; each repetition checks that the streams hold
exactly the messages sent (none dropped as duplicates, none lost).

Also in the same run: `ticktape_previous_hot_path`, the path with bench-only copies of the hot
path before commit 6ff10b2 (PreviousPublisher, PreviousMetrics); `ticktape_layers_us_per_message_
without_client_or_server`, ticktape's own layers against a stand-in JetStream whose acks are
immediate; `profile`, a cProfile of one extra pass; `uvloop`, the comparison repeated on uvloop.
`code_version` is the commit measured (and whether services/ or libs/ differ from it).

Usage: python bench/md_publish.py [--repeat 7] [--no-profile] [--no-variants];
writes bench/results/md_publish.json."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import datetime as dt
import io
import json
import os
import pstats
import statistics
import subprocess
import tempfile
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from common import machine  # bench/ is on sys.path when run as a script (or imported by one)
from md_decode import load_corpus
from nats.js.errors import NotFoundError

from services.market_data.config import MarketDataConfig, VenueFeedConfig
from services.market_data.core import MarketDataCore
from services.market_data.feed import VenueFeed
from ticktape import subjects, telemetry
from ticktape.bus.pipeline import PipelinedPublisher
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import msg_headers, publish_batch
from ticktape.events import BarClosed
from ticktape.events.codec import encode
from ticktape.infra.nats_server import nats_server_binary, start_nats_server
from ticktape.infra.stack import MAX_PAYLOAD
from ticktape.runtime import Runtime, open_runtime
from ticktape.testing.data import shared_data_dir
from ticktape.testing.services import common_settings

ROOT = Path(__file__).resolve().parents[1]

VENUES = {"spot": "binance_spot", "usdm": "binance_usdm"}
TARGET = 30_000


# -- setup -----------------------------------------------------------------------------------


async def fresh_streams(rt: Runtime) -> None:
    """Delete and re-create ticktape's streams, so no id is inside a duplicate window."""
    s = rt.common.nats
    for name in (s.stream, s.trades_stream, s.dlq_stream):
        with contextlib.suppress(NotFoundError):  # not there yet
            await rt.js.delete_stream(name)
    await ensure_streams(rt.js, s)


async def stream_counts(rt: Runtime) -> dict[str, int]:
    s = rt.common.nats
    return {name: (await rt.js.stream_info(name)).state.messages for name in (s.stream, s.trades_stream)}


def make_feeds(rt: Runtime, session: aiohttp.ClientSession, publisher: PipelinedPublisher) -> dict[str, VenueFeed]:
    config = MarketDataConfig(venues=tuple(VenueFeedConfig(venue=v) for v in VENUES.values()))
    return {
        key: VenueFeed(rt, config, vcfg, session, publisher) for key, vcfg in zip(VENUES, config.venues, strict=True)
    }


# -- the two timed sides ---------------------------------------------------------------------


async def ticktape_pass(
    rt: Runtime,
    session: aiohttp.ClientSession,
    frames: list[tuple[str, bytes]],
    cls: type[PipelinedPublisher] = PipelinedPublisher,
) -> tuple[float, PipelinedPublisher]:
    publisher = cls(rt.js, window=MarketDataConfig().publish_window)
    feeds = make_feeds(rt, session, publisher)
    calls = [(feeds[venue].on_frame, raw) for venue, raw in frames]
    t0 = time.perf_counter()
    for on_frame, raw in calls:
        await on_frame(0, raw)
    await publisher.flush()
    return time.perf_counter() - t0, publisher


async def ceiling_pass(rt: Runtime, messages: list[tuple[str, bytes, dict[str, str]]]) -> float:
    js = rt.js
    t0 = time.perf_counter()
    futures = [await js.publish_async(subject, payload, headers=headers) for subject, payload, headers in messages]
    await js.publish_async_completed()
    elapsed = time.perf_counter() - t0
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        raise SystemExit(f"ceiling: {len(failed)} publishes failed, first: {failed[0]!r}")
    return elapsed


async def published_messages(
    rt: Runtime, session: aiohttp.ClientSession, frames: list[tuple[str, bytes]]
) -> list[tuple[str, bytes, dict[str, str]]]:
    """What one ticktape pass publishes, as (subject, payload, headers), bars with a traceparent."""
    feeds = make_feeds(rt, session, PipelinedPublisher(rt.js))
    out = []
    for venue, raw in frames:
        feed = feeds[venue]
        for event in feed.core.on_frame(raw, time.time_ns()):
            extra = None
            if isinstance(event, BarClosed):
                with feed.tracer.start_as_current_span("market_data publish md.bar.closed"):
                    extra = telemetry.inject({})
            out.append((subjects.for_event(event), encode(event), msg_headers(event, extra)))
    return out


# -- the hot path before commit 6ff10b2, for comparison (bench-only copies) -------------------


class PreviousPublisher(PipelinedPublisher):
    """PipelinedPublisher as it was before 6ff10b2: subject from subjects.for_event for every
    event (a cached subject is ignored), and `_settle` awaiting asyncio.wait_for(future, 10) per
    message (a timer, a waiter future and an event-loop iteration per message)."""

    async def publish(self, event: Any, headers: dict[str, str] | None = None, subject: str | None = None) -> None:
        future = await self.js.publish_async(
            subjects.for_event(event), encode(event), headers=msg_headers(event, headers)
        )
        self._pending.append((future, event, headers))
        if len(self._pending) >= self.window:
            await self._settle(len(self._pending) // 2)

    async def _settle(self, n: int) -> None:
        failed: list[tuple[Any, dict[str, str]]] = []
        for _ in range(n):
            if not self._pending:
                break
            future, event, headers = self._pending.popleft()
            try:
                await asyncio.wait_for(future, timeout=10.0)
                self.published += 1
            except Exception:  # noqa: BLE001 - as before 6ff10b2: any failed ack is counted and re-sent, same id
                failed.append((event, headers or {}))
        if failed:
            self.retried += len(failed)
            await publish_batch(self.js, failed)
            self.published += len(failed)


class PreviousMetrics:
    """ServiceMetrics.received/published as before 6ff10b2: a label lookup on every call."""

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics

    def received(self, n: int = 1) -> None:
        self._metrics._received.labels(self._metrics.service).inc(n)

    def published(self, n: int = 1) -> None:
        self._metrics._published.labels(self._metrics.service).inc(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metrics, name)


class AckedJS:
    """A stand-in JetStream context whose publish_async returns an already-acked future: what is
    left is ticktape's own cost per message (feed, core, publisher), without client or server.
    `_nc.max_payload` is the embedded server's (what publisher.check_size reads)."""

    _nc = types.SimpleNamespace(max_payload=MAX_PAYLOAD)

    async def publish_async(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> Any:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def layer_costs(
    rt: Runtime, session: aiohttp.ClientSession, frames: list[tuple[str, bytes]], n_msgs: int, repeat: int
) -> dict[str, float]:
    """Microseconds per published message of ticktape's own layers (no client, no server)."""
    stub = dataclasses.replace(rt, js=AckedJS())
    stub_previous = dataclasses.replace(stub, metrics=PreviousMetrics(rt.metrics))
    cores = {key: MarketDataCore(venue) for key, venue in VENUES.items()}

    async def core_only() -> float:
        for core in cores.values():
            core._last.clear()
        t0 = time.perf_counter()
        for venue, raw in frames:
            cores[venue].on_frame(raw, time.time_ns())
        return time.perf_counter() - t0

    async def feed(r: Runtime, cls: type[PipelinedPublisher]) -> float:
        return (await ticktape_pass(r, session, frames, cls))[0]

    sides: dict[str, Callable[[], Awaitable[float]]] = {
        "production": lambda: feed(stub, PipelinedPublisher),
        "previous_hot_path": lambda: feed(stub_previous, PreviousPublisher),
        "core_on_frame_only": core_only,
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for rep in range(repeat + 1):
        for name, side in sides.items():
            elapsed = await side()
            if rep:
                times[name].append(elapsed)
    return {name: round(statistics.median(t) / n_msgs * 1e6, 2) for name, t in times.items()}


# -- harness ---------------------------------------------------------------------------------


async def measure(
    url: str, frames: list[tuple[str, bytes]], repeat: int, profile: bool, variants: bool
) -> dict[str, Any]:
    rt = await open_runtime("market_data", common_settings(url), raw={})
    rt_previous = dataclasses.replace(rt, metrics=PreviousMetrics(rt.metrics))
    try:
        async with aiohttp.ClientSession() as session:
            messages = await published_messages(rt, session, frames)
            n_msgs = len(messages)
            n_bars = sum(1 for s, _, _ in messages if s.startswith("md.bar."))
            expected = {rt.common.nats.stream: n_bars, rt.common.nats.trades_stream: n_msgs - n_bars}

            async def ticktape(runtime: Runtime, cls: type[PipelinedPublisher]) -> float:
                await fresh_streams(rt)
                elapsed, publisher = await ticktape_pass(runtime, session, frames, cls)
                if publisher.published != n_msgs or publisher.retried:
                    raise SystemExit(
                        f"ticktape: {publisher.published} acked, {publisher.retried} retried; expected {n_msgs} acked"
                    )
                return elapsed

            async def ceiling() -> float:
                await fresh_streams(rt)
                return await ceiling_pass(rt, messages)

            sides: dict[str, Callable[[], Awaitable[float]]] = {
                "ticktape": lambda: ticktape(rt, PipelinedPublisher),
                "ceiling": ceiling,
            }
            if variants:
                sides["ticktape_previous_hot_path"] = lambda: ticktape(rt_previous, PreviousPublisher)
            times: dict[str, list[float]] = {name: [] for name in sides}
            for rep in range(repeat + 1):  # the first round warms caches, connections, the store
                for name, side in sides.items():  # interleaved, so drift hits every side alike
                    elapsed = await side()
                    have = await stream_counts(rt)
                    if have != expected:
                        raise SystemExit(f"{name}: streams hold {have}, expected {expected}")
                    if rep:
                        times[name].append(elapsed)

            layers = await layer_costs(rt, session, frames, n_msgs, repeat) if variants else None
            prof = None
            if profile:
                await fresh_streams(rt)
                profiler = cProfile.Profile()
                profiler.enable()
                elapsed, _ = await ticktape_pass(rt, session, frames, PipelinedPublisher)
                profiler.disable()
                prof = profile_summary(profiler, elapsed)
    finally:
        await rt.nc.drain()

    def side(name: str) -> dict[str, Any]:
        med = statistics.median(times[name])
        return {
            "frames_per_s": round(len(frames) / med),
            "messages_per_s": round(n_msgs / med),
            "us_per_message": round(med / n_msgs * 1e6, 2),
            "runs_frames_per_s": [round(len(frames) / t) for t in times[name]],
            "seconds_per_pass_median": round(med, 4),
        }

    ours, ceil = side("ticktape"), side("ceiling")
    result: dict[str, Any] = {
        "frames_per_pass": len(frames),
        "messages_per_pass": n_msgs,
        "bars_per_pass": n_bars,
        "ticktape": ours,
        "ceiling_nats_py_publish_async": {
            "messages_per_s": ceil["messages_per_s"],
            "us_per_message": ceil["us_per_message"],
            "runs_messages_per_s": [round(n_msgs / t) for t in times["ceiling"]],
            "seconds_per_pass_median": ceil["seconds_per_pass_median"],
        },
        "ticktape_share_of_ceiling": round(ours["messages_per_s"] / ceil["messages_per_s"], 3),
        "ticktape_overhead_over_ceiling_us_per_message": round(ours["us_per_message"] - ceil["us_per_message"], 2),
        "target_frames_per_s": TARGET,
        "meets_target": ours["frames_per_s"] >= TARGET,
    }
    if variants:
        result["ticktape_previous_hot_path"] = side("ticktape_previous_hot_path")
        result["ticktape_layers_us_per_message_without_client_or_server"] = layers
    if prof is not None:
        result["profile"] = prof
    return result


def profile_summary(profiler: cProfile.Profile, elapsed: float, top: int = 25) -> dict[str, Any]:
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    return {
        "note": "cProfile of one extra ticktape pass (profiling overhead inflates the wall time); "
        "own time per function, largest first",
        "wall_seconds_under_profiler": round(elapsed, 3),
        "top_own_time": [
            {
                "function": f"{Path(file).name}:{line}:{name}",
                "calls": nc,
                "own_s": round(tt, 4),
                "cum_s": round(ct, 4),
                "own_share": round(tt / total, 3),
            }
            for (file, line, name), (_, nc, tt, ct, _) in rows
        ],
    }


def nats_server_version() -> str:
    out = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip()


def code_version() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "services_or_libs_modified": bool(git("status", "--porcelain", "--", "services", "libs")),
    }


def run_loop(
    loop_name: str, url: str, frames: list[tuple[str, bytes]], repeat: int, profile: bool, variants: bool
) -> dict[str, Any]:
    coro = measure(url, frames, repeat, profile, variants)
    if loop_name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401 - only probing that it imports
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per side (median reported)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of one extra ticktape pass")
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the previous-hot-path comparison, the layer costs and the uvloop run",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "md_publish.json")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    version_at_start = code_version()

    data = shared_data_dir()
    corpus, sources = load_corpus(data)
    frames = [(f.venue, f.raw) for f in corpus]
    variants = not args.no_variants
    with tempfile.TemporaryDirectory(prefix="md_publish_nats_") as tmp:
        server = start_nats_server(Path(tmp))
        try:
            res = run_loop("asyncio", server.url, frames, args.repeat, not args.no_profile, variants)
            uv = (
                run_loop("uvloop", server.url, frames, args.repeat, False, variants)
                if variants and uvloop_available()
                else None
            )
        finally:
            server.stop()

    result: dict[str, Any] = {
        "benchmark": "md_publish",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(
                "nats-py",
                "msgspec",
                nats_server=nats_server_version(),
                event_loop="asyncio (default selector loop, as ticktape.runtime.run uses)",
            ),
            "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
            "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "code_version": version_at_start,
        "corpus": {"sources": sources, "frames": len(frames)},
        "method": {
            "ticktape": "VenueFeed.on_frame(0, frame_bytes) per frame (services/market_data/feed.py: "
            "metrics.received(), MarketDataCore.on_frame(frame, time.time_ns()), VenueFeed.publish: "
            "bars in a producer span with their traceparent header, trades without, through one "
            "PipelinedPublisher(js, window=2000), metrics.published()), then publisher.flush(); "
            "timed from the first frame until every message is acked by JetStream. Two feeds "
            "(binance_spot, binance_usdm) on a Runtime from ticktape.runtime.open_runtime; fresh "
            "feeds (fresh cores) each repetition",
            "ceiling": "nats-py alone on the same connection: js.publish_async(subject, payload, headers) for "
            "the exact messages one ticktape pass publishes (same subjects, payload bytes and "
            "Nats-Msg-Id/traceparent headers, pre-built), then await js.publish_async_completed()",
            "server": "nats-server -js started by the benchmark on a free port with a temporary file store; "
            "streams provisioned with ticktape.bus.provision.ensure_streams (file storage, "
            "duplicate window 600 s); bars go to TICKTAPE, trades to TICKTAPE_TRADES",
            "duplicates": "before every repetition (untimed) the streams are deleted and re-created, so the "
            "same ids are new each time; after it the streams must hold exactly the messages "
            "of one pass (checked), and the publisher must report every message acked, none "
            "retried",
            "statistic": f"median over {args.repeat} repetitions per side, sides interleaved, after one "
            "warm-up round; one process, one event loop; benchmark and nats-server share the "
            "machine's cores",
            "event_loop": "headline numbers on the default asyncio loop, which ticktape.runtime.run uses; "
            "`uvloop` repeats everything on uvloop (installed here as a bench extra's "
            "dependency, not used by ticktape)",
            "ticktape_previous_hot_path": "the same path with bench-only copies of the hot path before commit "
            "6ff10b2 (PipelinedPublisher._settle awaiting asyncio.wait_for per "
            "message, ServiceMetrics label lookup per call, subjects.for_event "
            "per trade), to show what that commit changed",
            "layers": "ticktape_layers_us_per_message_without_client_or_server: the same pass with a stand-in "
            "js whose publish_async returns an already-resolved future (no nats-py, no server), "
            "microseconds per published message: production, the previous hot path, and "
            "MarketDataCore.on_frame alone",
        },
        **res,
        "runtime_s": 0.0,
    }
    if uv is not None:
        result["uvloop"] = uv
    result["runtime_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    t, c = res["ticktape"], res["ceiling_nats_py_publish_async"]
    line = (
        f"md_publish: ticktape {t['frames_per_s']:,} frames/s ({t['messages_per_s']:,} msgs/s) decoded, "
        f"normalized and acked by JetStream vs nats-py publish_async ceiling {c['messages_per_s']:,} msgs/s "
        f"({res['ticktape_share_of_ceiling']:.0%}); target {TARGET:,} frames/s "
        f"{'met' if res['meets_target'] else 'MISSED'}"
    )
    if "ticktape_previous_hot_path" in res:
        line += f"; hot path before 6ff10b2: {res['ticktape_previous_hot_path']['frames_per_s']:,}"
    if uv is not None:
        line += (
            f"; on uvloop {uv['ticktape']['frames_per_s']:,} (before 6ff10b2 "
            f"{uv['ticktape_previous_hot_path']['frames_per_s']:,}) vs ceiling "
            f"{uv['ceiling_nats_py_publish_async']['messages_per_s']:,}"
        )
    print(line + f"; wrote {args.out}")


if __name__ == "__main__":
    main()
