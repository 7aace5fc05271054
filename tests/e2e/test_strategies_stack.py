"""The Show of managed strategies: while `ticktape up` runs on the venue simulator (real Binance 1m
bars), `ticktape strategies add` makes the running signal service signal a new strategy on the
first bar after the change (warmed up from the bars it had seen) and risk trades it on the
account the change names (paper-main, whose `strategies` does not list it), `ticktape strategies
pause` stops it from the first bar after the pause, and `ticktape replay SESSION --verify` of that
session is byte identical: the log holds the changes, so the replay runs exactly that set."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.recorded import convert_octobot
from ticktape import subjects
from ticktape.bus.permissions import ADMIN, OPERATOR
from ticktape.bus.reader import read_range
from ticktape.events import BarClosed, OrderApproved, OrderRejected, SignalGenerated, StrategyChanged
from ticktape.events.codec import decode
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
symbol_registry: {top_n: 3}
telemetry: {log_level: info}
"""


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=120)


def log(auth) -> list[tuple[int, object]]:
    """(stream seq, event) of the bars, signals, strategy changes and risk's decisions so far."""

    async def read() -> list[tuple[int, object]]:
        nc = await auth.connect(ADMIN)
        try:
            filters = [subjects.bars(timeframe="1m"), subjects.ALL_SIGNALS, subjects.ALL_STRATEGIES, subjects.ALL_RISK]
            return [
                (m.metadata.sequence.stream, decode(m.data))
                async for m in read_range(nc.jetstream(), subjects.EVENTS_STREAM, filters)
            ]
        except Exception as exc:  # the stream is created by `ticktape up`
            if "not found" in str(exc).lower():
                return []
            raise
        finally:
            await nc.close()

    return asyncio.run(read())


def signals(auth, strategy: str) -> list[tuple[int, SignalGenerated]]:
    return [(s, e) for s, e in log(auth) if isinstance(e, SignalGenerated) and e.strategy == strategy]


def change_seq(auth, action: str) -> int:
    (seq,) = [s for s, e in log(auth) if isinstance(e, StrategyChanged) and e.action == action]
    return seq


def test_strategies_added_and_paused_while_running_take_effect_within_a_bar_and_replay_identically(
    tmp_path: Path, nats_auth, e2e_dsn
) -> None:
    bus = nats_auth
    sim = VenueSim(convert_octobot(tmp_path / "bars"), tmp_path, speed=300)
    home = tmp_path / "home"
    cli = ("--config", str(home / "ticktape.yaml"), "--dsn", e2e_dsn, "--nats", bus.url, "--creds", bus.creds(OPERATOR))
    try:
        stack = Stack(
            home,
            nats_url=bus.url,
            pg_dsn=e2e_dsn,
            venue_sim=sim.url,
            config_yaml=CONFIG,
            extra_env={"TICKTAPE_NATS__CREDS_DIR": str(bus.creds_dir)},
        )
        wait_for(lambda: len(signals(bus, "ema_cross_9_21")) >= 3, timeout=90, what="signals of the config")

        done = ticktape(
            "strategies",
            "add",
            "fast_cross",
            "--kind",
            "ema_cross",
            "--params",
            '{"fast": 2, "slow": 5}',
            "--account",
            "paper-main",
            *cli,
        )
        assert done.returncode == 0, done.stderr + stack.logs()
        added = change_seq(bus, "add")
        wait_for(lambda: signals(bus, "fast_cross"), timeout=60, what="the added strategy's first signal")
        # within a bar: its first signal answers the first bar closed after the change (warmed up
        # from what the service had seen, an ema_cross has a side at once)
        bars_after = [(s, e) for s, e in log(bus) if isinstance(e, BarClosed) and s > added]
        _, first = signals(bus, "fast_cross")[0]
        assert first.causation_id == bars_after[0][1].event_id, (first, bars_after[:3])  # type: ignore[union-attr]

        wait_for(lambda: len(signals(bus, "fast_cross")) >= 3, timeout=60, what="more signals of fast_cross")
        done = ticktape("strategies", "pause", "fast_cross", *cli)
        assert done.returncode == 0, done.stderr
        paused = change_seq(bus, "pause")
        ours = len(signals(bus, "ema_cross_9_21"))
        wait_for(lambda: len(signals(bus, "ema_cross_9_21")) >= ours + 2, timeout=90, what="signals while paused")
        assert stack.stop() == 0, stack.logs()
    finally:
        sim.stop()

    # nothing from the paused strategy caused by a bar after the pause
    seqs = {e.event_id: s for s, e in log(bus) if isinstance(e, BarClosed)}  # type: ignore[union-attr]
    after_pause = [e for _, e in signals(bus, "fast_cross") if seqs.get(e.causation_id or "", 0) > paused]
    assert after_pause == []
    # risk decided on its signals for the account the change named, and for no other
    decided = [e for _, e in log(bus) if isinstance(e, OrderApproved | OrderRejected) and e.strategy == "fast_cross"]
    assert decided and {e.account for e in decided} == {"paper-main"}

    done = ticktape("strategies", "list", "--json", "--config", str(home / "ticktape.yaml"), "--dsn", e2e_dsn)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["id"], row["status"], row["version"], row["account"]) == ("fast_cross", "paused", 2, "paper-main")

    done = ticktape("sessions", "--nats", bus.url, "--creds", bus.creds(ADMIN), "--json")
    (session,) = [json.loads(line) for line in done.stdout.splitlines()]
    done = ticktape(
        "replay", session["session_id"], "--verify", "--json", "--nats", bus.url, "--creds", bus.creds(ADMIN)
    )
    result = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}
    if done.returncode != 0 or not result["ok"]:
        pytest.fail(json.dumps({k: v for k, v in result.items() if k != "dependencies"})[:8000])
    assert not result["unconfirmed"]
