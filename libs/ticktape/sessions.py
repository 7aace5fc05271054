"""Sessions: every `ticktape up` run is recorded on the bus as SessionStarted ... SessionStopped.

A session carries what is needed to attribute and replay it: an id (sortable UTC time + random
suffix; the supervisor is a shell, not a core, so it may read the clock), the effective
configuration as canonical JSON with secrets removed (ticktape.redact), the hash of that JSON,
and the code version. The events go on `sessions.<id>` in the events stream with Nats-Msg-Id =
event_id, before the services start and after they have stopped, so the stream range between
them is the session."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ticktape import ids
from ticktape.config import NatsSettings, state_defaults
from ticktape.depset import dependency_set
from ticktape.events import Event, SessionStarted, SessionStopped
from ticktape.redact import redact, redact_text

# SessionStopped.reason values. Only "stopped" promises that every recorded input was processed.
STOPPED = "stopped"  # clean stop after the consumers drained their inputs
UNDRAINED = "stopped_undrained"  # clean stop, but some consumer still had input pending
CONFIG_ERROR = "config_error"  # a service rejected its configuration

_REPO = Path(__file__).resolve().parents[2]


def new_session_id(now: datetime | None = None) -> str:
    """`20250101T120000Z-3fa9c1`: sorts by start time; the suffix separates same-second starts."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def canonical_json(doc: Any) -> str:
    """Sorted keys, no spaces: the same document always gives the same text (and hash)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Where the stack runs, not what it decides: left out of the hash, so the same strategies and
# limits get the same hash on any machine, port or state directory (config_json keeps them).
_LOCATION_KEYS: dict[str, tuple[str, ...] | None] = {
    "home": None,
    "venue_sim": None,
    "telemetry": None,
    "supervisor": None,  # how `ticktape up` stops, not what the services decide
    "nats": ("url",),
    "postgres": ("dsn",),
}


def decision_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The config document without the infrastructure locations (see _LOCATION_KEYS)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in _LOCATION_KEYS and _LOCATION_KEYS[key] is None:
            continue
        if key in _LOCATION_KEYS and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k not in (_LOCATION_KEYS[key] or ())}
            if not value:
                continue
        out[key] = value
    return out


def effective_config(raw: Mapping[str, Any]) -> tuple[str, str]:
    """(canonical JSON of the merged config document without secrets, the 16-hex-char hash of
    its decision-relevant part: locations such as NATS/PostgreSQL URLs and home are left out).
    Keys whose default changed behaviour are stated (config.state_defaults), so a replay reads
    the recording as this code ran it (config.recorded_as_run)."""
    text = canonical_json(redact(state_defaults(raw)))
    return text, config_hash_of(text)


def redacted_config(config_json: str) -> str:
    """A recorded effective configuration as it would be recorded today: `config_json` itself
    when the current redaction finds no secret in it (a clean recording keeps its bytes), else its
    redacted canonical JSON. Recordings made before a form of secret was recognised (DSN query
    passwords, NATS tokens) are cleaned this way when they are written to a session file."""
    try:
        doc = json.loads(config_json)
    except (ValueError, RecursionError):
        return redact_text(config_json)
    clean = redact(doc)
    return config_json if clean == doc else canonical_json(clean)


def config_hash_of(config_json: str) -> str:
    """The hash that names a recorded configuration (its decision view; see effective_config)."""
    return config_digest(canonical_json(decision_view(json.loads(config_json))))


def config_digest(config_json: str) -> str:
    """The 16-hex-char SHA-256 prefix that names a configuration."""
    return hashlib.sha256(config_json.encode()).hexdigest()[:16]


def code_version() -> str:
    """`git rev-parse HEAD` of the checkout (+ `-dirty` when tracked files changed), else the
    installed package version."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if head:
            return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"ticktape {version('ticktape')}"
    except PackageNotFoundError:
        return "unknown"


def started_event(
    session_id: str,
    config_json: str,
    *,
    code: str,
    services: Sequence[str],
    dependencies: str = "",
    ts_ns: int,
    host: str = "",
    causation_id: str | None = None,
) -> SessionStarted:
    """The session's first record; its id derives from the session id, so a retry is a duplicate."""
    return SessionStarted(
        event_id=ids.derive("session", session_id, "started"),
        ts_event=ts_ns,
        ts_init=ts_ns,
        causation_id=causation_id,
        correlation_id=session_id,
        session_id=session_id,
        config_hash=config_hash_of(config_json),
        config_json=config_json,
        code_version=code,
        services=tuple(services),
        host=host,
        dependencies=dependencies,
    )


def stopped_event(session_id: str, reason: str, ts_ns: int) -> SessionStopped:
    """The session's last record; reason is STOPPED, UNDRAINED or CONFIG_ERROR."""
    return SessionStopped(
        event_id=ids.derive("session", session_id, "stopped"),
        ts_event=ts_ns,
        ts_init=ts_ns,
        causation_id=ids.derive("session", session_id, "started"),
        correlation_id=session_id,
        session_id=session_id,
        reason=reason,
    )


class SessionRecorder:
    """What `ticktape up` calls: start() before the services start, drain() while stopping them,
    stop(reason) after they have stopped. Each call is a short-lived NATS connection."""

    def __init__(self, nats: NatsSettings, raw: Mapping[str, Any], services: Sequence[str]) -> None:
        self.nats = nats
        self.session_id = new_session_id()
        self.config_json, self.config_hash = effective_config(raw)
        self.services = tuple(services)

    def start(self, timeout: float = 30.0) -> SessionStarted:
        event = started_event(
            self.session_id,
            self.config_json,
            code=code_version(),
            dependencies=dependency_set(),
            services=self.services,
            ts_ns=time.time_ns(),
            host=socket.gethostname(),
        )
        asyncio.run(asyncio.wait_for(self._publish(event), timeout))
        return event

    def stop(self, reason: str, timeout: float = 10.0) -> SessionStopped:
        """Publish the stop record; TimeoutError when NATS does not take it within `timeout`
        (a dead server: the client would otherwise retry its connection for ever)."""
        event = stopped_event(self.session_id, reason, time.time_ns())
        asyncio.run(asyncio.wait_for(self._publish(event), timeout))
        return event

    def drain(self, durables: Sequence[str], alive: Callable[[], bool] = lambda: True, timeout: float = 15.0) -> bool:
        """True once the durable consumers have consumed everything in the stream (or do not
        exist); False when `timeout` passes (connecting included: NATS may be dead) or `alive()`
        says no consumer is running any more."""
        try:
            return asyncio.run(asyncio.wait_for(self._drain(durables, alive, timeout), timeout))
        except TimeoutError:
            return False

    def record(self, event: Event, timeout: float = 10.0) -> None:
        """Publish another record about the run (e.g. WorkersChosen) on the events stream."""
        asyncio.run(asyncio.wait_for(self._publish(event), timeout))

    async def _publish(self, event: Event) -> None:
        from ticktape.bus.connect import connect
        from ticktape.bus.provision import ensure_streams
        from ticktape.bus.publisher import publish_batch

        nc = await connect(self.nats.url, "session", creds=self.nats.creds)
        try:
            js = nc.jetstream()
            await ensure_streams(js, self.nats)
            await publish_batch(js, [(event, {})], attempts=20)
        finally:
            await nc.drain()

    async def _drain(self, durables: Sequence[str], alive: Callable[[], bool], timeout: float) -> bool:
        from ticktape.bus.connect import connect

        nc = await connect(self.nats.url, "session", creds=self.nats.creds)
        try:
            return await wait_drained(nc.jetstream(), self.nats.stream, durables, timeout, alive=alive)
        finally:
            await nc.drain()


async def wait_drained(
    js: JetStreamContext,
    stream: str,
    durables: Sequence[str],
    timeout: float,
    interval: float = 0.1,
    alive: Callable[[], bool] = lambda: True,
) -> bool:
    """Wait until no durable has messages pending or unacknowledged and the stream did not grow
    while they were checked (an output published meanwhile would be new input for another)."""
    deadline = time.monotonic() + timeout
    while True:
        before = (await js.stream_info(stream)).state.last_seq
        busy = False
        for name in durables:
            try:
                info = await js.consumer_info(stream, name)
            except NotFoundError:
                continue
            if info.num_pending or info.num_ack_pending:
                busy = True
                break
        if not busy and (await js.stream_info(stream)).state.last_seq == before:
            return True
        if time.monotonic() > deadline or not alive():
            return False
        await asyncio.sleep(interval)
