"""Benchmark: WebSocket client receive throughput, aiohttp (what ticktape uses) vs websockets.

Why does services/market_data use aiohttp's ws_connect rather than the `websockets` library?
This measures the part that differs: how many real Binance frames per second one client
connection can take off a loopback socket and msgspec-decode, and how much memory it needs.

Corpus (real captures from ../shared/data; every kline and aggTrade frame in them, as text):
  cryptofeed/BINANCE.ws.1.0           spot   <sym>@kline_1m, <sym>@aggTrade
  cryptofeed/BINANCE_FUTURES.ws.1.0   USDT-M <sym>@kline_1m, <sym>@aggTrade
repeated in order until one connection carries --frames frames (default 200,000).

Server (its own process, pinned to CPU 0 when there are two or more): an aiohttp web app whose
/ws handler accepts the upgrade with WebSocketResponse(compress=False) and then writes the frames,
pre-framed once at start-up as unmasked RFC 6455 text frames (FIN, opcode 1), straight to the
connection's transport in ~1 MB chunks, waiting only while more than 4 MB sit unsent; then it
waits for the client's close. So the server's cost per frame is a memcpy, not aiohttp's send_str,
and it is not what is measured: `server_ceiling` is the same server read by a bare blocking
socket that only counts bytes.

Clients (each run a fresh interpreter, pinned to CPU 1 when there are two or more CPUs):
  aiohttp     ClientSession().ws_connect(url, heartbeat=30, max_msg_size=0), the options
              services/market_data/shard.py uses (compress is left at its default, 0: no
              permessage-deflate offered); `async for msg in ws`, TEXT/BINARY data taken as
              the shard does (str -> .encode()).
  websockets  websockets.asyncio.client.connect(url, compression=None, max_size=None,
              proxy=None): no permessage-deflate (as aiohttp), no message size limit (as
              max_msg_size=0), no proxy from the environment (aiohttp's ClientSession ignores it
              too: trust_env=False); everything else at its defaults (ping_interval=20,
              max_queue=16);
              `async for message in ws`, str -> .encode() as above.
  websockets_bytes  (secondary) the same connection, but `await ws.recv(decode=False)`, which
              hands over a text frame's payload as bytes without decoding UTF-8 first: the
              fastest way websockets offers to get bytes for msgspec.
Each received frame is decoded with the venue adapter's parser, exchanges.adapter_for(
"binance_usdm").parse (msgspec: the one decoder ticktape's market data runs on every frame;
spot and USDT-M share it), inline in the receive loop. The clock starts once the handshake is
done and stops when the last frame is decoded; the client then closes normally. Every run must
receive exactly --frames frames and decode exactly the expected number of klines and trades.

CPU time: the client also records its own CPU time (time.process_time) over the timed window;
frames per client CPU second is reported next to frames/s, since on a shared machine other load
can preempt a run (each run's CPU share, CPU time / wall time, is recorded, and the 1-minute load
average at start and end).

Peak RSS: the client process's ru_maxrss at the end of the run (after imports, connection and
all frames), next to its ru_maxrss just before connecting (interpreter + imports).

Runs: one untimed warm-up of each client, then --repeat rounds (default 5), each running every
client once, the order rotated per round so drift hits all alike; median frames/s and spread
(min, max, (max-min)/median) per client; ratio of medians and median of per-round ratios.

`code_version` is the commit measured (and whether services/, libs/ or this script differ from it).

Usage: python bench/ws_client.py [--frames 200000] [--repeat 5] [--out FILE];
writes bench/results/ws_client.json."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("cryptofeed/BINANCE.ws.1.0", "cryptofeed/BINANCE_FUTURES.ws.1.0")
KINDS = ("@kline_1m", "@aggTrade")
CLIENTS = ("aiohttp", "websockets", "websockets_bytes")
CHUNK = 1 << 20  # server write size
HIGH_WATER = 4 << 20  # server waits while more than this is unsent


def shared_data_dir() -> Path:
    from ticktape.testing.data import shared_data_dir as find

    return find()


def load_corpus(data: Path) -> list[str]:
    """Every kline_1m and aggTrade frame in the two captures, as the text that came off the wire."""
    if not data.is_dir():
        raise SystemExit(
            f"ws_client: needs ../shared/data ({data}), the shared exchange captures folder, for real "
            f"Binance frames ({', '.join(SOURCES)}); it is absent, so there is nothing to measure"
        )
    frames: list[str] = []
    for rel in SOURCES:
        path = data / rel
        if not path.is_file():
            raise SystemExit(f"ws_client: ../shared/data is present ({data}) but has no {rel}: see its MANIFEST.md")
        for line in path.read_text().splitlines():
            ts, sep, body = line.partition(": ")
            captured = sep and ts.replace(".", "").isdigit() and body.startswith('{"stream"')
            if captured and json.loads(body)["stream"].endswith(KINDS):
                frames.append(body)
    if not frames:
        raise SystemExit(f"ws_client: no kline/aggTrade frames found in {', '.join(SOURCES)} under {data}")
    return frames


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked (server -> client) final frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def wire(frames: list[str], n: int) -> tuple[bytes, int, bytes]:
    """(one pass over the corpus framed, full passes needed, the framed remainder) for n frames."""
    framed = [ws_frame(f.encode()) for f in frames]
    passes, rest = divmod(n, len(framed))
    return b"".join(framed), passes, b"".join(framed[:rest])


def pin(cpu: int) -> int | None:
    """Pin this process to one CPU when the machine has two or more; returns the CPU, or None."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None
    chosen = cpus[cpu % len(cpus)]
    os.sched_setaffinity(0, {chosen})
    return chosen


# -- server (its own process) ----------------------------------------------------------------


def serve(data: Path, n: int) -> None:
    from aiohttp import web

    pin(0)
    block, passes, tail = wire(load_corpus(data), n)
    per_chunk = max(1, CHUNK // len(block))
    chunk = block * per_chunk
    full_chunks, rest_blocks = divmod(passes, per_chunk)
    plan = [chunk] * full_chunks + ([block * rest_blocks] if rest_blocks else []) + ([tail] if tail else [])

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        for piece in plan:
            if transport.is_closing():
                return ws
            transport.write(piece)
            while transport.get_write_buffer_size() > HIGH_WATER and not transport.is_closing():
                await asyncio.sleep(0.0002)
        async for _ in ws:  # until the client's close; aiohttp answers it
            pass
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await runner.cleanup()

    asyncio.run(main())


# -- clients (each run its own process) ------------------------------------------------------


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def run_aiohttp(url: str, n: int) -> dict[str, object]:
    import aiohttp

    from exchanges import adapter_for

    parse = adapter_for("binance_usdm").parse
    before = _rss_kb()
    frames = items = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url, heartbeat=30, max_msg_size=0) as ws:
        assert ws.compress == 0, "aiohttp negotiated compression"
        t0, c0 = time.perf_counter(), time.process_time()
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data = msg.data.encode() if isinstance(msg.data, str) else msg.data
                items += len(parse(data))
                frames += 1
                if frames == n:
                    break
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                break
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"frames": frames, "items": items, "seconds": seconds, "cpu_seconds": cpu, "rss_before_connect_kb": before}


async def run_websockets(url: str, n: int, as_bytes: bool) -> dict[str, object]:
    from websockets.asyncio.client import connect

    from exchanges import adapter_for

    parse = adapter_for("binance_usdm").parse
    before = _rss_kb()
    frames = items = 0
    async with connect(url, compression=None, max_size=None, proxy=None) as ws:
        assert ws.response is not None and "Sec-WebSocket-Extensions" not in ws.response.headers, "compression"
        t0, c0 = time.perf_counter(), time.process_time()
        if as_bytes:
            recv = ws.recv
            while frames < n:
                items += len(parse(await recv(decode=False)))
                frames += 1
        else:
            async for message in ws:
                data = message.encode() if isinstance(message, str) else message
                items += len(parse(data))
                frames += 1
                if frames == n:
                    break
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"frames": frames, "items": items, "seconds": seconds, "cpu_seconds": cpu, "rss_before_connect_kb": before}


def run_raw(port: int, n_bytes: int) -> dict[str, object]:
    """The server ceiling: a blocking socket that completes the handshake and counts bytes."""
    before = _rss_kb()
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("ws_client: server closed during the handshake")
        head += chunk
    status, _, rest = head.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status[:80]
    got = len(rest)
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    while got < n_bytes:
        k = s.recv_into(buf)
        if not k:
            break
        got += k
    seconds = time.perf_counter() - t0
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(struct.pack("!H", 1000)))
    s.sendall(struct.pack("!BB", 0x88, 0x80 | 2) + mask + body)
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    return {"bytes": got, "seconds": seconds, "rss_before_connect_kb": before}


def client_main(kind: str, port: int, n: int, n_bytes: int) -> None:
    cpu = pin(1)
    url = f"ws://127.0.0.1:{port}/ws"
    if kind == "raw":
        out = run_raw(port, n_bytes)
    elif kind == "aiohttp":
        out = asyncio.run(run_aiohttp(url, n))
    else:
        out = asyncio.run(run_websockets(url, n, as_bytes=kind == "websockets_bytes"))
    out.update(kind=kind, cpu=cpu, peak_rss_kb=_rss_kb())
    print(json.dumps(out), flush=True)


# -- harness ---------------------------------------------------------------------------------


def one_run(kind: str, port: int, n: int, n_bytes: int) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--client", kind, "--port", str(port), "--frames", str(n), "--bytes", str(n_bytes)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise SystemExit(f"ws_client: {kind} client failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict[str, object]], n: int) -> dict[str, object]:
    rates = [n / float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    med = statistics.median(rates)
    cpu_rates = [n / float(r["cpu_seconds"]) for r in runs]  # type: ignore[arg-type]
    cpu_med = statistics.median(cpu_rates)
    peaks = [int(r["peak_rss_kb"]) for r in runs]  # type: ignore[call-overload]
    before = [int(r["rss_before_connect_kb"]) for r in runs]  # type: ignore[call-overload]
    return {
        "frames_per_s": round(med),
        "runs_frames_per_s": [round(x) for x in rates],
        "min_frames_per_s": round(min(rates)),
        "max_frames_per_s": round(max(rates)),
        "spread_pct_of_median": round(100 * (max(rates) - min(rates)) / med, 1),
        "frames_per_client_cpu_s": round(cpu_med),
        "runs_frames_per_client_cpu_s": [round(x) for x in cpu_rates],
        "cpu_spread_pct_of_median": round(100 * (max(cpu_rates) - min(cpu_rates)) / cpu_med, 1),
        "runs_client_cpu_share": [
            round(float(r["cpu_seconds"]) / float(r["seconds"]), 2)  # type: ignore[arg-type]
            for r in runs
        ],
        "peak_rss_mib": round(statistics.median(peaks) / 1024, 1),
        "runs_peak_rss_mib": [round(p / 1024, 1) for p in peaks],
        "rss_before_connect_mib": round(statistics.median(before) / 1024, 1),
        "rss_growth_mib": round(statistics.median(p - b for p, b in zip(peaks, before, strict=True)) / 1024, 1),
    }


def implementations() -> dict[str, object]:
    """Which compiled parts each library runs with here."""
    info: dict[str, object] = {"AIOHTTP_NO_EXTENSIONS": os.environ.get("AIOHTTP_NO_EXTENSIONS")}
    try:
        from aiohttp._websocket import reader

        info["aiohttp_ws_reader"] = reader.WebSocketReader.__module__
    except ImportError as exc:  # pragma: no cover - layout of another aiohttp
        info["aiohttp_ws_reader"] = f"unknown ({exc})"
    try:
        import websockets.speedups  # noqa: F401

        info["websockets_speedups"] = True
    except ImportError:
        info["websockets_speedups"] = False
    return info


def code_version() -> dict[str, object]:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "services_or_libs_modified": bool(git("status", "--porcelain", "--", "services", "libs")),
        "this_script_differs_from_commit": bool(git("status", "--porcelain", "--", "bench/ws_client.py")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per connection (per run)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per client (median reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ws_client.json")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=(*CLIENTS, "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(shared_data_dir(), args.frames)
        return
    if args.client:
        client_main(args.client, args.port, args.frames, args.bytes)
        return

    from common import machine  # bench/ is on sys.path when run as a script

    from exchanges import adapter_for

    started = time.monotonic()
    version_at_start = code_version()
    load_at_start = os.getloadavg()
    data = shared_data_dir()
    frames = load_corpus(data)
    n = args.frames
    parse = adapter_for("binance_usdm").parse
    per_frame = [len(parse(f.encode())) for f in frames]
    passes, rest = divmod(n, len(frames))
    expected_items = passes * sum(per_frame) + sum(per_frame[:rest])
    block, _, tail = wire(frames, n)
    n_bytes = passes * len(block) + len(tail)
    kinds = {k[1:]: sum(json.loads(f)["stream"].endswith(k) for f in frames) for k in KINDS}

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--frames", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.strip().isdigit():
            raise SystemExit(f"ws_client: the server did not start (said {line!r})")
        port = int(line)

        def checked(kind: str) -> dict[str, object]:
            r = one_run(kind, port, n, n_bytes)
            if kind == "raw":
                if r["bytes"] != n_bytes:
                    raise SystemExit(f"ws_client: raw client got {r['bytes']} bytes, expected {n_bytes}")
            elif r["frames"] != n or r["items"] != expected_items:
                raise SystemExit(
                    f"ws_client: {kind} got {r['frames']} frames / {r['items']} items, expected {n} / {expected_items}"
                )
            return r

        ceiling = [checked("raw") for _ in range(2)]
        for kind in CLIENTS:  # warm-up, untimed
            checked(kind)
        runs: dict[str, list[dict[str, object]]] = {k: [] for k in CLIENTS}
        for i in range(args.repeat):
            order = CLIENTS[i % len(CLIENTS) :] + CLIENTS[: i % len(CLIENTS)]
            for kind in order:
                runs[kind].append(checked(kind))
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    sides = {k: summarize(v, n) for k, v in runs.items()}
    a, w, wb = (sides[k]["frames_per_s"] for k in CLIENTS)
    paired = [
        (float(rw["seconds"]) / float(ra["seconds"]))  # type: ignore[arg-type]
        for ra, rw in zip(runs["aiohttp"], runs["websockets"], strict=True)
    ]
    paired_b = [
        (float(rw["seconds"]) / float(ra["seconds"]))  # type: ignore[arg-type]
        for ra, rw in zip(runs["aiohttp"], runs["websockets_bytes"], strict=True)
    ]
    ceiling_rates = [n / float(r["seconds"]) for r in ceiling]  # type: ignore[arg-type]
    result = {
        "benchmark": "ws_client",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine("aiohttp", "websockets", "msgspec", **implementations()),
        "code_version": version_at_start,
        "corpus": {
            "sources": list(SOURCES),
            "frames": len(frames),
            "by_kind": kinds,
            "frame_bytes_mean": round(sum(len(f.encode()) for f in frames) / len(frames), 1),
            "frames_per_connection": n,
            "wire_bytes_per_connection": n_bytes,
            "items_decoded_per_connection": expected_items,
        },
        "timed": {
            "server": "aiohttp web app in its own process; WebSocketResponse(compress=False) handshake, then "
            "pre-framed unmasked text frames written to the transport in ~1 MB chunks (<= 4 MB unsent)",
            "aiohttp": "ClientSession().ws_connect(url, heartbeat=30, max_msg_size=0) as in "
            "services/market_data/shard.py; async for msg; data.encode(); adapter parse (msgspec)",
            "websockets": "websockets.asyncio.client.connect(url, compression=None, max_size=None, proxy=None); "
            "async for message; message.encode(); adapter parse (msgspec)",
            "websockets_bytes": "same connection; await ws.recv(decode=False) (payload bytes, no UTF-8 "
            "decode); adapter parse (msgspec)",
            "clock": "handshake done -> last frame decoded, in the client",
            "processes": "server pinned to one CPU, each client run a fresh interpreter pinned to the other "
            "(when there are two or more CPUs)",
            "repetitions": args.repeat,
            "statistic": "median frames/s over runs; runs alternate clients, order rotated per round",
            "cpu_time": "frames_per_client_cpu_s = frames / client process CPU time (time.process_time) over the "
            "same window; runs_client_cpu_share = CPU time / wall time (below ~1 when the client waited "
            "for the server or was preempted by other load on a shared machine)",
            "rss": "client ru_maxrss at the end of the run; rss_before_connect = ru_maxrss after imports",
        },
        "server_ceiling": {
            "note": "same server read by a blocking socket that only counts bytes",
            "frames_per_s": round(statistics.median(ceiling_rates)),
            "runs_frames_per_s": [round(x) for x in ceiling_rates],
            "mib_per_s": round(statistics.median(n_bytes / float(r["seconds"]) for r in ceiling) / (1 << 20), 1),  # type: ignore[arg-type]
        },
        **sides,
        "ratio_aiohttp_over_websockets": round(a / w, 2),
        "ratio_median_of_paired_runs": round(statistics.median(paired), 2),
        "ratio_aiohttp_over_websockets_bytes": round(a / wb, 2),
        "ratio_bytes_median_of_paired_runs": round(statistics.median(paired_b), 2),
        "ratio_per_client_cpu_s": round(
            sides["aiohttp"]["frames_per_client_cpu_s"] / sides["websockets"]["frames_per_client_cpu_s"],  # type: ignore[operator]
            2,
        ),
        "load_average_1m_start_end": [round(load_at_start[0], 2), round(os.getloadavg()[0], 2)],
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sa, sw = sides["aiohttp"], sides["websockets"]
    ceiling_fps = result["server_ceiling"]["frames_per_s"]  # type: ignore[index]
    print(
        f"ws_client: aiohttp {a:,} frames/s (spread {sa['spread_pct_of_median']}%, peak RSS "
        f"{sa['peak_rss_mib']} MiB) vs websockets {w:,} frames/s (spread {sw['spread_pct_of_median']}%, "
        f"{sw['peak_rss_mib']} MiB) = {result['ratio_aiohttp_over_websockets']}x (recv(decode=False): {wb:,}, "
        f"{result['ratio_aiohttp_over_websockets_bytes']}x); per client CPU second {sa['frames_per_client_cpu_s']:,} "
        f"vs {sw['frames_per_client_cpu_s']:,} = {result['ratio_per_client_cpu_s']}x; on {n:,} real Binance "
        f"kline/aggTrade frames over loopback; server ceiling {ceiling_fps:,} frames/s; "
        f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )


if __name__ == "__main__":
    main()
