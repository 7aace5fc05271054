"""`ticktape up`: every service as its own OS process in the foreground, restarted when it
crashes, all stopped cleanly on Ctrl-C or SIGTERM.

Stopping is ordered so a session ends with nothing half-processed: the `stop_first` services
(the producers) stop, then `drain()` waits for the consumers to finish their input, then the rest
stop. `drained` records whether that wait succeeded (the drain is given a callable that says
whether any consumer is still running, so it gives up at once when they have all died)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ticktape import registry
from ticktape.config import EXIT_CONFIG

RESTART_MIN_S = 0.5
RESTART_MAX_S = 10.0
HEALTHY_AFTER_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
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
    ) -> None:
        self.env = env
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
        # env plus its extra_env (e.g. the path of its own bus credentials: never a secret in argv)
        self.children = [
            Child(
                name,
                [sys.executable, "-m", registry.get(name).module, *(extra_args or {}).get(name, [])],
                {**env, **(extra_env or {}).get(name, {})},
            )
            for name in (registry.names() if services is None else services)
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
        self._say(f"started {child.name} (pid {child.process.pid})")

    def _say(self, text: str) -> None:
        print(f"[ticktape] {text}", file=sys.stderr, flush=True)

    def request_stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_stop)  # a closed terminal must not orphan the services
        for child in self.children:
            self._spawn(child)
        while not self.stopping:
            self._tick()
            time.sleep(0.1)
        self._stop_all()
        return self.exit_code

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                child.history.append(code)
                child.process = None
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
                self._spawn(child)

    def _stop_all(self, timeout: float = 15.0) -> None:
        self._say("stopping services")
        last = [c for c in self.children if c.name in self.stop_last]
        first = [c for c in self.children if c.name in self.stop_first and c not in last]
        rest = [c for c in self.children if c not in first and c not in last]
        self._stop(first, timeout)
        if self.drain is not None and self.exit_code == 0:
            self.drained = self.drain(lambda: any(c.process is not None and c.process.poll() is None for c in rest))
            if not self.drained:
                self._say("consumers still had input pending when the drain timed out")
        self._stop(rest, timeout)
        if self.before_last is not None:
            self.before_last()
        if (
            last
            and self.drain_last is not None
            and self.exit_code == 0
            and not self.drain_last(lambda: any(c.process is not None and c.process.poll() is None for c in last))
        ):
            self._say("archivers still had input pending when the drain timed out")
        self._stop(last, timeout)

    def _stop(self, children: list[Child], timeout: float) -> None:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"{child.name} did not stop in time; killing it")
                child.process.kill()
                child.process.wait()
            pid_file = self.run_dir / f"{child.name}.pid"
            if pid_file.exists():
                pid_file.unlink()


def child_env(base: dict[str, str], **settings: str | None) -> dict[str, str]:
    env = dict(base)
    for key, value in settings.items():
        if value is not None:
            env[key] = value
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def pid_of(run_dir: Path, service: str) -> int | None:
    try:
        return int((run_dir / f"{service}.pid").read_text())
    except (OSError, ValueError):
        return None


__all__ = ["Supervisor", "child_env", "pid_of", "os"]
