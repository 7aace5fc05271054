"""Run the whole stack as processes for end-to-end tests: the venue simulator on recorded bars
and `ticktape up` (every registered service, each its own OS process) against given NATS and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ticktape.supervisor import pid_of, state_of


class VenueSim:
    def __init__(self, data_dir: Path, log_dir: Path, speed: float, align: bool = True) -> None:
        args = [
            sys.executable,
            "-m",
            "ticktape",
            "venue-sim",
            "--data",
            str(data_dir),
            "--port",
            "0",
            "--speed",
            str(speed),
        ]
        if align:
            args.append("--align")
        self.log = open(log_dir / "venue-sim.err", "wb")  # noqa: SIM115 - the child's stderr until stop()
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"venue-sim did not start: {line!r} (see {log_dir / 'venue-sim.err'})")
        self.url = line.strip().rsplit(" ", 1)[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.log.close()


class Stack:
    """`python -m ticktape up --venue-sim URL` with its own home, config and log files
    (`services`: only those, as `--services`; `args`: more options of `up`, e.g. --cluster 3)."""

    def __init__(
        self,
        home: Path,
        *,
        nats_url: str,
        pg_dsn: str,
        venue_sim: str,
        config_yaml: str,
        extra_env: dict[str, str] | None = None,
        services: Sequence[str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        config = home / "ticktape.yaml"
        config.write_text(config_yaml)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
        env.update(TICKTAPE_NATS_URL=nats_url, TICKTAPE_PG_DSN=pg_dsn, **(extra_env or {}))
        self.stdout = open(home / "up.out", "wb")  # noqa: SIM115 - the child's stdout until stop()
        self.stderr = open(home / "up.err", "wb")  # noqa: SIM115 - the child's stderr until stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ticktape",
                "up",
                "--venue-sim",
                venue_sim,
                "--config",
                str(config),
                "--home",
                str(home),
                *(["--services", ",".join(services)] if services else []),
                *args,
            ],
            env=env,
            stdout=self.stdout,
            stderr=self.stderr,
        )

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    def pid(self, service: str) -> int | None:
        return pid_of(self.run_dir, service)

    def state(self) -> str | None:
        """The supervisor's run/state: running (every service started), stopping, stopped."""
        return state_of(self.run_dir)

    def alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        try:  # a zombie (exited, not yet reaped by the supervisor) is not alive
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def kill(self, service: str) -> int:
        pid = self.pid(service)
        assert pid is not None, f"{service} has no pid file"
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout.close()
        self.stderr.close()
        return self.process.returncode

    def logs(self) -> str:
        return (self.home / "up.err").read_text(errors="replace")[-5000:]


T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Synchronous eventually() for process-level checks."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
