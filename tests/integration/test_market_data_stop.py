"""The market-data process stops on SIGTERM at once, even with its shard on a quiet socket (the
simulator in real time: a frame a minute), instead of being killed by the supervisor."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from tests.integration.test_market_data_faults import universe
from tests.support.recorded import OCTOBOT_BTC, convert_octobot
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings, SupervisorSettings
from ticktape.testing import eventually
from ticktape.testing.stack import VenueSim

pytestmark = pytest.mark.timeout(120)
VENUE, SYMBOL = "binance_usdm", "BTCUSDT"


async def test_market_data_exits_0_on_sigterm_within_the_supervisors_grace(tmp_path, nats_url, nats_client):
    sim = VenueSim(convert_octobot(tmp_path / "bars", OCTOBOT_BTC), tmp_path, speed=1.0)
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await publish_batch(js, [(universe(VENUE, (SYMBOL,)), {})])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update(TICKTAPE_NATS_URL=nats_url, TICKTAPE_VENUE_SIM=sim.url, TICKTAPE_HOME=str(tmp_path / "home"))
    err_log = tmp_path / "market_data.err"
    with open(err_log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "services.market_data"], env=env, stderr=err)
    try:
        # on a socket that stays quiet: the simulator in real time has no closed bar to send yet
        await eventually(lambda: b'"shard connected"' in err_log.read_bytes(), timeout=60, what="the shard connected")
        proc.send_signal(signal.SIGTERM)
        grace = SupervisorSettings().service_grace_s
        code = await asyncio.to_thread(_wait, proc, grace)
        log = err_log.read_text(errors="replace")[-3000:]
        assert code == 0, log
        assert proc.poll() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sim.stop()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
