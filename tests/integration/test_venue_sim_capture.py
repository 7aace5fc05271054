"""Raw capture replay (hftbacktest's real captures): frames reach exactly their stream's subscribers,
byte for byte as recorded, in recorded order, never before their recorded offset / speed."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import aiohttp

from tests.integration.test_venue_sim import http, series, start_sim
from ticktape.testing import eventually
from ticktape.testing.data import shared_data

__all__ = ["http", "series", "start_sim"]  # fixtures used here


def capture_lines(path: Path) -> list[tuple[int, bytes]]:
    """(receive_ns, frame bytes) of every line whose JSON is a WebSocket frame."""
    out = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            ts, _, body = line.rstrip(b"\n").partition(b" ")
            if body.startswith((b'{"stream"', b'{"channel"')):
                out.append((int(ts), body))
    return out


async def test_hyperliquid_capture_when_replayed_then_verbatim_in_order_and_paced(series, start_sim, http):
    path = shared_data("hftbacktest", "hyperliquid_btcusd_20250126.gz")
    recorded = capture_lines(path)  # 46 l2Book + 9 trades over 25.4 s
    speed = 20.0
    sim, base = await start_sim(series, speed=speed, captures=[("hyperliquid", path)])
    got: list[tuple[float, bytes]] = []
    async with (
        http.ws_connect(f"{base}/hyperliquid/ws") as ws,
        http.ws_connect(f"{base}/hyperliquid/ws") as only_trades,
    ):
        # the first recorded frame is an l2Book at offset 0 (it starts the clock); the first trades at 274 ms
        await ws.send_json({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}})
        await ws.send_json({"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}})
        await only_trades.send_json({"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}})
        while len(got) < len(recorded):
            msg = await ws.receive(timeout=5)
            if not msg.data.startswith('{"channel":"subscriptionResponse"'):
                got.append((time.monotonic(), msg.data.encode()))
        trades = []
        while len(trades) < 9:
            msg = await only_trades.receive(timeout=5)
            if not msg.data.startswith('{"channel":"subscriptionResponse"'):
                trades.append(msg.data.encode())

    assert [body for _, body in got] == [body for _, body in recorded]
    assert trades == [body for _, body in recorded if body.startswith(b'{"channel":"trades"')]
    (first_wall, _), (first_ns, _) = got[0], recorded[0]
    for (wall, _), (ns, _) in zip(got, recorded, strict=True):
        assert wall - first_wall >= (ns - first_ns) / 1e9 / speed - 0.02  # never early
    assert got[-1][0] - first_wall >= (recorded[-1][0] - first_ns) / 1e9 / speed * 0.9
    stats = sim.stats.snapshot(sim.clock)
    assert stats["capture_frames"]["hyperliquid"] == len(recorded)
    assert stats["frames_sent"]["hyperliquid"] == len(recorded) + 9


async def test_spot_capture_when_combined_subscriber_then_recorded_lines_of_its_stream_only(series, start_sim, http):
    path = shared_data("hftbacktest", "spot_btcusdt_20240808.gz")
    wanted = [body for _, body in capture_lines(path) if body.startswith(b'{"stream":"btcusdt@trade"')][:300]
    _, base = await start_sim(series, speed=6000.0, captures=[("binance_spot", path)])
    got = []
    async with http.ws_connect(f"{base}/binance_spot/stream?streams=btcusdt@trade") as ws:
        while len(got) < len(wanted):
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            got.append(msg.data.encode())
    assert got == wanted


async def test_usdm_capture_when_raw_subscriber_then_recorded_payload_bytes(series, start_sim, http):
    path = shared_data("hftbacktest", "usdm_btcusdt_20240718.gz")
    prefix = b'{"stream":"btcusdt@trade","data":'
    wanted = [body[len(prefix) : -1] for _, body in capture_lines(path) if body.startswith(prefix)][:200]
    sim, base = await start_sim(series, speed=6000.0, captures=[("binance_usdm", path)])
    got = []
    async with http.ws_connect(f"{base}/ws/btcusdt@trade") as ws:
        while len(got) < len(wanted):
            got.append((await ws.receive(timeout=5)).data.encode())
    assert got == wanted
    await eventually(lambda: sim.stats.capture_frames["binance_usdm"] == 11413, timeout=10, what="the whole capture")
