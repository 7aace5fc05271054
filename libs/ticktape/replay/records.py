"""One stored message of a recording, and the session it belongs to, independent of where it is
read from (a live stream, an imported stream or a session file)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from ticktape.config import recorded_as_run


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """A message as JetStream stored it: stream, sequence, subject, headers, the time the server
    stored it (ns) and the payload bytes, verbatim. in_session: inside the session's own range."""

    stream: str
    seq: int
    subject: str
    headers: dict[str, str]
    time: int
    data: bytes
    in_session: bool = False


class SessionMeta(msgspec.Struct, frozen=True, kw_only=True):
    """A session as its lifecycle events recorded it, plus where it lies in the stream.
    stop_seq/stopped_ns/reason are None while it runs. derived_from names the source session of
    a what-if run."""

    session_id: str
    start_seq: int
    stop_seq: int | None
    started_ns: int
    stopped_ns: int | None
    reason: str | None
    config_hash: str
    config: str
    code_version: str
    services: tuple[str, ...] = ()
    host: str = ""
    derived_from: str | None = None
    dependencies: str = ""

    def config_doc(self) -> dict[str, Any]:
        """The recorded effective configuration as a document for corespec.load_specs, read as
        the code that recorded it read it (config.recorded_as_run: a key added since, whose
        default changed behaviour, gets the value that code ran with)."""
        doc = json.loads(self.config) if self.config else {}
        return recorded_as_run(doc) if isinstance(doc, dict) else recorded_as_run({})

    @property
    def running(self) -> bool:
        return self.stop_seq is None


def family(subject: str) -> str:
    """The subject family: its first token (md, signals, risk, orders, fills, ...)."""
    return subject.split(".", 1)[0]
