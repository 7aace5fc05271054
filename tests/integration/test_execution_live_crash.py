"""SIGKILL of the execution process after the venue accepted a live order and before its answer
reached the process (Binance USDT-M, and a Hyperliquid sub-account): on restart the gateway finds
the order by its client order id instead of placing it again; no duplicate order, no lost fill,
and the session still replays byte for byte.

The execution service runs as a real process (`python -m services.execution`, with execution's
bus credential and the account's credentials in its environment only, `live` set as `ticktape up
--live` sets it) against a real nats-server with ticktape's authorization and the venue
simulator. Between them, an in-test proxy forwards every request and the user stream; while
`hold` is on it forwards the placement (POST /fapi/v1/order, POST /exchange) to the simulator
(which accepts and fills the order and pushes the fill on the user stream) but keeps the answer
back: the process is killed in that window, with the fill reported and the placement's answer
never received."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from nats.js import JetStreamContext
from yarl import URL

from tests.integration.test_venue_sim import series, start_sim
from tests.support.live_trading import BINANCE, HYPERLIQUID, Venue
from tests.support.live_venue import (
    AGENT_ENV,
    AGENT_KEY,
    KEY,
    KEY_ENV,
    NOW_BAR,
    SECRET,
    SECRET_ENV,
    admin_js,
    approval,
    bar_event,
    events_of,
    live_sim,
    publish,
    reconciled,
    records,
    verify,
)
from ticktape.events import OrderFilled, OrderSubmitted, PositionUpdated, VenueFill, VenueOrderAccepted
from ticktape.testing import eventually
from ticktape.testing.auth import AuthorizedNats

__all__ = ["admin_js", "series", "start_sim"]  # fixtures used here

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]


class HoldingProxy:
    """Forwards HTTP requests and WebSockets to `target`; while `hold` is set, a new-order POST is
    forwarded, its answer kept back until `release` (the caller never gets it)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.hold = True
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.http: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.http is not None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._bridge(request)
        headers = {k: v for k, v in request.headers.items() if k in ("X-MBX-APIKEY", "Content-Type")}
        url = URL(self.target + request.raw_path, encoded=True)
        async with self.http.request(request.method, url, data=await request.read(), headers=headers) as resp:
            body = await resp.read()
            status, kind = resp.status, resp.content_type
        placing = request.path.endswith("/fapi/v1/order") or request.path.endswith("/hyperliquid/exchange")
        if self.hold and request.method == "POST" and placing:
            self.held.set()
            await self.release.wait()
        return web.Response(status=status, body=body, content_type=kind)

    async def _bridge(self, request: web.Request) -> web.StreamResponse:
        assert self.http is not None
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        async with self.http.ws_connect("ws" + self.target.removeprefix("http") + request.raw_path) as upstream:

            async def pump() -> None:
                async for msg in upstream:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await downstream.send_str(msg.data)

            task = asyncio.create_task(pump())
            try:
                async for msg in downstream:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await upstream.send_str(msg.data)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return downstream


@contextlib.asynccontextmanager
async def proxy_to(target: str) -> AsyncIterator[tuple[HoldingProxy, str]]:
    proxy = HoldingProxy(target)
    async with aiohttp.ClientSession() as http:
        proxy.http = http
        runner = web.AppRunner(proxy.app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            yield proxy, f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            proxy.release.set()
            await runner.cleanup()


def start_execution(
    nats_auth: AuthorizedNats, venue_url: str, account: dict[str, Any], home: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`python -m services.execution` as `ticktape up --live` starts it: its config file, `live`
    set (TICKTAPE_LIVE), its bus credential, and the live account's credentials in its environment."""
    config = home / "ticktape.yaml"
    config.write_text(json.dumps({"venue_sim": venue_url, "accounts": [account]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update({
        "TICKTAPE_CONFIG": str(config), "TICKTAPE_LIVE": "true", "TICKTAPE_HOME": str(home),
        "TICKTAPE_NATS_URL": nats_auth.url, "TICKTAPE_NATS__CREDS": nats_auth.creds("execution"),
        KEY_ENV: KEY, SECRET_ENV: SECRET, AGENT_ENV: AGENT_KEY,
    })  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.execution"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.mark.parametrize("venue", [BINANCE, HYPERLIQUID], ids=lambda v: v.name)
async def test_sigkill_between_the_venues_acceptance_and_its_answer_finds_the_order_on_restart(
    venue: Venue, series, start_sim, nats_auth: AuthorizedNats, admin_js: JetStreamContext, tmp_path: Path
):
    sim, base, moved = await live_sim(series, start_sim)
    btc = moved["BTCUSDT"]
    account = str(venue.account["name"])
    bars = [bar_event(btc, i, venue.name, venue.symbol) for i in range(NOW_BAR - 2, NOW_BAR)]
    price = float(btc.fields(NOW_BAR)[1])
    home, log = tmp_path / "home", tmp_path / "execution.log"
    home.mkdir()
    async with proxy_to(base) as (proxy, proxy_url):
        first = start_execution(nats_auth, proxy_url, venue.account, home, log)
        try:
            await eventually(
                lambda: venue.listening(base), timeout=60, what="the first execution process on its user stream"
            )
            await reconciled(admin_js, account)  # the clean venue account, before any order
            await publish(nats_auth, "market_data", bars)
            await publish(nats_auth, "risk", [approval(bars[-1], account, "buy", 0.01, price, "crash-buy")])
            await eventually(proxy.held.is_set, timeout=30, what="the order accepted at the venue, its answer held")
            await eventually(
                lambda: events_of(admin_js, VenueFill, account), timeout=30, what="the fill on the user stream"
            )
        finally:
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 30)
        assert first.returncode == -signal.SIGKILL
        assert await events_of(admin_js, VenueOrderAccepted) == []  # the answer never reached the log
        [order] = await events_of(admin_js, OrderSubmitted, account)
        cid = venue.client_id(order.order_id)
        assert order.client_order_id == cid and len(await venue.placements(base, cid)) == 1

        proxy.hold = False
        proxy.release.set()
        second = start_execution(nats_auth, proxy_url, venue.account, home, log)
        try:

            async def recovered() -> list[VenueOrderAccepted] | None:
                found = await events_of(admin_js, VenueOrderAccepted, account)
                return found or None

            [accepted] = await eventually(recovered, timeout=60, what="the order found by client id on restart")
            await eventually(
                lambda: events_of(admin_js, PositionUpdated, account), timeout=30, what="the position of the fill"
            )
            # reconciled again at the restart, after the recovered order and its fill: nothing differs
            again = (await reconciled(admin_js, account, 2))[1]
            assert (again.reason, again.differences) == ("start", 0)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 30)
        assert second.returncode == 0, log.read_text()[-3000:]

    assert (accepted.order_id, accepted.client_order_id, accepted.recovered, accepted.status) == (
        order.order_id, cid, True, "filled")  # fmt: skip
    assert len(await venue.placements(base, cid)) == 1  # placed once, never again
    assert await venue.lookups(base, cid), "the restarted gateway asked the venue by client order id"
    fills = await events_of(admin_js, OrderFilled, account)
    assert [f.order_id for f in fills] == [order.order_id] and fills[0].quantity == 0.01  # no fill lost or doubled
    [*_, position] = await events_of(admin_js, PositionUpdated, account)
    assert await venue.position(base) == pytest.approx(position.quantity) == 0.01
    recs = await records(admin_js)
    output = log.read_text()
    for secret in venue.secrets:
        assert not any(secret.encode() in r.data for r in recs) and secret not in output
    verify({"live": True, "venue_sim": base, "accounts": [venue.account]}, recs)
