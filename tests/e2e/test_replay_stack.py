"""Record real sessions of the whole stack on the venue simulator (real Binance 1m bars), then
prove with `ticktape replay <session> --verify` (run as a process) that every output replays byte
for byte: for a clean session, and for the next one on the same stream, during which every
decision service was SIGKILLed and restarted by the supervisor. The server admits only
ticktape's roles: the stacks and the session tools each connect with their own credential."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.recorded import convert_octobot
from ticktape import registry, subjects
from ticktape.bus.permissions import ADMIN
from ticktape.bus.reader import read_range
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
symbol_registry: {top_n: 3}
telemetry: {log_level: info}
"""
CORES = tuple(info.name for info in registry.of_kind("core"))  # in pipeline order


@pytest.fixture
def bars_dir(tmp_path: Path) -> Path:
    return convert_octobot(tmp_path / "bars")


def fills(auth) -> int:
    async def count() -> int:
        nc = await auth.connect(ADMIN)
        try:
            return len([m async for m in read_range(nc.jetstream(), subjects.EVENTS_STREAM, [subjects.ALL_FILLS])])
        except Exception as exc:  # the stream is created by the first process that starts
            if "not found" in str(exc).lower():
                return 0
            raise
        finally:
            await nc.close()

    return asyncio.run(count())


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=120)


def sessions(auth) -> list[dict]:
    done = ticktape("sessions", "--nats", auth.url, "--creds", auth.creds(ADMIN), "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def verify(auth, source: str) -> dict:
    done = ticktape("replay", source, "--verify", "--json", "--nats", auth.url, "--creds", auth.creds(ADMIN))
    result = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}
    assert done.returncode == 0 and result["ok"], result
    return result


def test_sessions_replay_byte_for_byte_also_after_sigkill_and_restart(tmp_path, nats_auth, e2e_dsn, bars_dir):
    bus = nats_auth
    creds = {"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)}
    sim = VenueSim(bars_dir, tmp_path, speed=600)
    try:
        first = Stack(
            tmp_path / "home", nats_url=bus.url, pg_dsn=e2e_dsn, venue_sim=sim.url, config_yaml=CONFIG, extra_env=creds
        )
        wait_for(lambda: fills(bus) >= 1, timeout=60, what="a first fill")
        assert first.stop() == 0, first.logs()
        # The same stream and simulator (its clock runs on): the services rebuild their state.
        second = Stack(
            tmp_path / "home", nats_url=bus.url, pg_dsn=e2e_dsn, venue_sim=sim.url, config_yaml=CONFIG, extra_env=creds
        )
        before = fills(bus)
        wait_for(lambda: fills(bus) > before, timeout=60, what="fills in the second session")
        for service in CORES:
            old = second.kill(service)
            wait_for(
                lambda service=service, old=old: (
                    (second.pid(service) or old) != old and second.alive(second.pid(service))
                ),
                timeout=30,
                what=f"{service} restarted",
            )
        after_kills = fills(bus)
        wait_for(lambda: fills(bus) > after_kills, timeout=60, what="fills after the restarts")
        assert second.stop() == 0, second.logs()
    finally:
        sim.stop()

    s1, s2 = sessions(bus)
    assert s1["status"] == s2["status"] == "stopped", (s1, s2)  # both drained before stopping
    assert s1["config_hash"] == s2["config_hash"] and s2["start_seq"] > s1["end_seq"]
    for session in (s1, s2):
        result = verify(bus, session["session_id"])
        counts = {f["family"]: f["recorded"] for f in result["families"]}
        assert counts["signals"] and counts["fills"] and counts["positions"], counts
        assert result["cores"] == list(CORES) and not result["unconfirmed"]
        # each core's state snapshots (each stack's clean stop took one; the second stack's cores
        # restored the first's) equal the replayed state at their sequences
        assert sorted(result["snapshots"]["checked"]) == sorted(CORES), result["snapshots"]

    path = tmp_path / "s2.ttsession.gz"
    done = ticktape("export", s2["session_id"], str(path), "--nats", bus.url, "--creds", bus.creds(ADMIN))
    assert done.returncode == 0, done.stderr
    verify(bus, str(path))

    # the audit archiver ran as part of each stack and stopped last: its hash chain verifies for
    # both sessions, stop record included, each range ending on a checkpoint signed with the key
    # it made under home; and a fill traces back to its bar
    public_key = tmp_path / "home" / "keys" / "audit-ed25519.pub"
    for session in (s1, s2):
        done = ticktape(
            "audit", "verify", session["session_id"], "--dsn", e2e_dsn, "--json", "--public-key", str(public_key)
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "no session.stopped" not in done.stdout
        assert json.loads(done.stdout)["streams"][0]["signed"] >= 1
    fill_id = _first_fill_id(bus)
    done = ticktape("audit", "trace", fill_id, "--dsn", e2e_dsn, "--json")
    assert done.returncode == 0, done.stderr
    assert "md.bar.closed" in done.stdout


def _first_fill_id(auth) -> str:
    from ticktape.events import OrderFilled
    from ticktape.events.codec import decode

    async def find() -> str:
        nc = await auth.connect(ADMIN)
        try:
            async for msg in read_range(nc.jetstream(), subjects.EVENTS_STREAM, [subjects.ALL_FILLS]):
                event = decode(msg.data)
                if isinstance(event, OrderFilled):
                    return event.event_id
        finally:
            await nc.close()
        raise AssertionError("no fill recorded")

    return asyncio.run(find())
