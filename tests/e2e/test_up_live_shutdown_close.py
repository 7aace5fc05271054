"""`on_shutdown: close_positions` for live accounts: `ticktape up --live`'s stop flattens them at
their venue before it exits. Risk and execution run under `up --live --yes` (each its own process,
on an authorized NATS server) against `ticktape venue-sim` holding a Binance USDT-M account and a
Hyperliquid sub-account; each account opens a position at the venue (approvals published with
risk's credential), then the stack is stopped: the shutdown's reduce-only orders go to the venues
through execution's gateway, and the stop waits for the venues' fills on the log before it stops
execution (the venue made slow for the closing orders: 8 s each, beyond the gateway's own stop
grace). Afterwards the simulator's own accounts hold nothing, the log's positions are flat, and
the session is recorded `stopped` (drained)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_live_session import BN_KEY_VAR, BN_SECRET_VAR, HL_VAR, WARM_BARS, Keys, events, of, venue_positions
from tests.e2e.test_live_session import venue_sim as live_venue_sim
from tests.support.live_venue import approval, bar_event
from tests.support.recorded import OCTOBOT_BTC, convert_octobot
from ticktape.bus.publisher import publish_batch
from ticktape.events import (
    AccountReconciled,
    Event,
    OrderSubmitted,
    PositionUpdated,
    SessionStopped,
    ShutdownRequested,
    VenueFill,
)
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.stack import Stack, wait_for
from venuesim.bars import load_dir

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def config(keys: Keys) -> str:
    return f"""
supervisor: {{service_grace_s: 10, shutdown_timeout_s: 30}}
accounts:
  - name: bn-live
    mode: live
    venue: binance_usdm
    network: testnet
    api_key_env: {BN_KEY_VAR}
    api_secret_env: {BN_SECRET_VAR}
    initial_equity: 10000
    on_shutdown: close_positions
  - name: hl-live
    mode: live
    venue: hyperliquid
    network: testnet
    wallet_key_env: {HL_VAR}
    account_address: "{keys.user}"
    vault_address: "{keys.sub}"
    initial_equity: 10000
    on_shutdown: close_positions
"""


def publish(auth: AuthorizedNats, role: str, found: list[Event]) -> None:
    async def send() -> None:
        nc = await auth.connect(role)
        try:
            await publish_batch(nc.jetstream(), [(e, {}) for e in found])
        finally:
            await nc.close()

    asyncio.run(send())


def trading_faults(url: str, **settings: Any) -> None:
    async def post() -> None:
        async with aiohttp.ClientSession() as http, http.post(f"{url}/_sim/trading_fault", json=settings) as resp:
            assert resp.status == 200, await resp.text()

    asyncio.run(post())


def test_up_live_stop_closes_the_live_positions_at_the_venue_before_it_exits(
    tmp_path: Path, nats_auth: AuthorizedNats, e2e_dsn: str
) -> None:
    keys = Keys()
    series = load_dir(convert_octobot(tmp_path / "mine", OCTOBOT_BTC))["BTCUSDT"]
    price = float(series.fields(WARM_BARS)[1])  # the bar in progress when the simulator starts
    opens: list[Any] = [
        approval(bar_event(series, WARM_BARS - 1, "binance_usdm", "BTCUSDT"), "bn-live", "buy", 0.002, price, "bn"),
        approval(bar_event(series, WARM_BARS - 1, "hyperliquid", "BTC"), "hl-live", "sell", 0.002, price, "hl"),
    ]
    with live_venue_sim(tmp_path, keys) as url:
        env = {**keys.env(), "TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)}
        stack = Stack(tmp_path / "home", nats_url=nats_auth.url, pg_dsn=e2e_dsn, venue_sim=url,
                      config_yaml=config(keys), extra_env=env, services=("risk", "execution"),
                      args=("--live", "--yes"))  # fmt: skip
        try:
            wait_for(lambda: stack.state() == "running", timeout=90, what="risk and execution running live")
            for account in ("bn-live", "hl-live"):
                wait_for(lambda a=account: of(events(nats_auth), AccountReconciled, a), timeout=90,
                         what=f"{account} reconciled", interval=1)  # fmt: skip
            publish(nats_auth, "risk", opens)

            def opened() -> bool:
                found = events(nats_auth)
                return all(of(found, VenueFill, a) for a in ("bn-live", "hl-live"))

            wait_for(opened, timeout=60, what="both positions opened at the venues", interval=1)
            held = venue_positions(url, keys)
            assert held["bn-live"]["BTCUSDT"][0] == 0.002 and held["hl-live"]["BTC"][0] == -0.002
            # a slow venue: each order exists only 8 s after it arrives (longer than the gateway's
            # stop grace), so a stop that did not wait for the venues' fills would lose them
            trading_faults(url, latency_s=8)
            assert stack.stop(timeout=120) == 0, stack.logs()
        finally:
            stack.stop()
        at_venue = venue_positions(url, keys)

    assert at_venue == {"bn-live": {}, "hl-live": {}}, at_venue  # flat at the venues
    found = events(nats_auth)
    [stopped] = of(found, SessionStopped)
    assert stopped.reason == "stopped", stack.logs()
    assert sorted((e.account, e.action) for e in of(found, ShutdownRequested)) == [
        ("bn-live", "close_positions"), ("hl-live", "close_positions")]  # fmt: skip
    closes = [o for o in of(found, OrderSubmitted) if o.reason == "close_positions"]
    assert sorted((o.account, o.side, o.mode, o.reduce_only) for o in closes) == [
        ("bn-live", "sell", "live", True), ("hl-live", "buy", "live", True)]  # fmt: skip
    assert len(of(found, VenueFill, "bn-live")) == len(of(found, VenueFill, "hl-live")) == 2  # open, close
    last = {(p.account, p.symbol): p.quantity for p in of(found, PositionUpdated)}
    assert last == {("bn-live", "BTCUSDT"): 0.0, ("hl-live", "BTC"): 0.0}
