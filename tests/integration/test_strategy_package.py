"""A strategy in a separate distribution, installed next to ticktape (never into the venv) and run
by configuration alone (issue #10): a what-if replay and its verification through the `ticktape`
CLI, and the signal service on a real nats-server, each in a subprocess that has the package's
unpacked wheel on PYTHONPATH, so importlib.metadata finds its `ticktape.strategies` entry point.
Without that directory the same commands fail, naming the unknown kind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest
import yaml

from tests.support.bars import wave_bars
from tests.support.strategy_package import DIST, KIND, build_and_install, reference_sides
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import BarClosed, SignalGenerated
from ticktape.events.codec import decode
from ticktape.replay.fileformat import SessionFile, write_session_file
from ticktape.replay.simulate import simulate_session
from ticktape.testing.bus import stream_events
from ticktape.testing.waiting import eventually

PERIOD = 10
STRATEGIES = {
    "signal": {"strategies": [{"kind": KIND, "name": "brk", "params": {"period": PERIOD}}, {"kind": "ema_cross"}]}
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_install(tmp_path_factory.mktemp("strategy_package"))


def bars() -> list[BarClosed]:
    both = wave_bars("BTCUSDT", 160) + wave_bars("ETHUSDT", 160, period=28)
    return sorted(both, key=lambda b: (b.open_time, b.symbol))


def env(site: Path | None, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_") and k != "PYTHONPATH"}
    if site is not None:
        out["PYTHONPATH"] = str(site)
    return {**out, **extra}


def ticktape(args: list[str], site: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticktape", *args], cwd=cwd, env=env(site), capture_output=True, text=True, timeout=300
    )


def test_the_package_is_installed_only_in_the_overlay(site: Path) -> None:
    assert (site / "tt_demo_strategies" / "breakout.py").exists()
    assert any(p.name.startswith("tt_demo_strategies-0.1.0.dist-info") for p in site.iterdir())
    probe = "from importlib.metadata import entry_points as e; print([x.value for x in e(group='ticktape.strategies')])"
    with_overlay = subprocess.run([sys.executable, "-c", probe], env=env(site), capture_output=True, text=True)
    without = subprocess.run([sys.executable, "-c", probe], env=env(None), capture_output=True, text=True)
    assert with_overlay.stdout.strip() == "['tt_demo_strategies.breakout:Breakout']", with_overlay.stderr
    assert without.stdout.strip() == "[]", f"{DIST} leaked into the venv"


def test_a_what_if_runs_the_installed_strategy_and_its_session_verifies(site: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.ttsession.gz"
    meta, records = simulate_session(bars(), {}, "20250101T000000Z-pkg000")
    write_session_file(source, meta, records)
    other = tmp_path / "plugin.yaml"
    other.write_text(yaml.safe_dump(STRATEGIES))
    out = tmp_path / "out"

    done = ticktape(["replay", str(source), "--config", str(other), "--out", str(out)], site, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (whatif,) = out.glob("*.ttsession.gz")
    with SessionFile(whatif) as f:
        events = [decode(r.data) for r in f.records()]
    got = [
        (s.symbol, s.bar_open_time, s.side) for s in events if isinstance(s, SignalGenerated) and s.strategy == "brk"
    ]
    assert len(got) >= 4 and got == reference_sides(bars(), PERIOD)
    assert any(isinstance(s, SignalGenerated) and s.strategy == "ema_cross_9_21" for s in events)

    verified = ticktape(["replay", str(whatif), "--verify"], site, tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    refused = ticktape(["replay", str(whatif), "--verify"], None, tmp_path)
    assert refused.returncode != 0 and f"unknown strategy kind '{KIND}'" in refused.stdout + refused.stderr


async def _publish(url: str, events: list[BarClosed]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, NatsSettings(url=url))
        await publish_batch(js, [(e, {}) for e in events])
    finally:
        await nc.close()


async def _signals(url: str) -> list[SignalGenerated]:
    nc = await nats.connect(url)
    try:
        return [
            e for e in await stream_events(nc.jetstream(), "TICKTAPE", ["signals.>"]) if isinstance(e, SignalGenerated)
        ]
    finally:
        await nc.close()


def test_the_signal_service_runs_the_installed_strategy_by_config(site: Path, nats_url: str, tmp_path: Path) -> None:
    config = tmp_path / "ticktape.yaml"
    config.write_text(yaml.safe_dump(STRATEGIES))
    asyncio.run(_publish(nats_url, bars()))
    want = reference_sides(bars(), PERIOD)
    extra = {"TICKTAPE_CONFIG": str(config), "TICKTAPE_NATS_URL": nats_url, "TICKTAPE_HOME": str(tmp_path / "home")}
    log = tmp_path / "signal.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.signal"], cwd=tmp_path, env=env(site, **extra), stdout=err, stderr=err
        )
        try:

            async def all_signals() -> bool:
                assert proc.poll() is None, log.read_text()
                return len([s for s in await _signals(nats_url) if s.strategy == "brk"]) >= len(want)

            asyncio.run(eventually(all_signals, timeout=90, what="the breakout's signals"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    got = [(s.symbol, s.bar_open_time, s.side) for s in asyncio.run(_signals(nats_url)) if s.strategy == "brk"]
    assert got == want

    # the same configuration without the package installed is a config error (exit 78), naming the kind
    refused = subprocess.run(
        [sys.executable, "-m", "services.signal"], cwd=tmp_path, env=env(None, **extra), capture_output=True, text=True
    )
    assert refused.returncode == 78 and f"signal.strategies[0].kind: unknown strategy kind '{KIND}'" in refused.stderr
