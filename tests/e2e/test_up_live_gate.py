"""`ticktape up --live`, the gate before real money, run as a process: the countdown (5 to 1, one
line a second on stdout, the user-facing contract), Ctrl-C or SIGTERM during it (nothing starts:
no session, no service, the embedded server stopped; exit 0), `--yes` (no countdown), `--live`
without a credential (exit 78 naming the variable), on a bus that admits clients without
credentials (exit 78), and a live account without `--live` (exit 78). What happens after the
countdown depends on this build: while it cannot trade live (live.can_trade_live: execution's
live path and reconciliation on start) up stops there (exit 69, nothing started); once it can, the
session starts with `live` on, on the venue simulator holding those accounts, and only execution
holds the credentials. The venue credentials
planted in the environment never appear in stdout, stderr, any file under the home, the
session record or a process's argv."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import eth_account
import pytest

from tests.support.recorded import OCTOBOT_BTC, convert_octobot
from ticktape import config as cfg
from ticktape import live, registry, subjects
from ticktape.bus.permissions import ADMIN
from ticktape.events import SessionStarted
from ticktape.infra.nats_server import NatsServer
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.bus import stream_events
from ticktape.testing.stack import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NO_VENUE = "http://127.0.0.1:9"  # --venue-sim: every live endpoint is on loopback; the gate calls none
NO_PG = "postgresql://nobody@127.0.0.1:9/none"  # where nothing may start, nothing may connect to it either
HL_VAR, BN_KEY_VAR, BN_SECRET_VAR = "TT_E2E_HL_WALLET_KEY", "TT_E2E_BN_API_KEY", "TT_E2E_BN_API_SECRET"
CONFIG = f"""
venues:
  binance_usdm: {{network: testnet}}
accounts:
  - {{name: paper-main}}
  - name: hl-live
    mode: live
    venue: hyperliquid
    network: testnet
    wallet_key_env: {HL_VAR}
    vault_address: "0x{"cd" * 20}"
    limits: {{max_drawdown: 0.1, max_daily_loss: 0.05, on_breach: flatten}}
  - name: bn-live
    mode: live
    venue: binance_usdm
    api_key_env: {BN_KEY_VAR}
    api_secret_env: {BN_SECRET_VAR}
"""
COUNTDOWN = re.compile(r"^ticktape up: live trading in (\d+)\.\.\.$", re.M)


def planted() -> dict[str, str]:
    """Fresh venue credentials (a usable Hyperliquid key, Binance's key and secret) for one run."""
    return {
        HL_VAR: "0x" + secrets.token_hex(32),
        BN_KEY_VAR: secrets.token_hex(24),
        BN_SECRET_VAR: secrets.token_hex(32),
    }


def up(home: Path, nats_url: str, env: dict[str, str], *args: str, pg_dsn: str = NO_PG, creds_dir: Path | None = None,
       services: tuple[str, ...] | None = None, venue_sim: str = NO_VENUE) -> Stack:  # fmt: skip
    extra = dict(env)
    if creds_dir is not None:
        extra["TICKTAPE_NATS__CREDS_DIR"] = str(creds_dir)
    return Stack(home, nats_url=nats_url, pg_dsn=pg_dsn, venue_sim=venue_sim, config_yaml=CONFIG, extra_env=extra,
                 services=services, args=args)  # fmt: skip


@contextmanager
def venue_for(tmp_path: Path, values: dict[str, str]) -> Iterator[str]:
    """Where the live accounts trade once the gate lets them: with a live path in execution, the
    venue simulator holding exactly these accounts (the Hyperliquid key's own account, the vault
    as its sub-account, the Binance key); without one, nowhere (nothing may be sent)."""
    if not live.can_trade_live():
        yield NO_VENUE
        return
    user = eth_account.Account.from_key(values[HL_VAR]).address
    accounts = tmp_path / "sim-accounts.json"
    accounts.touch(mode=0o600)
    accounts.write_text(json.dumps({
        "binance_usdm": [{"name": "e2e", "api_key": values[BN_KEY_VAR], "secret": values[BN_SECRET_VAR],
                          "balance": "10000"}],
        "hyperliquid": {"chain": "testnet", "accounts": [
            {"address": user, "balance": "10000"}, {"address": "0x" + "cd" * 20, "balance": "10000", "master": user}]},
    }))  # fmt: skip
    bars = convert_octobot(tmp_path / "bars", OCTOBOT_BTC)
    log = tmp_path / "venue-sim.err"
    with log.open("wb") as errors:
        sim = subprocess.Popen(
            [sys.executable, "-m", "ticktape", "venue-sim", "--data", str(bars), "--port", "0", "--speed", "60",
             "--align", "--accounts", str(accounts)],
            stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        try:
            assert sim.stdout is not None
            line = sim.stdout.readline().decode()
            assert "listening on" in line, log.read_text()
            yield line.strip().rsplit(" ", 1)[-1]
        finally:
            sim.terminate()
            sim.wait(10)
            if sim.stdout is not None:
                sim.stdout.close()


def out(stack: Stack) -> str:
    return (stack.home / "up.out").read_text(errors="replace")


def err(stack: Stack) -> str:
    return (stack.home / "up.err").read_text(errors="replace")


def finished(stack: Stack, timeout: float = 60) -> int:
    """The exit code of `ticktape up`, once it has exited by itself (files closed)."""
    code = stack.process.wait(timeout)
    stack.stop()
    return code


def countdown(stack: Stack) -> list[int]:
    return [int(n) for n in COUNTDOWN.findall(out(stack))]


def nothing_started(stack: Stack) -> None:
    """No supervisor ran: no run directory, so no run/state and no service's pid file."""
    assert not stack.run_dir.exists(), sorted(p.name for p in stack.run_dir.iterdir())
    assert all(stack.pid(s) is None for s in registry.names())


def embedded_nats_pid(home: Path) -> int | None:
    found = list((home / "nats" / "ports").glob("nats-server_*.ports")) if (home / "nats" / "ports").exists() else []
    return int(found[0].stem.rsplit("_", 1)[1]) if found else None


def proc_text(pid: int, part: str) -> str:
    return Path(f"/proc/{pid}/{part}").read_bytes().decode(errors="replace")


def no_secret_anywhere(home: Path, values: dict[str, str], *texts: str) -> None:
    """No planted value in the given texts nor in any file under the home (up's stdout and stderr,
    run files, the NATS store and configuration, the credentials directory)."""
    leaks = [name for name, value in values.items() for text in texts if value in text]
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"{name} in {path}" for name, value in values.items() if value.encode() in data]
    assert not leaks, leaks


def sessions(url: str, creds: str | None) -> list[SessionStarted]:
    async def read() -> list[SessionStarted]:
        from ticktape.replay.catalog import connect

        nc = await connect(url, creds)
        try:
            events = await stream_events(nc.jetstream(), subjects.EVENTS_STREAM, [subjects.ALL_SESSIONS])
            return [e for e in events if isinstance(e, SessionStarted)]
        finally:
            await nc.close()

    return asyncio.run(read())


def after_the_gate(stack: Stack, auth: AuthorizedNats, values: dict[str, str]) -> None:
    """What follows a passed gate in this build. No live path in execution: exit 69 and nothing
    started, no session. A live path: the session runs with `live` on, recorded; execution alone
    holds the live accounts' credentials (in its environment, never its argv); then a clean stop."""
    if not live.can_trade_live():
        assert finished(stack) == live.EXIT_UNAVAILABLE, err(stack)
        nothing_started(stack)
        assert sessions(auth.url, auth.creds(ADMIN)) == []
        return
    wait_for(lambda: stack.state() == "running", timeout=60, what="the live session running")
    (started,) = wait_for(lambda: sessions(auth.url, auth.creds(ADMIN)), timeout=30, what="the session record")
    assert json.loads(started.config_json)[live.KEY] is True
    assert not [v for v in values.values() if v in started.config_json]

    def seen(service: str) -> str | None:
        """What others on the host can read of the service's process: argv, then environment."""
        pid = stack.pid(service)
        try:
            return proc_text(pid, "cmdline") + "\0\0" + proc_text(pid, "environ") if pid else None
        except OSError:  # between a pid file and a restart
            return None

    execution = wait_for(lambda: seen("execution"), timeout=30, what="execution's process")
    argv, environ = execution.split("\0\0", 1)
    assert all(f"{var}={value}" in environ for var, value in values.items())
    assert not [v for v in values.values() if v in argv]
    risk = wait_for(lambda: seen("risk"), timeout=30, what="risk's process")
    assert not [v for v in values.values() if v in risk]
    assert not [v for v in values.values() if v in proc_text(stack.process.pid, "cmdline")]
    assert stack.stop(timeout=90) == 0, stack.logs()


def test_countdown_shows_5_to_1_one_a_second_then_proceeds(
    tmp_path: Path, nats_auth: AuthorizedNats, e2e_dsn: str
) -> None:
    values = planted()
    with venue_for(tmp_path, values) as venue:
        stack = up(tmp_path / "home", nats_auth.url, values, "--live", pg_dsn=e2e_dsn, creds_dir=nats_auth.creds_dir,
                   services=("risk", "execution"), venue_sim=venue)  # fmt: skip
        try:
            counted(stack, nats_auth, values)
        finally:
            stack.stop()
    no_secret_anywhere(stack.home, values)


def counted(stack: Stack, nats_auth: AuthorizedNats, values: dict[str, str]) -> None:
    """The countdown 5, 4, 3, 2, 1, a second apart (first seen by polling: only ever later, never
    sooner), then what follows the gate, never before the fifth second is over."""
    seen: dict[int, float] = {}

    def counted_to_one() -> bool:
        for n in countdown(stack):
            seen.setdefault(n, time.monotonic())
        return 1 in seen

    wait_for(counted_to_one, timeout=60, what="the countdown down to 1", interval=0.02)
    assert countdown(stack) == [5, 4, 3, 2, 1], out(stack)
    assert seen[1] - seen[5] >= 3.5, seen
    after_the_gate(stack, nats_auth, values)
    assert time.monotonic() - seen[5] >= 4.5


def test_ctrl_c_during_the_countdown_starts_nothing_and_stops_the_embedded_server(tmp_path: Path) -> None:
    values = planted()
    stack = up(tmp_path / "home", "nats://127.0.0.1:0", values, "--live", "--countdown-s", "60")
    try:
        wait_for(lambda: 60 in countdown(stack), timeout=60, what="the countdown")
        server = embedded_nats_pid(stack.home)
        assert server is not None and stack.alive(server)
        server_seen = proc_text(server, "environ") + proc_text(server, "cmdline")
        stack.process.send_signal(signal.SIGINT)
        assert finished(stack, timeout=30) == 0, err(stack)
        assert countdown(stack)[0] == 60 and 1 not in countdown(stack)
        nothing_started(stack)
        wait_for(lambda: not stack.alive(server), timeout=30, what="the embedded nats-server stopped")
    finally:
        stack.stop()
    # the embedded server never held a venue credential either (up took them out of its environment)
    no_secret_anywhere(stack.home, values, server_seen)


def test_sigterm_during_the_countdown_records_no_session_on_an_existing_bus(
    tmp_path: Path, nats_auth: AuthorizedNats
) -> None:
    values = planted()
    stack = up(tmp_path / "home", nats_auth.url, values, "--live", "--countdown-s", "60",
               creds_dir=nats_auth.creds_dir)  # fmt: skip
    try:
        wait_for(lambda: 60 in countdown(stack), timeout=60, what="the countdown")
        stack.process.send_signal(signal.SIGTERM)
        assert finished(stack, timeout=30) == 0, err(stack)
        nothing_started(stack)
        assert sessions(nats_auth.url, nats_auth.creds(ADMIN)) == []
        assert nats_auth.server.process.poll() is None  # a server up did not start is left running
    finally:
        stack.stop()
    no_secret_anywhere(stack.home, values)


def test_yes_skips_the_countdown(tmp_path: Path, nats_auth: AuthorizedNats, e2e_dsn: str) -> None:
    values = planted()
    with venue_for(tmp_path, values) as venue:
        stack = up(tmp_path / "home", nats_auth.url, values, "--live", "--yes", "--countdown-s", "60", pg_dsn=e2e_dsn,
                   creds_dir=nats_auth.creds_dir, services=("risk", "execution"), venue_sim=venue)  # fmt: skip
        try:
            after_the_gate(stack, nats_auth, values)
            assert countdown(stack) == []
        finally:
            stack.stop()
    no_secret_anywhere(stack.home, values)


def test_live_without_a_credential_names_the_variable_and_starts_nothing(tmp_path: Path) -> None:
    values = planted()
    given = {k: v for k, v in values.items() if k != BN_SECRET_VAR}
    stack = up(tmp_path / "home", "nats://127.0.0.1:0", given, "--live")
    try:
        assert finished(stack) == cfg.EXIT_CONFIG
        assert BN_SECRET_VAR in err(stack)
        assert HL_VAR not in err(stack) and BN_KEY_VAR not in err(stack)  # those are set: only the missing one
        assert countdown(stack) == []
        nothing_started(stack)
        assert not (stack.home / "nats").exists()  # refused before any server started
    finally:
        stack.stop()
    no_secret_anywhere(stack.home, values)


def test_live_on_a_bus_without_authorization_is_refused(tmp_path: Path, nats_server: NatsServer) -> None:
    values = planted()
    stack = up(tmp_path / "home", nats_server.url, values, "--live")
    try:
        assert finished(stack) == cfg.EXIT_CONFIG, err(stack)
        assert countdown(stack) == []
        nothing_started(stack)
        assert sessions(nats_server.url, None) == []
    finally:
        stack.stop()
    no_secret_anywhere(stack.home, values)


def test_live_on_a_server_that_also_admits_anonymous_clients_is_refused(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Credentials files for every role, but the server lets in clients without any: still open."""
    from ticktape.bus import creds
    from ticktape.bus.permissions import roles

    directory = tmp_path / "creds"
    creds.ensure(directory, roles(), url=nats_server.url)
    values = planted()
    stack = up(tmp_path / "home", nats_server.url, values, "--live", creds_dir=directory)
    try:
        assert finished(stack) == cfg.EXIT_CONFIG, err(stack)
        assert countdown(stack) == []
        nothing_started(stack)
        assert sessions(nats_server.url, None) == []
    finally:
        stack.stop()
    no_secret_anywhere(stack.home, values)


def test_live_account_without_the_live_flag_is_refused(tmp_path: Path) -> None:
    values = planted()
    stack = up(tmp_path / "home", "nats://127.0.0.1:0", values)
    try:
        assert finished(stack) == cfg.EXIT_CONFIG
        assert "hl-live" in err(stack) and "bn-live" in err(stack) and "--live" in err(stack)
        nothing_started(stack)
        assert not (stack.home / "nats").exists()
    finally:
        stack.stop()
    no_secret_anywhere(stack.home, values)


def test_secrets_check_finds_a_planted_value(tmp_path: Path) -> None:
    """The search above is not vacuous: a value written under the home is found."""
    values = planted()
    (tmp_path / "leak.txt").write_text(f"x {values[BN_SECRET_VAR]} y")
    with pytest.raises(AssertionError, match=BN_SECRET_VAR):
        no_secret_anywhere(tmp_path, values)
    with pytest.raises(AssertionError, match=HL_VAR):
        no_secret_anywhere(tmp_path / "empty", values, f"ENV {values[HL_VAR]}")
    assert os.environ.get(HL_VAR) is None  # planted in the children's environment only
