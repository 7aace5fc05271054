"""What a service declares about itself: pure data, so that a service package can declare it
(services/<name>/__init__.py) without pulling the registry's entry-point loading into its core.
ticktape.registry loads and validates these declarations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["producer", "core", "sink", "view"]
# producer: publishes what it takes from outside (venues); stopped first when a session ends.
# core:     a replayable decision core behind a durable consumer; drained, then stopped.
# sink:     archives the stream; stopped last, after the session's stop record, once drained.
# view:     a read model of the stream (ephemeral consumers, no durable: nothing to drain) that
#           answers queries; stopped last, with the sinks, so it answers while the stack stops.
KINDS: tuple[str, ...] = ("producer", "core", "sink", "view")
# The streams a service may read (create consumers on, fetch from, ack), by role; their names come
# from the nats settings (stream, dlq_stream, trades_stream). ticktape.bus.permissions grants it.
STREAMS: tuple[str, ...] = ("events", "dlq", "trades")


@dataclass(frozen=True)
class ServiceInfo:
    """What the platform needs to know about a service, declared once in its package.

    name:      config section, process and pid-file name (also the entry point's name)
    kind:      one of KINDS
    order:     start order; the cores' order is also the replay pipeline's
    module:    what the supervisor runs, as `python -m <module>`
    config:    "module:Struct" of the service's configuration section
    durables:  its durable consumers on the events stream, drained before it is stopped
    core_spec: "module:function" building its CoreSpec from the raw config document (cores only)
    reads:     the streams (STREAMS) it reads through JetStream consumers; the bus lets it do no more
    documents: (file name under proto/, "module:function" returning a JSON document) of the
               contracts it serves besides events (the API's OpenAPI document); `ticktape proto`
               writes them and the drift test checks them
    workers:   "module:function" planning how many worker processes `ticktape up` runs the service
               as (a ticktape.workers.WorkerPlan from the raw config document; cores only), each on
               its partition of the symbols through its own durable (ticktape.workers.durable);
               the count is its section's `workers` key
    """

    name: str
    kind: Kind
    order: int
    module: str
    config: str
    durables: tuple[str, ...] = ()
    core_spec: str | None = None
    reads: tuple[str, ...] = ("events",)
    documents: tuple[tuple[str, str], ...] = ()
    workers: str | None = None
