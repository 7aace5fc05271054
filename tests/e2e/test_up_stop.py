"""`ticktape up` always stops: within supervisor.stop_timeout_s even when its embedded nats-server
and PostgreSQL died first (the drains and the session's stop record talk to them), and at once on
a second SIGTERM; either way no process it started is left behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ticktape import registry
from ticktape.infra.stack import running_postmaster
from ticktape.testing.stack import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NO_VENUE = "http://127.0.0.1:9"
STOP_TIMEOUT_S = 20
CONFIG = f"supervisor: {{stop_timeout_s: {STOP_TIMEOUT_S}, service_grace_s: 5}}\n"
SERVICES = registry.names()


def start(home: Path, config: str = CONFIG) -> Stack:
    """Every service, with an embedded nats-server (port 0) and an embedded PostgreSQL (no DSN)."""
    return Stack(home, nats_url="nats://127.0.0.1:0", pg_dsn="", venue_sim=NO_VENUE, config_yaml=config)


def descendants(pid: int) -> dict[int, str]:
    """{pid: command name} of every process below pid, from /proc."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = (int(rest[1]), name)
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, name) in parents.items():
            if ppid == parent and child not in found:
                found[child] = name
                frontier.append(child)
    return found


def running(stack: Stack) -> dict[int, str] | None:
    """Every service, nats-server and the postmaster started: the processes below `ticktape up`."""
    if stack.state() != "running" or not all(stack.pid(s) for s in SERVICES):
        return None
    below = descendants(stack.process.pid)
    names = set(below.values())
    return below if "nats-server" in names and "postgres" in names else None


def alive(stack: Stack, pids: dict[int, str]) -> dict[int, str]:
    return {pid: name for pid, name in pids.items() if stack.alive(pid)}


def wait_exit(stack: Stack, timeout: float) -> int | None:
    try:
        return stack.process.wait(timeout)
    except Exception:  # noqa: BLE001 - TimeoutExpired: reported by the caller's assertion
        return None


def test_a_stop_ends_within_its_deadline_when_nats_and_postgres_died_first(tmp_path):
    stack = start(tmp_path / "home")
    try:
        started = wait_for(lambda: running(stack), timeout=90, what="every service and both servers")
        servers = [pid for pid, name in started.items() if name == "nats-server"]
        servers += [pid for pid, name in started.items() if name == "postgres" and _ppid(pid) == stack.process.pid]
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        stack.process.send_signal(signal.SIGTERM)
        code = wait_exit(stack, STOP_TIMEOUT_S + 10)  # the deadline, and the start of the stop
        assert code is not None, f"still running after the stop deadline\n{stack.logs()}"
        wait_for(lambda: not alive(stack, started), timeout=10, what="the killed processes' exit")
    finally:
        stack.stop()


def test_a_second_sigterm_stops_at_once(tmp_path):
    # a minute's grace, and a producer that cannot stop (SIGSTOPped): the stop waits for it, so
    # the second SIGTERM surely arrives while the stop is under way, and must not wait
    stack = start(tmp_path / "home", "supervisor: {service_grace_s: 60}\n")
    try:
        started = wait_for(lambda: running(stack), timeout=90, what="every service and both servers")
        wait_for(lambda: stopped_child(stack, "market_data"), timeout=30, what="market_data stopped, still a child")
        stack.process.send_signal(signal.SIGTERM)
        wait_for(lambda: stack.state() == "stopping", timeout=10, what="the stop under way")
        stack.process.send_signal(signal.SIGTERM)
        code = wait_exit(stack, 10)
        assert code == 128 + signal.SIGTERM, stack.logs()
        wait_for(lambda: not alive(stack, started), timeout=10, what="the killed processes' exit")
    finally:
        stack.stop()


def test_a_sigterm_while_the_servers_start_stops_them_too(tmp_path):
    # caught from the start of `ticktape up`: the embedded servers it had started are stopped
    # (they run in their own sessions, so a default SIGTERM would leave them running)
    stack = start(tmp_path / "home")
    try:
        servers = wait_for(
            lambda: {p: n for p, n in descendants(stack.process.pid).items() if n == "nats-server"},
            timeout=60,
            what="nats-server started",
        )
        stack.process.send_signal(signal.SIGTERM)  # PostgreSQL is still being made: initdb, start
        code = wait_exit(stack, STOP_TIMEOUT_S + 10)
        assert code == 0, stack.logs()
        wait_for(lambda: not alive(stack, servers), timeout=10, what="nats-server's exit")
        assert running_postmaster(tmp_path / "home" / "postgres") is None
        assert stack.state() in (None, "stopped")
    finally:
        stack.stop()


def stopped_child(stack: Stack, service: str) -> bool:
    """SIGSTOP the service's current process: True once that process is stopped (state T) and still
    a child of `ticktape up`, so the stop surely waits for it (not a pid that already exited)."""
    pid = stack.pid(service)
    if pid is None or _ppid(pid) != stack.process.pid:
        return False
    try:
        os.kill(pid, signal.SIGSTOP)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state == "T" and _ppid(pid) == stack.process.pid and stack.pid(service) == pid


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])
