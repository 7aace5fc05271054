"""Who may publish and subscribe to what on the bus: one table, computed from the service registry
and subjects.CHANNELS, rendered into the `authorization` block of an embedded nats-server.

Roles: every registered service, plus three that are not services:
  admin     `ticktape up` itself and the session tools (sessions, replay, export, import): the only
            role that creates, updates or deletes streams; records sessions; reads any stream
  operator  control.* and strategies.*: `ticktape stop`, `ticktape resume`, `ticktape strategies`
  observer  subscribes to everything and publishes nothing: `nats sub`, dashboards

A service may publish the subjects of the channels it is the publisher of (CHANNELS), its own
dead-letter subject (and a too-large input into the dead-letter payloads' object store), and the
JetStream API requests of a consumer on the streams it reads (ServiceInfo.reads): create, fetch
from and delete consumers, ack its own durables; a core service also its own snapshot bucket
(ticktape.snapshots.store). So a new
service or channel is one edit, and a subject family has exactly one publisher on the server."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ticktape import registry, subjects
from ticktape.bus.provision import stream_configs
from ticktape.config import NatsSettings
from ticktape.serviceinfo import ServiceInfo
from ticktape.snapshots.store import bucket_name
from ticktape.workers import every_durable

ADMIN = "admin"
OPERATOR = "operator"
OBSERVER = "observer"
TOOL_ROLES: tuple[str, ...] = (ADMIN, OPERATOR, OBSERVER)

# CHANNELS names publishers that are not services: these roles publish those channels.
_PUBLISHER_ROLE = {"ticktape up": ADMIN, "operator": OPERATOR}
_EVERY_SERVICE = "any service"  # dlq.{service}: each service its own subject only

INBOX = "_INBOX.>"  # replies: JetStream API responses, publish acks, pull deliveries
JS_INFO = "$JS.API.INFO"
JS_API = "$JS.API.>"
IMPORTED = "imported.>"  # `ticktape import` puts a session under imported.<id>. (ticktape.replay.importer)


class PermissionsError(ValueError):
    """The registry and CHANNELS do not make a consistent table; the message says what to fix."""


@dataclass(frozen=True)
class Permissions:
    """What one role may do. publish == () means it publishes nothing."""

    role: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    summary: str


def channel_pattern(template: str) -> str:
    """The subject filter of a channel template: each `{placeholder}` becomes `*`."""
    return re.sub(r"\{[^}]+\}", "*", template)


def stream_names(settings: NatsSettings) -> dict[str, str]:
    """The stream behind each ServiceInfo.reads key."""
    return {"events": settings.stream, "dlq": settings.dlq_stream, "trades": settings.trades_stream}


def roles(services: Sequence[ServiceInfo] | None = None) -> tuple[str, ...]:
    """Every role that gets a credential: the services in start order, then admin, operator, observer."""
    infos = registry.services() if services is None else services
    return (*(i.name for i in infos), *TOOL_ROLES)


def domain_subjects(role: str, services: Sequence[ServiceInfo] | None = None) -> tuple[str, ...]:
    """The event subjects (CHANNELS) a role may publish, without the JetStream API plumbing."""
    infos = registry.services() if services is None else services
    names = {i.name for i in infos}
    clash = names & set(TOOL_ROLES)
    if clash:
        raise PermissionsError(f"service name {sorted(clash)[0]!r} is reserved for a bus role; rename the service")
    out: list[str] = []
    for channel in subjects.CHANNELS:
        publisher = channel.publisher
        if publisher == _EVERY_SERVICE:
            if role in names:
                out.append(subjects.dead_letter(role))
            continue
        owner = _PUBLISHER_ROLE.get(publisher, publisher)
        if owner not in names and owner not in TOOL_ROLES:
            raise PermissionsError(
                f"channel {channel.template!r} names publisher {publisher!r}, which is neither a registered "
                f"service nor one of {', '.join(_PUBLISHER_ROLE)}, {_EVERY_SERVICE!r}"
            )
        if owner == role:
            out.append(channel_pattern(channel.template))
    return tuple(out)


def _consumer_api(stream: str, durables: Sequence[str]) -> list[str]:
    """A consumer's JetStream requests on one stream: create (ephemeral, named, durable), info,
    fetch, delete, read one message; acks of its own durables; flow-control replies."""
    api = f"$JS.API.CONSUMER.%s.{stream}"
    return [
        api % "CREATE",
        api % "CREATE" + ".>",
        api % "DURABLE.CREATE" + ".*",
        api % "INFO" + ".*",
        api % "DELETE" + ".*",
        api % "MSG.NEXT" + ".*",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.FC.{stream}.>",
        *(f"$JS.ACK.{stream}.{d}.>" for d in durables),
    ]


def _dead_letter_store(settings: NatsSettings) -> list[str]:
    """Keeping an input too large to inline in its dead letter in the payloads' object store
    (ticktape.bus.deadletter): write its chunks and meta, read an object's meta back."""
    bucket = settings.dlq_payloads_bucket
    return [f"$O.{bucket}.>", f"$JS.API.STREAM.MSG.GET.OBJ_{bucket}"]


def _snapshot_store(settings: NatsSettings, service: str) -> list[str]:
    """A core service's own snapshot bucket (ticktape.snapshots.store), and no other service's:
    write and delete its objects, list and read them back (nats-py's object store finds the
    bucket's stream by subject when it reads: STREAM.NAMES, which lists names only)."""
    bucket = bucket_name(settings, service)
    stream = f"OBJ_{bucket}"
    return [
        f"$O.{bucket}.>",
        "$JS.API.STREAM.NAMES",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.PURGE.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        *_consumer_api(stream, ()),
    ]


def table(settings: NatsSettings, services: Sequence[ServiceInfo] | None = None) -> tuple[Permissions, ...]:
    """Every role's permissions, for the stream names of `settings`."""
    infos = registry.services() if services is None else services
    streams = stream_names(settings)
    # every service checks that each provisioned stream is there when it starts (runtime.await_streams)
    stream_info = [f"$JS.API.STREAM.INFO.{config.name}" for config in stream_configs(settings)]
    out = []
    for info in infos:
        publish = [*domain_subjects(info.name, infos), *_dead_letter_store(settings), JS_INFO, *stream_info]
        # a service run as workers (ServiceInfo.workers) acks through one durable per partition
        durables = info.durables if info.workers is None else tuple(d for b in info.durables for d in every_durable(b))
        for key in info.reads:
            publish += _consumer_api(streams[key], durables)
        if info.kind == "core":
            publish += _snapshot_store(settings, info.name)
        out.append(
            Permissions(
                info.name,
                tuple(dict.fromkeys(publish)),
                (INBOX,),
                f"{info.kind} service; reads {', '.join(streams[k] for k in info.reads)}",
            )
        )
    out.append(
        Permissions(
            ADMIN,
            (*domain_subjects(ADMIN, infos), IMPORTED, JS_API),
            (INBOX,),
            "`ticktape up` and the session tools: provisions streams, records sessions, reads any stream",
        )
    )
    out.append(
        Permissions(
            OPERATOR,
            domain_subjects(OPERATOR, infos),
            (INBOX,),
            "`ticktape stop` / `resume` / `strategies`: control events and strategy changes only",
        )
    )
    out.append(Permissions(OBSERVER, (), (">",), "`nats sub`, dashboards: subscribes to everything, publishes nothing"))
    return tuple(out)


_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,}$")


def authorization_block(perms: Sequence[Permissions], passwords: Mapping[str, str]) -> str:
    """The nats-server `authorization` block: one user per role with its password and permissions.
    No user has no password and there is no anonymous user, so a client without one is refused."""
    users = []
    for p in perms:
        password = passwords[p.role]
        if not _SAFE_SECRET.match(password):
            raise PermissionsError(f"the password of role {p.role!r} must be 16+ characters of [A-Za-z0-9_-]")
        publish = {"allow": list(p.publish)} if p.publish else {"deny": [">"]}
        entry = {
            "user": p.role,
            "password": password,
            "permissions": {"publish": publish, "subscribe": {"allow": list(p.subscribe)}},
        }
        users.append("    " + json.dumps(entry))
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}"


def markdown_table(settings: NatsSettings | None = None, services: Sequence[ServiceInfo] | None = None) -> str:
    """The README's Security model table: what each role may publish and read."""
    infos = registry.services() if services is None else services
    streams = stream_names(settings or NatsSettings())
    by_name = {i.name: i for i in infos}
    rows = ["| role | publishes | reads (JetStream consumers) |", "|---|---|---|"]
    for role in roles(infos):
        published = ", ".join(f"`{s}`" for s in domain_subjects(role, infos)) or "nothing"
        if role == ADMIN:
            rows.append(f"| `{role}` | {published}, `{IMPORTED}`; the JetStream API (streams) | every stream |")
        elif role == OBSERVER:
            rows.append(f"| `{role}` | {published} | none; subscribes to everything (`>`) |")
        elif role in by_name:
            read = ", ".join(streams[k] for k in by_name[role].reads) or "none"
            rows.append(f"| `{role}` | {published} | {read} |")
        else:
            rows.append(f"| `{role}` | {published} | none |")
    return "\n".join(rows)
