"""`ticktape up`: every service as its own OS process in the foreground, restarted when it
crashes, all stopped cleanly on Ctrl-C or SIGTERM.

Stopping is ordered so a session ends with nothing half-processed: the `stop_first` services
(the producers) stop, then `drain()` waits for the consumers to finish their input, then the rest
stop. `drained` records whether that wait succeeded (the drain is given a callable that says
whether any consumer is still running, so it gives up at once when they have all died).

A stop is bounded whatever died first: each group of services gets `grace` seconds between
SIGTERM and SIGKILL, each drain or record step runs on a worker thread the stop waits for only
until its deadline (it may be talking to a NATS server that is gone), and after `stop_timeout`
seconds in all every child still running (services, then the embedded servers given as `infra`)
gets SIGKILL, its whole process group with it. A second SIGINT/SIGTERM/SIGHUP during a stop kills
every child at once and exits with 128 + the signal's number.

Signals are caught from the start of `ticktape up` (StopSignals, installed before any server or
service starts) until its end, where they are ignored rather than restored: the interpreter resets
its handlers to the default while it exits, and a late signal would otherwise kill the process
(exit -15) after a stop that had already finished."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from ticktape import registry
from ticktape.config import EXIT_CONFIG
from ticktape.metrics import SupervisorMetrics
from ticktape.workers import ENV as WORKER_ENV
from ticktape.workers import child_name

RESTART_MIN_S = 0.5
RESTART_MAX_S = 10.0
HEALTHY_AFTER_S = 30.0
T = TypeVar("T")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # a closed terminal must not orphan anything


class StopSignals:
    """SIGTERM, SIGINT and SIGHUP caught for the whole of `ticktape up`: install() first thing,
    ignore() last. The first signal sets `first` (and calls on_first once a supervisor runs); a
    later one calls on_second (the supervisor's abort), or, while no supervisor runs yet, kills
    the `started` processes (the embedded servers so far) and exits at once with 128 + its number."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.on_first: Callable[[int], None] | None = None
        self.on_second: Callable[[int], None] | None = None
        self.started: list[subprocess.Popen[bytes]] = []

    def install(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def ignore(self) -> None:
        """Everything has stopped: a late signal changes nothing (and never kills the exiting process)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, _frame: object = None) -> None:
        if self.first is None:
            self.first = signum
            if self.on_first is not None:
                self.on_first(signum)
        elif self.on_second is not None:
            self.on_second(signum)
        else:
            for proc in self.started:
                _kill_group(proc, reap=False)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + signum)


class Server(Protocol):
    """An embedded server `ticktape up` started and restarts when it dies (ticktape.infra)."""

    name: str
    process: subprocess.Popen[bytes]

    def restart(self) -> None:
        """Start it again the same way (port, data, configuration); raises when it cannot."""


@dataclass
class Watched:
    """An embedded server under supervision, with its restart backoff."""

    server: Server
    backoff: float = RESTART_MIN_S
    restart_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0


@dataclass
class Child:
    name: str  # the service's, or its worker's (ticktape.workers.child_name): pid file, restarts
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    service: str = ""  # the service it runs (its name when empty)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = RESTART_MIN_S
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        env: dict[str, str],
        run_dir: Path,
        services: Sequence[str] | None = None,
        extra_args: dict[str, list[str]] | None = None,
        *,
        stop_first: tuple[str, ...] = (),
        drain: Callable[[Callable[[], bool]], bool] | None = None,
        stop_last: tuple[str, ...] = (),
        before_last: Callable[[], None] | None = None,
        drain_last: Callable[[Callable[[], bool]], bool] | None = None,
        extra_env: dict[str, dict[str, str]] | None = None,
        workers: dict[str, int] | None = None,
        grace: float = 15.0,
        stop_timeout: float = 90.0,
        infra: Sequence[subprocess.Popen[bytes]] = (),
        signals: StopSignals | None = None,
        servers: Sequence[Server] = (),
        metrics: SupervisorMetrics | None = None,
    ) -> None:
        self.env = env
        self.metrics = metrics  # restarts per service, served by `ticktape up` (crash-loop alert)
        self.signals = signals
        # embedded servers restarted when they die while the session runs (their processes are
        # stopped and killed like `infra`, after it)
        self.servers = [Watched(server) for server in servers]
        self.grace = grace
        self.stop_timeout = stop_timeout
        # embedded servers (PostgreSQL, then nats-server): stopped after every service, killed
        # with them when the stop runs out of time or is interrupted
        self.infra = list(infra)
        self.stop_deadline: float | None = None
        self.run_dir = run_dir
        self.stop_first = stop_first
        self.drain = drain
        self.drained: bool | None = None
        # sinks (archivers) stop last: after before_last() (the session's stop record) and once
        # drain_last() says they have stored everything, so the archive covers the whole session
        self.stop_last = stop_last
        self.before_last = before_last
        self.drain_last = drain_last
        # every registered service unless told which, each run as `python -m <its module>`, with
        # env plus its extra_env (e.g. the path of its own bus credentials: never a secret in argv);
        # a service run as n `workers` is n children, each told its index (ticktape.workers.ENV)
        # and given the extra_env of its own name too (its metrics port)
        extra = extra_env or {}
        self.children = [
            Child(
                child_name(name, index, count),
                [sys.executable, "-m", registry.get(name).module, *(extra_args or {}).get(name, [])],
                {
                    **env,
                    **extra.get(name, {}),
                    **extra.get(child_name(name, index, count), {}),
                    **({WORKER_ENV: str(index)} if count > 1 else {}),
                },
                service=name,
            )
            for name in (registry.names() if services is None else services)
            for count in [(workers or {}).get(name, 1)]
            for index in range(count)
        ]
        self.stopping = False
        self.exit_code = 0

    def _spawn(self, child: Child) -> None:
        # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops the
        # services in order (producers, drain, consumers) instead of all at once.
        child.process = subprocess.Popen(child.argv, env=child.env, process_group=0)
        child.started_at = time.monotonic()
        child.restart_at = None
        (self.run_dir / f"{child.name}.pid").write_text(str(child.process.pid))
        if self.metrics is not None:
            self.metrics.started(child.name)
        self._say(f"started {child.name} (pid {child.process.pid})")

    def _say(self, text: str) -> None:
        print(f"[ticktape] {text}", file=sys.stderr, flush=True)

    def request_stop(self, signum: int = signal.SIGTERM, _frame: object = None) -> None:
        if self.stopping:  # a second Ctrl-C/SIGTERM: no more waiting
            self.abort(128 + signum)
        self.stopping = True

    def abort(self, code: int) -> None:
        """SIGKILL every child (and its process group) and exit the process with `code` at once:
        no finally block, drain or server shutdown runs after this."""
        self._say(f"stop interrupted: killing every child and exiting ({code})")
        for child in self.children:  # not reaped: the main thread may hold a Popen's wait lock
            if child.process is not None:
                _kill_group(child.process, reap=False)
        for proc in self._infra():
            _kill_group(proc, reap=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        signals = self.signals if self.signals is not None else StopSignals().install()
        signals.on_first = lambda signum: self.request_stop(signum)
        signals.on_second = lambda signum: self.abort(128 + signum)
        if signals.first is not None:  # asked to stop before the services started: none is
            self.stopping = True
        self._write_servers()
        for child in [] if self.stopping else self.children:
            self._spawn(child)
        _write_state(self.run_dir, "stopping" if self.stopping else "running")
        while not self.stopping:
            self._tick()
            time.sleep(0.1)
        self._stop_all()
        _write_state(self.run_dir, "stopped")
        return self.exit_code

    def _infra(self) -> list[subprocess.Popen[bytes]]:
        return [*self.infra, *(w.server.process for w in self.servers)]

    def _watch_servers(self) -> None:
        """Restart an embedded server that died, with backoff; the services ride out the outage
        (their NATS clients reconnect for ever; a PostgreSQL user that crashes is restarted)."""
        for watched in self.servers:
            server = watched.server
            now = time.monotonic()
            if watched.restart_at is None:
                code = server.process.poll()
                if code is None:
                    continue
                if now - watched.started_at > HEALTHY_AFTER_S:
                    watched.backoff = RESTART_MIN_S
                watched.restart_at = now + watched.backoff
                self._say(f"{server.name} died ({_exit_text(code)}); restarting in {watched.backoff:.1f}s")
                watched.backoff = min(watched.backoff * 2, RESTART_MAX_S)
            if now < watched.restart_at or self.stopping:
                continue
            try:
                server.restart()
            except Exception as exc:  # noqa: BLE001 - e.g. its old processes still hold the data: retried
                watched.restart_at = time.monotonic() + watched.backoff
                self._say(f"{server.name} did not restart ({exc}); retrying in {watched.backoff:.1f}s")
                watched.backoff = min(watched.backoff * 2, RESTART_MAX_S)
                continue
            watched.restart_at = None
            watched.started_at = time.monotonic()
            watched.restarts += 1
            self._say(f"{server.name} restarted (pid {server.process.pid})")
            self._write_servers()

    def _write_servers(self) -> None:
        """run/servers.json: each embedded server's current pid and how often it was restarted."""
        if self.servers:
            doc = {w.server.name: {"pid": w.server.process.pid, "restarts": w.restarts} for w in self.servers}
            tmp = self.run_dir / "servers.json.tmp"
            tmp.write_text(json.dumps(doc))
            tmp.replace(self.run_dir / "servers.json")

    def _tick(self) -> None:
        self._watch_servers()
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                child.history.append(code)
                child.process = None
                if self.metrics is not None:
                    self.metrics.exited(child.name)
                if code == EXIT_CONFIG:
                    self._say(f"{child.name} rejected its configuration (exit {code}); stopping")
                    self.exit_code = EXIT_CONFIG
                    self.stopping = True
                    return
                if now - child.started_at > HEALTHY_AFTER_S:
                    child.backoff = RESTART_MIN_S
                child.restart_at = now + child.backoff
                self._say(f"{child.name} exited with {code}; restarting in {child.backoff:.1f}s")
                child.backoff = min(child.backoff * 2, RESTART_MAX_S)
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                if self.metrics is not None:
                    self.metrics.restarted(child.name)
                self._spawn(child)

    def _remaining(self) -> float:
        return 0.0 if self.stop_deadline is None else max(0.0, self.stop_deadline - time.monotonic())

    def _bounded(self, what: str, step: Callable[[], T]) -> T | None:
        """step() on a worker thread, waited for until the stop's deadline (None after it). The
        main thread stays in an interruptible wait, so a second signal is handled at once."""
        result: list[T] = []
        worker = threading.Thread(target=lambda: result.append(step()), name=f"stop-{what}", daemon=True)
        worker.start()
        worker.join(self._remaining())
        if worker.is_alive():
            self._say(f"{what} did not finish before the stop deadline; going on without it")
            return None
        return result[0] if result else None  # an exception in step() was printed by the thread

    def _stop_all(self) -> None:
        _write_state(self.run_dir, "stopping")
        self._say("stopping services")
        self.stop_deadline = time.monotonic() + self.stop_timeout
        last = [c for c in self.children if (c.service or c.name) in self.stop_last]
        first = [c for c in self.children if (c.service or c.name) in self.stop_first and c not in last]
        rest = [c for c in self.children if c not in first and c not in last]
        self._stop(first)
        if self.drain is not None and self.exit_code == 0:
            drain = self.drain
            self.drained = bool(self._bounded("drain", lambda: drain(_any_alive(rest))))
            if not self.drained:
                self._say("consumers still had input pending when the drain timed out")
        self._stop(rest)
        if self.before_last is not None:
            self._bounded("the session's stop record", self.before_last)
        if last and self.drain_last is not None and self.exit_code == 0:
            drain_last = self.drain_last
            if not self._bounded("archive drain", lambda: drain_last(_any_alive(last))):
                self._say("archivers still had input pending when the drain timed out")
        self._stop(last)
        self._stop_infra()

    def _stop(self, children: list[Child]) -> None:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + min(self.grace, self._remaining())
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"{child.name} did not stop in time; killing it")
                _kill_group(child.process)
            pid_file = self.run_dir / f"{child.name}.pid"
            if pid_file.exists():
                pid_file.unlink()

    def _stop_infra(self) -> None:
        """The embedded servers, one after the other (PostgreSQL, then NATS), within the deadline."""
        for proc in self._infra():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(self._remaining())
                except subprocess.TimeoutExpired:
                    self._say(f"embedded server (pid {proc.pid}) did not stop in time; killing it")
            _kill_group(proc)


def _exit_text(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit {code}"


def _any_alive(children: list[Child]) -> Callable[[], bool]:
    return lambda: any(c.process is not None and c.process.poll() is None for c in children)


def _kill_group(proc: subprocess.Popen[bytes], *, reap: bool = True) -> None:
    """SIGKILL a running child started in its own process group (or session) with whatever it
    started, then reap it. A postmaster's backends each start their own session, so they are
    found as its descendants and killed by pid (once it is dead, they exit on their own)."""
    if proc.poll() is None:  # never signal the pid or group of a child already reaped
        for pid in [*_descendants(proc.pid), proc.pid]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    if reap:
        proc.wait()


def _descendants(pid: int) -> list[int]:
    """The processes below pid, from the parent pids in /proc (Linux); none where there is no /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def child_env(base: dict[str, str], **settings: str | None) -> dict[str, str]:
    env = dict(base)
    for key, value in settings.items():
        if value is not None:
            env[key] = value
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _write_state(run_dir: Path, state: str) -> None:
    """run/state: `running` once every service has been started, `stopping` once the stop began
    (what scripts and tests wait for, rather than a log line)."""
    tmp = run_dir / "state.tmp"
    tmp.write_text(state)
    tmp.replace(run_dir / "state")


def state_of(run_dir: Path) -> str | None:
    try:
        return (run_dir / "state").read_text()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (exited, not yet reaped by the supervisor)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux): exists is all we know
        return True


def pid_of(run_dir: Path, service: str) -> int | None:
    try:
        return int((run_dir / f"{service}.pid").read_text())
    except (OSError, ValueError):
        return None


__all__ = ["StopSignals", "Supervisor", "alive", "child_env", "pid_of", "state_of", "os"]
