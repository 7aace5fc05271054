"""`ticktape up` with its embedded nats-server: authorization is on by default, a credentials file
per role under <home>/creds (0600 in a 0700 directory), generated once and reused on the next
start, and no password ever in a process's argv or environment, in a log, in the stream or in the
session record: only in the credentials files and the server's own 0600 configuration."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import nats.errors
import pytest

from ticktape import subjects
from ticktape.bus import creds
from ticktape.bus.permissions import ADMIN, roles
from ticktape.events import SessionStarted
from ticktape.testing.auth import anonymous_reply
from ticktape.testing.bus import stream_events
from ticktape.testing.stack import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NO_VENUE = "http://127.0.0.1:9"  # signal alone needs no venue


def start(home: Path, pg_dsn: str) -> Stack:
    """`ticktape up --services signal` on a free port (nats://127.0.0.1:0: the embedded server)."""
    return Stack(
        home, nats_url="nats://127.0.0.1:0", pg_dsn=pg_dsn, venue_sim=NO_VENUE, config_yaml="{}\n", services=["signal"]
    )


def served_url(home: Path) -> str | None:
    """The embedded server's URL, as `ticktape up` writes it into every credentials file."""
    try:
        return json.loads(creds.path_for(home / "creds", ADMIN).read_text())["url"] or None
    except (OSError, ValueError, KeyError):
        return None


def passwords(home: Path) -> dict[str, str]:
    return {role: creds.load(creds.path_for(home / "creds", role)).password for role in roles()}


def session_starts(home: Path) -> list[SessionStarted] | None:
    """The session records, read with the admin's credential from the server the home's
    credentials point at (None while it does not answer yet)."""

    async def read(url: str) -> list[SessionStarted]:
        from ticktape.replay.catalog import connect

        nc = await connect(url, creds.path_for(home / "creds", ADMIN))
        try:
            events = await stream_events(nc.jetstream(), subjects.EVENTS_STREAM, [subjects.ALL_SESSIONS])
            return [e for e in events if isinstance(e, SessionStarted)]
        finally:
            await nc.close()

    url = served_url(home)
    if url is None:
        return None
    try:
        return asyncio.run(read(url))
    except (OSError, nats.errors.Error):
        return None


def process_text(pid: int) -> str:
    """What others on the host can read of a process: its argv and its environment."""
    proc = Path(f"/proc/{pid}")
    return (proc / "cmdline").read_bytes().decode(errors="replace") + (proc / "environ").read_bytes().decode(
        errors="replace"
    )


def test_up_secures_its_embedded_server_and_keeps_every_secret_out_of_sight(tmp_path, pg_server):
    home = tmp_path / "home"
    stack = start(home, pg_server.dsn)
    try:
        starts = wait_for(lambda: session_starts(home), timeout=30, what="the session record")
        url = served_url(home)
        assert url is not None
        signal_pid = wait_for(lambda: stack.pid("signal"), timeout=30, what="signal started")

        directory = home / "creds"
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert sorted(p.name for p in directory.iterdir()) == sorted(f"{r}.json" for r in roles())
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in directory.iterdir())
        assert anonymous_reply(url) == "-ERR 'Authorization Violation'"

        secrets = passwords(home)
        (server_ports,) = (home / "nats" / "ports").glob("nats-server_*.ports")
        server_pid = int(server_ports.stem.rsplit("_", 1)[1])
        for pid in (stack.process.pid, signal_pid, server_pid):
            seen = process_text(pid)
            assert not [role for role, pw in secrets.items() if pw in seen], f"a password is visible in /proc/{pid}"
        assert f"TICKTAPE_NATS__CREDS={directory / 'signal.json'}" in process_text(signal_pid)
        assert not [role for role, pw in secrets.items() if pw in starts[0].config_json]

        stop = subprocess.run(
            [sys.executable, "-m", "ticktape", "stop", "--nats", url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=home,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}, "TICKTAPE_HOME": str(home)},
        )
        assert stop.returncode == 0, stop.stderr  # operator.json found under <home>/creds
    finally:
        assert stack.stop() == 0, stack.logs()
    # nowhere else under the home either: logs, the stack's output, the JetStream store
    elsewhere = [
        p for p in home.rglob("*") if p.is_file() and p.parent != home / "creds" and p.name != "nats-server.conf"
    ]
    assert elsewhere and not [p for p in elsewhere if any(pw.encode() in p.read_bytes() for pw in secrets.values())]

    again = start(home, pg_server.dsn)
    try:
        wait_for(lambda: len(session_starts(home) or ()) == 2, timeout=30, what="the second session")
        wait_for(lambda: again.pid("signal"), timeout=30, what="signal started again")
        assert passwords(home) == secrets, "the credentials of a home are generated once"
    finally:
        assert again.stop() == 0, again.logs()
