"""Session lifecycle (stream subjects sessions.>): every `ticktape up` run is a session."""

from __future__ import annotations

from ticktape.events.envelope import Envelope


class SessionStarted(Envelope, frozen=True, kw_only=True, tag="session.started"):
    """A run of the stack began. config_json is the effective configuration (no secrets),
    config_hash its short hash, code_version the git revision or package version, dependencies
    the id of the installed dependency set (interpreter, platform and every package version; see
    ticktape.depset), empty in recordings made before it was recorded.
    ts_event is the wall-clock start: sessions are records about the run, not core inputs."""

    session_id: str
    config_hash: str
    config_json: str
    code_version: str
    services: tuple[str, ...] = ()
    host: str = ""
    dependencies: str = ""


class SessionStopped(Envelope, frozen=True, kw_only=True, tag="session.stopped"):
    session_id: str
    reason: str = "stopped"
